"""``--replay RECORD``: a study's measurements read back from a stored record of the same conditions and references,
so its tables, comparisons and plots are re-derived without training (e.g. after a comparison is added to the study
file, or to re-express a record written by an earlier runner).

Rows are read by (dataset, system). Several records may be replayed together: the first one's rows and per-item
values come first, and a later one adds the rows the earlier ones lack (e.g. a reference measured apart). Older
layouts are read as what they are:

- a dataset named by its work-folder slug (``scifact__train``) is read back as the study names it (``scifact/train``);
- a record that keeps its models' training measures in ``loss_terms`` (``{<condition>@seed<n>: {term: value}}``, the
  regime's) has them read into its seed rows;
- a record of single-seed conditions without a ``seeds`` map names each condition's one run by the condition's id
  (the figure points' record): the run is read as the condition's one declared seed, and its wall times from the
  model's ``timing.json`` columns (``train``, ``eval_<dataset>``), summed as the runner sums them;
- a record whose ``seeds`` is one list (Li-LSR's former record) ran every condition at those seeds; a record with no
  wall-time columns has none (``train_s`` and ``eval_s`` are left empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from eval.ablator import seed_system
from eval.schema import load_results
from eval.study.derive import RAW_COLUMNS, runs_of
from eval.study.runner import Measurements
from eval.study.model import Study
from kit.errors import InputError
from kit.paths import dataset_slug

FIX = "replay a record of the same study (written by python -m eval.study, or the runner it replaced)"


def _single_seed_runs(study: Study, record: Path, systems: set[str]) -> dict[str, list[int]]:
    """The seeds of a record without a ``seeds`` map: each condition's own single seed, its run under its id."""
    seeds = {c.id: list(c.run_seeds()) for c in study.conditions.values()}
    several = [c for c, s in seeds.items() if len(s) != 1]
    if several or not set(seeds) <= systems:
        raise InputError(record, "names no seeds (a record of single-seed conditions by their ids), but "
                         + (f"{several[0]} has {len(seeds[several[0]])} seeds" if several
                            else f"has no run of {sorted(set(seeds) - systems)[0]}"), fix=FIX)
    return seeds


