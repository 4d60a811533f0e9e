"""The regression check of everything stored: every number of every file under ``results/`` and of the generated pages
under ``docs/`` is re-derived, checked against an expectation, or pinned by the digest written with it.

    python -m eval.compare --check                  # make compare CHECK=1: the whole of results/ and docs/
    python -m eval.compare --check --against F.json # one record (e.g. a run in work/results/)
    python -m eval.check --seal results/SCHEMA.md   # after an intended edit of a file nothing re-derives

File by file:

- **a record** (``<stem>.json``, kit-results/1; its ``kind`` names the runner, :data:`eval.rerender.KINDS`):
  every number of its rows is the mean of its per-query values (within :data:`ROUNDING` when the record stores it
  rounded to 4 decimals, else :data:`FLOAT_NOISE`), or the mean of its ``<system>@seed<n>`` rows (which it checks in
  turn), and is within its expectation (recipe, condition file, figure points, regime, teacher report; FLOPS and
  Doc_Len too); a number with neither fails ("no expectation for ..."). A row's ``expected`` copy must be the
  recipe's, every file the record names must exist, and every system of a dataset must have per-query values for the
  same items. The claims (deltas, t, p-values, Holm, W/T/L, verdicts) and the other derived fields are re-derived
  by the runner's own functions from the per-query values, aligned by query id.
- **its table and Markdown** (``<stem>.csv``, ``<stem>.md``): re-rendered by the runner's own functions from the
  record and its per-query values and compared exactly; a difference names its first line.
- **its digests** (``sha256``, written with it: :func:`eval.results.seal_record`): of the per-query file, of the
  table's measured columns (wall times, sizes: what no computation re-derives) and of the record itself, which pins
  its provenance and the digits below float summation noise (a mean summed in another order differs by ~1e-16).
- ``results/bench/summary.md`` and every page of ``docs/templates/``: re-rendered (:mod:`eval.docs`) and compared.
- ``results/SHA256SUMS``: the files nothing re-derives, each pinned by its sha256, written with it
  (:func:`eval.results.seal`): the benchmark records (timings of one machine, not reproducible by design), the
  figures' PNGs (matplotlib's bytes vary by version), the paper's transcriptions (pinned to the paper's text by
  tests/test_paper_tables.py, which needs ../shared; the check must run without it) and the format's documentation.
- **any other file** under ``results/`` fails: a file nothing checks could hold any number.

Each failure is one line ``FAIL <file>[:<line>]: <what> (fix: <how>)``; the command exits 1 when there is one.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from eval.docs import bench_summary, render
from eval.rerender import KINDS, Record
from eval.results import (SEALED, STORED, allowance, cells_digest, read_sealed, record_digest, seal, sha256_text,
                          within)
from eval.schema import FORMAT, aggregate, load_results, read_per_query
from kit.argtypes import ArgumentParser
from kit.errors import InputError, cli
from kit.io import load_json, read_text
from kit.paths import REPO

ROUNDING = 0.00005 + 1e-9
"""A number a record stores rounded to 4 decimals (Table 1) may differ from its per-query mean by half a unit in the
last place, no more."""
FLOAT_NOISE = 1e-9
"""A number stored at full precision and its recomputation differ by float summation order only (about 1e-16 relative;
the record's digest pins the digits below this)."""
RESTORE = "restore it from git, or regenerate it with its runner (UPDATE=1)"
_SEED = re.compile(r"^(?P<base>.+)@seed\d+$")


def _fail(path: Path | str, what: str, line: int | None = None, fix: str = RESTORE) -> str:
    return f"FAIL {path}{'' if line is None else f':{line}'}: {what} (fix: {fix})"


def _decimals(value: float) -> int:
    text = repr(float(value))
    return 99 if "e" in text or "." not in text else len(text.split(".")[1])


def _same(a: Any, b: Any) -> bool:
    """Equal, floats to :data:`FLOAT_NOISE` relative (a p-value of 1e-86 is compared with its own magnitude)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= FLOAT_NOISE * max(abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _difference(stored: Any, derived: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """The first place where ``stored`` and ``derived`` differ (:func:`_same`), or None."""
    if isinstance(stored, dict) and isinstance(derived, dict) and stored.keys() == derived.keys():
        return next((d for k in derived if (d := _difference(stored[k], derived[k], f"{where}.{k}"))), None)
    if isinstance(stored, list) and isinstance(derived, list) and len(stored) == len(derived):
        return next((d for i, (x, y) in enumerate(zip(stored, derived)) if (d := _difference(x, y, f"{where}[{i}]"))),
                    None)
    return None if _same(stored, derived) else (where, stored, derived)


def _first_line(stored: str, rendered: str) -> tuple[int, str, str] | None:
    """``(line, stored line, rendered line)`` of the first difference of two texts, or None."""
    a, b = stored.splitlines(), rendered.splitlines()
    for i in range(max(len(a), len(b))):
        x, y = (a[i] if i < len(a) else "<end of file>"), (b[i] if i < len(b) else "<end of file>")
        if x != y:
            return i + 1, x, y
    return None if stored == rendered else (len(a) + 1, "<no final newline>", "")


def compare_text(path: Path, stored: str, rendered: str, source: str) -> list[str]:
    """One failure naming ``path``'s first line that differs from what ``source`` renders to."""
    diff = _first_line(stored, rendered)
    if diff is None:
        return []
    line, was, want = diff
    return [_fail(path, f"differs from its rendering from {source}: stored {_short(was)!r}, rendered {_short(want)!r}",
                  line)]


def _short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width] + "..."


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


