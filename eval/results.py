"""Writing measured tables: the one results writer, the expected-score check and the Markdown cells every table uses.

A run of any runner (Table 1, the ablation, Li-LSR, the teacher report) ends in the same four files under its output
folder, renamed into place together (:func:`kit.io.atomic_outputs`)::

    <stem>.csv                    one row per dataset x system (or condition), with its check against the recipe
    <stem>.md                     the table as printed, with the command that made it
    <stem>.json                   kit-results/1 (results/SCHEMA.md): provenance, rows, expected scores, tolerances
    per-query/<stem>.csv.gz       dataset, system, query_id, measure, value (what report.compare tests significance on)

Runs write ``work/results/`` unless asked (``--update``) to write the stored reference in ``results/``.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from eval.schema import EFFICIENCY_METRICS, FORMAT
from kit.io import atomic_outputs, atomic_write, check_writable
from kit.paths import REPO, work_dir

STORED = REPO / "results"
SEALED = "SHA256SUMS"
"""The list (``sha256sum -c`` format, paths relative to ``results/``) of the stored files nothing re-derives: the
benchmark records, the figures' PNGs, the paper's transcriptions and the format's documentation (:func:`seal`)."""


def output_folder(out: str | Path | None, update: bool) -> Path:
    """Where a run writes: ``out`` when given, else the stored reference (``results/``) with ``update``, else
    ``work/results/``; created and checked writable before anything is computed."""
    return check_writable(out if out is not None else (STORED if update else work_dir() / "results"))


def is_stored_reference(folder: Path) -> bool:
    """Whether ``folder`` is ``results/`` or inside it (the figures and the regime write subfolders)."""
    return Path(folder).resolve().is_relative_to(STORED.resolve())


def allowance(measure: str, expected: float, tolerance: float) -> float:
    """The largest ``|measured - expected|`` an expectation accepts: ``tolerance`` itself for an effectiveness measure
    (a fraction in [0, 1]), ``tolerance × expected`` for FLOPS, Doc_Len and Query_Len, whose scale is another (a
    Doc_Len of 283.53 with the tolerance 0.002 may be off by 0.567)."""
    return tolerance * abs(expected) if measure in EFFICIENCY_METRICS else tolerance


def within(measured: Any, measure: str, expected: float, tolerance: float) -> bool:
    """Whether ``measured`` meets the expectation (:func:`allowance`); a missing or non-finite value never does."""
    try:
        return abs(float(measured) - expected) <= allowance(measure, expected, tolerance)
    except (TypeError, ValueError):
        return False


def check_expected(expected: Mapping[str, float] | None, tolerance: float, scores: Mapping[str, float]) -> tuple[str, str]:
    """Anserini-style verdict: ``("OK", "")``, ``("FAIL", "<measure> <measured>≠<expected>; ...")``, or ``("", "")``
    when nothing is expected. A missing or non-finite measured score fails (:func:`within`)."""
    if not expected:
        return "", ""
    bad = [f"{m} {_number(scores.get(m)):.4f}≠{v:.4f}" for m, v in expected.items()
           if not within(scores.get(m), m, v, tolerance)]
    return ("FAIL", "; ".join(bad)) if bad else ("OK", "")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


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
                  document: Mapping[str, Any], raw: Sequence[str] = ()) -> list[Path]:
    """The run's four files (module docstring), all or none; ``document`` is the kit-results/1 JSON with its ``kind``
    (which runner wrote it: ``report.check`` re-renders the CSV and Markdown by it); ``format``, ``per_query`` and
    ``sha256`` (:func:`seal_record`) are filled in here. ``raw``: the table's columns measured outside the record
    (wall times), sealed by their digest."""
    if not document.get("kind"):
        raise ValueError("a results document names its kind (study, table1, regime, lilsr)")
    out = Path(out)
    files = [out / f"{stem}.csv", out / "per-query" / f"{stem}.csv.gz", out / f"{stem}.md", out / f"{stem}.json"]
    csv_text, pq_text = table.to_csv(index=False), per_query.to_csv(index=False)
    body = seal_record({**document, "format": FORMAT, "per_query": f"per-query/{stem}.csv.gz"}, csv_text, pq_text, raw)
    with atomic_outputs() as outputs:
        with outputs.open(files[0]) as fh:
            fh.write(csv_text)
        with outputs.open(files[1]) as fh:
            fh.write(pq_text)
        with outputs.open(files[2]) as fh:
            fh.write(markdown)
        with outputs.open(files[3]) as fh:
            fh.write(record_text(body))
    return files


