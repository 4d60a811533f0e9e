"""Figures 1-3 and single trained conditions of the paper's ablation, at the kit's scale.

    python -m eval.ablation figures [--scale smoke|full] [--update]                      # Figures 1-3
    python -m eval.ablation figures --list-conditions | --dry-run
    python -m eval.ablation measure l0-mask-l0-act [--seed 43] [--set lambda_d=0.1]      # one condition
    python -m eval.ablation measure l0-mask --dry-run                                    # that one model's plan

Tables 2 and 3 are studies (``recipes/studies/table{2,3}.yaml``, run by ``python -m eval.study``; ``make ablation``).
Section 5.3 of "Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers" (SIGIR 2025) trains one
IDF-SPLADE-doc model per condition: the FLOPS regularizer with or without the ℓ0 mask (eq. 5, threshold t), and the
ℓ0 approximation activation (eq. 6) or one of its variants (Table 3). Each condition is a file
``recipes/conditions/<id>.yaml`` (:mod:`train.conditions`); each figure point is a line of ``recipes/figures.yaml``
(a condition with one field changed). Every model is trained once per seed and cached (:mod:`train.cache`; an
interrupted training resumes), then evaluated by the pipeline (:mod:`pipeline`) as :class:`eval.ablator.Ablator`
measures it.

Results go to ``work/results/`` (``--update``: the stored reference ``results/``); a point outside its expected score's
tolerance prints ``FAIL`` and the command exits 1. ``--scale smoke`` trains a few steps on a slice (a pipeline check;
no expectations). The kit's model is a 4.4M-parameter SPLADE-tiny trained minutes on SciFact, not the paper's
BERT-base on MS MARCO: only directions can be compared.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from eval.ablator import SCALES, Ablator, Measured, Scale, get_scale
from eval.figures import figure_points, run_figures
from eval.results import output_folder
from kit.argtypes import ArgumentParser, add_runner_options
from kit.errors import InputError, cli
from train.cache import read_seconds, training_key
from train.conditions import Condition, condition_ids, load_condition
from train.recipe import TRAIN_FIELDS


# ---- seed means and wall times ------------------------------------------------------------------------------------------------

RAW_COLUMNS = ("train_s", "eval_s")
"""The table columns measured outside the record (wall times), sealed by their digest (:func:`eval.results.seal_record`)."""


def wall_seconds(runs: Sequence[Measured]) -> dict[str, float]:
    """``train_s`` and ``eval_s``: the wall time of a condition's models, all seeds, from their ``timing.json``."""
    seconds = [read_seconds(m.model) for m in runs]
    return {"train_s": round(sum(s.get("train", 0.0) for s in seconds), 1),
            "eval_s": round(sum(v for s in seconds for k, v in s.items() if k.startswith("eval_")), 1)}


def seed_means(measured: Sequence[Measured]) -> pd.DataFrame:
    """Per-query values of each condition averaged over its seeds, named by the condition (what is compared)."""
    return seed_means_frame(pd.concat([m.per_query for m in measured], ignore_index=True))


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


def list_conditions(scale: Scale) -> None:
    """``figures --list-conditions``: each figure point, its expectations and the command that measures it."""
    for p in figure_points(scale):
        expected = ", ".join(f"{d} {e}" for d, e in p.expected.items()) or "none"
        print(f"{p.id}: {p.condition} with {p.changes}; expected {expected} (± {p.tolerance:g})")
        print(f"    {measure_command(p.condition, load_condition(p.condition).run_seeds()[0], scale, p.changes, False)}")


def dry_run(ablator: Ablator, jobs: Sequence[tuple[Condition, int, dict, list[str]]] | None = None) -> None:
    """``--dry-run``: each model to train or reuse (its cache folder), and the datasets each is evaluated on; ``jobs``
    (``measure``: its one ``(condition, seed, changes, datasets)``) instead of the figures' points."""
    if jobs is None:
        jobs = [(load_condition(p.condition), load_condition(p.condition).run_seeds()[0], dict(p.changes), ["scifact"])
                for p in figure_points(ablator.scale)]
    for condition, seed, changes, datasets in jobs:
        where, state = ablator.model_state(condition, seed, **changes)
        print(f"{condition.id} seed {seed}{' ' + str(changes) if changes else ''}: model {where} [{state}]; "
              f"evaluated on {', '.join(datasets)}")
        print(f"    {measure_command(condition.id, seed, ablator.scale, changes, len(datasets) > 1)}")


# ---- command line ----------------------------------------------------------------------------------------------------

@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.ablation", description=__doc__.splitlines()[0])
    p.add_argument("target", choices=["figures", "measure"],
                   help="measure: one condition (ROW, with --set overrides), its scores printed as JSON")
    p.add_argument("row", nargs="?", help="measure: a condition, e.g. l0-mask-l0-act (recipes/conditions/)")
    p.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                   help="measure: override a training-recipe field (repeatable), e.g. --set lambda_d=0.1")
    p.add_argument("--seed", type=int, default=None, help="measure: the training seed (default: the condition's first)")
    p.add_argument("--no-zero-shot", action="store_true", help="measure: SciFact only")
    p.add_argument("--scale", default="full", choices=list(SCALES))
    add_runner_options(p)
    args = p.parse_args(argv)
    scale = get_scale(args.scale)
    if args.list_conditions:
        if args.target != "figures":
            raise InputError(None, "--list-conditions lists the figures' points",
                             fix="python -m eval.study <study> --list-conditions for a study's conditions")
        list_conditions(scale)
        return 0
    ablator = Ablator(scale, device=args.device)
    if args.target == "measure":
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
    if args.dry_run:
        dry_run(ablator)
        return 0
    command = " ".join(["python -m eval.ablation", *(argv if argv is not None else sys.argv[1:])])
    return run_figures(ablator, output_folder(args.out, args.update), command)


if __name__ == "__main__":
    sys.exit(main())
