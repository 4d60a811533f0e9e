"""The regression check of everything stored: every number of every file under ``results/`` and of the generated pages
under ``docs/`` is re-derived, checked against an expectation, or pinned by the digest written with it.

    python -m report.compare --check                  # make compare CHECK=1: the whole of results/ and docs/
    python -m report.compare --check --against F.json # one record (e.g. a run in work/results/)
    python -m report.check --seal results/SCHEMA.md   # after an intended edit of a file nothing re-derives

File by file:

- **a record** (``<stem>.json``, kit-results/1; its ``kind`` names the runner, :data:`report.rerender.KINDS`;
  :mod:`report.check_record`): every number of its rows is the mean of its per-query values (within
  :data:`report.check_numbers.ROUNDING` when the record stores it rounded to 4 decimals, else
  :data:`report.check_numbers.FLOAT_NOISE`), or the mean of its ``<system>@seed<n>`` rows (which it checks in
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
- ``results/bench/summary.md`` and every page of ``docs/templates/``: re-rendered (:mod:`report.docs`) and compared.
- ``results/SHA256SUMS``: the files nothing re-derives, each pinned by its sha256, written with it
  (:func:`eval.results.seal`): the benchmark records (timings of one machine, not reproducible by design), the
  figures' PNGs (matplotlib's bytes vary by version), the paper's transcriptions (pinned to the paper's text by
  tests/test_paper_tables.py, which needs ../shared; the check must run without it) and the format's documentation.
- **any other file** under ``results/`` fails: a file nothing checks could hold any number.
- **a comparison two study files both test** (the same models, measure and dataset) fails: one verdict per comparison
  (:func:`eval.study.consistency.shared_comparisons`).

Each failure is one line ``FAIL <file>[:<line>]: <what> (fix: <how>)`` (:mod:`report.check_numbers`); the command exits
1 when there is one. This module walks the tree and seals files (``--seal``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from eval.results import SEALED, STORED, read_sealed, seal, sha256_text
from eval.study.consistency import shared_comparisons
from eval.study.spec import load_study
from kit.argtypes import ArgumentParser
from kit.errors import InputError, cli
from kit.io import read_text
from kit.paths import REPO
from report.check_numbers import RESTORE, UNREADABLE, _fail, _unreadable, compare_text
from report.check_record import check_record, siblings
from report.docs import bench_summary, page_of, render
from report.rerender import read_once


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
                       fix=f"remove it, or list it: python -m report.check --seal {p}")
                 for p in files if p not in claimed]
    templates = sorted((root / "docs" / "templates").glob("*.md"))
    for template in templates:
        page = page_of(template, root)
        if not page.is_file():
            failures.append(_fail(page, "missing", fix="python -m report.docs"))
        else:
            failures += _guarded(page, lambda: compare_text(page, read_text(page), render(template, root),
                                                            f"its template and {results.relative_to(root)}/"))
    failures += _one_verdict_each(root, [p for p in files if p.suffix == ".json" and p.parent == results])
    _say(quiet, f"{len(files)} files under {results} and {len(templates)} generated pages checked: "
                f"{len(failures)} failures")
    return failures


def _one_verdict_each(root: Path, records: Sequence[Path]) -> list[str]:
    """No two stored studies test the same comparison of the same models: the same data gets one verdict. The study
    files are those the stored records name (each already read by their own check)."""
    studies = []
    for path in records:
        try:
            named = json.loads(read_text(path)).get("study")
            studies.append(read_once(load_study, root / named) if named else None)
        except Exception:  # an unreadable record or study file already failed its own check, naming it
            continue
    return [_fail(root / "recipes" / "studies", line,
                  fix="keep the comparison in one study's family and drop it from the other")
            for line in shared_comparisons(s for s in studies if s is not None)]


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
                fix=f"restore it from git; after an intended edit: python -m report.check --seal {path}")])
    return out


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m report.check", description=__doc__.splitlines()[0])
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
