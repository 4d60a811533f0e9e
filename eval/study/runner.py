"""Run a study: each condition at each of its seeds (trained once and cached, so a run resumes per condition-seed),
its references and fusions on every dataset (:mod:`eval.study.references`), then one record (kind ``study``)
derived by :func:`eval.study.derive.derive`.

The measuring is :class:`eval.ablator.Ablator`'s (train, encode, index, search, score); the study decides what is
measured and how it is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from eval.ablator import Ablator, Scale, seed_system
from eval.provenance import provenance
from eval.results import json_records, report_checks, seal, where_written, write_results
from eval.claims import counts
from eval.study.derive import RAW_COLUMNS, Run, derive
from eval.study.references import measure_references, plan_lines
from eval.study.model import ALL_DATASETS, Study, StudyCondition
from eval.study.systems import measure_systems
from eval.study.sweeps import draw_plots
from eval.study.training import training_measures
from kit.errors import InputError
from kit.paths import repo_relative
from train.cache import read_seconds


def datasets_at(study: Study, scale: Scale) -> list[str]:
    """The datasets a scale evaluates on, in the study's order: every one (a smoke scale: the in-domain one only)."""
    if scale.zero_shot is None:
        return list(study.datasets)
    return [study.in_domain, *(d for d in scale.zero_shot if d != study.in_domain)]


def jobs(study: Study, scale: Scale, seeds: tuple[int, ...] | None) -> list[tuple[StudyCondition, int]]:
    """Every (condition, seed) the study trains: ``--seeds``, else the scale's, else each condition's own; of a sweep,
    the points the scale runs (:meth:`eval.ablator.Scale.runs_point`)."""
    return [(c, seed) for c in study.conditions.values() if scale.runs_point(c.swept)
            for seed in c.run_seeds(seeds or scale.seeds)]


def plan(study: Study, ablator: Ablator, seeds: tuple[int, ...] | None) -> None:
    """``--dry-run``: each model to train or reuse and where; nothing is loaded or downloaded."""
    datasets = datasets_at(study, ablator.scale)
    todo = jobs(study, ablator.scale, seeds)
    for i, (c, seed) in enumerate(todo, 1):
        where, state = ablator.model_state(c.base, seed, **c.changes)
        print(f"[{i}/{len(todo)}] {c.id} seed {seed}: model {where} [{state}]; evaluated on {', '.join(datasets)}")
    for line in plan_lines(study, datasets):
        print(line)


def measure(study: Study, ablator: Ablator, seeds: tuple[int, ...] | None
            ) -> tuple[dict[str, list[Run]], pd.DataFrame, dict[str, dict[str, float]]]:
    """Each condition's runs, their per-item values (rows named by :func:`eval.ablator.seed_system`) and wall times."""
    datasets = datasets_at(study, ablator.scale)
    todo = jobs(study, ablator.scale, seeds)
    if study.sparsity == ALL_DATASETS:  # each model a system with its own query side, documents whole everywhere
        return measure_systems(study, ablator, todo, datasets)
    runs: dict[str, list[Run]] = {c.id: [] for c, _ in todo}
    frames, times = [], {c.id: {k: 0.0 for k in RAW_COLUMNS} for c, _ in todo}
    for i, (c, seed) in enumerate(tqdm(todo, desc=f"{study.id}: models", unit="model", disable=not todo), 1):
        tqdm.write(f"[{i}/{len(todo)}] {c.id} seed {seed}: train (cached) and evaluate on {', '.join(datasets)}")
        m = ablator.measure(c.base, seed, datasets, **c.changes)
        scores = {d: dict(s) for d, s in m.scores.items()}
        if study.training:  # one value per model, from its training log, on the in-domain dataset's row
            terms = training_measures(m.model)
            absent = [k for k in study.training if k not in terms]
            if absent:
                raise InputError(m.model / "log_history.json", f"logs no {absent[0]} (training: of {study.path})",
                                 fix="leave it out of the study's training measures, or retrain with it logged")
            scores[study.in_domain].update({k: terms[k] for k in study.training})
        runs[c.id].append(Run(c.id, seed, scores, str(m.model)))
        frames.append(m.per_query.assign(system=seed_system(c.id, seed), condition=c.id))
        spent = read_seconds(m.model)
        times[c.id]["train_s"] += spent.get("train", 0.0)
        times[c.id]["eval_s"] += sum(v for k, v in spent.items() if k.startswith("eval_"))
    seconds = {c: {k: round(v, 1) for k, v in t.items()} for c, t in times.items()}
    per_seed = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*PER_QUERY, "condition"])
    return runs, per_seed, seconds


PER_QUERY = ["dataset", "system", "query_id", "measure", "value"]