def _wall_times(conditions, table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Each of ``conditions``' ``train_s`` and ``eval_s`` from the record's table: its own columns, or a model's
    ``timing.json`` columns (``train``, ``eval_<dataset>``) as the runner sums them; none when it has neither."""
    timing = table.drop_duplicates("system").set_index("system")
    if "train" not in timing.columns and not set(RAW_COLUMNS) & set(timing.columns):
        return {}
    if set(RAW_COLUMNS) <= set(timing.columns):
        return {c: {k: float(timing.loc[c, k]) for k in RAW_COLUMNS} for c in conditions}
    evals = [k for k in timing.columns if k.startswith("eval_")]
    return {c: {"train_s": round(float(timing.loc[c, "train"]), 1),
                "eval_s": round(float(timing.loc[c, evals].fillna(0.0).sum()), 1)} for c in conditions}


def _beside(res, records: Sequence[Path]):
    """``res`` (a loaded record) with the rows and per-item values of ``records`` that it lacks, by (dataset, system),
    and the commands that measured them all."""
    rows, pq, commands = list(res.rows), [res.per_query], [res.meta.get("measured_by") or res.meta["command"]]
    for record in records:
        more = load_results(record)
        if more.per_query is None:
            raise InputError(record, "has no per-query values to re-derive the comparisons from", fix=FIX)
        have = {(r["dataset"], r["system"]) for r in rows}
        added = [r for r in more.rows if (r["dataset"], r["system"]) not in have]
        keys = {(r["dataset"], r["system"]) for r in added}
        rows += added
        pq.append(more.per_query[[k in keys for k in zip(more.per_query["dataset"], more.per_query["system"])]])
        commands.append(more.meta.get("measured_by") or more.meta["command"])
    return rows, pd.concat(pq, ignore_index=True), "; ".join(commands)


def replayed(study: Study, record: Path, beside: Sequence[Path] = (), measure_missing=None) -> Measurements:
    """The measurements of ``record`` and of the records ``beside`` it (module docstring); InputError when they lack
    a row, a measure or a seed. ``measure_missing(references, datasets)``, when given, measures the references none of
    the records holds (:func:`eval.study.references.measure_references` on them: no training, cached runs)."""
    res = load_results(record)
    if res.per_query is None:
        raise InputError(record, "has no per-query values to re-derive the comparisons from", fix=FIX)
    rows, pq, measured_by = _beside(res, beside)
    have = {(r["dataset"], r["system"]) for r in rows}
    absent = [r for r in study.references if any((d, r.id) not in have for d in study.datasets)]
    if absent and measure_missing is not None:
        scores, more = measure_missing(absent, list(study.datasets))
        rows = rows + [{"dataset": d, "system": s, "metrics": m} for (d, s), m in scores.items() if (d, s) not in have]
        pq = pd.concat([pq, more], ignore_index=True)
        measured_by += f"; references {', '.join(r.id for r in absent)} measured by the replay itself"
    seeds_of = res.meta.get("seeds")
    if isinstance(seeds_of, list) and seeds_of:  # every condition at the record's seeds
        seeds_of = {c: list(seeds_of) for c in study.conditions}
    by_id = not isinstance(seeds_of, dict)
    if by_id:
        seeds_of = _single_seed_runs(study, record, {r["system"] for r in rows}) if study.conditions else {}
    missing = [c for c, declared in study.conditions.items() if c not in seeds_of and not declared.swept]
    if missing:
        raise InputError(record, f"has no runs of {', '.join(missing)}", fix=FIX)
    slugs = {dataset_slug(d): d for d in study.datasets}
    renamed = {d: slugs[d] for d in res.meta["datasets"] if d not in study.datasets and d in slugs}
    metrics = {(renamed.get(r["dataset"], r["dataset"]), r["system"]): r["metrics"] for r in rows}
    if renamed:
        pq = pq.assign(dataset=pq["dataset"].replace(renamed))
    if by_id:  # each condition's one run, under its seed's name too
        alias = {c: seed_system(c, s[0]) for c, s in seeds_of.items()}
        metrics.update({(d, alias[c]): v for (d, c), v in list(metrics.items()) if c in alias})
        own = pq[pq["system"].isin(list(alias)) & (pq["measure"] != "Doc_Len")]
        pq = pd.concat([pq, own.assign(system=own["system"].map(alias))], ignore_index=True)
    logged = res.meta.get("loss_terms") or {}
    for name, terms in logged.items():  # the regime's former record keeps its training measures beside the rows
        key = (study.in_domain, name)
        if key in metrics:
            metrics[key] = {**metrics[key], **{k: terms[k] for k in study.training if k in terms}}
    datasets = [renamed.get(d, d) for d in res.meta["datasets"]]
    try:
        runs, references = runs_of(study, metrics, seeds_of, datasets, res.meta.get("models") or {})
    except KeyError as exc:
        raise InputError(record, f"has no row or measure {exc.args[0]}", fix=FIX) from None
    seconds = _wall_times(list(runs), pd.read_csv(record.with_suffix(".csv"))) if runs else {}
    seed_names = {seed_system(c, r.seed) for c, rs in runs.items() for r in rs}
    reference_pq = pq[pq["system"].isin([r.id for r in study.references]) & pq["measure"].isin(list(study.measures))]
    # checked: a record naming where its expectations live, or without a scale (measured at full scale)
    meta = res.meta
    checked = bool(meta.get("conditions") or meta.get("checked") or meta.get("recipe")) or not {"scale", "checked"} & set(meta)
    return Measurements(runs, pq[pq["system"].isin(list(study.conditions))], pq[pq["system"].isin(seed_names)],
                        seconds, references, reference_pq, datasets, res.meta.get("scale") or "full", checked,
                        measured_by, meta.get("stage_seconds"))
