"""One runner for every study file.

    python -m eval.study <study id or file> [--scale smoke|full] [--seeds 42,43] [--update] [--out DIR]
    python -m eval.study <study> --list-conditions | --dry-run
    python -m eval.study <study> --replay results/<id>.json [more.json]   # re-derive from stored measurements
    python -m eval.study --list
    python -m eval.study table1 [--datasets all] [--model ID | --recipe FILE] [--backend seismic] [--force] ...

Table 1's regression options (``--model``, ``--datasets`` ...) are :mod:`eval.study.regression`'s.

A study file (``recipes/studies/<id>.yaml``, format in ``docs/studies.md``) names its conditions, tables and
comparisons; the run trains each condition at each seed (cached, resumable), measures the references beside them,
and writes ``work/results/<id>.{csv,md,json}`` (``--update``: the stored ``results/``). A condition outside its
expected score prints ``FAIL`` and the command exits 1.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from eval.ablator import SCALES, Ablator, get_scale
from eval.results import output_folder
from eval.study.references import measure_references
from eval.study.regression import add_options, configure, engine_settings
from eval.study.replay import replayed
from eval.study.runner import list_conditions, measured, plan, run_study
from eval.study.spec import STUDIES, load_study
from kit.argtypes import ArgumentParser, add_runner_options
from kit.data import is_split
from kit.errors import InputError, cli
from pipeline.plan import print_plans


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.study", description=__doc__.splitlines()[0])
    p.add_argument("study", nargs="?", help="a study id (recipes/studies/<id>.yaml) or a study file")
    p.add_argument("--list", action="store_true", help="list the stored studies")
    p.add_argument("--scale", default="full", choices=list(SCALES))
    p.add_argument("--replay", metavar="RECORD", nargs="+",
                   help="derive the tables and comparisons from the measurements of a stored record of the same "
                        "conditions instead of measuring; records after the first add the rows it lacks")
    add_runner_options(p, seeds="the training seeds of every condition, e.g. 42,43,44 (default: each condition's)")
    add_options(p)
    args = p.parse_args(argv)
    if args.list:
        for path in sorted(STUDIES.glob("*.yaml")):
            print(f"{path.stem}: {load_study(path).title}")
        return 0
    if args.study is None:
        raise InputError(None, "name a study", fix="python -m eval.study --list")
    study, recorded = configure(load_study(args.study), args)
    scale = get_scale(args.scale)
    if args.list_conditions:
        list_conditions(study, scale, args.seeds)
        return 0
    ablator = Ablator(scale, device=args.device, in_domain=study.in_domain, measures=study.measures)
    ablator.settings = engine_settings(ablator.settings, args)
    if args.dry_run:
        if study.conditions or any(is_split(d) or r.members for d in study.datasets for r in study.references):
            plan(study, ablator, args.seeds)
        else:  # every stage's artifact of every system, and the encode commands (in --shards)
            print_plans(list(study.datasets), ablator.settings, ablator.timer, [r.system for r in study.references],
                        args.shards)
        return 0
    command = " ".join(["python -m eval.study", *(argv if argv is not None else sys.argv[1:])])
    out = output_folder(args.out, args.update)
    if args.replay:
        first, *beside = map(Path, args.replay)

        def measure_missing(references, datasets):
            return measure_references(dataclasses.replace(study, references=tuple(references)), ablator, datasets)

        return run_study(study, replayed(study, first, beside, measure_missing), out, command, meta=recorded)
    return run_study(study, measured(study, ablator, args.seeds), out, command, ablator.timer, meta=recorded)


if __name__ == "__main__":
    sys.exit(main())
