"""From measurements to what a study reports: its tables, its comparisons' verdicts, its record rows and Markdown.

One function, :func:`derive`, serves both sides: the runner (:mod:`eval.study.runner`) calls it on what it measured,
and ``python -m report.compare --check`` calls it on what a stored record holds (its rows read back by :func:`runs_of`),
so a record is re-derived from its study file with no knowledge of which study wrote it.

Inputs: each condition's runs (one :class:`Run` per seed: its scores per dataset, its wall times), each reference's
scores (a reference or fusion row is its single run: no seeds, no spread), and the per-item values (every seed's model, every
condition's seed mean, every reference) the comparisons test.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from eval.ablator import NO_FRONTIERS, seed_system
from eval.claims import COLUMNS as CLAIM_COLUMNS, Side, Sides, markdown as claims_markdown, summary, judge_family
from eval.paper import load_paper_table
from eval.results import check_expected, markdown_table, points_over
from eval.stats import ALPHA, BETWEEN_SEEDS, MARGIN_TEXT, NOT_DISTINGUISHABLE, SEED_TESTS, mean_std
from eval.study.frontier import Curve, grid, overlap, point_name, side_at
from eval.study.model import ALL_DATASETS, SYSTEM_SPARSITY, Study
from eval.study.training import TRAINING_MEASURES

RAW_COLUMNS = ("train_s", "eval_s")
"""The table's wall-time columns: measured outside the record, sealed by their digest."""
BM25 = "bm25-flat"


@dataclass
class Run:
    """One trained model of a condition: its seed, its scores per dataset and where it lives."""

    condition: str
    seed: int
    scores: Mapping[str, Mapping[str, float]]  # dataset -> measure -> value
    model: str = ""


@dataclass
class Derived:
    table: pd.DataFrame
    markdown: str
    claims: pd.DataFrame
    rows: list[dict]


def runs_of(study: Study, metrics: Mapping[tuple[str, str], Mapping[str, float]], seeds: Mapping[str, Sequence[int]],
            datasets: Sequence[str], models: Mapping[str, str]) -> tuple[dict[str, list[Run]], dict]:
    """A record's measurements read back from its rows (``{(dataset, system): metrics}``): each condition's runs at
    ``seeds`` and each reference's scores; KeyError names a row or measure the record lacks. A sweep's point may be
    absent (a smoke scale runs some of them: :meth:`eval.ablator.Scale.runs_point`); every other condition is there."""
    runs = {c: [Run(c, s, {d: metrics[(d, seed_system(c, s))] for d in datasets}, models.get(seed_system(c, s), ""))
                for s in seeds[c]] for c, declared in study.conditions.items() if c in seeds or not declared.swept}
    references = {(d, r.id): {m: metrics[(d, r.id)][m] for m in study.reference_measures(r)}
                  for d in datasets for r in study.references}
    return runs, references


def scaled(measure: str) -> float:
    """How a measure is printed: effectiveness ×100 (as the paper prints it), FLOPS and lengths as they are."""
    return 100.0 if is_effectiveness(measure) else 1.0