# ---- one record ----------------------------------------------------------------------------------------------------

def siblings(path: Path) -> list[Path]:
    """The files a runner writes with the record ``path``: its table, Markdown and per-query file."""
    return [path.with_suffix(".csv"), path.with_suffix(".md"), path.parent / "per-query" / f"{path.stem}.csv.gz"]


UNREADABLE = (InputError, OSError, EOFError, ValueError, KeyError, TypeError, IndexError, AttributeError)
"""What reading or re-deriving a damaged stored file raises: a failure of the check, never a traceback."""


def _unreadable(path: Path, exc: Exception) -> str:
    """The failure of a file that cannot be read or re-derived (an InputError names its own file and line)."""
    if isinstance(exc, InputError):
        return f"FAIL {exc.format().removeprefix('error: ')}"
    return _fail(path, f"cannot be read or re-derived ({type(exc).__name__}: {exc})")


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
    """The stored table's header and measured cells (:attr:`eval.rerender.Kind.raw`): all of it a rendering reads."""
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


def _seed_of(row: dict) -> str | None:
    """The seed-mean row a per-seed row belongs to: its ``condition`` field (a study record), or the ``@seed<n>``
    suffix of its name (the records of the other runners)."""
    if "seed" in row:
        return row.get("condition")
    m = _SEED.match(row["system"])
    return m["base"] if m else None


def _numbers(rec: Record, expectations) -> tuple[list[str], int]:
    """Every number of the rows: recomputed, a seed mean, or within its expectation; else a failure."""
    path, rows = rec.results.path, rec.results.rows
    means = aggregate(rec.results.per_query)
    by_key = {(r["dataset"], r["system"]): r["metrics"] for r in rows}
    seeds: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if (base := _seed_of(r)) and (r["dataset"], base) in by_key:
            seeds.setdefault((r["dataset"], base), []).append(r["metrics"])
    failures, n = [], 0
    for i, row in enumerate(rows):
        d, s = row["dataset"], row["system"]
        scores, tolerance = expectations.get((d, s), ({}, 0.0))
        for measure, value in row["metrics"].items():
            where, problems, checked = f"rows[{i}].metrics.{measure}", [], False
            mean = means.get((d, s), {}).get(measure)
            if mean is not None:
                checked = True
                allowed = ROUNDING if _decimals(value) <= 4 else FLOAT_NOISE * max(1.0, abs(mean))
                if not abs(value - mean) <= allowed:
                    problems.append(f"its per-query values average {mean:.6g} (|Δ| {abs(value - mean):.2g})")
            runs = [x[measure] for x in seeds.get((d, s), []) if measure in x]
            if runs and len(runs) == len(seeds[(d, s)]):
                checked = True
                if not _same(value, statistics.fmean(runs)):
                    problems.append(f"its {len(runs)} seed rows average {statistics.fmean(runs):.6g}")
            base = _seed_of(row)
            if base and measure in by_key.get((d, base), {}):
                checked = True  # its row of the seed mean is checked against the seeds
            if measure in scores:
                checked = True
                if not within(value, measure, scores[measure], tolerance):
                    problems.append(f"its expectation is {scores[measure]:.6g} ± {allowance(measure, scores[measure], tolerance):g}")
            if not checked:
                problems.append("no expectation for it, and it is not a mean of per-query values")
            n += 1
            if problems:
                failures.append(_fail(path, f"{where}: {d} {s} {measure} = {value:.6g}, but " + " and ".join(problems),
                                      fix="restore the record, or add the expectation to the recipe it names"
                                          if not checked else RESTORE))
    return failures, n


def _copies(rec: Record, expectations) -> list[str]:
    """A row's ``expected`` and ``tolerance`` are the expectation's own (``expected`` copies cannot drift)."""
    out = []
    for i, row in enumerate(rec.results.rows):
        have = (row.get("expected"), row.get("tolerance"))
        want = expectations.get((row["dataset"], row["system"]))
        if want is None and have != (None, None):
            out.append(_fail(rec.results.path, f"rows[{i}].expected: {row['system']} on {row['dataset']} has a copy "
                                               "of an expectation no recipe holds"))
        elif want is not None and have != (dict(want[0]), want[1]):
            out.append(_fail(rec.results.path, f"rows[{i}].expected: {row['dataset']} {row['system']}: the copy "
                                               f"{have[0]} ± {have[1]} is not the "
                                               f"expectation {dict(want[0])} ± {want[1]}"))
    return out


