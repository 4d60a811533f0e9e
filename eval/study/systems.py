"""A study of ``sparsity: all-datasets``: each condition-seed's model measured as a system of its own, with the query
side the condition names (``query: {encoder, idf, table}``; default the one it was trained with,
:func:`eval.ablator.query_side`).

Its documents are encoded whole on every dataset in the dataset's shared work folder (``work/<dataset>``, as Table
1's systems are), and FLOPS, Doc_Len and Query_Len are measured on each; FLOPS also per query, what a paired test of
FLOPS compares. The model is the one :class:`eval.ablator.Ablator` trains and caches for the condition-seed
(``work/ablation/<condition>/<key>/model``), so a study of this kind shares its models with every other study.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import pandas as pd
from tqdm.auto import tqdm

from eval.ablator import Ablator, flops_items, query_side, seed_system
from eval.recipe import DocSpec, System
from eval.study.derive import RAW_COLUMNS, Run
from eval.study.references import dataset_run
from eval.study.model import SYSTEM_SPARSITY, Study, StudyCondition
from train.cache import read_seconds, train_cached


def system_of(c: StudyCondition, ablator: Ablator, seed: int) -> System:
    """The condition's model at ``seed`` (trained now when it is not cached) as a sparse system with its query side,
    named by the condition (its artifacts are keyed by the model's content besides)."""
    recipe = ablator.recipe(c.base, seed, **c.changes)
    with ablator.timer("train (mine data, train; cached)"):
        model = train_cached(c.base.id, recipe, ablator.root)
    return System(id=c.id, label=c.label, type="sparse",
                  doc=DocSpec(model=str(model), activation=recipe.activation), query=c.query or query_side(recipe))


def measure_systems(study: Study, ablator: Ablator, todo: Sequence[tuple[StudyCondition, int]],
                    datasets: Sequence[str]) -> tuple[dict[str, list[Run]], pd.DataFrame, dict[str, dict[str, float]]]:
    """Each (condition, seed) of ``todo`` on every dataset: its runs, per-item values (rows named by
    :func:`eval.ablator.seed_system`, with ``condition``) and wall times (training, and evaluation here)."""
    runs: dict[str, list[Run]] = {c.id: [] for c, _ in todo}
    times = {c.id: {k: 0.0 for k in RAW_COLUMNS} for c, _ in todo}
    frames = []
    engines = {name: dataset_run(ablator, name) for name in datasets}
    for i, (c, seed) in enumerate(tqdm(todo, desc=f"{study.id}: models", unit="model", disable=not todo), 1):
        tqdm.write(f"[{i}/{len(todo)}] {c.id} seed {seed}: train (cached) and evaluate on {', '.join(datasets)}")
        system = system_of(c, ablator, seed)
        started, scores = time.perf_counter(), {}
        for name, run in engines.items():
            run.encode_docs([system.doc])
            result = run.run_system(system)
            name_of = {"dataset": name, "system": seed_system(c.id, seed), "condition": c.id}
            frames += [result.pop("_per_query").assign(**name_of), flops_items(run, system).assign(**name_of)]
            scores[name] = {m: float(result[m]) for m in (*study.measures, *SYSTEM_SPARSITY)}
        model = Path(system.doc.model)
        runs[c.id].append(Run(c.id, seed, scores, str(model)))
        times[c.id]["train_s"] += read_seconds(model).get("train", 0.0)
        times[c.id]["eval_s"] += time.perf_counter() - started
    seconds = {c: {k: round(v, 1) for k, v in t.items()} for c, t in times.items()}
    return runs, pd.concat(frames, ignore_index=True), seconds