def is_effectiveness(measure: str) -> bool:
    """An ir-measures measure (nDCG@10, R@100): not FLOPS, Doc_Len, Query_Len or a training measure."""
    return measure not in SYSTEM_SPARSITY and measure not in TRAINING_MEASURES


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def build_tables(study: Study, runs: Mapping[str, Sequence[Run]], references: Mapping[tuple[str, str], Mapping],
                 datasets: Sequence[str], checked: bool, seconds: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Every table of the study in one frame (column ``table``): per row and (dataset, measure) the mean and sd
    over seeds, Δ BM25 beside each effectiveness mean, the paper's value when the table cites one, the check."""
    rows = []
    for t in study.tables:
        paper = (load_paper_table(1, corrected=True).set_index("dataset") if t.paper == 1
                 else load_paper_table(t.paper).set_index("system") if t.paper else None)
        columns = {d: m for d, m in t.columns.items() if d in datasets}
        for cid in (r for r in t.rows if r in runs or r not in study.conditions):  # a sweep's points: those run
            c, seeds = _row_runs(study, cid, runs, references, datasets)
            row: dict[str, Any] = {"table": t.id, "system": cid, "label": c.label,
                                   "seeds": " ".join(str(r.seed) for r in seeds) if cid in study.conditions else ""}
            for d, measures in columns.items():
                for m in measures:
                    values = [r.scores[d][m] for r in seeds if m in r.scores[d]]  # BM25 has no FLOPS
                    mean, sd = mean_std(values) if values else (None, None)
                    row[f"{d} {m}"], row[f"{d} {m} sd"] = _r(mean), _r(sd)
                    if is_effectiveness(m) and (d, BM25) in references:
                        row[f"{d} {m} Δ BM25"] = points_over(mean, references[(d, BM25)][m])
            if t.paper == 1:
                row.update(_paper_columns(c, paper, columns))
            elif paper is not None:
                for m in ("nDCG@10", "FLOPS", "Doc_Len"):
                    if m in paper.columns:
                        row[f"paper {m}"] = float(paper.loc[cid, m]) if cid in paper.index else None
            row["check"], row["check_detail"] = _check(c, seeds, datasets, checked)
            row.update({k: seconds[cid][k] if cid in seconds else None for k in RAW_COLUMNS})
            rows.append(row)
    return pd.DataFrame(rows)


def _paper_columns(row, paper: pd.DataFrame, columns: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """A Table 1 row's annotation: the paper's column its system names (``paper`` in recipes/table1.yaml) and that
    column's nDCG@10 ×100 on each dataset the paper has, errata applied (:func:`eval.paper.load_paper_table`)."""
    column = getattr(getattr(row, "system", None), "paper", None) or ""
    cells = {"paper column": column}
    for d in columns:
        value = paper.at[d, column] if column and d in paper.index and column in paper.columns else None
        cells[f"paper {d} nDCG@10"] = None if value is None or pd.isna(value) else float(value)
    return cells


def _paper_cell(value: Any, table: int | None) -> str:
    """A ``paper`` cell as printed: the column's name, or its number (Table 1's nDCG@10 ×100 with the paper's one
    decimal, 69.0; Tables 2-3 as transcribed); "–" when there is none."""
    if isinstance(value, str):
        return value or "–"
    if value is None or pd.isna(value):
        return "–"
    return f"{value:.1f}" if table == 1 else f"{value:g}"


def _row_runs(study: Study, rid: str, runs: Mapping[str, Sequence[Run]],
              references: Mapping[tuple[str, str], Mapping], datasets: Sequence[str]) -> tuple[Any, Sequence[Run]]:
    """A table row's declaration (its label, expectations, tolerance) and runs: a condition's seeds, or a reference's
    single run."""
    if rid in study.conditions:
        return study.conditions[rid], runs[rid]
    return study.reference(rid), [Run(rid, 0, {d: references[(d, rid)] for d in datasets})]


def _check(c, seeds: Sequence[Run], datasets: Sequence[str], checked: bool) -> tuple[str, str]:
    if not checked:
        return "", ""
    verdicts = [(d, check_expected(c.expected.get(d), c.tolerance,
                                   {m: statistics.fmean(r.scores[d][m] for r in seeds) for m in seeds[0].scores[d]}))
                for d in datasets]
    status = "FAIL" if any(s == "FAIL" for _, (s, _) in verdicts) else ("OK" if any(s for _, (s, _) in verdicts) else "")
    return status, "; ".join(f"{d}: {x}" for d, (s, x) in verdicts if s == "FAIL")


def trained(system) -> bool:
    """Whether a reference's documents come from a model the kit trains (a fusion: any member's): one seed of it."""
    if system.type == "fusion":
        return any(trained(m) for m in system.members)
    return bool(system.doc and system.doc.trained)


def item_series(per_query: pd.DataFrame):
    """``(dataset, system, measure) -> pd.Series`` of per-item values (index: query id); ValueError names what a
    record lacks."""
    items = {key: g.set_index("query_id")["value"]
             for key, g in per_query.groupby(["dataset", "system", "measure"], sort=False)}

    def series(dataset: str, system: str, measure: str) -> pd.Series:
        if (dataset, system, measure) not in items:
            raise ValueError(f"no per-item {measure} values of {system} on {dataset}")
        return items[(dataset, system, measure)]

    return series


def sides(study: Study, series, runs: Mapping[str, Sequence[Run]], references: Mapping[tuple[str, str], Mapping],
          points: Mapping[str, Side] | None = None) -> Sides:
    """Where a study's comparisons take their values (:data:`eval.claims.Sides`): a condition's per-query rows of each
    seed (``<condition>@seed<n>``) or, for a measure of :data:`eval.stats.BETWEEN_SEEDS`, its seeds' values; a
    reference's single run (deterministic unless its model is one the kit trained); a frontier's compared point
    (``points``: :func:`frontier_points`)."""
    def side(system: str, dataset: str, measure: str) -> Side:
        if points and system in points:
            return points[system]
        if system in study.conditions:
            seeds = [r.seed for r in runs[system]]
            if measure in BETWEEN_SEEDS:
                return Side(pd.DataFrame({measure: [r.scores[dataset][measure] for r in runs[system]]}, index=seeds),
                            seeded=True)
            return Side(_matrix([series(dataset, seed_system(system, s), measure) for s in seeds], seeds), seeded=True)
        seeded = trained(study.reference(system).system)
        if measure in BETWEEN_SEEDS:
            return Side(pd.DataFrame({measure: [references[(dataset, system)][measure]]}), seeded=seeded)
        return Side(_matrix([series(dataset, system, measure)], [0]), seeded=seeded)

    return side


def _matrix(rows: Sequence[pd.Series], index: Sequence[int]) -> pd.DataFrame:
    """Per-item values of several runs as one frame (a row per run, a column per item, aligned by item id); a run
    missing an item another has is an error, never a NaN."""
    items = rows[0].index
    if any(len(r) != len(items) or not r.index.isin(items).all() for r in rows[1:]):
        raise ValueError("the seeds of one condition are not measured on the same items")
    return pd.DataFrame(np.vstack([r.reindex(items).to_numpy(float) for r in rows]), index=list(index), columns=items)


def comparisons(study: Study, per_query: pd.DataFrame, datasets: Sequence[str], runs: Mapping[str, Sequence[Run]],
                references: Mapping[tuple[str, str], Mapping], frontiers: bool = True) -> pd.DataFrame:
    """Each comparison of the study tested on each seed's per-item values (:mod:`eval.claims`), Holm within each
    family; one of sweep points a scale did not run (not in ``runs``) is left out, and with ``frontiers`` False
    every frontier comparison (``at``)."""
    labels = {**{c.id: c.label for c in study.conditions.values()}, **{r.id: r.label for r in study.references}}
    families: dict[str, list[dict]] = {}
    present = set(labels) - (set(study.conditions) - set(runs))
    series, points = item_series(per_query), {}
    for c in study.comparisons:
        if c.at is not None:
            compared = frontier_points(study, c, series, runs) if frontiers else []
            points.update((name, side) for pair in compared for name, _, side in pair)
            families.setdefault(c.family, []).extend(
                {"system": a, "label": la, "versus": b, "label_versus": lb, "measure": c.measure,
                 "dataset": study.in_domain, "paper_delta": c.paper_delta, "sign": c.sign, "_source": c.source}
                for (a, la, _), (b, lb, _) in compared)
            continue
        for d in c.datasets:
            if d in datasets and {c.condition, c.versus} <= present:
                families.setdefault(c.family, []).append(
                    {"system": c.condition, "label": labels[c.condition], "versus": c.versus,
                     "label_versus": labels[c.versus], "measure": c.measure,
                     "dataset": d, "paper_delta": c.paper_delta, "sign": c.sign, "_source": c.source})
    frames, side = [], sides(study, series, runs, references, points)
    for family, rows in families.items():
        tested = judge_family([{k: v for k, v in r.items() if k != "_source"} for r in rows], side, family)
        frames.append(tested.assign(source=[r["_source"] for r in rows]))
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=[*CLAIM_COLUMNS, "source"]))