def _coverage(rec: Record, pq: Path) -> list[str]:
    """Every system of a dataset has per-query values of a measure for the same items (queries, or documents)."""
    frame = rec.results.per_query
    items = frame.groupby(["dataset", "measure"], sort=False)["query_id"].nunique()
    sizes = frame.groupby(["dataset", "measure", "system"], sort=False).size()  # values are unique per item
    out = []
    for (dataset, measure, system), size in sizes.items():
        if size != items[(dataset, measure)] and not any(f" {dataset} {measure}: " in line for line in out):
            group = frame[(frame["dataset"] == dataset) & (frame["measure"] == measure)]
            first = group["system"].iloc[0]
            have, ref = (set(group.loc[group["system"] == s, "query_id"].tolist()) for s in (system, first))
            if have == ref:  # the first system is the one short of items
                first, ref = next((s, set(g["query_id"].tolist())) for s, g in group.groupby("system", sort=False)
                                  if len(g) == items[(dataset, measure)])
            odd = sorted(have ^ ref)[0]
            out.append(_fail(pq, f"{dataset} {measure}: {system} has values for {len(have)} items and {first} "
                                 f"for {len(ref)} (e.g. {odd!r} in one only)"))
    return out


# ---- the whole tree ------------------------------------------------------------------------------------------------

def check(paths: Sequence[str | Path] | None = None, expected_from: str | Path | None = None, root: Path = REPO,
          quiet: bool = False) -> list[str]:
    """Check the records ``paths`` (with their files), or, without them, everything under ``root``'s ``results/`` and
    its generated ``docs/`` pages; return the failures (empty: all OK) and print a line per file unless ``quiet``."""
    root, override = Path(root), Path(expected_from) if expected_from else None
    if paths:
        failures = []
        for path in map(Path, paths):
            if not path.is_file():
                raise InputError(path, "not found", fix="name a stored record, e.g. results/table1.json")
            found, n = check_record(path, root, override)
            failures += found
            _say(quiet, f"{path}: {n} numbers checked, {len(found)} failures")
        return failures
    return check_tree(root, override, quiet)


def _say(quiet: bool, line: str) -> None:
    if not quiet:
        print(line)


def check_tree(root: Path, expected_from: Path | None = None, quiet: bool = False) -> list[str]:
    results = root / "results"
    files = sorted(p for p in results.rglob("*") if p.is_file())
    claimed: set[Path] = set()
    failures = _sealed_files(results, claimed)
    for path in files:
        if path.suffix == ".json" and path not in claimed:
            found, n = check_record(path, root, expected_from)
            claimed.update([path, *siblings(path)])
            failures += found
            _say(quiet, f"{path.relative_to(root)}: {n} numbers checked, {len(found)} failures")
    summary = results / "bench" / "summary.md"
    if summary.is_file():
        claimed.add(summary)
        failures += _guarded(summary, lambda: compare_text(summary, read_text(summary), bench_summary(results / "bench"),
                                                           "results/bench/*.json"))
    failures += [_fail(p, "a stored file the check does not know: no record names it and SHA256SUMS does not list it",
                       fix=f"remove it, or list it: python -m eval.check --seal {p}")
                 for p in files if p not in claimed]
    templates = sorted((root / "docs" / "templates").glob("*.md"))
    for template in templates:
        page = root / "docs" / template.name
        if not page.is_file():
            failures.append(_fail(page, "missing", fix="python -m eval.docs"))
        else:
            failures += _guarded(page, lambda: compare_text(page, read_text(page), render(template, root),
                                                            f"its template and {results.relative_to(root)}/"))
    _say(quiet, f"{len(files)} files under {results} and {len(templates)} generated pages checked: "
                f"{len(failures)} failures")
    return failures


def _guarded(path: Path, compare) -> list[str]:
    """``compare()``'s failures, or one naming ``path`` when it (or what it is rendered from) cannot be read."""
    try:
        return compare()
    except UNREADABLE as exc:
        return [_unreadable(path, exc)]


def _sealed_files(results: Path, claimed: set[Path]) -> list[str]:
    listing = results / SEALED
    if not listing.is_file():
        return [_fail(listing, "missing: it pins the stored files nothing re-derives", fix=RESTORE)]
    claimed.add(listing)
    out = []
    for name, digest in read_sealed(results).items():
        path = results / name
        claimed.add(path)
        if not path.is_file():
            out.append(_fail(path, f"listed in {SEALED}, but missing"))
        else:
            out += _guarded(path, lambda: [] if sha256_text(path.read_bytes()) == digest else [_fail(
                path, f"differs from the file {SEALED} pins",
                fix=f"restore it from git; after an intended edit: python -m eval.check --seal {path}")])
    return out


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.check", description=__doc__.splitlines()[0])
    p.add_argument("--seal", nargs="+", metavar="FILE", required=True,
                   help="record these files' sha256 in results/SHA256SUMS (hand-written or raw files, after an "
                        "intended edit)")
    args = p.parse_args(argv)
    for name in args.seal:
        if not Path(name).is_file() or not Path(name).resolve().is_relative_to(STORED.resolve()):
            raise InputError(name, "not a file under results/", fix="name a stored file, e.g. results/SCHEMA.md")
    seal(args.seal)
    print(f"sealed {len(args.seal)} file(s) in {REPO / 'results' / SEALED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
