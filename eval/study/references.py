"""A study's references measured: Table 1's systems (a trained one resolved to its condition's model) and the min-max
fusions of their runs, once per dataset, with the cached artifacts Table 1 and every other runner share.

A dataset named as a split (``scifact/train``) shares its collection's work folder (``work/scifact``: vectors, indexes
and embeddings are the corpus's), and its runs are keyed by its queries; elsewhere a dataset is
:meth:`eval.ablator.Ablator.dataset` (sliced at a smoke scale when it is the in-domain one).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from eval.ablator import Ablator, collection
from eval.recipe import System
from eval.study.model import Reference, Study
from kit.data import is_split
from kit.paths import dataset_slug, work_dir
from pipeline.dataset import DatasetRun
from pipeline.plan import resolve_trained
from pipeline.systems import fusion_of


def dataset_run(ablator: Ablator, name: str) -> DatasetRun:
    """The engine on one dataset of a study, ``name`` as the study spells it (a collection or a split of one)."""
    ds = ablator.dataset(name)  # sliced as the conditions' runs of the same name are
    if not is_split(name):
        return DatasetRun(ds, ablator.settings, ablator.timer, name=ds.name)
    root = work_dir() / dataset_slug(collection(name)) if ds.name == name else None  # unsliced: the corpus's folder
    return DatasetRun(ds, ablator.settings, ablator.timer, root=root, name=dataset_slug(ds.name))


def resolved(references: Sequence[Reference]) -> dict[str, System]:
    """Each reference as the engine runs it: a trained model resolved to its directory (trained now when it is not
    cached), a fusion made of its resolved members."""
    systems = {r.id: resolve_trained(r.system) for r in references if not r.members}
    for r in references:
        if r.members:
            systems[r.id] = fusion_of(r.id, [systems[m] for m in r.members], r.label)
    return systems


def measure_references(study: Study, ablator: Ablator, datasets: Sequence[str]
                       ) -> tuple[dict[tuple[str, str], dict[str, float]], pd.DataFrame]:
    """Every reference and fusion on every dataset: ``{(dataset, id): {measure: score}}`` over the study's measures
    (a sparse reference's FLOPS and Doc_Len besides, when a table shows them), and their per-query values (``dataset`` as the study names it)."""
    systems = resolved(study.references) if study.references else {}
    scores, frames = {}, []
    for name in datasets:
        run = dataset_run(ablator, name)
        for r in study.references:
            result = run.run_system(systems[r.id])
            frames.append(result.pop("_per_query").assign(dataset=name, system=r.id))
            scores[(name, r.id)] = {m: float(result[m]) for m in study.reference_measures(r)}
    return scores, (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())


def plan_lines(study: Study, datasets: Sequence[str]) -> list[str]:
    """``--dry-run``: what is measured beside the conditions; nothing is loaded."""
    if not study.references:
        return []
    singles = [r.id for r in study.references if not r.members]
    lines = [f"references on each dataset ({', '.join(datasets)}): {', '.join(singles)}"]
    lines += [f"{r.id}: pyserini.fusion.normalize of the runs of {', '.join(r.members)} (computed in seconds)"
              for r in study.references if r.members]
    return lines
