"""Writing measured tables: the one results writer, the expected-score check and the Markdown cells every table uses.

A run of any runner (Table 1, the ablation, Li-LSR, the teacher report) ends in the same four files under its output
folder, renamed into place together (:func:`kit.io.atomic_outputs`)::

    <stem>.csv                    one row per dataset x system (or condition), with its check against the recipe
    <stem>.md                     the table as printed, with the command that made it
    <stem>.json                   kit-results/1 (results/SCHEMA.md): provenance, rows, expected scores, tolerances
    per-query/<stem>.csv.gz       dataset, system, query_id, measure, value (what eval.compare tests significance on)

Runs write ``work/results/`` unless asked (``--update``) to write the stored reference in ``results/``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from eval.schema import FORMAT
from kit.io import atomic_outputs, check_writable
from kit.paths import REPO, work_dir

STORED = REPO / "results"


def output_folder(out: str | Path | None, update: bool) -> Path:
    """Where a run writes: ``out`` when given, else the stored reference (``results/``) with ``update``, else
    ``work/results/``; created and checked writable before anything is computed."""
    return check_writable(out if out is not None else (STORED if update else work_dir() / "results"))


def is_stored_reference(folder: Path) -> bool:
    """Whether ``folder`` is ``results/`` or inside it (the figures and the regime write subfolders)."""
    return Path(folder).resolve().is_relative_to(STORED.resolve())


def check_expected(expected: Mapping[str, float] | None, tolerance: float, scores: Mapping[str, float]) -> tuple[str, str]:
    """Anserini-style verdict: ``("OK", "")``, ``("FAIL", "<measure> <measured>≠<expected>; ...")``, or ``("", "")``
    when nothing is expected. A missing or non-finite measured score fails."""
    if not expected:
        return "", ""
    bad = [f"{m} {scores.get(m, float('nan')):.4f}≠{v:.4f}" for m, v in expected.items()
           if not abs(scores.get(m, float("nan")) - v) <= tolerance]
    return ("FAIL", "; ".join(bad)) if bad else ("OK", "")


def fmt(value, digits: int = 4) -> str:
    """A Markdown cell: ``–`` for a missing value, floats to ``digits`` decimals."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def points_over(value: float, reference: float) -> float:
    """``value - reference`` in nDCG@10 points (×100, 2 decimals), as every Δ BM25 column shows it."""
    return round(100 * (value - reference), 2)


def signed(value, digits: int = 4) -> str:
    return "–" if value is None or pd.isna(value) else f"{round(value, digits) + 0.0:+.{digits}f}"


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table's lines; cells are formatted already (or are plain values)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def failures(table: pd.DataFrame) -> list[str]:
    """``FAIL <dataset> <system>: <detail>`` for every row whose check failed."""
    if "check" not in table.columns:
        return []
    failed = table[table["check"] == "FAIL"]
    return [f"FAIL {r['dataset'] + ' ' if 'dataset' in r else ''}{r['system']}: {r['check_detail']}"
            for r in failed.to_dict("records")]


def report_checks(table: pd.DataFrame, stem: str) -> list[str]:
    """Print how ``stem``'s rows fared against their stored expectations (one line on stdout, so a run that passes says
    so rather than staying silent) and each failure on stderr; return the failures (exit 1 when there are any)."""
    status = table.get("check", pd.Series(dtype=object))  # no column: every row is without an expectation
    ok, failed = int((status == "OK").sum()), int((status == "FAIL").sum())
    print(f"{stem}: {ok} of {len(table)} rows within their stored expectations, {failed} outside"
          + (f", {len(table) - ok - failed} without one" if ok + failed < len(table) else "")
          + f" (the check column of {stem}.md)")
    problems = failures(table)
    for line in problems:
        print(line, file=sys.stderr)
    return problems


def write_results(out: Path, stem: str, table: pd.DataFrame, markdown: str, per_query: pd.DataFrame,
                  document: Mapping[str, Any]) -> list[Path]:
    """The run's four files (module docstring), all or none; ``document`` is the kit-results/1 JSON (``format`` and
    ``per_query`` are filled in here)."""
    out = Path(out)
    files = [out / f"{stem}.csv", out / "per-query" / f"{stem}.csv.gz", out / f"{stem}.md", out / f"{stem}.json"]
    body = {**document, "format": FORMAT, "per_query": f"per-query/{stem}.csv.gz"}
    with atomic_outputs() as outputs:
        with outputs.open(files[0]) as fh:
            table.to_csv(fh, index=False)
        with outputs.open(files[1]) as fh:
            per_query.to_csv(fh, index=False)
        with outputs.open(files[2]) as fh:
            fh.write(markdown)
        with outputs.open(files[3]) as fh:
            fh.write(json.dumps(body, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return files


def where_written(out: Path, stem: str) -> str:
    """The line a run prints at its end: what it wrote, and that the stored reference is untouched unless asked."""
    note = "" if is_stored_reference(out) else " (the stored reference in results/ is unchanged; --update writes it)"
    return f"wrote {out / stem}.{{csv,md,json}} and {out / 'per-query' / stem}.csv.gz{note}"
