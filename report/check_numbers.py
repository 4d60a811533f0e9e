"""How the regression check (:mod:`report.check`) judges what it re-derives, and words a failure.

- a number of a record's rows: within :data:`ROUNDING` or :data:`FLOAT_NOISE` of the mean of its per-query values, the
  mean of its ``<system>@seed<n>`` rows, within its expectation (:func:`eval.results.within`); a row's copy of its
  expectation; every system of a dataset has per-query values for the same items;
- two values (equal up to :data:`FLOAT_NOISE`, relative) and two texts (their first differing line);
- a failure: one line ``FAIL <file>[:<line>]: <what> (fix: <how>)``, also for a file that cannot be read
  (:data:`UNREADABLE`).
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

from eval.results import allowance, within
from eval.schema import aggregate
from kit.errors import InputError
from report.rerender import Record

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


UNREADABLE = (InputError, OSError, EOFError, ValueError, KeyError, TypeError, IndexError, AttributeError)
"""What reading or re-deriving a damaged stored file raises: a failure of the check, never a traceback."""


def _unreadable(path: Path, exc: Exception) -> str:
    """The failure of a file that cannot be read or re-derived (an InputError names its own file and line)."""
    if isinstance(exc, InputError):
        return f"FAIL {exc.format().removeprefix('error: ')}"
    return _fail(path, f"cannot be read or re-derived ({type(exc).__name__}: {exc})")


# ---- the numbers of a record ---------------------------------------------------------------------------------------

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

