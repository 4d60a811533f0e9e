"""What a study file must hold together, checked once it is read: every name a table or comparison uses is declared,
every measure is one the runner measures there, and every comparison is listed once (:func:`cross_check`); no two
stored studies test the same comparison of the same models (:func:`shared_comparisons`)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from kit import validate as V
from eval.study.model import ALL_DATASETS, SYSTEM_SPARSITY, Study


def cross_check(recipe: V.Recipe, study: Study) -> None:
    """Every name a table or comparison uses is declared, and every measure is one the runner measures there."""
    if study.id != Path(recipe.path).stem:
        raise recipe.error("study", f"{study.id!r} differs from the file name {Path(recipe.path).stem!r}",
                           fix="make them equal")
    for i, c in enumerate(study.conditions.values()):
        if c.query is not None and study.sparsity != ALL_DATASETS:
            raise recipe.error(f"conditions[{i}].query", "a condition's own query side is measured with its documents "
                               "encoded whole on every dataset", fix=f"set sparsity: {ALL_DATASETS} in the study")
        for dataset, scores in c.expected.items():
            if dataset not in study.datasets:
                raise recipe.error(f"conditions[{i}].expected", f"{dataset!r} is not one of the study's datasets")
            V.measured_only(recipe, f"conditions[{i}].expected.{dataset}", scores, study.measured(dataset),
                            f"this study on {dataset}")
    for i, r in enumerate(study.references):
        where = f"references[{i}]" if not r.members else f"fusions.{r.id}"
        if r.id in study.conditions:
            raise recipe.error(where, f"{r.id!r} is also a condition of the study", fix="give each row its own id")
        for dataset, scores in r.expected.items():
            if dataset not in study.datasets:
                raise recipe.error(f"{where}.expected", f"{dataset!r} is not one of the study's datasets",
                                   fix=f"one of {', '.join(study.datasets)}")
            V.measured_only(recipe, f"{where}.expected.{dataset}", scores, study.reference_measures(r),
                            f"the {r.system.type} reference {r.id}")
    for i, t in enumerate(study.tables):
        for j, row in enumerate(t.rows):
            if row not in study.known():
                raise recipe.error(f"tables[{i}].rows[{j}]", f"{row!r} is not a condition or reference of the study",
                                   fix=f"one of {', '.join(sorted(study.known()))}")
        for dataset, measures in t.columns.items():
            V.measured_only(recipe, f"tables[{i}].columns.{dataset}", dict.fromkeys(measures, 0.0),
                            study.measured(dataset), f"this study on {dataset}")
    seen: dict[tuple, str] = {}
    for i, c in enumerate(study.comparisons):
        where = f"comparisons[{i}]"
        (_frontier if c.at is not None else _sides)(recipe, study, c, where)
        for dataset in c.datasets:
            key = (frozenset((c.condition, c.versus)), c.measure, dataset, c.at)
            if key in seen:
                raise recipe.error(where, f"{c.condition} against {c.versus} on {c.measure} ({dataset}) is already "
                                   f"{seen[key]}: one comparison, one test, one verdict",
                                   fix="list each comparison once, in one family")
            seen[key] = f"comparisons[{i}] (family {c.family!r})"


def _sides(recipe: V.Recipe, study: Study, c, where: str) -> None:
    """A comparison of two models names declared conditions or references and a measure the runner takes there."""
    if c.condition not in study.known():
        raise recipe.error(f"{where}.condition", f"{c.condition!r} is not a condition or reference of the study")
    if c.versus not in study.known() or c.versus == c.condition:
        raise recipe.error(f"{where}.versus", f"{c.versus!r} is not another condition or a reference of the study")
    for dataset in c.datasets:
        if dataset not in study.datasets or c.measure not in study.measured(dataset):
            raise recipe.error(f"{where}.measure", f"{c.measure} is not measured on {dataset} in this study",
                               fix=f"on {dataset}: {', '.join(study.measured(dataset)) if dataset in study.datasets else 'not a dataset of the study'}")
        if c.measure in study.training:
            raise recipe.error(f"{where}.measure", f"{c.measure} is a training log's value, not a measure of "
                               "retrieval", fix="compare nDCG@10, FLOPS or Doc_Len")
        if c.measure in SYSTEM_SPARSITY and not {c.condition, c.versus} <= set(study.conditions):
            raise recipe.error(f"{where}.versus", f"a reference has no {c.measure}", fix="compare with a condition")


def _frontier(recipe: V.Recipe, study: Study, c, where: str) -> None:
    """A frontier comparison names two curves of the study, an effectiveness measure, and the in-domain dataset (where
    its ``at`` measure is measured)."""
    curves = study.curves()
    for side in ("condition", "versus"):
        name = getattr(c, side)
        if name not in curves:
            raise recipe.error(f"{where}.{side}", f"{name!r} is not a curve of the study (with at: {c.at})",
                               fix=f"one of {', '.join(curves) or '<sweep id>.<condition> (declare a sweep)'}")
    if c.condition == c.versus:
        raise recipe.error(f"{where}.versus", "a curve compared with itself", fix="name another curve")
    if c.measure in SYSTEM_SPARSITY or c.measure not in study.measures:
        raise recipe.error(f"{where}.measure", f"{c.measure} at equal {c.at} is not an effectiveness measure of the "
                           "study", fix=f"one of {', '.join(study.measures)}")
    if tuple(c.datasets) != (study.in_domain,):
        raise recipe.error(f"{where}.datasets", f"{c.at} is measured on {study.in_domain} only",
                           fix=f"datasets: [{study.in_domain}]")


def _identity(study: Study, name: str) -> tuple:
    """What a comparison side is, whatever a study calls it: a condition's base recipe, changes and seeds; a
    reference's system id."""
    c = study.conditions.get(name)
    if c is None:
        return ("reference", name)
    return ("model", c.base.id, tuple(sorted((k, repr(v)) for k, v in c.changes.items())), c.run_seeds())


def shared_comparisons(studies: Iterable[Study]) -> list[str]:
    """Each comparison of the same two models (or references) on the same measure and dataset that two studies both
    test, as one line: the same data must get one verdict."""
    first: dict[tuple, str] = {}
    found = []
    for study in studies:
        for c in study.comparisons:
            for dataset in c.datasets:
                key = (frozenset((_identity(study, c.condition), _identity(study, c.versus))), c.measure, dataset,
                       c.at)
                here = f"{study.id}: {c.condition} against {c.versus} on {c.measure} ({dataset})"
                if key in first and not first[key].startswith(f"{study.id}:"):
                    found.append(f"{here} is also tested by {first[key]}")
                first.setdefault(key, here)
    return found
