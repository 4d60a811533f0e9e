"""HTML pieces of the reproduction report (:mod:`report.site`): escaping, cells, tables, and a study's table read from its
``kit-results/1`` record.

:func:`study_table` renders any stored record the same way: one line per condition and dataset, nDCG@10 (and the
record's other measures) as the mean ± sd over the condition's training seeds, FLOPS and Doc_Len where measured, the
expectation the record was written with and whether the value meets it (:func:`eval.results.check_expected`), and the
nDCG@10 difference from the BM25 row of the same dataset. Annotation columns (the paper's cells) sit at the right, never
subtracted from a measurement.
"""

from __future__ import annotations

import html
import re
import statistics
from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from eval.provenance import machine_line
from eval.results import allowance, check_expected
from eval.schema import Results

SEED_ROW = re.compile(r"^(?P<system>.+)@seed(?P<seed>\d+)$")
"""A per-seed row of a condition (``baseline@seed42``); the condition's own row holds the seed mean."""
EFFICIENCY = ("FLOPS", "Doc_Len", "Query_Len")
BM25_PREFIX = "bm25"

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
td.measured { background: #eef6ff; white-space: nowrap; } td.ann { color: #666; background: #fafafa; } .pos { color: #0a6b0a; } .neg { color: #a11; }
code { background: #f6f6f6; padding: 1px 4px; font-size: 0.92em; } td code { white-space: nowrap; }
td.l { max-width: 28em; } tr.ref td { background: #f7f7f7; font-style: italic; }
.missing { background: #fff4e0; border: 1px solid #e5b567; padding: 0.6em 1em; }
.fail { color: #a11; font-weight: bold; } .ok { color: #0a6b0a; }
figure { display: inline-block; margin: 0 1em 1em 0; } figure img { width: 440px; border: 1px solid #ddd; }
.note { color: #555; max-width: 1100px; }
"""

IMAGE_PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute('data-natural-width', imgs[i].naturalWidth);
    if (imgs[i].naturalWidth > 0) ok++;
  }
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def code(command: str) -> str:
    return f"<code>{esc(command)}</code>"


def num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return esc(value)


def delta(value: Any, digits: int = 4) -> str:
    if value is None or pd.isna(value):
        return "–"
    v = round(float(value), digits) + 0.0
    cls = "pos" if v > 0 else "neg" if v < 0 else ""
    return f'<span class="{cls}">{v:+.{digits}f}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1, cls: str = "") -> str:
    """An HTML table; cells are already-escaped HTML (a cell that starts with ``<td`` or ``<tr`` is taken as is); the
    first ``left`` columns are left-aligned. A row whose first element starts with ``<tr`` opens its own row tag."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(headers))
    body = []
    for r in rows:
        opening = r[0] if r and r[0].startswith("<tr") else "<tr>"
        cells = r[1:] if r and r[0].startswith("<tr") else r
        body.append(opening + "".join(c if c.startswith("<td") else f'<td class="{"l" if i < left else ""}">{c}</td>'
                                      for i, c in enumerate(cells)) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def provenance(meta: Mapping) -> str:
    versions = meta.get("versions") or {}
    parts = [f"command {code(meta.get('command', '?'))}", f"commit <code>{esc((meta.get('commit') or '?')[:12])}</code>",
             f"date {esc(meta.get('date', '?'))}"]
    if meta.get("machine"):
        parts.append(esc(machine_line(meta["machine"])))
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if k in ("torch", "transformers", "pyserini", "anserini", "java"))
    if shown:
        parts.append(esc(shown))
    return '<p class="note">Provenance: ' + "; ".join(parts) + ".</p>"


# ---- a study's table from its record ---------------------------------------------------------------------------------

def condition_rows(results: Results) -> list[dict[str, Any]]:
    """The record's condition rows (per-seed rows folded in): ``dataset``, ``system``, ``label``, ``metrics``,
    ``expected``, ``tolerance`` and ``seeds``: ``{measure: [value per seed]}`` (empty for a single run)."""
    per_seed: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results.rows:
        if m := SEED_ROW.match(r["system"]):
            for measure, value in r["metrics"].items():
                per_seed[(r["dataset"], m["system"])][measure].append(float(value))
    return [{**r, "label": r.get("label") or r["system"], "seeds": dict(per_seed.get((r["dataset"], r["system"]), {}))}
            for r in results.rows if not SEED_ROW.match(r["system"])]


def mean_sd(row: Mapping[str, Any], measure: str) -> str:
    """``0.6448 ± 0.0062 (3)``: the row's value (the seed mean) and the sd over its seeds; the value alone for one run."""
    value = row["metrics"].get(measure)
    if value is None:
        return "–"
    digits = 2 if measure in EFFICIENCY else 4
    seeds = row["seeds"].get(measure, [])
    if len(seeds) < 2:
        return num(float(value), digits)
    return f"{num(float(value), digits)} ± {statistics.stdev(seeds):.{digits}f} <small>({len(seeds)})</small>"


def study_table(results: Results, annotations: Mapping[str, Mapping[str, Any]] | None = None,
                annotation_headers: Sequence[str] = ()) -> str:
    """The record as one table: condition, dataset, measures (mean ± sd over seeds, n), expected, check, Δ BM25.

    ``annotations`` maps a system id to cells (keyed by ``annotation_headers``) shown on its first line only, greyed,
    as a reference beside the measurement (e.g. the paper's 13-dataset averages), never subtracted from it."""
    rows = condition_rows(results)
    measures = list(dict.fromkeys([*(results.meta.get("measures") or []), "nDCG@10"]))
    measures = [m for m in sorted(measures, key=lambda m: m != "nDCG@10") if any(m in r["metrics"] for r in rows)]
    measures += [m for m in EFFICIENCY if any(m in r["metrics"] for r in rows)]
    bm25 = {r["dataset"]: r["metrics"].get("nDCG@10") for r in rows if r["system"].startswith(BM25_PREFIX)}
    annotations, seen, body = annotations or {}, set(), []
    for r in rows:
        status, detail = check_expected(r.get("expected"), r.get("tolerance", 0.0), r["metrics"])
        expected = "; ".join(f"{m} {v:.4g} ± {allowance(m, v, r.get('tolerance', 0.0)):.2g}"
                             for m, v in (r.get("expected") or {}).items())
        check = (f'<span class="{"fail" if status == "FAIL" else "ok"}" title="{esc(detail)}">{status}</span>'
                 if status else "–")
        ref, score = bm25.get(r["dataset"]), r["metrics"].get("nDCG@10")
        vs_bm25 = ("–" if r["system"].startswith(BM25_PREFIX) or ref is None or score is None
                   else delta(100 * (float(score) - float(ref)), 2))
        note = annotations.get(r["system"]) if r["system"] not in seen else None
        seen.add(r["system"])
        body.append([f'<tr class="{"ref" if r["system"].startswith(BM25_PREFIX) else ""}">',
                     f'{esc(r["label"])}<br><small><code>{esc(r["system"])}</code></small>', esc(r["dataset"]),
                     *(f'<td class="measured">{mean_sd(r, m)}</td>' for m in measures), esc(expected) or "–", check,
                     vs_bm25, *(f'<td class="ann">{num((note or {}).get(h), 2)}</td>' for h in annotation_headers)])
    headers = ["condition", "dataset", *(esc(m) for m in measures), "expected", "check", "nDCG@10 Δ BM25 (points)",
               *(esc(h) for h in annotation_headers)]
    return table(headers, body, left=2)
