"""Calibrate a condition's λ_d on a dev split so that its FLOPS matches another condition's: the paper's Table 2
compares its rows "in comparable FLOPS", not at one λ_d.

    python -m eval.calibrate l0-mask --match baseline --table 2       # writes recipes/conditions/l0-mask-cf.yaml
    python -m eval.calibrate l0-mask --match baseline --dry-run       # the procedure, nothing trained

The procedure is declared and re-runnable:

1. The target is the FLOPS of ``--match`` (at its own recipe) on ``--split`` (default ``scifact/dev``), at ``--seed``.
2. The condition is trained at its own λ_d and its FLOPS measured on the same split. FLOPS falls with λ_d roughly
   as a power, FLOPS ∝ λ_d^(−k), so the next λ_d is ``λ · (FLOPS / target)^(1/k)``: ``k`` is :data:`START_SLOPE`
   until two probes give its secant in log-log space (clipped to :data:`SLOPES`).
3. It stops when the FLOPS is within ``--tolerance`` (default 2%, inside the ±5% the comparison allows on test) of the
   target, or after ``--max-probes`` (exit 1, nothing written).

Every probe is a cached model (``work/ablation/<condition>/<training key>``), so a rerun repeats no training. The
result is a condition file ``<condition>-cf.yaml`` beside the original: its fields with ``lambda_d`` set, the seeds of
the original, and a ``calibration`` block recording the target, the split, the seed and every probe.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Sequence

import yaml
from tqdm.auto import tqdm

from eval.ablator import Ablator, get_scale
from kit.argtypes import ArgumentParser
from kit.errors import InputError, cli
from kit.io import atomic_write
from kit.paths import repo_relative
from train.conditions import CONDITIONS, Condition, load_condition

START_SLOPE = 0.3
"""The assumed exponent k of FLOPS ∝ λ_d^(−k) before two probes measure it."""
SLOPES = (0.05, 3.0)
SUFFIX = "-cf"


def flops(ablator: Ablator, condition: Condition, seed: int, split: str, **changes) -> float:
    """The FLOPS on ``split`` of the condition's model at ``seed`` (trained once and cached)."""
    value = ablator.measure(condition, seed, [split], **changes).scores[split]["FLOPS"]
    if not math.isfinite(value) or value <= 0:
        raise InputError(condition.path, f"FLOPS {value!r} on {split}: the model's documents are empty",
                         fix="calibrate from a smaller lambda_d (--start)")
    return value


def next_value(probes: Sequence[tuple[float, float]], target: float) -> float:
    """The λ_d the power law through the last probes gives for ``target`` FLOPS."""
    (x1, f1) = probes[-1]
    slope = START_SLOPE
    if len(probes) >= 2:
        (x0, f0) = probes[-2]
        if x0 != x1 and f0 > 0 and f1 > 0:
            measured = -(math.log(f1) - math.log(f0)) / (math.log(x1) - math.log(x0))
            slope = min(max(measured, SLOPES[0]), SLOPES[1]) if math.isfinite(measured) else slope
    return x1 * (f1 / target) ** (1 / slope)


def calibrate(ablator: Ablator, condition: Condition, match: Condition, split: str, seed: int, tolerance: float,
              max_probes: int, start: float | None = None) -> tuple[float, list[tuple[float, float]]]:
    """The target FLOPS and the probes ``[(λ_d, FLOPS), ...]``, the last one within ``tolerance`` when converged."""
    target = flops(ablator, match, seed, split)
    condition = dataclasses.replace(condition, id=f"{condition.id}{SUFFIX}")  # its probes: the calibrated condition's
    value = start if start is not None else condition.recipe(seed).lambda_d
    probes: list[tuple[float, float]] = []
    with tqdm(total=max_probes, desc=f"calibrate {condition.id}", unit="probe") as bar:
        while len(probes) < max_probes:
            probes.append((value, flops(ablator, condition, seed, split, lambda_d=value)))
            bar.update()
            tqdm.write(f"  λ_d {value:.6g}: FLOPS {probes[-1][1]:.4f} (target {target:.4f})")
            if abs(probes[-1][1] / target - 1) <= tolerance:
                break
            value = float(f"{next_value(probes, target):.4g}")
    return target, probes


