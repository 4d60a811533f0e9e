"""What each kind of stored record re-derives to: its table (the CSV), its Markdown, its claims, and the expectations
its numbers are checked against, computed by the runner's own functions from the record and its per-query values.

A record (``results/<stem>.json``, kit-results/1) names its ``kind``, the runner that wrote it; :data:`KINDS` maps
each kind to two functions, so :mod:`report.check` treats every record alike:

- ``expectations(record)``: ``{(dataset, system): (scores, tolerance)}`` from where the kind keeps them (the study
  file, or ``--expected-from`` another); empty for a record written at a
  scale or with seeds its expectations were not measured at;
- ``render(record)``: :class:`Rendered`, from the record's rows (the numbers the runner measured: seed rows, reference
  rows, FLOPS and Doc_Len) and its per-query values (the claims' paired tests), plus the wall-time columns of the
  stored table that nothing re-derives (``Kind.raw``, sealed by their digest in the record).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from eval.claims import counts
from eval.results import json_records
from eval.schema import Results
from eval.study.derive import RAW_COLUMNS, derive, runs_of
from eval.study.regression import recorded_study
from eval.study.spec import load_study
from kit.errors import InputError

Expectations = dict[tuple[str, str], tuple[Mapping[str, float], float]]


def read_once(load: Callable, path: Path):
    """``load(path)`` once per file content (YAML parsing is the slow part of a check of many copies)."""
    return _read(load, str(path), Path(path).read_bytes())


@lru_cache(maxsize=128)
def _read(load: Callable, path: str, content: bytes):
    return load(Path(path))


@dataclass
class Record:
    """A stored record as :mod:`report.check` reads it: the parsed file, its document, its stored table's text."""

    root: Path  # the repository (or a copy of it) whose recipes the record names
    results: Results
    document: dict[str, Any]
    table_text: str
    expected_from: Path | None = None  # --expected-from: another study file of expectations
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def meta(self) -> dict[str, Any]:
        return self.results.meta

    def file(self, key: str = "study") -> Path | None:
        """The file a field names, relative to the repository; InputError when it does not exist."""
        name = self.meta.get(key)
        if name is None:
            return None
        path = self.root / name
        if not path.is_file():
            raise InputError(self.results.path, f"field {key}: {name} does not exist",
                             fix="name the file the record was written with, or restore it")
        return path

    @property
    def header(self) -> list[str]:
        """The stored table's columns."""
        return next(csv.reader(io.StringIO(self.table_text)), [])

    def metrics(self, dataset: str, system: str, order: tuple[str, ...] = ()) -> dict[str, float]:
        """A row's metrics, ``order`` first (the order the runner measured them in; JSON keeps them sorted)."""
        for row in self.results.rows:
            if row["dataset"] == dataset and row["system"] == system:
                m = row["metrics"]
                return {**{k: m[k] for k in order if k in m}, **m}
        raise InputError(self.results.path, f"no row of {system} on {dataset}",
                         fix="regenerate the record with its runner")

    def label(self, dataset: str, system: str) -> str:
        return next(r.get("label", system) for r in self.results.rows if (r["dataset"], r["system"]) == (dataset, system))

    def raw(self, column: str, system: str, dataset: str | None = None) -> float | None:
        """A cell of the stored table's ``column`` (a wall time or size: :attr:`Kind.raw`) in ``system``'s row."""
        if "rows" not in self._cache:
            self._cache["rows"] = list(csv.DictReader(io.StringIO(self.table_text)))
        for row in self._cache["rows"]:
            if row.get("system") == system and (dataset is None or row.get("dataset", dataset) == dataset):
                cell = row.get(column)
                return None if cell in (None, "") else float(cell)
        raise InputError(self.results.path.with_suffix(".csv"), f"no row of {system} with its {column}",
                         fix="restore the table written with the record")


@dataclass(frozen=True)
class Rendered:
    table: pd.DataFrame
    markdown: str
    derived: dict[str, Any]  # record fields re-derived besides the rows: claims, claim_counts, checks


def _none(header: Sequence[str]) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Kind:
    expectations: Callable[[Record], Expectations]
    render: Callable[[Record], Rendered]
    raw: Callable[[Sequence[str]], Sequence[str]] = _none  # of the stored table's header: the columns ``render`` takes
                                                           # from it (wall times; sealed by the record's digest)


# ---- studies (eval.study): everything from the study file the record names -------------------------------------------

def _study_spec(rec: Record):
    """The study file the record names, as the runner ran it (:func:`eval.study.regression.recorded_study`)."""
    study = dataclasses.replace(read_once(load_study, rec.file("study")), path=Path(rec.meta["study"]))
    rec.file("recipe")  # the systems' recipe a record measured with --recipe or --model must exist
    labels = {r["system"]: r.get("label", r["system"]) for r in rec.results.rows}
    return recorded_study(study, rec.meta, rec.root, labels)


def _study_expected(rec: Record) -> Expectations:
    if not rec.meta.get("checked"):
        return {}
    study = read_once(load_study, rec.expected_from) if rec.expected_from else _study_spec(rec)
    return {(d, c.id): (e, c.tolerance) for c in (*study.conditions.values(), *study.references)
            for d, e in c.expected.items() if d in rec.meta["datasets"]}


def _study(rec: Record) -> Rendered:
    study, datasets = _study_spec(rec), rec.meta["datasets"]
    metrics = {(r["dataset"], r["system"]): r["metrics"] for r in rec.results.rows}
    runs, references = runs_of(study, metrics, rec.meta["seeds"], datasets, rec.meta.get("models") or {})
    seconds = {c: {k: rec.raw(k, c) for k in RAW_COLUMNS} for c in runs}
    per_query = rec.results.per_query  # every seed's, every seed mean's and every reference's values
    out = derive(study, runs, references, per_query, datasets, rec.meta["checked"], rec.meta["command"],
                 rec.meta["scale"], seconds)
    return Rendered(out.table, out.markdown, {"claims": json_records(out.claims), "claim_counts": counts(out.claims)})


KINDS: dict[str, Kind] = {
    "study": Kind(_study_expected, _study, lambda header: RAW_COLUMNS),
}
"""Every kind of record a runner writes (the document's ``kind``), with what it re-derives to."""
