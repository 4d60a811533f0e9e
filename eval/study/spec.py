"""The study file: conditions, sweeps, references, tables, comparisons and plots (``docs/studies.md`` documents
every key).

A **condition** is a trained model declared once: a bare id names ``recipes/conditions/<id>.yaml`` (training recipe,
changed fields, seeds, expected seed means); a mapping derives a new condition from one (``from``) with more training
fields changed (``set``), and may give its own ``label``, ``seeds``, ``expected`` and ``tolerance``. A condition's
seeds are data (the condition's, or the base condition's), overridden only by ``--seeds``.

A **table** lists condition ids as rows and, per dataset, the measures it shows; the paper's numbers are an optional
annotation (``paper``: the number of the paper table transcribed in ``results/paper/``), never the source of the rows. A **comparison**
is one claimed direction (``higher``, ``lower``, ``no difference``) of a condition against another condition or a
reference, on one measure and some datasets, within a Holm family, with its ``source`` (the paper's table,
figure or sentence, or ``ours``); each comparison is listed once (:mod:`eval.study.consistency`). With ``at: FLOPS``
(or ``Doc_Len``) it compares two sweeps' curves (``<sweep id>.<condition>``) at equal values of that measure
(:mod:`eval.study.frontier`).

A **sweep** (:mod:`eval.study.sweeps`) declares one condition per (condition file, value of one training field),
``<sweep id>.<condition>.<value>``; a **plot** draws a sweep's points.

A **reference** is a system of Table 1's recipe measured once per dataset (no seeds): BM25, a dense model, a sparse
one (a trained one resolved to its condition's model when measured); a **fusion** is the min-max fusion of some
references' runs (``pipeline.systems.Fusion``). Both may carry ``expected`` scores with a ``tolerance``, and both may be
table rows and comparison sides. A dataset may name a split (``scifact/train``): it shares its collection's work
folder, and its runs are keyed by its queries.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from eval.recipe import load_recipe, query_spec
from kit import validate as V
from kit.errors import InputError
from kit.paths import REPO
from eval.study.consistency import cross_check
from eval.study.model import (ALL_DATASETS, CLAIMS, IN_DOMAIN, REFERENCE_TOLERANCE, SPARSITY, Comparison, Reference,
                              Study, StudyCondition, Table)
from eval.study.sweeps import Sweep, parse_plot, parse_sweep
from eval.study.training import TRAINING_MEASURES
from pipeline.systems import fusion_of
from train.conditions import _changes, condition_ids, expected_scores, load_condition

STUDIES = REPO / "recipes" / "studies"
REFERENCE_RECIPE = REPO / "recipes" / "table1.yaml"
"""Where reference systems (``references: [bm25-flat, ...]``) are declared: Table 1's systems, one definition each."""


def _condition(recipe: V.Recipe, i: int, raw: Any) -> StudyCondition:
    where = f"conditions[{i}]"
    if isinstance(raw, str):
        raw = {"id": raw, "from": raw}
    values = V.fields(recipe, raw, {"id": V.text, "from": V.choice(condition_ids()), "label": V.text, "set": _changes,
                                    "seeds": V.seeds, "expected": expected_scores, "tolerance": V.number(0),
                                    "query": V.anything},
                      where, required=("id", "from"))
    base = load_condition(values["from"])
    changes = values.get("set", {})
    # the condition file's expectations are of its own model: a derived condition (set) states its own
    inherited = base.expected if not changes else {}
    return StudyCondition(id=values["id"], label=values.get("label", values["id"]), base=base, changes=changes,
                          seeds=values.get("seeds", base.seeds), expected=values.get("expected", inherited),
                          tolerance=values.get("tolerance", base.tolerance),
                          query=query_spec(recipe, f"{where}.query", values["query"]) if "query" in values else None)


def _sweep_points(sweep: Sweep) -> list[StudyCondition]:
    """A sweep's points as conditions: the condition file ``base`` with ``field`` set to each value."""
    points = []
    for pid, base_id, value in sweep.points():
        base = load_condition(base_id)
        label = f"{sweep.labels.get(base_id, base_id)} {sweep.field}={value:g}"
        points.append(StudyCondition(id=pid, label=label, base=base,
                                     changes={**sweep.changes, **_changes({sweep.field: value})},
                                     seeds=sweep.seeds or base.seeds, expected=sweep.expected.get(pid, {}),
                                     tolerance=sweep.tolerance if sweep.tolerance is not None else base.tolerance,
                                     swept=(sweep.field, value)))
    return points


