"""Table 1's runner by its former name: ``python -m eval.reproduce [options]`` is ``python -m eval.study table1
[options]`` (the study ``recipes/studies/table1.yaml``; options in :mod:`eval.study.regression`).

    python -m eval.reproduce                                                 # = make reproduce-table1
    python -m eval.reproduce --recipe recipes/my-table.yaml --datasets nfcorpus
    python -m eval.reproduce --datasets all --model opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill

``--recipe recipes/table1.yaml`` (the systems' registry) measures the study's own references, with the study file's
expectations; another recipe measures its systems with the expectations it gives them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from eval.study.__main__ import main as study
from eval.study.regression import RELEASED, model_systems, resolve_datasets
from eval.study.spec import REFERENCE_RECIPE

__all__ = ["RELEASED", "main", "model_systems", "resolve_datasets", "study_argv"]


def study_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` of ``eval.reproduce`` as ``eval.study``'s: the study first, ``--recipe`` of the registry itself left out."""
    out, args = ["table1"], list(map(str, argv))
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name == "--recipe":
            value = value if eq else (args.pop(0) if args else "")
            if Path(value).resolve() == REFERENCE_RECIPE.resolve():
                continue
            out += ["--recipe", value]
            continue
        out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    return study(study_argv(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