def json_records(frame: pd.DataFrame) -> list[dict]:
    """JSON-safe rows of a frame (a non-finite number, e.g. the t of a constant difference, becomes null)."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
            for r in frame.astype(object).where(frame.notna(), None).to_dict("records")]


def record_text(document: Mapping[str, Any]) -> str:
    """A kit-results/1 record as the kit writes it."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


# ---- digests: what nothing re-derives ----------------------------------------------------------------------------------

def sha256_text(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def record_digest(document: Mapping[str, Any]) -> str:
    """The sha256 of a record's canonical JSON, its own ``sha256.record`` left out."""
    seal = {k: v for k, v in (document.get("sha256") or {}).items() if k != "record"}
    body = {**document, "sha256": seal}
    return sha256_text(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False))


def cells_digest(csv_text: str, columns: Sequence[str]) -> str:
    """The sha256 of ``columns``' cells in a CSV text (header included); KeyError naming a column it lacks."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    header = rows[0] if rows else []
    missing = [c for c in columns if c not in header]
    if missing:
        raise KeyError(f"no column {missing[0]!r}")
    index = [header.index(c) for c in columns]
    return sha256_text("\n".join("\x1f".join(row[i] if i < len(row) else "" for i in index) for row in rows))


def seal_record(document: Mapping[str, Any], csv_text: str, pq_text: str, raw: Sequence[str] = ()) -> dict[str, Any]:
    """``document`` with its ``sha256``: of the per-query file's text, of the table's ``raw`` columns, and of the
    record itself. Every number of a record is re-derived by ``report.check`` from its per-query values or checked
    against an expectation; these digests also pin what no computation can (wall times, provenance, and digits below
    float summation noise: a mean recomputed in another order differs from the stored one by about 1e-16)."""
    body = {**document, "sha256": {"per_query": sha256_text(pq_text), "raw_columns": list(raw),
                                   "raw_cells": cells_digest(csv_text, raw)}}
    body["sha256"]["record"] = record_digest(body)
    return body


def read_sealed(results: Path = STORED) -> dict[str, str]:
    """``{path relative to results: sha256}`` from ``results/SHA256SUMS`` (:data:`SEALED`); empty when absent."""
    path = Path(results) / SEALED
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        if line.strip():
            out[name] = digest
    return out


def seal(paths: Iterable[str | Path], results: Path = STORED) -> None:
    """Record the sha256 of each file in ``results/SHA256SUMS`` (:data:`SEALED`), as its writer writes it: raw
    measurements (benchmark records, figures) and hand-written files that nothing re-derives. A path outside
    ``results`` is not a stored file and is not listed. Writers of one results folder take turns (a lock on it)."""
    results = Path(results)
    inside = [Path(p) for p in paths if Path(p).resolve().is_relative_to(results.resolve())]
    if not inside:
        return
    fd = os.open(results, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        listed = read_sealed(results)
        for path in inside:
            listed[path.resolve().relative_to(results.resolve()).as_posix()] = sha256_text(path.read_bytes())
        with atomic_write(results / SEALED) as fh:
            fh.writelines(f"{digest}  {name}\n" for name, digest in sorted(listed.items()))
    finally:
        os.close(fd)


def where_written(out: Path, stem: str) -> str:
    """The line a run prints at its end: what it wrote, and that the stored reference is untouched unless asked."""
    note = "" if is_stored_reference(out) else " (the stored reference in results/ is unchanged; --update writes it)"
    return f"wrote {out / stem}.{{csv,md,json}} and {out / 'per-query' / stem}.csv.gz{note}"