def _table(recipe: V.Recipe, i: int, raw: Any, study_datasets: tuple[str, ...],
           sweeps: Mapping[str, Sweep] | None = None) -> Table:
    where = f"tables[{i}]"
    values = V.fields(recipe, raw, {"id": V.text, "title": V.text, "rows": V.string_list, "columns": V.anything,
                                    "paper": V.integer(1, 3)}, where, required=("id", "rows", "columns"))
    cols = values["columns"]
    if not isinstance(cols, dict) or not cols:
        raise recipe.error(f"{where}.columns", "expected a mapping of dataset -> [measures]")
    columns = {}
    for dataset, measures in cols.items():
        if dataset not in study_datasets:
            raise recipe.error(f"{where}.columns.{dataset}", f"{dataset!r} is not one of the study's datasets",
                               fix=f"one of {', '.join(study_datasets)}")
        columns[dataset] = _convert(recipe, f"{where}.columns.{dataset}",
                                    lambda v: tuple(_measure(m) for m in V.string_list(v)), measures)
    rows = [p for row in values["rows"] for p in ([p for p, _, _ in sweeps[row].points()] if row in (sweeps or {})
                                                  else [row])]  # a sweep's id: its points
    return Table(values["id"], values.get("title", values["id"]), tuple(rows), columns, values.get("paper"))


def _comparison(recipe: V.Recipe, i: int, raw: Any) -> Comparison:
    values = V.fields(recipe, raw, {"family": V.text, "condition": V.text, "versus": V.text,
                                    "measure": _measure, "datasets": _datasets,
                                    "claim": V.choice(list(CLAIMS)), "source": V.text,
                                    "paper_delta": _finite, "at": V.choice(list(SPARSITY))},
                      f"comparisons[{i}]", required=("family", "condition", "versus", "measure", "datasets", "claim",
                                                     "source"))
    return Comparison(values["family"], values["condition"], values["versus"], values["measure"],
                      tuple(values["datasets"]), values["claim"], values["source"], values.get("paper_delta"),
                      values.get("at"))


def _measure(value: Any) -> str:
    """A measure a table or comparison may name: an expectation's (:func:`kit.validate.expected_measure`) or a
    training measure (:mod:`eval.study.training`)."""
    return value if value in TRAINING_MEASURES else V.expected_measure(value)


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _expected(values: Mapping[str, Any]) -> dict:
    return {"expected": values.get("expected", {}), "tolerance": values.get("tolerance", REFERENCE_TOLERANCE)}


REFERENCE_KEYS = {"id": V.text, "label": V.text, "expected": expected_scores, "tolerance": V.number(0)}


def _references(recipe: V.Recipe, raw: Any) -> list[Reference]:
    """``references``: ids of :data:`REFERENCE_RECIPE`'s systems, or ``{id, label, expected, tolerance}``."""
    systems = {s.id: s for s in load_recipe(REFERENCE_RECIPE).systems}
    if not isinstance(raw, list):
        raise recipe.error("references", "expected a list of system ids or {id, expected, tolerance} mappings")
    out = []
    for i, item in enumerate(raw):
        where = f"references[{i}]"
        values = V.fields(recipe, {"id": item} if isinstance(item, str) else item, REFERENCE_KEYS, where,
                          required=("id",))
        sid = values["id"]
        if sid not in systems:
            raise recipe.error(where, f"{sid!r} is not a system of {REFERENCE_RECIPE.relative_to(REPO)}",
                               fix=f"one of {', '.join(systems)}")
        out.append(Reference(sid, values.get("label", systems[sid].label), systems[sid], **_expected(values)))
    return out


def _fusions(recipe: V.Recipe, raw: Any, references: list[Reference]) -> list[Reference]:
    """``fusions``: ``{id: [reference ids]}`` or ``{id: {members, label, expected, tolerance}}``."""
    if not isinstance(raw, dict):
        raise recipe.error("fusions", "expected a mapping of fusion id -> [reference ids]")
    known = {r.id: r for r in references}
    out = []
    for fid, item in raw.items():
        where = f"fusions.{fid}"
        values = V.fields(recipe, {"members": item} if isinstance(item, list) else item,
                          {**REFERENCE_KEYS, "members": V.anything}, where, required=("members",))
        members = values["members"]
        if (not isinstance(members, list) or len(members) < 2 or len(set(members)) != len(members)
                or not all(isinstance(m, str) and m in known for m in members)):
            raise recipe.error(f"{where}.members" if isinstance(item, dict) else where,
                               f"a fusion lists at least two distinct references, got {members!r}",
                               fix=f"choose from {', '.join(known) or 'the references (none declared)'}")
        if str(fid) in known or str(fid) in {f.id for f in out}:
            raise recipe.error(where, f"{fid!r} is already a reference or fusion", fix="give the fusion its own id")
        label = values.get("label", " + ".join(known[m].label.split(" (")[0] for m in members) + " (fusion)")
        out.append(Reference(str(fid), label, fusion_of(str(fid), [known[m].system for m in members], label),
                             **_expected(values)))
    return out


