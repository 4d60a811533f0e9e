"""Whether a rerun gave the stored numbers bit for bit: two ``kit-results/1`` records compared number by number.

    python -m report.compare --same work/results/table3.json                          # with results/table3.json
    python -m report.compare --same work/results/table3.json --against results/x.json  # with another record

A run without ``--update`` writes ``work/results/<stem>.*``; this says whether it measured exactly what the stored
record holds, so a regeneration is shown without touching ``results/`` (``git status`` stays clean). Compared
exactly (``==`` on the floats as written): every row (dataset, system, its measures, expectation and tolerance), every
per-query value, every claim (effect, CI, p-values, verdict) and what the record says it measured (study, scale,
datasets, measures, systems, seeds, claim counts). Not compared, because they say when, where and how fast a run
happened rather than what it measured: :data:`PROVENANCE`, the table's wall-time columns, and the digests that cover
them. Any difference is one line naming the field; the command exits 1.
"""

from __future__ import annotations

from pathlib import Path

from eval.results import STORED
from eval.schema import PER_QUERY_COLUMNS, Results, load_results
from kit.manifest import shown

PROVENANCE = ("date", "commit", "command", "measured_by", "machine", "versions", "total_seconds", "stage_seconds",
              "models", "sha256", "per_query")
"""Record fields that describe the run, not its numbers (``models``: the model folders, absolute paths under the
work directory; ``per_query``: the per-query file's name, whose values are compared)."""

SHOWN = 20
"""Differences printed before the rest are counted."""


def stored_twin(path: str | Path) -> Path:
    """``results/<name>`` for a record ``<folder>/<name>`` (the stored record a rerun is compared with)."""
    return STORED / Path(path).name


def differences(new: Results, stored: Results) -> list[str]:
    """One line per difference between two records' numbers (empty: the same, bit for bit)."""
    out: list[str] = []
    for key in sorted((set(new.meta) | set(stored.meta)) - set(PROVENANCE) - {"claims"}):
        if new.meta.get(key) != stored.meta.get(key):
            out.append(f"field {key}: {stored.meta.get(key)!r} stored, {new.meta.get(key)!r} now")
    out += _rows(new.rows, stored.rows)
    out += _claims(new.meta.get("claims") or [], stored.meta.get("claims") or [])
    out += _per_query(new, stored)
    return out


def _rows(new: list[dict], stored: list[dict]) -> list[str]:
    def keyed(rows):
        return {(r["dataset"], r["system"]): r for r in rows}

    a, b = keyed(stored), keyed(new)
    out = [f"row {d}/{s}: {'only stored' if (d, s) in a else 'only now'}" for d, s in sorted(set(a) ^ set(b))]
    for key in sorted(set(a) & set(b)):
        for field in sorted(set(a[key]) | set(b[key])):
            was, now = a[key].get(field), b[key].get(field)
            if isinstance(was, dict) and isinstance(now, dict):
                out += [f"row {key[0]}/{key[1]} {field}.{m}: {was.get(m)!r} stored, {now.get(m)!r} now"
                        for m in sorted(set(was) | set(now)) if was.get(m) != now.get(m)]
            elif was != now:
                out.append(f"row {key[0]}/{key[1]} {field}: {was!r} stored, {now!r} now")
    return out


def _claims(new: list[dict], stored: list[dict]) -> list[str]:
    if len(new) != len(stored):
        return [f"claims: {len(stored)} stored, {len(new)} now"]
    out = []
    for i, (was, now) in enumerate(zip(stored, new), 1):
        name = f"claim {i} ({was.get('label')} vs {was.get('label_versus')}, {was.get('dataset')} {was.get('measure')})"
        out += [f"{name} {field}: {was.get(field)!r} stored, {now.get(field)!r} now"
                for field in sorted(set(was) | set(now)) if was.get(field) != now.get(field)]
    return out


def _per_query(new: Results, stored: Results) -> list[str]:
    if new.per_query is None or stored.per_query is None:
        return [] if new.per_query is None and stored.per_query is None else ["per-query values: only one side has them"]
    keys = list(PER_QUERY_COLUMNS[:-1])
    a = stored.per_query.set_index(keys)["value"]
    b = new.per_query.set_index(keys)["value"]
    only = a.index.symmetric_difference(b.index)
    out = [f"per-query {'/'.join(map(str, k))}: {'only stored' if k in a.index else 'only now'}" for k in only]
    both = a.index.intersection(b.index)
    was, now = a.loc[both], b.loc[both]
    differ = (was != now).to_numpy()
    out += [f"per-query {'/'.join(map(str, k))}: {float(x)!r} stored, {float(y)!r} now"
            for k, x, y in zip(both[differ], was[differ], now[differ])]
    return out


def same(path: str | Path, against: str | Path | None = None) -> int:
    """Print whether the record at ``path`` holds the numbers of ``against`` (default :func:`stored_twin`), bit for
    bit; 0 when it does, 1 otherwise."""
    new = load_results(path)
    stored = load_results(against or stored_twin(path))
    found = differences(new, stored)
    here, there = shown(new.path), shown(stored.path)
    for line in found[:SHOWN]:
        print(f"{here}: {line}")
    if len(found) > SHOWN:
        print(f"{here}: ... and {len(found) - SHOWN} more differences")
    values = 0 if stored.per_query is None else len(stored.per_query)
    what = (f"{len(stored.rows)} rows, {values} per-query values, {len(stored.meta.get('claims') or [])} claims "
            f"(provenance not compared: {', '.join(PROVENANCE[:-1])}, wall-time columns)")
    if found:
        print(f"same: FAILED, {here} differs from {there} in {len(found)} numbers or fields of {what} (exit 1)")
        return 1
    print(f"same: {here} holds the numbers of {there} bit for bit: {what}")
    return 0