def frontier_points(study: Study, c, series, runs: Mapping[str, Sequence[Run]]) -> list[tuple[tuple, tuple]]:
    """A frontier comparison's compared points (:mod:`eval.study.frontier`): for each common value of ``c.at``, the
    two curves' ``(name, label, Side)``; none when a curve has fewer than two points run (a smoke scale)."""
    labels = {f"{s.id}.{b}": f"{s.labels.get(b, b)} ({s.field} sweep)" for s in study.sweeps for b in s.bases}
    curves = {}
    for name in (c.condition, c.versus):
        on = [p for p in study.curves()[name] if p in runs]
        if len(on) < 2:
            return []
        seeds = {tuple(sorted(r.seed for r in runs[p])) for p in on}
        if len(seeds) != 1:
            raise ValueError(f"the points of {name} are not run at the same seeds ({sorted(seeds)})")
        by_seed = {p: {r.seed: r for r in runs[p]} for p in on}
        curves[name] = {s: Curve(np.array([by_seed[p][s].scores[study.in_domain][c.at] for p in on], float),
                                 _matrix([series(study.in_domain, seed_system(p, s), c.measure) for p in on], on))
                        for s in next(iter(seeds))}
    lo, hi = overlap([k for one in curves.values() for k in one.values()])
    if not lo < hi:
        ranges = "; ".join(f"{n}: {min(k.x.min() for k in v.values()):g}-{max(k.x.max() for k in v.values()):g}"
                           for n, v in curves.items())
        raise ValueError(f"{c.condition} and {c.versus} share no {c.at} range that every seed covers ({ranges}): "
                         "add points to the sweeps")
    out = []
    for value in grid(lo, hi):
        pair = tuple((point_name(n, c.at, value), f"{labels[n]} at {c.at} {value:g}",
                      Side(side_at(curves[n], value), seeded=True)) for n in (c.condition, c.versus))
        out.append(pair)
    return out


