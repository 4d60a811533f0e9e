"""Recipes are data: YAML files under recipes/, validated here with one-line errors naming the file and the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from encode.activations import ACTIVATIONS
from kit.errors import InputError
from kit.io import read_yaml
from eval.metrics import parse_measures

SYSTEM_TYPES = ("bm25", "sparse", "dense")
QUERY_ENCODERS = ("bow-idf", "splade", "lilsr")
IDF_SOURCES = ("corpus", "model")


TRAINED_PREFIX = "trained:"
"""``doc.model`` of a system whose documents come from a model the kit trains itself (``doc: {trained: <row>}``):
the model of that row of ``make ablation`` (:func:`eval.ablation.trained_model`), trained on demand and cached."""


@dataclass(frozen=True)
class DocSpec:
    model: str
    activation: str = "relu"

    @property
    def trained(self) -> str | None:
        """The ablation row this doc encoder is trained by, or None for a model named by hub id / directory."""
        return self.model[len(TRAINED_PREFIX):] if self.model.startswith(TRAINED_PREFIX) else None


@dataclass(frozen=True)
class QuerySpec:
    encoder: str
    idf: str = "corpus"
    table: str | None = None  # lilsr: Li-LSR lookup table (file or model dir); default: the doc model's directory


@dataclass(frozen=True)
class DenseSpec:
    """A bi-encoder for :mod:`index.dense`: offline short name, hub id or directory; ``max_length`` None = the model's own."""

    model: str
    max_length: int | None = None


@dataclass
class System:
    id: str
    label: str
    type: str
    paper: str | None = None
    doc: DocSpec | None = None
    query: QuerySpec | None = None
    dense: DenseSpec | None = None
    expected: dict[str, dict[str, float]] = field(default_factory=dict)
    tolerance: float = 0.0005


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
    model_system: dict[str, Any]
    index: "IndexSpec | None" = None  # None = Anserini impact index


@dataclass(frozen=True)
class IndexSpec:
    """The recipe's ``index:`` block: the retrieval backend of the sparse systems and its parameters.

    ``index: {backend: seismic, seismic: {n_postings: 3500, heap_factor: 0.9, ...}}`` (see
    :class:`index.seismic.SeismicParams` for the fields and defaults); ``backend: anserini`` (the default) takes none.
    """

    backend: str = "anserini"
    params: tuple[tuple[str, Any], ...] = ()

    def get(self):
        """The :class:`index.backends.Backend` (ValueError on an invalid parameter)."""
        from index.backends import get_backend

        return get_backend(self.backend, dict(self.params))


def _index(path: Path, raw: Any) -> IndexSpec:
    from index.backends import BACKENDS

    if not isinstance(raw, dict):
        raise InputError(path, "index: expected a mapping like {backend: seismic, seismic: {heap_factor: 0.9}}")
    unknown = set(raw) - {"backend", *BACKENDS}
    if unknown:
        raise InputError(path, f"index: unknown keys {sorted(unknown)}", fix=f"allowed: backend, {', '.join(BACKENDS)}")
    backend = _choice(path, "index.backend", raw.get("backend", "anserini"), BACKENDS)
    params = raw.get(backend) or {}
    if not isinstance(params, dict):
        raise InputError(path, f"index.{backend}: expected a mapping of parameter -> value")
    spec = IndexSpec(backend, tuple(sorted(params.items())))
    try:
        spec.get()
    except ValueError as exc:
        raise InputError(path, f"index.{backend}: {exc}") from None
    return spec


def _load_yaml(path: Path) -> dict:
    data, _ = read_yaml(path, "recipe", fix="see recipes/ for the available recipes")
    if not isinstance(data, dict):
        raise InputError(path, "a recipe must be a YAML mapping")
    return data

