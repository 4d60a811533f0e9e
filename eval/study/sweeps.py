"""Sweeps and plots of a study file: one training field varied over several values, and figures drawn from the points.

A **sweep** (``sweeps:``) expands into one condition per (base condition, value): the condition file ``<base>`` with
``<field>: <value>`` set, its id ``<sweep id>.<base>.<value>`` (``lambda.l0-mask.0.01``), its label
``<base label> <field>=<value>``. Its points are ordinary conditions of the study: tables may list them, comparisons
may name them, and each is trained at each of its seeds and cached like any other.

A **plot** (``plots:``) draws one PNG from a sweep's points: ``x`` and ``y`` are measures of the in-domain dataset or
the swept field, one line per base condition, each point its seed mean with the swept value written beside it, the
references' scores as dashed lines when ``y`` is an effectiveness measure, and a point whose Doc_Len is under
:data:`COLLAPSE_DOC_LEN` drawn as an ``x`` (a collapsed model).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from kit import validate as V
from kit.io import atomic_write

SWEEPABLE = ("lambda_d", "threshold", "max_steps", "lr", "warmup_T", "doc_anchor", "query_anchor", "teacher_scale",
             "max_length", "docs_per_query", "batch_size")
"""The training fields a sweep may vary (each one number of the training recipe)."""
COLLAPSE_DOC_LEN = 1.0
"""A model whose documents keep fewer than this many non-zero tokens on average has collapsed (drawn as ``x``)."""


@dataclass(frozen=True)
class Sweep:
    id: str
    field: str
    values: tuple[float, ...]  # as written (an integer field keeps integers)
    bases: tuple[str, ...]  # condition files
    seeds: tuple[int, ...] = ()
    expected: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)  # point -> dataset -> ...
    labels: Mapping[str, str] = field(default_factory=dict)  # base condition -> its name in labels and legends
    tolerance: float | None = None  # None: each base condition's
    changes: Mapping[str, Any] = field(default_factory=dict)  # training fields set at every point (``set``)

    def point_id(self, base: str, value: float) -> str:
        return f"{self.id}.{base}.{value:g}"

    def points(self) -> list[tuple[str, str, float]]:
        """``(point id, base condition, value)`` for every point, base by base."""
        return [(self.point_id(b, v), b, v) for b in self.bases for v in self.values]


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    sweep: str
    x: str
    y: str
    log_x: bool = False
    datasets: tuple[str, ...] = ()  # draw y on each of these datasets (against the swept field)


def parse_sweep(recipe: V.Recipe, i: int, raw: Any, conditions: Sequence[str], expected_scores, changes) -> Sweep:
    """``sweeps[i]``: validated at its line; ``conditions``: the condition files a sweep may start from;
    ``changes``: the converter of ``set`` (training fields every point changes besides the swept one)."""
    where = f"sweeps[{i}]"
    values = V.fields(recipe, raw, {"id": V.text, "field": V.choice(SWEEPABLE), "values": V.anything,
                                    "conditions": V.string_list, "seeds": V.seeds, "expected": V.anything,
                                    "labels": V.anything, "tolerance": V.number(0), "set": changes},
                      where, required=("id", "field", "values", "conditions"))
    numbers = values["values"]
    if (not isinstance(numbers, list) or not numbers
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)):
        raise recipe.error(f"{where}.values", "expected a non-empty list of numbers")
    if len(set(numbers)) != len(numbers):
        raise recipe.error(f"{where}.values", "a value is listed twice")
    for j, base in enumerate(values["conditions"]):
        if base not in conditions:
            raise recipe.error(f"{where}.conditions[{j}]", f"{base!r} is not a condition file",
                               fix=f"one of {', '.join(conditions)}")
    labels = values.get("labels") or {}
    if not isinstance(labels, dict) or not set(labels) <= set(values["conditions"]):
        raise recipe.error(f"{where}.labels", "expected a mapping of the sweep's conditions -> their names")
    sweep = Sweep(values["id"], values["field"], tuple(numbers), tuple(values["conditions"]),
                  values.get("seeds", ()), {}, {str(k): str(v) for k, v in labels.items()}, values.get("tolerance"),
                  values.get("set", {}))
    if sweep.field in sweep.changes:
        raise recipe.error(f"{where}.set", f"{sweep.field} is the swept field", fix="leave it out of set")
    raw_expected = values.get("expected") or {}
    if not isinstance(raw_expected, dict):
        raise recipe.error(f"{where}.expected", "expected a mapping of point id -> {dataset: {measure: value}}")
    ids = {p for p, _, _ in sweep.points()}
    expected = {}
    for point, scores in raw_expected.items():
        if point not in ids:
            raise recipe.error(f"{where}.expected.{point}", f"{point!r} is not a point of this sweep",
                               fix=f"one of {', '.join(sorted(ids))}")
        try:
            expected[point] = expected_scores(scores)
        except ValueError as err:
            raise recipe.error(f"{where}.expected.{point}", str(err)) from None
    return replace(sweep, expected=expected)


def parse_plot(recipe: V.Recipe, i: int, raw: Any, sweeps: Mapping[str, Sweep], measures: Sequence[str],
               datasets: Sequence[str] = (), effectiveness: Sequence[str] = ()) -> Plot:
    """``plots[i]``: its sweep declared, its axes measures of the in-domain dataset or the swept field; with
    ``datasets`` (of the study), ``y`` an effectiveness measure drawn on each of them against the swept field."""
    where = f"plots[{i}]"
    values = V.fields(recipe, raw, {"id": V.text, "title": V.text, "sweep": V.choice(list(sweeps)), "x": V.text,
                                    "y": V.text, "log_x": V.flag, "datasets": V.string_list}, where,
                      required=("id", "sweep", "x", "y"))
    field = sweeps[values["sweep"]].field
    axes = (*measures, field)
    for axis in ("x", "y"):
        if values[axis] not in axes:
            raise recipe.error(f"{where}.{axis}", f"{values[axis]!r} is neither a measure nor the swept field",
                               fix=f"one of {', '.join(axes)}")
    on = tuple(values.get("datasets", ()))
    for j, d in enumerate(on):
        if d not in datasets:
            raise recipe.error(f"{where}.datasets[{j}]", f"{d!r} is not one of the study's datasets",
                               fix=f"one of {', '.join(datasets)}")
    if on and (values["x"] != field or values["y"] not in effectiveness):
        raise recipe.error(f"{where}.datasets", "a plot over datasets draws an effectiveness measure (y) against the "
                           "swept field (x)", fix=f"x: {field}, y: one of {', '.join(effectiveness)}")
    return Plot(values["id"], values.get("title", values["id"]), values["sweep"], values["x"], values["y"],
                values.get("log_x", False), on)


def points_frame(sweep: Sweep, means: Mapping[str, Mapping[str, float]], labels: Mapping[str, str] | None = None,
                 dataset: str = "") -> pd.DataFrame:
    """One row per point of ``sweep`` that ``means`` holds (point -> measure -> seed mean, and ``<measure> sd`` ->
    its standard deviation over the seeds), with its swept value and its ``series``: its base condition's label
    (``labels``), and ``dataset`` when given."""
    name = (labels or {}).get
    return pd.DataFrame([{"point": p, "series": f"{name(b, b)} {dataset}".strip(), sweep.field: v, **means[p]}
                         for p, b, v in sweep.points() if p in means])


def draw(plot: Plot, sweep: Sweep, points: pd.DataFrame, out: Path,
         references: Mapping[str, float] | None = None) -> Path:
    """``<out>/<plot id>.png``: one line per ``series`` of ``points`` (:func:`points_frame`); ``references``:
    label -> score, dashed lines on an effectiveness axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for series, group in points.groupby("series", sort=False):
        group = group.sort_values(plot.x)
        line = ax.plot(group[plot.x], group[plot.y], "-", label=series)[0]
        spread = {axis: group[f"{m} sd"] for axis, m in (("xerr", plot.x), ("yerr", plot.y)) if f"{m} sd" in group}
        if spread:  # ± one standard deviation over the point's training seeds
            ax.errorbar(group[plot.x], group[plot.y], fmt="none", ecolor=line.get_color(), elinewidth=0.8,
                        capsize=2, **spread)
        for xv, yv, dl, value in zip(group[plot.x], group[plot.y], group["Doc_Len"], group[sweep.field]):
            marker = "x" if dl < COLLAPSE_DOC_LEN else "o"
            ax.plot([xv], [yv], marker=marker, color=line.get_color(), markersize=7 if marker == "x" else 4)
            if plot.x != sweep.field:
                ax.annotate(f"{value:g}", (xv, yv), textcoords="offset points", xytext=(3, 3), fontsize=6,
                            color=line.get_color())
    for (ref, value), style in zip((references or {}).items(), ("--", ":", "-.", (0, (1, 3)))):
        ax.axhline(value, linestyle=style, color="0.35", linewidth=1, label=f"{ref} {value:.4f}")
    if plot.log_x:
        ax.set_xscale("log")
    if plot.x == sweep.field:  # the swept values themselves as the ticks, written as in the study file
        from matplotlib.ticker import NullLocator

        ax.set_xticks([float(v) for v in sweep.values], [f"{v:g}" for v in sweep.values])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(plot.x)
    ax.set_ylabel(plot.y)
    seeds = (f"mean ± sd over {len(sweep.seeds)} training seeds" if len(sweep.seeds) > 1
             else f"{len(sweep.seeds)} training seed" if sweep.seeds else "seed means")
    ax.set_title(f"{plot.title}\n{seeds} per point; x: a collapsed model (Doc_Len < {COLLAPSE_DOC_LEN:g})", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / f"{plot.id}.png"
    with atomic_write(path, mode="wb") as fh:
        fig.savefig(fh, format="png", dpi=120)
    plt.close(fig)
    return path


def draw_plots(study, runs: Mapping[str, Sequence], references: Mapping[tuple[str, str], Mapping[str, float]],
               folder: Path) -> list[Path]:
    """Every plot of ``study`` (:class:`eval.study.spec.Study`) as ``<folder>/<plot id>.png``, from the seed means of
    the points ``runs`` holds: on the in-domain dataset, or on each of a plot's ``datasets`` (each point's Doc_Len,
    which marks a collapsed model, is the in-domain one); the single references' score of ``y`` as reference lines."""
    home = study.in_domain
    sweeps = {s.id: s for s in study.sweeps}

    def means(d: str, points) -> dict:
        """point -> measure -> seed mean, and ``<measure> sd`` -> the seeds' standard deviation (two seeds or more)."""
        out = {}
        for p, _, _ in points:
            if runs.get(p):
                values = {m: [r.scores[d][m] for r in runs[p]] for m in runs[p][0].scores[d]}
                out[p] = {m: sum(v) / len(v) for m, v in values.items()}
                out[p].update({f"{m} sd": statistics.stdev(v) for m, v in values.items() if len(v) > 1})
        return out

    paths = []
    for plot in study.plots:
        sweep = sweeps[plot.sweep]
        own = means(home, sweep.points())
        if not own:
            continue
        frames, lines = [], {}
        for d in plot.datasets or (home,):
            on = {p: {**v, "Doc_Len": own[p]["Doc_Len"]} for p, v in means(d, sweep.points()).items()}
            frames.append(points_frame(sweep, on, sweep.labels, d if plot.datasets else ""))
            lines.update({f"{r.label} {d}".strip() if plot.datasets else r.label: references[(d, r.id)][plot.y]
                          for r in study.references if not r.members and plot.y in references.get((d, r.id), {})})
        paths.append(draw(plot, sweep, pd.concat(frames, ignore_index=True), folder, lines))
    return paths
