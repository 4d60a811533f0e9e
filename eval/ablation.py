"""One trained condition of the paper's ablation, measured at the kit's scale: the command for a single model.

    python -m eval.ablation measure l0-mask-l0-act [--seed 43] [--set lambda_d=0.1] [--no-zero-shot]
    python -m eval.ablation measure l0-mask --dry-run                                    # that one model's plan

Every study (Tables 2-3, Figures 1-3, the teachers: ``recipes/studies/``) is run by ``python -m eval.study``; this
command trains (cached) and evaluates one condition of ``recipes/conditions/<id>.yaml`` with any training-recipe field
changed, and prints its scores as JSON: what a new condition is tried with before it goes into a study file. The
model is trained once per training key and cached (:mod:`train.cache`; an interrupted training resumes), then
evaluated as :class:`eval.ablator.Ablator` measures it: nDCG@10 on the in-domain dataset with FLOPS and Doc_Len
(Section 5.1.3), zero-shot on the condition's other datasets. :func:`seed_means_frame` averages seed rows (Li-LSR).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from eval.ablator import SCALES, Ablator, Scale, get_scale
from kit.argtypes import ArgumentParser
from kit.errors import InputError, cli
from train.cache import read_seconds, training_key
from train.conditions import Condition, condition_ids, load_condition
from train.recipe import TRAIN_FIELDS


# ---- seed means -----------------------------------------------------------------------------------------------------

def seed_means_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-query values named ``<system>@seed<n>`` averaged over the seeds, named ``<system>``."""
    frame = frame.copy()
    frame["system"] = frame["system"].str.rsplit("@", n=1).str[0]
    return frame.groupby(["dataset", "system", "query_id", "measure"], as_index=False, sort=False)["value"].mean()


# ---- listing and planning --------------------------------------------------------------------------------------------

def parse_changes(items: Sequence[str]) -> dict:
    """``["lambda_d=0.1", "threshold=null"]`` -> training-recipe field overrides, values read as YAML scalars."""
    fields = sorted(set(TRAIN_FIELDS) - {"base_model", "data", "variant", "seed"})  # the condition fixes these
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise InputError(None, f"--set {item!r}: expected FIELD=VALUE with FIELD a training-recipe field",
                             fix=f"fields: {', '.join(fields)}")
        try:
            changes[key] = TRAIN_FIELDS[key](yaml.safe_load(value))
        except ValueError as err:
            raise InputError(None, f"--set {item!r}: {err}") from None
    return changes


def measure_command(condition: str, seed: int, scale: Scale, changes: Mapping[str, Any] | None = None,
                    zero_shot: bool = True) -> str:
    sets = "".join(f" --set {k}={v:g}" if isinstance(v, float) else f" --set {k}={v}" for k, v in (changes or {}).items())
    return (f"python -m eval.ablation measure {condition} --seed {seed} --scale {scale.name}{sets}"
            + ("" if zero_shot else " --no-zero-shot"))


def dry_run(ablator: Ablator, jobs: Sequence[tuple[Condition, int, dict, list[str]]]) -> None:
    """``--dry-run``: each model to train or reuse (its cache folder), and the datasets each is evaluated on."""
    for condition, seed, changes, datasets in jobs:
        where, state = ablator.model_state(condition, seed, **changes)
        print(f"{condition.id} seed {seed}{' ' + str(changes) if changes else ''}: model {where} [{state}]; "
              f"evaluated on {', '.join(datasets)}")
        print(f"    {measure_command(condition.id, seed, ablator.scale, changes, len(datasets) > 1)}")


# ---- command line ----------------------------------------------------------------------------------------------------

@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.ablation", description=__doc__.splitlines()[0])
    p.add_argument("target", choices=["measure"], help="one condition (ROW, with --set overrides), its scores printed as JSON")
    p.add_argument("row", nargs="?", help="measure: a condition, e.g. l0-mask-l0-act (recipes/conditions/)")
    p.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                   help="measure: override a training-recipe field (repeatable), e.g. --set lambda_d=0.1")
    p.add_argument("--seed", type=int, default=None, help="measure: the training seed (default: the condition's first)")
    p.add_argument("--no-zero-shot", action="store_true", help="measure: SciFact only")
    p.add_argument("--scale", default="full", choices=list(SCALES))
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dry-run", action="store_true", help="print the model to train or reuse, run nothing")
    args = p.parse_args(argv)
    ablator = Ablator(get_scale(args.scale), device=args.device)
    if args.row is None:
        raise InputError(None, "measure needs a condition", fix=f"one of {', '.join(condition_ids())}")
    condition = load_condition(args.row)
    changes = parse_changes(args.changes)
    seed = args.seed if args.seed is not None else condition.run_seeds()[0]
    datasets = ablator.datasets(condition, not args.no_zero_shot)
    if args.dry_run:  # the one model this command trains or reuses
        dry_run(ablator, [(condition, seed, changes, datasets)])
        return 0
    m = ablator.measure(condition, seed, datasets, **changes)
    print(json.dumps({"condition": m.condition, "seed": m.seed, "training_key": training_key(m.recipe),
                      "model": str(m.model), "changes": changes, "scores": m.scores,
                      "seconds": read_seconds(m.model), "stage_seconds": ablator.timer.rounded()},
                     default=str))
    return 0

if __name__ == "__main__":
    sys.exit(main())
