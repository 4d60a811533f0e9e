"""``python -m train --recipe recipes/train/<name>.yaml [--out DIR] [--max-steps N] [--resume]``.

Trains the recipe's inference-free sparse retriever and writes the model directory (default
``work/models/<recipe name>``). Several processes: ``torchrun --nproc_per_node N -m train --recipe ...`` (the recipe's
``batch_size`` is per process, so the global batch is N × batch_size × grad_accumulation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from kit.argtypes import ArgumentParser, positive_int
from kit.errors import cli
from kit.lazy import lazy_import
from train.recipe import load_train_recipe

trainer = lazy_import("train.trainer")  # torch and transformers: loaded once the recipe is read and valid


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, required=True, help="training recipe (recipes/train/*.yaml)")
    parser.add_argument("--out", type=Path, help="model directory (default: work/models/<recipe name>)")
    parser.add_argument("--max-steps", type=positive_int, help="override the recipe's max_steps")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUT/checkpoints")
    return parser


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    recipe = load_train_recipe(args.recipe)
    out = trainer.train(recipe, args.out, max_steps=args.max_steps, resume=args.resume)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
