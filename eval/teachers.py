"""The teacher ceiling: each teacher, fusions of them and the student, on the split the student learns from and on test.

    python -m eval.teachers [--update]          # recipes/teachers.yaml -> work/results/teachers.{csv,md,json}
    python -m eval.teachers --list-conditions | --dry-run

The kit's ℓ0 student is distilled from a teacher ensemble (:mod:`train.teachers`: MiniLM and SPLADE-tiny, min-max
normalised over each training example's candidates). Its gain over the untrained model is small, and its teachers
alone score below BM25 on SciFact test, but an ensemble is not its members. This report makes the ceiling visible:
every teacher of ``recipes/teachers.yaml`` (systems of Table 1's recipe, with its settings and cached artifacts), each
declared fusion of their runs (``pyserini.fusion.normalize``: scores min-max normalised per query, then summed, over
each run's top ``hits``) and the student, on SciFact train (the queries the student is trained on) and test. Beside
each row: Δ BM25 and the student's paired difference to it (t-test and Wilcoxon over queries, Holm within each split).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from eval.provenance import provenance
from eval.recipe import System, load_recipe
from eval.results import (check_expected, fmt, markdown_table, output_folder, points_over, report_checks, signed,
                          where_written, write_results)
from eval.stats import ALPHA, CORRECTION, TESTS, holm, paired_summary
from kit import validate as V
from kit.argtypes import ArgumentParser, add_runner_options
from kit.data import load_dataset
from kit.errors import InputError, cli
from kit.paths import REPO, dataset_slug, repo_relative, work_dir
from pipeline.dataset import DatasetRun
from pipeline.metrics import evaluate
from pipeline.plan import print_plan, resolve_trained
from pipeline.settings import Settings
from pipeline.systems import Fusion, fusion_of
from train.conditions import expected_scores

TEACHERS_RECIPE = REPO / "recipes" / "teachers.yaml"
MEASURES = ("nDCG@10", "R@100")
REFERENCE = "bm25-flat"


@dataclass(frozen=True)
class TeacherReport:
    """``recipes/teachers.yaml``: the systems (Table 1's, by id), the fusions, the student, the splits, expectations."""

    path: Path
    table: Path
    splits: Mapping[str, str]  # split label -> dataset spec (``scifact``, ``scifact/train``)
    student: str
    systems: tuple[str, ...]
    fusions: Mapping[str, tuple[str, ...]]
    expected: Mapping[str, Mapping[str, Mapping[str, float]]]  # system -> split -> {measure: score}
    tolerance: float


def load_teacher_report(path: Path = TEACHERS_RECIPE) -> TeacherReport:
    """The report's recipe; InputError (file:line) on anything malformed, e.g. a system Table 1 does not define."""
    recipe = V.load_mapping(path, "teacher report")
    v = V.fields(recipe, recipe.data, {"table": V.text, "splits": V.anything, "student": V.text,
                                       "systems": V.string_list, "fusions": V.anything, "tolerance": V.number(0),
                                       "expected": V.anything}, required=("table", "splits", "student", "systems"))
    table = REPO / v["table"]
    known = {s.id for s in load_recipe(table).systems}
    for where, sid in [("student", v["student"]), *(("systems", s) for s in v["systems"])]:
        if sid not in known:
            raise recipe.error(where, f"{sid!r} is not a system of {v['table']}", fix=f"one of {', '.join(sorted(known))}")
    splits = v["splits"]
    if not isinstance(splits, dict) or not splits or not all(isinstance(s, str) for s in splits.values()):
        raise recipe.error("splits", "expected a mapping of split label -> dataset (e.g. train: scifact/train)")
    fusions = {}
    for fid, members in (v.get("fusions") or {}).items():
        if not isinstance(members, list) or len(members) < 2 or not set(members) <= set(v["systems"]):
            raise recipe.error(f"fusions.{fid}", "a fusion lists at least two of `systems`",
                               fix=f"choose from {', '.join(v['systems'])}")
        fusions[str(fid)] = tuple(members)
    expected, rows = {}, {*v["systems"], *fusions, v["student"]}
    for sid, by_split in (v.get("expected") or {}).items():
        try:
            expected[sid] = expected_scores(by_split)
        except ValueError as err:
            raise recipe.error(f"expected.{sid}", str(err)) from None
        if sid not in rows or not set(expected[sid]) <= set(splits):
            raise recipe.error(f"expected.{sid}", "expected: {system: {split: {measure: score}}} of the report's rows")
    return TeacherReport(path, table, dict(splits), v["student"], tuple(v["systems"]), fusions, expected,
                         v.get("tolerance", 0.002))


def split_dataset(spec: str, recipe: Path = TEACHERS_RECIPE):
    """``scifact`` -> SciFact test; ``scifact/train`` -> its train split (:func:`kit.data.load_dataset`); an unknown
    one is an InputError naming ``recipe``."""
    name, _, split = spec.partition("/")
    try:
        return load_dataset(name, split or "test")
    except ValueError as exc:
        raise InputError(recipe, f"splits: {exc}") from None


def fused_run(run: DatasetRun, fid: str, members: Sequence[System]) -> Path:
    """The min-max score fusion of the members' runs (:class:`pipeline.systems.Fusion`), cached by their run keys."""
    system, kind = fusion_of(fid, members), Fusion()
    art = kind.run_artifact(run, system)
    kind.make(run, system, art)
    return art.path


def split_run(report: TeacherReport, label: str, settings: Settings) -> DatasetRun:
    """The engine on one split. Both splits share SciFact's folder: corpus artifacts (vectors, indexes, embeddings)
    are reused, and runs are keyed by their queries."""
    spec = report.splits[label]
    return DatasetRun(split_dataset(spec, report.path), settings, root=work_dir() / dataset_slug(spec.partition("/")[0]),
                      name=dataset_slug(spec))


def measure_split(report: TeacherReport, label: str, systems: Mapping[str, System], settings: Settings
                  ) -> tuple[list[dict], pd.DataFrame]:
    """Every row of the report on one split: ``{system, nDCG@10, R@100}`` rows and per-query values."""
    run = split_run(report, label, settings)
    ds = run.ds
    rows, frames = [], []
    for sid in (*report.systems, report.student):
        result = run.run_system(systems[sid])
        frames.append(result.pop("_per_query"))
        rows.append({"system": sid, "label": systems[sid].label, "kind": "student" if sid == report.student
                     else "teacher", **{m: float(result[m]) for m in MEASURES}})
    for fid, members in report.fusions.items():
        scores, per_query = evaluate(fused_run(run, fid, [systems[m] for m in members]), ds.qrels, list(MEASURES))
        per_query.insert(0, "system", fid)
        per_query.insert(0, "dataset", run.key)
        frames.append(per_query)
        rows.append({"system": fid, "label": " + ".join(systems[m].label.split(" (")[0] for m in members) + " (fusion)",
                     "kind": "fusion", **{m: float(scores[m]) for m in MEASURES}})
    per_query = pd.concat(frames, ignore_index=True)
    for r in rows:
        r["dataset"], r["split"] = run.key, label
    return rows, per_query


def student_tests(rows: list[dict], per_query: pd.DataFrame, student: str) -> None:
    """Add the student's paired nDCG@10 difference to every other row of one split (Holm over the split's rows)."""
    pq = per_query[per_query["measure"] == "nDCG@10"].pivot_table(index="query_id", columns="system", values="value")
    others = [r for r in rows if r["system"] != student]
    for r in others:
        r.update({f"student_{k}": v for k, v in paired_summary(pq[student].tolist(), pq[r["system"]].tolist()).items()})
    for r, p in zip(others, holm([r["student_p_t"] for r in others])):
        r["student_p_holm"] = p


def complete_split(report: TeacherReport, label: str, rows: list[dict], per_query: pd.DataFrame) -> list[dict]:
    """One split's rows (:func:`measure_split`) with the student's paired tests, Δ BM25 and the check."""
    student_tests(rows, per_query, report.student)
    bm25 = next(r["nDCG@10"] for r in rows if r["system"] == REFERENCE)
    for r in rows:
        r["Δ_bm25"] = points_over(r["nDCG@10"], bm25)
        r["check"], r["check_detail"] = check_expected(report.expected.get(r["system"], {}).get(label),
                                                       report.tolerance, r)
    return rows


def build_table(rows: list[dict]) -> pd.DataFrame:
    """The report's table: every split's rows (:func:`complete_split`), what each row is first."""
    table = pd.DataFrame(rows)
    first = ["dataset", "split", "system", "label", "kind", *MEASURES, "Δ_bm25"]
    return table[first + [c for c in table.columns if c not in first]]


def render_markdown(report: TeacherReport, table: pd.DataFrame, command: str, hits: int) -> str:
    lines = [f"<!-- generated by `{command}`; do not edit -->", "# The teacher ceiling: teachers, their fusions and the student",
             "", f"SciFact, retrieval from the whole corpus (top {hits}), systems of `{repo_relative(report.table)}` "
             f"(`{repo_relative(report.path)}`). Fusion: `pyserini.fusion.normalize` (min-max per query, summed). "
             "Student: the kit's ℓ0 model (Table 1's row), distilled on the train split from the MiniLM + SPLADE-tiny "
             "ensemble. Student Δ: student − row, paired over the split's queries "
             f"({TESTS}); p (Holm): {CORRECTION}, per split; α = {ALPHA}.", ""]
    cols = ["split", "row", "kind", "nDCG@10", "R@100", "Δ BM25 (points)", "student Δ (points)", "W/T/L",
            "p (Holm)", "check"]
    body = []
    for r in table.to_dict("records"):
        has = pd.notna(r.get("student_delta"))
        body.append([r["split"], r["label"], r["kind"], fmt(r["nDCG@10"]), fmt(r["R@100"]), signed(r["Δ_bm25"], 2),
                     signed(100 * r["student_delta"], 2) if has else "–",
                     f"{int(r['student_wins'])}/{int(r['student_ties'])}/{int(r['student_losses'])}" if has else "–",
                     f"{r['student_p_holm']:.2g}" if has else "–", r["check"] or "–"])
    lines += [*markdown_table(cols, body), ""]
    for split, group in table.groupby("split", sort=False):
        best = group[group["kind"] != "student"].sort_values("nDCG@10").iloc[-1]
        student = group[group["kind"] == "student"].iloc[0]
        lines += [f"- **{split}**: the best row is {best['label']} at {best['nDCG@10']:.4f}; the student reaches "
                      f"{student['nDCG@10']:.4f} ({signed(100 * (student['nDCG@10'] - best['nDCG@10']), 2)} points), "
                      f"BM25 {group.set_index('system').loc[REFERENCE, 'nDCG@10']:.4f}."]
    return "\n".join(lines) + "\n"


def run_report(report: TeacherReport, out: Path, command: str, settings: Settings | None = None) -> int:
    started = time.perf_counter()
    prov = provenance(command=command.split())
    table1 = load_recipe(report.table)
    settings = settings or Settings.of(table1)
    systems = {s.id: s for s in table1.systems if s.id in {*report.systems, report.student}}
    systems[report.student] = resolve_trained(systems[report.student])
    rows, frames = [], []
    for label in report.splits:
        split_rows, per_query = measure_split(report, label, systems, settings)
        rows += complete_split(report, label, split_rows, per_query)
        frames.append(per_query)
    table = build_table(rows)
    schema_rows = [{"dataset": r["dataset"], "system": r["system"], "label": r["label"],
                    "metrics": {m: r[m] for m in MEASURES},
                    **({"expected": dict(report.expected[r["system"]][r["split"]]), "tolerance": report.tolerance}
                       if report.expected.get(r["system"], {}).get(r["split"]) else {})} for r in rows]
    write_results(out, "teachers", table, render_markdown(report, table, command, settings.hits), pd.concat(frames, ignore_index=True),
                  {"kind": "teachers", "measures": list(MEASURES), **prov, "recipe": repo_relative(report.path),
                   "rows": schema_rows,
                   "datasets": list(dict.fromkeys(table["dataset"])), "systems": list(dict.fromkeys(table["system"])),
                   "splits": dict(report.splits), "fusions": {k: list(v) for k, v in report.fusions.items()},
                   "total_seconds": round(time.perf_counter() - started, 1)})
    print(where_written(out, "teachers"))
    return 1 if report_checks(table, "teachers") else 0


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.teachers", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(TEACHERS_RECIPE), help="the report's recipe (default: recipes/teachers.yaml)")
    add_runner_options(p, listed="the rows and their expectations",
                       planned="every split's artifacts and whether each is cached")
    args = p.parse_args(argv)
    report = load_teacher_report(Path(args.recipe))
    if args.dry_run:
        table1 = load_recipe(report.table)
        systems = [s for s in table1.systems if s.id in {*report.systems, report.student}]
        for label in report.splits:
            run = split_run(report, label, Settings.of(table1, device=args.device))
            print_plan(run, systems)
            for fid, members in report.fusions.items():
                print(f"{fid}: pyserini.fusion.normalize of the runs of {', '.join(members)} (computed in seconds)")
        return 0
    if args.list_conditions:
        for sid in (*report.systems, *report.fusions, report.student):
            members = f" = fusion of {', '.join(report.fusions[sid])}" if sid in report.fusions else ""
            expected = "; ".join(f"{s} {e}" for s, e in report.expected.get(sid, {}).items()) or "none"
            print(f"{sid}{members}: on {', '.join(report.splits.values())}; expected {expected} (± {report.tolerance:g})")
        return 0
    command = " ".join(["python -m eval.teachers", *(argv if argv is not None else sys.argv[1:])])
    settings = Settings.of(load_recipe(report.table), device=args.device)
    return run_report(report, output_folder(args.out, args.update), command, settings)


if __name__ == "__main__":
    sys.exit(main())