def record_rows(study: Study, runs: Mapping[str, Sequence[Run]], references: Mapping[tuple[str, str], Mapping],
                datasets: Sequence[str], checked: bool) -> list[dict]:
    """kit-results rows: each condition's seed mean per dataset (with its expectation), each seed, each reference."""
    rows = []
    for cid, seeds in runs.items():
        c = study.conditions[cid]
        for d in datasets:
            measures = list(seeds[0].scores[d])
            row = {"dataset": d, "system": cid, "condition": cid, "label": c.label,
                   "metrics": {m: statistics.fmean(r.scores[d][m] for r in seeds) for m in measures}}
            if checked and c.expected.get(d):
                row.update(expected=dict(c.expected[d]), tolerance=c.tolerance)
            rows.append(row)
            rows += [{"dataset": d, "system": seed_system(cid, r.seed), "condition": cid, "seed": r.seed,
                      "label": f"{c.label} (seed {r.seed})", "metrics": {m: float(r.scores[d][m]) for m in measures}}
                     for r in seeds]
    rows += [{"dataset": d, "system": ref.id, "label": ref.label, "metrics": dict(references[(d, ref.id)]),
              **({"expected": dict(ref.expected[d]), "tolerance": ref.tolerance}
                 if checked and ref.expected.get(d) else {})}
             for d in datasets for ref in study.references]
    return rows


def _cell(row: Mapping, column: str, factor: float) -> str:
    value, sd = row.get(column), row.get(f"{column} sd")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    digits = 2 if factor != 1.0 or "FLOPS" not in column else 3
    text = f"{factor * value:.{digits}f}"
    return text if sd is None or (isinstance(sd, float) and math.isnan(sd)) else f"{text} ± {factor * sd:.{digits}f}"