def seed_means(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Each condition's per-item values averaged over its seeds (what the comparisons test), named by the condition."""
    means = per_seed.groupby(["dataset", "condition", "query_id", "measure"], as_index=False, sort=False)["value"].mean()
    return means.rename(columns={"condition": "system"})


@dataclass
class Measurements:
    """What a study's tables and comparisons are derived from."""

    runs: dict[str, list[Run]]
    means: pd.DataFrame        # per-item seed means of each condition
    seeds: pd.DataFrame        # per-item values of each seed's model (Doc_Len, one value per document: means only)
    seconds: dict[str, dict[str, float]]
    references: dict[tuple[str, str], dict]
    reference_pq: pd.DataFrame
    datasets: list[str]
    scale: str
    checked: bool
    measured_by: str | None = None  # --replay: the command that measured them
    stage_seconds: dict[str, float] | None = None  # each stage's wall time in the measuring run


def measured(study: Study, ablator: Ablator, seeds: tuple[int, ...] | None) -> Measurements:
    runs, per_seed, seconds = measure(study, ablator, seeds)
    datasets = datasets_at(study, ablator.scale)
    references, reference_pq = measure_references(study, ablator, datasets)
    return Measurements(runs, seed_means(per_seed), per_seed[per_seed["measure"] != "Doc_Len"].drop(columns="condition"),
                        seconds, references, reference_pq, datasets, ablator.scale.name,
                        checked_at(study, ablator.scale, seeds), stage_seconds=ablator.timer.rounded())


def checked_at(study: Study, scale: Scale, seeds: tuple[int, ...] | None) -> bool:
    """Whether the study's expectations apply to a run: at the scale they were measured at, and with each condition's
    declared seeds (an expectation is a mean over them: ``--seeds 42`` alone is measured, not checked, and it printed
    FAIL against the three-seed means)."""
    return scale.checked and all(c.run_seeds(seeds) == c.run_seeds() for c in study.conditions.values())


def _concat(*frames: pd.DataFrame) -> pd.DataFrame:
    """Per-item frames one after the other (an empty one, e.g. the seeds of a study of references, left out)."""
    return pd.concat([f for f in frames if not f.empty] or [pd.DataFrame(columns=PER_QUERY)], ignore_index=True)


def run_study(study: Study, m: Measurements, out: Path, command: str, timer=None, meta: dict | None = None) -> int:
    """Derive and write ``<out>/<study id>.{csv,md,json}`` and its per-query file; 1 when a condition misses its
    expectation. ``meta``: what the record names besides (:func:`eval.study.regression.configure`)."""
    started = time.perf_counter()
    prov = provenance(command=command.split())
    per_query = _concat(m.means, m.seeds, m.reference_pq)
    runs, datasets, checked = m.runs, m.datasets, m.checked
    d = derive(study, runs, m.references, per_query, datasets, checked, command, m.scale,
               m.seconds)
    write_results(out, study.id, d.table, d.markdown, per_query, {
        "kind": "study", "study": repo_relative(study.path), "measures": list(study.measures), **prov, "recipe": None,
        **(meta or {}), **({"measured_by": m.measured_by} if m.measured_by else {}),
        "rows": d.rows, "scale": m.scale, "checked": checked, "datasets": datasets,
        "systems": [*study.conditions, *(r.id for r in study.references)],
        "seeds": {c: [r.seed for r in rs] for c, rs in runs.items()},
        "models": {seed_system(c, r.seed): r.model for c, rs in runs.items() for r in rs},
        "claims": json_records(d.claims), "claim_counts": counts(d.claims),
        "total_seconds": round(time.perf_counter() - started, 1),
        **({"stage_seconds": m.stage_seconds} if m.stage_seconds else {})}, raw=RAW_COLUMNS)
    print(where_written(out, study.id))
    if study.plots:
        drawn = draw_plots(study, runs, m.references, out / study.id)
        seal(drawn)  # raw files, listed in results/SHA256SUMS when written there
        print(f"drew {', '.join(repo_relative(p) for p in drawn)}")
    if timer:
        print(timer.line())
    return 1 if report_checks(d.table, study.id) else 0


def list_conditions(study: Study, scale: Scale, seeds: tuple[int, ...] | None) -> None:
    """``--list-conditions``: each condition, what it changes, its seeds and expectations; each reference and fusion."""
    for c in study.conditions.values():
        expected = "; ".join(f"{d} " + ", ".join(f"{m} {v:g}" for m, v in e.items()) for d, e in c.expected.items())
        changes = f" with {dict(c.changes)}" if c.changes else ""
        print(f"{c.id}: {c.base.id}{changes}; seeds {', '.join(map(str, c.run_seeds(seeds or scale.seeds)))}; "
              f"expected {expected or 'none'} (± {c.tolerance:g})")
    for r in study.references:
        expected = "; ".join(f"{d} " + ", ".join(f"{m} {v:g}" for m, v in e.items()) for d, e in r.expected.items())
        what = f"fusion of {', '.join(r.members)}" if r.members else f"{r.system.type} system of Table 1"
        print(f"{r.id}: {what}; one run per dataset; expected {expected or 'none'} (± {r.tolerance:g})")