def _datasets(value: Any) -> list[str]:
    return [V.dataset_or_split(d) for d in V.string_list(value)]


def resolve(name_or_path: str | Path) -> Path:
    """A study by path or by id (``recipes/studies/<id>.yaml``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise InputError(path, "no such study file", fix="a path to a study YAML, or a study id")
        return path
    path = STUDIES / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in STUDIES.glob("*.yaml")))
        raise InputError(None, f"unknown study {str(name_or_path)!r}", fix=f"one of {known} (recipes/studies/)")
    return path


def load_study(name_or_path: str | Path) -> Study:
    """A study file, validated; InputError (file:line) on anything malformed, before any model loads."""
    path = resolve(name_or_path)
    recipe = V.load_mapping(path, "study", fix="see docs/studies.md")
    values = V.fields(recipe, recipe.data, {
        "study": V.text, "title": V.text, "description": V.text, "caveat": V.text, "in_domain": V.dataset_or_split,
        "datasets": _datasets, "measures": V.anything,
        "conditions": V.anything, "references": V.anything, "fusions": V.anything, "tables": V.anything,
        "comparisons": V.anything, "sweeps": V.anything, "plots": V.anything, "training": V.anything,
        "sparsity": V.choice([IN_DOMAIN, ALL_DATASETS])},
        required=("study", "title", "in_domain", "datasets", "tables"))
    datasets = tuple(values["datasets"])
    if values["in_domain"] not in datasets:
        raise recipe.error("in_domain", f"{values['in_domain']!r} is not one of the datasets", fix="list it in datasets")
    measures = _convert(recipe, "measures", lambda v: tuple(V.measure(m) for m in V.string_list(v)),
                        values.get("measures", ["nDCG@10"]))
    references = _references(recipe, values.get("references", []))
    references += _fusions(recipe, values.get("fusions", {}), references)
    raw_conditions = values.get("conditions", [])
    if not isinstance(raw_conditions, list):
        raise recipe.error("conditions", "expected a list of condition ids or mappings")
    conditions: dict[str, StudyCondition] = {}
    for i, raw in enumerate(raw_conditions):
        c = _condition(recipe, i, raw)
        if c.id in conditions:
            raise recipe.error(f"conditions[{i}]", f"condition {c.id!r} is declared twice")
        conditions[c.id] = c
    sweeps = {}
    for i, raw in enumerate(_list(recipe, values, "sweeps")):
        sweep = parse_sweep(recipe, i, raw, condition_ids(), expected_scores, _changes)
        if sweep.id in sweeps:
            raise recipe.error(f"sweeps[{i}].id", f"sweep {sweep.id!r} is declared twice")
        sweeps[sweep.id] = sweep
        for c in _sweep_points(sweep):
            if c.id in conditions:
                raise recipe.error(f"sweeps[{i}]", f"point {c.id!r} is also a condition of the study")
            conditions[c.id] = c
    if not (conditions or references):
        raise recipe.error("conditions", "a study trains conditions or sweeps, or measures references")
    training = (_convert(recipe, "training", lambda v: tuple(V.choice(list(TRAINING_MEASURES))(m) for m in V.string_list(v)),
                         values["training"]) if "training" in values else ())
    plots = tuple(parse_plot(recipe, i, raw, sweeps, (*measures, *SPARSITY, *training), datasets, measures)
                  for i, raw in enumerate(_list(recipe, values, "plots")))
    study = Study(values["study"], values["title"], values.get("description", ""), values["in_domain"], datasets,
                  measures, conditions, tuple(references),
                  tuple(_table(recipe, i, t, datasets, sweeps) for i, t in enumerate(_list(recipe, values, "tables"))),
                  tuple(_comparison(recipe, i, c) for i, c in enumerate(_list(recipe, values, "comparisons"))),
                  values.get("caveat", ""), path, tuple(sweeps.values()), plots, training,
                  values.get("sparsity", IN_DOMAIN))
    cross_check(recipe, study)
    return study


def _convert(recipe: V.Recipe, key: str, convert, value: Any) -> Any:
    try:
        return convert(value)
    except ValueError as err:
        raise recipe.error(key, str(err)) from None


def _list(recipe: V.Recipe, values: Mapping[str, Any], key: str) -> list:
    raw = values.get(key, [])
    if not isinstance(raw, list):
        raise recipe.error(key, "expected a list")
    return raw
