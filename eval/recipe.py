"""Recipes are data: YAML files under recipes/, validated here with one-line errors naming the file and the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from encode.activations import ACTIVATIONS
from kit.errors import InputError
from kit.io import read_yaml
from eval.metrics import parse_measures

SYSTEM_TYPES = ("bm25", "sparse")
QUERY_ENCODERS = ("bow-idf", "splade")
IDF_SOURCES = ("corpus", "model")


@dataclass(frozen=True)
class DocSpec:
    model: str
    activation: str = "relu"


@dataclass(frozen=True)
class QuerySpec:
    encoder: str
    idf: str = "corpus"


@dataclass
class System:
    id: str
    label: str
    type: str
    paper: str | None = None
    doc: DocSpec | None = None
    query: QuerySpec | None = None
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
    known = {"id", "label", "type", "paper", "doc", "query", "expected", "tolerance"}
    unknown = set(raw) - known
    if unknown:
        raise InputError(path, f"{where} ({raw['id']}): unknown keys {sorted(unknown)}", fix=f"allowed: {sorted(known)}")
    stype = _choice(path, f"{where}.type", raw["type"], SYSTEM_TYPES)
    doc = query = None
    if stype == "sparse":
        if not isinstance(raw.get("doc"), dict) or "model" not in raw["doc"]:
            raise InputError(path, f"{where} ({raw['id']}): a sparse system needs doc: {{model: ..., activation: ...}}")
        doc = DocSpec(model=str(raw["doc"]["model"]),
                      activation=_choice(path, f"{where}.doc.activation", raw["doc"].get("activation", "relu"), ACTIVATIONS))
        q = raw.get("query") or {}
        query = QuerySpec(encoder=_choice(path, f"{where}.query.encoder", q.get("encoder"), QUERY_ENCODERS),
                          idf=_choice(path, f"{where}.query.idf", q.get("idf", "corpus"), IDF_SOURCES))
    expected = raw.get("expected") or {}
    for ds, scores in expected.items():
        if not isinstance(scores, dict):
            raise InputError(path, f"{where}.expected.{ds}: expected a mapping of measure -> score")
        try:
            parse_measures(scores)
        except ValueError as exc:
            raise InputError(path, f"{where}.expected.{ds}: {exc}") from None
    return System(id=str(raw["id"]), label=str(raw.get("label", raw["id"])), type=stype, paper=raw.get("paper"),
                  doc=doc, query=query, expected={str(k): {m: float(v) for m, v in s.items()} for k, s in expected.items()},
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
                  factor=float(data.get("factor", 100)), systems=systems, model_system=dict(data.get("model_system") or {}))
