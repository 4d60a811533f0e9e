"""The stored-results format ``kit-results/1``: read, validate and write measured tables with their provenance.

    python -m eval.schema check results/table1.json            # a kit-produced table
    python -m eval.schema check my-system.json per-query.csv   # hand-written files for a system run elsewhere

A results file (``results/table<N>.json``) holds the provenance of a run (command, commit, date, machine, versions of torch,
transformers, pyserini/Anserini and Java, recipe) beside its rows (dataset, system, aggregate metrics, the recipe's expected
values and tolerance); its per-query values (``dataset,system,query_id,measure,value``) sit in a CSV it names, or inline
in each row, so that :mod:`report.compare` can test significance over queries. The contract is the JSON Schema in
``results/schema/kit-results-1.schema.json``, documented in ``results/SCHEMA.md``. Every reader raises
:class:`~kit.errors.InputError`: one line naming the file and the line or field, and the fix.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from pipeline.metrics import parse_measures
from kit.errors import InputError, cli
from kit.io import load_json, open_text
from kit.paths import REPO
from kit.argtypes import ArgumentParser

FORMAT = "kit-results/1"
SCHEMA_PATH = REPO / "results" / "schema" / "kit-results-1.schema.json"
PER_QUERY_COLUMNS = ("dataset", "system", "query_id", "measure", "value")
EFFICIENCY_METRICS = ("FLOPS", "Doc_Len", "Query_Len")
"""Row metrics that are not ir-measures names (Section 5.1.3 of the paper)."""
TRAINING_METRICS = ("flops_term", "ranking", "flops_over_ranking", "masked_fraction", "doc_l0", "masked_mean")
"""Row metrics of a trained model's own training log, one value per model (:mod:`eval.study.training`)."""

_FIX_JSON = "see results/SCHEMA.md for the kit-results/1 layout"
_FIX_CSV = f"a per-query file has the header {','.join(PER_QUERY_COLUMNS)} and one numeric value per line"


@dataclass
class Results:
    """A validated results file: provenance fields (``meta``), ``rows`` and per-query values (or ``None``).

    ``per_query`` has the columns :data:`PER_QUERY_COLUMNS`, ``query_id`` as strings.
    """

    path: Path
    meta: dict[str, Any]
    rows: list[dict[str, Any]]
    per_query: pd.DataFrame | None

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r["dataset"] for r in self.rows))

    def systems(self, dataset: str) -> list[str]:
        return [r["system"] for r in self.rows if r["dataset"] == dataset]


@lru_cache(maxsize=None)
def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _known_measure(name: str) -> bool:
    try:
        parse_measures([name])
    except ValueError:
        return False
    return True


def _check_measure(path: Path, name: str, where: str, line: int | None = None) -> None:
    if name not in EFFICIENCY_METRICS and name not in TRAINING_METRICS and not _known_measure(name):
        raise InputError(path, f"{where}: unknown measure {name!r}", line,
                         fix=f"use ir-measures names (nDCG@10, R@100, RR@10) or one of "
                             f"{', '.join((*EFFICIENCY_METRICS, *TRAINING_METRICS))}")