def write_condition(condition: Condition, match: Condition, split: str, seed: int, tolerance: float, target: float,
                    probes: list[tuple[float, float]], out: Path, tables: Sequence[int] = ()) -> None:
    """``<condition>-cf.yaml``: the original condition's fields with the calibrated ``lambda_d`` and the procedure;
    ``tables``: the paper tables it is a row of (the original's rows stay the original's)."""
    raw = yaml.safe_load(condition.path.read_text(encoding="utf-8"))
    raw.pop("expected", None)  # measured at the old λ_d: the calibrated condition earns its own expectations
    raw.pop("tolerance", None)
    raw.update(id=out.stem, tables=list(tables), set={**(raw.get("set") or {}), "lambda_d": probes[-1][0]})
    raw["calibration"] = {
        "field": "lambda_d", "match": match.id, "split": split, "seed": seed, "tolerance": tolerance,
        "target_flops": round(target, 6), "probes": [[x, round(f, 6)] for x, f in probes],
        "command": f"python -m eval.calibrate {condition.id} --match {match.id} --split {split} --seed {seed} "
                   f"--tolerance {tolerance:g}" + "".join(f" --table {t}" for t in tables)}
    head = (f"# {condition.id} with λ_d calibrated on {split} to the FLOPS of {match.id} (python -m eval.calibrate;\n"
            f"# the procedure and its probes in `calibration`). Table 2 compares its rows in comparable FLOPS.\n")
    with atomic_write(out) as fh:
        fh.write(head + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=120))


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("condition", help="the condition whose lambda_d is calibrated (recipes/conditions/<id>.yaml)")
    p.add_argument("--match", required=True, help="the condition whose FLOPS it is calibrated to")
    p.add_argument("--split", default="scifact/dev", help="where FLOPS is measured (default: scifact/dev)")
    p.add_argument("--seed", type=int, default=42, help="the training seed of every probe (default: 42)")
    p.add_argument("--tolerance", type=float, default=0.02, help="relative FLOPS tolerance (default: 0.02)")
    p.add_argument("--max-probes", type=int, default=6, help="probes before giving up (default: 6)")
    p.add_argument("--start", type=float, default=None, help="the first lambda_d probed (default: the condition's)")
    p.add_argument("--out", default=None, help="the condition file written (default: recipes/conditions/<id>-cf.yaml)")
    p.add_argument("--table", type=int, action="append", default=[], choices=(2, 3),
                   help="a paper table the calibrated condition is a row of (repeatable)")
    p.add_argument("--scale", default="full", help="the ablation scale the probes train at (smoke: a test)")
    p.add_argument("--dry-run", action="store_true", help="print the procedure; train nothing")
    args = p.parse_args(argv)
    condition, match = load_condition(args.condition), load_condition(args.match)
    if not 0 < args.tolerance < 1 or args.max_probes < 1:
        raise InputError(None, "--tolerance must be in (0, 1) and --max-probes at least 1")
    out = Path(args.out) if args.out else CONDITIONS / f"{condition.id}{SUFFIX}.yaml"
    if out.name != f"{condition.id}{SUFFIX}.yaml":  # a condition file's id is its stem, and the probes' cache folder
        raise InputError(out, f"the calibrated condition of {condition.id} is {condition.id}{SUFFIX}",
                         fix=f"--out <folder>/{condition.id}{SUFFIX}.yaml")
    if args.dry_run:
        print(f"target: FLOPS of {match.id} seed {args.seed} on {args.split}; probes of {condition.id} from λ_d "
              f"{args.start or condition.recipe(args.seed).lambda_d:g}, at most {args.max_probes}, until within "
              f"{args.tolerance:.0%}; writes {repo_relative(out)}")
        return 0
    ablator = Ablator(get_scale(args.scale))
    target, probes = calibrate(ablator, condition, match, args.split, args.seed, args.tolerance, args.max_probes,
                               args.start)
    if abs(probes[-1][1] / target - 1) > args.tolerance:
        print(f"FAIL {condition.id}: FLOPS {probes[-1][1]:.4f} after {len(probes)} probes, target {target:.4f} "
              f"± {args.tolerance:.0%} (fix: --max-probes, or --start nearer)", file=sys.stderr)
        return 1
    write_condition(condition, match, args.split, args.seed, args.tolerance, target, probes, out, args.table)
    print(f"wrote {repo_relative(out)}: λ_d {probes[-1][0]:g}, FLOPS {probes[-1][1]:.4f} on {args.split} against "
          f"{match.id}'s {target:.4f} ({len(probes)} probes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