def _choice(path, where, value, choices):
    if value not in choices:
        raise InputError(path, f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _system(path: Path, i: int, raw: Any) -> System:
    where = f"systems[{i}]"
    if not isinstance(raw, dict) or "id" not in raw or "type" not in raw:
        raise InputError(path, f"{where}: each system needs at least `id` and `type`")
    known = {"id", "label", "type", "paper", "doc", "query", "dense", "expected", "tolerance"}
    unknown = set(raw) - known
    if unknown:
        raise InputError(path, f"{where} ({raw['id']}): unknown keys {sorted(unknown)}", fix=f"allowed: {sorted(known)}")
    stype = _choice(path, f"{where}.type", raw["type"], SYSTEM_TYPES)
    doc = query = dense = None
    if stype == "dense":
        spec = raw.get("dense")
        if not isinstance(spec, dict) or "model" not in spec or set(spec) - {"model", "max_length"}:
            raise InputError(path, f"{where} ({raw['id']}): a dense system needs dense: {{model: ..., max_length: ...}} "
                                   "(max_length optional)")
        max_length = spec.get("max_length")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise InputError(path, f"{where}.dense.max_length: {max_length!r} is not a positive integer")
        dense = DenseSpec(model=str(spec["model"]), max_length=max_length)
    if stype == "sparse":
        spec = raw.get("doc")
        if not isinstance(spec, dict) or ("model" in spec) == ("trained" in spec):
            raise InputError(path, f"{where} ({raw['id']}): a sparse system needs doc: {{model: ..., activation: ...}} "
                                   "or doc: {trained: <ablation row>, activation: ...}")
        model = str(spec["model"]) if "model" in spec else TRAINED_PREFIX + str(spec["trained"])
        doc = DocSpec(model=model,
                      activation=_choice(path, f"{where}.doc.activation", spec.get("activation", "relu"), ACTIVATIONS))
        q = raw.get("query") or {}
        query = QuerySpec(encoder=_choice(path, f"{where}.query.encoder", q.get("encoder"), QUERY_ENCODERS),
                          idf=_choice(path, f"{where}.query.idf", q.get("idf", "corpus"), IDF_SOURCES),
                          table=str(q["table"]) if q.get("table") is not None else None)
        if query.table is not None and query.encoder != "lilsr":
            raise InputError(path, f"{where}.query.table: only the lilsr encoder reads a table",
                             fix="remove `table` or set `encoder: lilsr`")
    expected = raw.get("expected") or {}
    for ds, scores in expected.items():
        if not isinstance(scores, dict):
            raise InputError(path, f"{where}.expected.{ds}: expected a mapping of measure -> score")
        try:
            parse_measures(scores)
        except ValueError as exc:
            raise InputError(path, f"{where}.expected.{ds}: {exc}") from None
    return System(id=str(raw["id"]), label=str(raw.get("label", raw["id"])), type=stype, paper=raw.get("paper"),
                  doc=doc, query=query, dense=dense,
                  expected={str(k): {m: float(v) for m, v in s.items()} for k, s in expected.items()},
                  tolerance=float(raw.get("tolerance", 0.0005)))


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a table recipe; InputError (one line, file named) on anything malformed."""
    path = Path(path)
    data = _load_yaml(path)
    for key in ("datasets", "systems"):
        if key not in data:
            raise InputError(path, f"missing top-level key `{key}`")
    measures = list(data.get("measures", ["nDCG@10"]))
    try:
        parse_measures(measures)
    except ValueError as exc:
        raise InputError(path, f"measures: {exc}") from None
    systems = [_system(path, i, s) for i, s in enumerate(data["systems"])]
    ids = [s.id for s in systems]
    dups = sorted({x for x in ids if ids.count(x) > 1})
    if dups:
        raise InputError(path, f"duplicate system ids {dups}")
    return Recipe(path=path, table=int(data.get("table", 1)), datasets=[str(d) for d in data["datasets"]],
                  measures=measures, hits=int(data.get("hits", 1000)), max_length=int(data.get("max_length", 512)),
                  factor=float(data.get("factor", 100)), systems=systems, model_system=dict(data.get("model_system") or {}),
                  index=_index(path, data["index"]) if "index" in data else None)
