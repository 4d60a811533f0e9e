"""One stored record checked with its files for the regression check (:mod:`report.check`): its digests, and its
numbers, derived fields, table and Markdown re-derived by its runner's own functions (:data:`report.rerender.KINDS`)
from the record and its per-query values. What a record gives is kept while its files and the recipes are unchanged
(a check of many copies of the tree derives each record once).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import pandas as pd

from eval.results import cells_digest, record_digest, sha256_text
from eval.schema import FORMAT, load_results, read_per_query
from kit.errors import InputError
from kit.io import load_json, read_text
from kit.paths import REPO
from report.check_numbers import (RESTORE, UNREADABLE, _copies, _coverage, _difference, _fail, _numbers, _short,
                                _unreadable, compare_text)
from report.rerender import KINDS, Record


def siblings(path: Path) -> list[Path]:
    """The files a runner writes with the record ``path``: its table, Markdown and per-query file."""
    return [path.with_suffix(".csv"), path.with_suffix(".md"), path.parent / "per-query" / f"{path.stem}.csv.gz"]


def check_record(path: str | Path, root: Path = REPO, expected_from: Path | None = None) -> tuple[list[str], int]:
    """The failures of one record and its files, and how many of its numbers were checked."""
    try:
        return _check_record(Path(path), root, expected_from)
    except UNREADABLE as exc:
        return [_unreadable(Path(path), exc)], 0


def _check_record(path: Path, root: Path, expected_from: Path | None) -> tuple[list[str], int]:
    table, markdown, pq = siblings(path)
    stored = read_text(table) if table.is_file() else ""
    key = (str(path), str(root), str(expected_from), _recipes_key(root), _sha1(path), _sha1(pq), _measured_key(path, stored))
    if key not in _DERIVED:  # what the record and its per-query values give (a check of many copies reuses it)
        _DERIVED[key] = _derive(path, root, expected_from)
    derived = _DERIVED[key]
    failures = list(derived.failures)
    if derived.table is not None:
        failures += _sealed_columns(table, derived.document, stored, derived.raw)
        source = f"{path.name} and its per-query values"
        failures += compare_text(table, stored, derived.table, source)
        failures += compare_text(markdown, read_text(markdown), derived.markdown, source)
    return failures, derived.numbers


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else ""


def _measured_key(path: Path, table_text: str) -> str:
    """The stored table's header and measured cells (:attr:`report.rerender.Kind.raw`): all of it a rendering reads."""
    try:
        kind = KINDS[json.loads(path.read_text(encoding="utf-8"))["kind"]]
        header = next(csv.reader(io.StringIO(table_text)), [])
        return ",".join(header) + cells_digest(table_text, kind.raw(header))
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _recipes_key(root: Path) -> str:
    """The content of every recipe (where expectations and renderings come from)."""
    files = sorted(p for p in (root / "recipes").rglob("*") if p.is_file())
    return hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest()


@dataclass
class Derived:
    """What a record and its per-query values give: failures of the record itself, its table and Markdown as the
    runner renders them (None: not rendered), the raw columns the rendering took from the stored table."""

    failures: list[str]
    numbers: int = 0
    document: dict = field(default_factory=dict)
    table: str | None = None
    markdown: str = ""
    raw: Sequence[str] = ()


_DERIVED: dict[tuple, Derived] = {}


def _derive(path: Path, root: Path, expected_from: Path | None) -> Derived:
    try:
        document = load_json(path, fix=RESTORE)
    except InputError as exc:
        return Derived([_fail(exc.path, f"not a {FORMAT} record: {exc.message}", exc.line)])
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        return Derived([_fail(path, f"not a {FORMAT} record ({f'its format is {found!r}' if found else 'no format field'})")])
    kind = KINDS.get(document.get("kind"))
    if kind is None:
        return Derived([_fail(path, f"unknown record kind {document.get('kind')!r}; a stored record names the runner "
                                    f"that wrote it ({', '.join(KINDS)})")])
    table, markdown, pq = siblings(path)
    missing = [p for p in (table, markdown, pq) if not p.is_file()]
    if missing:
        return Derived([_fail(p, f"missing: its runner writes it with {path.name}") for p in missing])
    failures = _digests(path, document, pq)
    if any(str(pq) in f for f in failures):
        return Derived(failures)  # what it was written with is not there: nothing to re-derive from
    try:
        results = load_results(path, read=_read_per_query)
        rec = Record(root, results, document, read_text(table), expected_from)
        expectations, raw, rendered = kind.expectations(rec), kind.raw(rec.header), kind.render(rec)
    except UNREADABLE as exc:  # e.g. a field the runner writes is missing, or of another type
        return Derived(failures + [_unreadable(path, exc)])
    numbers, n = _numbers(rec, expectations)
    failures += numbers + _copies(rec, expectations) + _coverage(rec, pq)
    for name, value in rendered.derived.items():
        diff = _difference(document.get(name), value, name)
        if diff is not None:
            where, was, want = diff
            failures.append(_fail(path, f"field {where} = {_short(repr(was))}, but the per-query values give "
                                        f"{_short(repr(want))}"))
    return Derived(failures, n, document, rendered.table.to_csv(index=False), rendered.markdown, raw)


def _digests(path: Path, document: dict, pq: Path) -> list[str]:
    seal_ = document.get("sha256")
    if not isinstance(seal_, dict):
        return [_fail(path, "no sha256: the record was not written (or was rewritten) by its runner")]
    out = []
    if record_digest(document) != seal_.get("record"):
        out.append(_fail(path, "differs from the record its runner wrote (sha256.record)"))
    if sha256_text(_bytes(pq)) != seal_.get("per_query"):
        out.append(_fail(pq, f"its per-query values differ from those {path.name} was written with (sha256.per_query)"))
    return out


def _sealed_columns(table: Path, document: dict, text: str, raw: Sequence[str]) -> list[str]:
    """The measured columns the rendering took from the stored table are those written with the record."""
    seal_ = document.get("sha256") or {}
    sealed = list(seal_.get("raw_columns") or [])
    if not set(raw) <= set(sealed):
        return [_fail(table, f"columns {sorted(set(raw) - set(sealed))} are measured, but the record seals "
                             f"{sealed or 'none'}")]
    try:
        ok = cells_digest(text, sealed) == seal_.get("raw_cells")
    except KeyError as exc:
        return [_fail(table, f"{exc.args[0]}, which the record seals")]
    return [] if ok else [_fail(table, f"its measured columns ({', '.join(sealed)}) differ from those written with "
                                       "the record (sha256.raw_cells)")]


@lru_cache(maxsize=64)
def _per_query(path: str, digest: str) -> pd.DataFrame:
    return read_per_query(path)


def _read_per_query(path: Path) -> pd.DataFrame:
    """:func:`eval.schema.read_per_query`, reused while the file's bytes are unchanged (a check of many copies)."""
    return _per_query(str(path), hashlib.sha1(Path(path).read_bytes()).hexdigest())


def _bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()
