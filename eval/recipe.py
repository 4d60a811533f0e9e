"""Recipes are data: YAML files under recipes/, validated here with one-line errors naming the file and the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from encode.activations import ACTIVATIONS
from encode.quantize import MAX_FACTOR
from encode.registry import QUERY_ENCODERS as REGISTERED_QUERY_ENCODERS
from index.backends import BACKENDS
from kit import validate as V
from kit.errors import InputError
from pipeline.specs import CORPUS_IDF_TABLE, TRAINED_PREFIX, DenseSpec, DocSpec, IndexSpec, QuerySpec, System
from pipeline.systems import SYSTEM_KINDS
from train.conditions import expected_scores

SYSTEM_TYPES = ("bm25", "sparse", "dense")
QUERY_ENCODERS = tuple(REGISTERED_QUERY_ENCODERS)
IDF_SOURCES = ("corpus", "model")

MIN_FACTOR = 1.0
"""The smallest quantization ``factor`` a recipe may set: ``int(w * factor + 0.5)`` drops every weight under
``0.5 / factor``, and log(1 + relu) weights are about 0.1-5, so below 1 most of every vector would vanish."""


@dataclass
class Recipe:
    path: Path
    table: int
    datasets: list[str]
    measures: list[str]
    hits: int
    max_length: int
    factor: float
    systems: list[System]
    index: "IndexSpec | None" = None  # None = Anserini impact index
    source: V.Recipe | None = field(default=None, repr=False, compare=False)  # the parsed file (key lines)


_SYSTEM_KEYS = ("id", "label", "type", "paper", "doc", "query", "dense", "expected", "tolerance")


def _index(recipe: V.Recipe, raw: Any) -> IndexSpec:
    V.fields(recipe, raw, {"backend": V.choice(BACKENDS), **{b: V.anything for b in BACKENDS}}, "index")
    backend = raw.get("backend", "anserini")
    params = raw.get(backend) or {}
    if not isinstance(params, dict):
        raise recipe.error(f"index.{backend}", "expected a mapping of parameter -> value")
    spec = IndexSpec(backend, tuple(sorted(params.items())))
    try:
        spec.get()
    except ValueError as exc:
        raise recipe.error(f"index.{backend}", str(exc)) from None
    return spec


def _measures(value: Any) -> list[str]:
    """ir-measures names in their canonical spelling (ValueError naming the first that is not), each once."""
    names = [V.measure(name) for name in V.string_list(value)]
    if len(set(names)) != len(names):
        raise ValueError(f"a measure is listed twice in {names}")
    return names


def _factor(value: Any) -> float:
    """The quantization factor: a finite number in [:data:`MIN_FACTOR`, :data:`encode.quantize.MAX_FACTOR`]."""
    factor = V.number(0, strict=True, maximum=MAX_FACTOR)(value)
    if factor < MIN_FACTOR:
        raise ValueError(f"{factor:g} is below {MIN_FACTOR:g}: log(1 + relu) weights are about 0.1-5, and a weight "
                         "under 0.5 / factor rounds to 0 and is dropped, so most documents would be empty "
                         "(100 is the usual choice)")
    return factor


def query_spec(recipe: V.Recipe, where: str, raw: Any) -> QuerySpec:
    """A sparse system's query side (``{encoder, idf, table}``) validated at ``where``: a table only for ``lilsr``,
    and one that exists (a file or model folder) or is the corpus IDF."""
    q = V.fields(recipe, raw, {"encoder": V.choice(QUERY_ENCODERS), "idf": V.choice(IDF_SOURCES), "table": V.text},
                 where, required=("encoder",))
    query = QuerySpec(encoder=q["encoder"], idf=q.get("idf", "corpus"), table=q.get("table"))
    if query.table is not None and query.encoder != "lilsr":
        raise recipe.error(f"{where}.table", "only the lilsr encoder reads a table",
                           fix="remove `table` or set `encoder: lilsr`")
    if query.table is not None and query.table != CORPUS_IDF_TABLE and not Path(query.table).exists():
        raise recipe.error(f"{where}.table", f"{query.table} not found",
                           fix=f"a lookup table file or model folder, or {CORPUS_IDF_TABLE}")
    return query


def _system(recipe: V.Recipe, i: int, raw: Any) -> System:
    where = f"systems[{i}]"
    values = V.fields(recipe, raw, {
        "id": V.text, "label": V.text, "type": V.choice(SYSTEM_TYPES), "paper": V.optional(V.text),
        "doc": V.anything, "query": V.anything, "dense": V.anything, "expected": expected_scores,
        "tolerance": V.number(0)}, where, required=("id", "type"))
    stype, sid = values["type"], values["id"]
    doc = query = dense = None
    if stype == "dense":
        spec = V.fields(recipe, raw.get("dense") or {}, {"model": V.text, "max_length": V.integer(1)},
                        f"{where}.dense", required=("model",))
        dense = DenseSpec(model=spec["model"], max_length=spec.get("max_length"))
    if stype == "sparse":
        spec = V.fields(recipe, raw.get("doc") or {}, {"model": V.text, "trained": V.text,
                                                       "activation": V.choice(ACTIVATIONS)}, f"{where}.doc")
        if ("model" in spec) == ("trained" in spec):
            raise recipe.error(f"{where}.doc", f"({sid}) a sparse system needs doc: {{model: ..., activation: ...}} "
                                               "or doc: {trained: <ablation row>, activation: ...}")
        model = spec["model"] if "model" in spec else TRAINED_PREFIX + spec["trained"]
        doc = DocSpec(model=model, activation=spec.get("activation", "relu"))
        query = query_spec(recipe, f"{where}.query", raw.get("query") or {})
    for key, kind in (("doc", "sparse"), ("query", "sparse"), ("dense", "dense")):
        if key in raw and stype != kind:
            raise recipe.error(f"{where}.{key}", f"a {stype} system takes no {key}", fix=f"remove `{key}`")
    return System(id=sid, label=values.get("label", sid), type=stype, paper=values.get("paper"), doc=doc,
                  query=query, dense=dense, expected=values.get("expected", {}),
                  tolerance=values.get("tolerance", 0.0005))


def load_recipe(path: str | Path, table: int | None = None) -> Recipe:
    """Read and validate a table recipe before anything is loaded: unknown keys, wrong types and out-of-range
    values are one InputError naming the file and the key's line. ``table``: the one table the calling runner
    produces (``eval.reproduce``: 1); a recipe for another is refused at its ``table:`` line."""
    recipe = V.load_mapping(path, "recipe", fix="see recipes/ for the available recipes")
    data = recipe.data
    top = V.fields(recipe, data, {
        "table": V.integer(0), "datasets": V.string_list, "measures": _measures, "hits": V.integer(1, 100_000),
        "max_length": V.integer(2, 8192), "factor": _factor,
        "systems": V.anything, "index": V.anything},
        required=("datasets", "systems"))
    if table is not None and top.get("table", 1) != table:
        raise recipe.error("table", f"this runner makes Table {table}, not Table {top.get('table', 1)}",
                           fix=f"set table: {table}, or run the recipe with the runner of its table")
    if not isinstance(data["systems"], list) or not data["systems"]:
        raise recipe.error("systems", "expected a non-empty list of systems", fix="list at least one system")
    systems = [_system(recipe, i, s) for i, s in enumerate(data["systems"])]
    ids = [s.id for s in systems]
    dups = sorted({x for x in ids if ids.count(x) > 1})
    if dups:
        raise recipe.error("systems", f"duplicate system ids {dups}")
    measures = top.get("measures", ["nDCG@10"])
    for i, s in enumerate(systems):
        computed = [*measures, *SYSTEM_KINDS[s.type].extra_measures]
        for dataset, scores in s.expected.items():
            V.measured_only(recipe, f"systems[{i}].expected.{dataset}", scores, computed, f"a {s.type} system here")
    return Recipe(path=Path(path), table=top.get("table", 1), datasets=top["datasets"],
                  measures=measures, hits=top.get("hits", 1000),
                  max_length=top.get("max_length", 512), factor=top.get("factor", 100.0), systems=systems,
                  index=_index(recipe, data["index"]) if "index" in data else None, source=recipe)


def check_datasets(recipe: Recipe, names: Sequence[str], option: str | None = None) -> None:
    """Every name one :func:`kit.data.load_dataset` resolves, checked before anything runs: an InputError naming
    ``option`` (e.g. ``--datasets``) or, when the names are the recipe's own, its ``datasets:`` line."""
    for name in names:
        try:
            V.dataset(name)
        except ValueError as exc:
            if option is not None or recipe.source is None:
                raise InputError(None, f"{option or 'datasets'}: {exc}") from None
            raise recipe.source.error("datasets", str(exc)) from None