def render_markdown(study: Study, table: pd.DataFrame, claims: pd.DataFrame, references: Mapping[tuple[str, str], Mapping],
                    datasets: Sequence[str], command: str, scale: str) -> str:
    lines = [f"<!-- generated by `{command}` from {study.path.name if study.path else study.id}; do not edit -->",
             f"# {study.title}", ""]
    lines += [p for p in (study.description, study.caveat) if p for p in (p.strip(), "")]
    rows = {r for t in study.tables for r in t.rows}
    if study.conditions:
        lines += [f"Scale `{scale}`. Each cell is the mean ± standard deviation over the training seeds (`seeds`); "
                  + ("effectiveness ×100, FLOPS, Doc_Len and Query_Len as measured on each dataset's document "
                     "and query vectors (documents encoded whole)." if study.sparsity == ALL_DATASETS else
                     f"effectiveness ×100, FLOPS and Doc_Len as measured on the document vectors of {study.in_domain}.")
                  + " Δ BM25 = row − BM25 on the same dataset, in points."
                  + (" A reference row is one run (no seeds)." if rows - set(study.conditions) else ""), ""]
    else:
        lines += [f"Scale `{scale}`. Each cell is one run (no training seeds), effectiveness ×100. Δ BM25 = row − BM25 "
                  "on the same dataset, in points.", ""]
    if study.training:
        lines += ["Training columns, from each model's training log, at its last logging window unless said "
                  "otherwise (mean ± sd over the seeds): "
                  + "; ".join(f"`{m}`: {TRAINING_MEASURES[m]}" for m in study.training) + ".", ""]
    for t in study.tables:
        part = table[table["table"] == t.id].to_dict("records")
        cols = [(f"{d} {m}", scaled(m)) for d, ms in t.columns.items() if d in datasets for m in ms]
        head = ["condition", "seeds"]
        for name, _ in cols:
            head += [name] + ([f"{name} Δ BM25"] if f"{name} Δ BM25" in table.columns else [])
        paper = [c for c in table.columns if c.startswith("paper ")] if t.paper else []
        body = []
        for r in part:
            cells = [r["label"], r["seeds"] or "–"]
            for name, factor in cols:
                cells.append(_cell(r, name, factor))
                if f"{name} Δ BM25" in table.columns:
                    cells.append(f"{r[f'{name} Δ BM25']:+.2f}")
            cells += [_paper_cell(r.get(p), t.paper) for p in paper]
            body.append([*cells, r["check"] or "–"])
        lines += [f"## {t.title}", "", *markdown_table([*head, *paper, "check"], body), ""]
        if t.paper == 1:
            lines += ["`paper` columns: the paper's Table 1 column each system is set beside (`paper` in "
                      "recipes/table1.yaml) and its nDCG@10 ×100 there, errata applied (results/paper/table1-errata.csv); "
                      "full-size systems beside tiny offline ones: an annotation, not a target.", ""]
        elif t.paper:
            lines += [f"`paper` columns: the paper's Table {t.paper} (BERT-base on MS MARCO, BEIR averages; an "
                      "annotation, not a target).", ""]
    if study.plots:
        lines += [f"Plots, in `{study.id}/` beside this file: "
                  + "; ".join(f"`{p.id}.png` ({p.title}: {p.y} against {p.x})" for p in study.plots) + ".", ""]
    beside = [r for r in study.references if r.id not in rows]
    if beside:
        refs = "; ".join(f"{d}: " + ", ".join(f"{r.label} {100 * references[(d, r.id)][study.measures[0]]:.2f}"
                                              for r in beside) for d in datasets)
        lines += [f"References ({study.measures[0]} ×100): {refs}.", ""]
    if scale in NO_FRONTIERS and any(c.at for c in study.comparisons):
        lines += [f"The comparisons at equal {', '.join(sorted({c.at for c in study.comparisons if c.at}))} are not "
                  f"tested at scale `{scale}`: curves of a few training steps are noise.", ""]
    if not claims.empty:
        lines += ["## Comparisons", "",
                  f"The training run is the unit of replication ({SEED_TESTS}; `claims` in the JSON). A claimed "
                  f"direction is reproduced only when significant after Holm's correction within its family at α = "
                  f"{ALPHA}; a difference is \"none\" only when the two one-sided tests (TOST) against the margin "
                  f"({MARGIN_TEXT}) reject it; otherwise \"{NOT_DISTINGUISHABLE}\". "
                  "Each effect is the row minus the compared one, with its 95% CI. Sources: "
                  + "; ".join(f"{f}: {', '.join(dict.fromkeys(g['source']))}" for f, g in claims.groupby("family", sort=False))
                  + ".", "", *summary(claims), ""]
        for family, group in claims.groupby("family", sort=False):
            lines += claims_markdown(group, family)
    return "\n".join(lines).rstrip("\n") + "\n"


def derive(study: Study, runs: Mapping[str, Sequence[Run]], references: Mapping[tuple[str, str], Mapping],
           per_query: pd.DataFrame, datasets: Sequence[str], checked: bool, command: str, scale: str,
           seconds: Mapping[str, Mapping[str, float]]) -> Derived:
    """Tables, claims, record rows and Markdown of a study from its measurements (module docstring); ``seconds``:
    each condition's wall times over its seeds (:data:`RAW_COLUMNS`)."""
    table = build_tables(study, runs, references, datasets, checked, seconds)
    claims = comparisons(study, per_query, datasets, runs, references, frontiers=scale not in NO_FRONTIERS)
    return Derived(table, render_markdown(study, table, claims, references, datasets, command, scale), claims,
                   record_rows(study, runs, references, datasets, checked))