def _field(error) -> str:
    """``rows[2].metrics.nDCG@10`` for a jsonschema error's path."""
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _non_finite(obj: Any, where: str = "") -> str | None:
    """The field path of the first NaN or infinite number inside ``obj``, or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "(top level)"
    if isinstance(obj, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for key, value in items:
        found = _non_finite(value, key)
        if found is not None:
            return found
    return None


def validate_document(doc: Any, path: str | Path) -> None:
    """Check a parsed results document against the JSON Schema and the rules it cannot express; InputError otherwise."""
    import jsonschema

    path = Path(path)
    bad = _non_finite(doc)
    if bad is not None:
        raise InputError(path, f"field {bad}: not a finite number", fix="write finite numbers (a NaN or infinite "
                                                                      "metric is a failed measurement)")
    validator = jsonschema.Draft202012Validator(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        raise InputError(path, f"field {_field(error)}: {error.message}", fix=_FIX_JSON)
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(doc["rows"]):
        key = (row["dataset"], row["system"])
        if key in seen:
            raise InputError(path, f"field rows[{i}]: dataset {key[0]!r} system {key[1]!r} repeats rows[{seen[key]}]",
                             fix="one row per (dataset, system)")
        seen[key] = i
        for part in ("metrics", "expected", "per_query"):
            for name in row.get(part, {}):
                _check_measure(path, name, f"field rows[{i}].{part}")


def read_per_query(path: str | Path) -> pd.DataFrame:
    """A per-query CSV (plain or ``.gz``) with the header :data:`PER_QUERY_COLUMNS`; InputError naming the line."""
    path = Path(path)
    records: list[tuple[str, str, str, str, float]] = []
    first: dict[tuple[str, str, str, str], int] = {}
    with open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != PER_QUERY_COLUMNS:
            raise InputError(path, f"header is {','.join(header or []) or '(empty file)'}", 1, fix=_FIX_CSV)
        for fields in reader:
            line = reader.line_num
            if not fields or not "".join(fields).strip():
                continue
            if len(fields) != len(PER_QUERY_COLUMNS):
                raise InputError(path, f"expected {len(PER_QUERY_COLUMNS)} columns, found {len(fields)}", line, fix=_FIX_CSV)
            dataset, system, qid, measure, raw = (f.strip() for f in fields)
            if not (dataset and system and qid):
                raise InputError(path, "empty dataset, system or query_id", line, fix=_FIX_CSV)
            try:
                value = float(raw)
            except ValueError:
                raise InputError(path, f"value {raw!r} is not a number", line, fix=_FIX_CSV) from None
            if not math.isfinite(value):
                raise InputError(path, f"value {raw!r} is not finite", line, fix=_FIX_CSV)
            _check_measure(path, measure, "column measure", line)
            key = (dataset, system, qid, measure)
            if key in first:
                raise InputError(path, f"{measure} of query {qid!r} ({dataset}, {system}) repeats line {first[key]}", line,
                                 fix="one value per (dataset, system, query_id, measure)")
            first[key] = line
            records.append((dataset, system, qid, measure, value))
    if not records:
        raise InputError(path, "no per-query values", fix=_FIX_CSV)
    return pd.DataFrame(records, columns=list(PER_QUERY_COLUMNS))


def _inline_per_query(rows: Iterable[dict]) -> pd.DataFrame | None:
    records = [(r["dataset"], r["system"], str(q), m, float(v))
               for r in rows for m, values in r.get("per_query", {}).items() for q, v in values.items()]
    return pd.DataFrame(records, columns=list(PER_QUERY_COLUMNS)) if records else None


def aggregate(per_query: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """Mean per (dataset, system, measure): how :func:`pipeline.metrics.evaluate` aggregates (unretrieved judged queries are 0)."""
    means = per_query.groupby(["dataset", "system", "measure"], sort=False)["value"].mean()
    out: dict[tuple[str, str], dict[str, float]] = {}
    for (dataset, system, measure), value in means.items():
        out.setdefault((dataset, system), {})[measure] = float(value)
    return out


def load_results(path: str | Path, read: Callable[[Path], pd.DataFrame] = read_per_query) -> Results:
    """Read and validate a ``kit-results/1`` JSON file, or a bare per-query CSV (rows are then its means); ``read``
    reads a per-query file (:func:`read_per_query`; ``report.check`` reuses what it read of an unchanged file)."""
    path = Path(path)
    if path.name.endswith((".csv", ".csv.gz")):
        per_query = read(path)
        rows = [{"dataset": d, "system": s, "metrics": m} for (d, s), m in aggregate(per_query).items()]
        return Results(path, {"format": FORMAT, "command": f"(per-query file {path})"}, rows, per_query)
    doc = load_json(path, fix=_FIX_JSON)
    validate_document(doc, path)
    rows = doc.pop("rows")
    per_query = _inline_per_query(rows)
    if "per_query" in doc:
        if per_query is not None:
            raise InputError(path, "field per_query: per-query values given both inline and as a file", fix="keep one")
        pq_path = path.parent / doc["per_query"]
        if not pq_path.is_file():
            raise InputError(path, f"field per_query: {pq_path} not found",
                             fix="give the per-query CSV's path relative to this file, or regenerate the results")
        per_query = read(pq_path)
        _check_coverage(path, rows, per_query, pq_path)
    return Results(path, doc, rows, per_query)


def _check_coverage(path: Path, rows: list[dict], per_query: pd.DataFrame, pq_path: Path) -> None:
    """Every row has per-query values and every per-query system has a row."""
    pairs = per_query[["dataset", "system"]].drop_duplicates()
    keyed = set(zip(pairs["dataset"].tolist(), pairs["system"].tolist()))
    for i, r in enumerate(rows):
        if (r["dataset"], r["system"]) not in keyed:
            raise InputError(path, f"field rows[{i}]: {pq_path} has no values for dataset {r['dataset']!r} "
                                   f"system {r['system']!r}", fix="regenerate both files with the same command")
    extra = keyed - {(r["dataset"], r["system"]) for r in rows}
    if extra:
        d, s = sorted(extra)[0]
        raise InputError(pq_path, f"dataset {d!r} system {s!r} has no row in {path}",
                         fix="regenerate both files with the same command")


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.schema", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate results files (kit-results/1 JSON or per-query CSV)")
    check.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    for name in args.files:
        res = load_results(name)
        n_pq = 0 if res.per_query is None else len(res.per_query)
        print(f"ok: {name} ({FORMAT}; {len(res.rows)} rows, {len(res.datasets)} datasets, {n_pq} per-query values)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
