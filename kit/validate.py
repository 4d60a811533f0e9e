"""Typed fields of YAML recipes: one validator for table recipes and training recipes, errors with file:line.

A recipe is read with :func:`load_mapping`, which also records the line of every key (nested keys as dotted paths
with list indices, ``systems[2].doc.model``); each field is converted by a :data:`Converter` that raises
``ValueError`` with what it expected; :func:`fields` applies a schema and turns every problem, an unknown key
included, into one :class:`~kit.errors.InputError` naming the file and the key's line. A key given twice in one
mapping is refused when the file is read. Every YAML file the kit reads (table, training, condition, figure, regime and
teacher recipes) goes through :func:`load_mapping`.

Measure names are ir-measures' canonical spelling (:func:`measure`: ``str(ir_measures.parse_measure(name)) == name``,
so ``nDCG@10``, ``R@100``, ``RR@10``), plus :data:`EFFICIENCY` where a runner measures them; dataset names are those
:func:`kit.data.load_dataset` resolves (:func:`dataset`). Both are checked without loading anything.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kit.data import BEIR_DATASETS, DERIVED_SPLITS, LOCAL_DATASETS
from kit.errors import InputError
from kit.io import read_yaml
from kit.nanobeir import NANOBEIR_DATASETS
from kit.paths import shared_dir

Converter = Callable[[Any], Any]


class Recipe:
    """A parsed YAML mapping with the line of each key; ``where(path)`` gives the line of a dotted key path."""

    def __init__(self, path: Path, data: dict, lines: dict[str, int]):
        self.path, self.data, self.lines = path, data, lines

    def line(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rsplit(".", 1)[0] if "." in key else (key.rsplit("[", 1)[0] if "[" in key else "")
        return None

    def error(self, key: str, message: str, fix: str | None = None) -> InputError:
        return InputError(self.path, f"{key}: {message}" if key else message, self.line(key), fix=fix)


def _key_lines(source: Path, text: str) -> dict[str, int]:
    """1-based line of every mapping key, by dotted path (``a.b``, ``a[0].b``); a key given twice in one mapping is
    an InputError at its second line (YAML would keep the last value silently)."""
    import yaml

    lines: dict[str, int] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    path = f"{prefix}.{key.value}" if prefix else str(key.value)
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in seen:
                        raise InputError(source, f"{path}: given twice (first on line {seen[key.tag, key.value]}); "
                                                 "YAML would keep only the last value", line, fix="keep one of them")
                    seen[key.tag, key.value] = line
                    lines.setdefault(path, line)
                    walk(value, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                path = f"{prefix}[{i}]"
                lines.setdefault(path, item.start_mark.line + 1)
                walk(item, path)

    try:
        walk(yaml.compose(text), "")
    except yaml.YAMLError:
        pass
    return lines


def load_mapping(path: str | Path, what: str = "recipe", fix: str | None = None) -> Recipe:
    """Read a YAML file that must hold a mapping; InputError (file, line) on anything else."""
    path = Path(path)
    data, text = read_yaml(path, what, fix=fix)
    if not isinstance(data, dict):
        raise InputError(path, f"a {what} must be a YAML mapping of keys to values", fix=fix)
    return Recipe(path, data, _key_lines(path, text))


def fields(recipe: Recipe, raw: Mapping[str, Any], schema: Mapping[str, Converter], where: str = "",
           required: Sequence[str] = ()) -> dict[str, Any]:
    """Convert the keys of ``raw`` (the mapping at key path ``where``) with ``schema``.

    Unknown keys, missing ``required`` keys and values a converter refuses are InputErrors naming the key's line.
    """
    prefix = f"{where}." if where else ""
    if not isinstance(raw, Mapping):
        raise recipe.error(where, f"expected a mapping of keys to values, got {type(raw).__name__}")
    for key in raw:
        if key not in schema:
            raise recipe.error(f"{prefix}{key}", "unknown key", fix=f"allowed keys: {', '.join(schema)}")
    missing = [k for k in required if k not in raw]
    if missing:
        raise recipe.error(where, f"missing key(s) {', '.join(missing)}", fix=f"set {', '.join(required)}")
    out = {}
    for key, value in raw.items():
        try:
            out[key] = schema[key](value)
        except ValueError as err:
            raise recipe.error(f"{prefix}{key}", str(err)) from None
    return out


# ---- converters ---------------------------------------------------------------------------------------------------

def integer(minimum: int, maximum: int | None = None) -> Converter:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum \
                or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise ValueError(f"must be an integer {bound}, got {value!r}")
        return value
    return convert


def number(minimum: float, *, strict: bool = False, optional: bool = False, maximum: float | None = None) -> Converter:
    """A finite number ``>= minimum`` (``> minimum`` if ``strict``), ``<= maximum``; ``None`` allowed if ``optional``."""
    def convert(value: Any) -> float | None:
        if value is None and optional:
            return None
        if isinstance(value, str):  # YAML 1.1 reads 2e-5 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < minimum or (strict and value == minimum) or (maximum is not None and value > maximum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            if maximum is not None:
                bound += f" and <= {maximum:g}"
            none = " or null" if optional else ""
            raise ValueError(f"must be a finite number {bound}{none}, got {value!r}")
        return float(value)
    return convert


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def optional(convert: Converter) -> Converter:
    def wrapped(value: Any):
        return None if value is None else convert(value)
    return wrapped


def choice(choices: Sequence[str]) -> Converter:
    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(map(str, choices))}")
        return value
    return convert


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"must be a non-empty list of names, got {value!r}")
    return list(value)


EFFICIENCY = ("FLOPS", "Doc_Len", "Query_Len")
"""Measured from the indexed sparse vectors (:func:`pipeline.metrics.sparsity_stats`), not by ir-measures."""


def _parsed(name: str) -> str | None:
    """ir-measures' canonical string of ``name``, or None when it does not parse."""
    import ir_measures

    try:
        return str(ir_measures.parse_measure(name))
    except (ValueError, NameError, SyntaxError, TypeError, AttributeError):
        return None


def _measure_hint(name: str) -> str | None:
    """The canonical ir-measures spelling of a near miss: a trec_eval name (``ndcg_cut_10``), another case
    (``ndcg@10``) or an alias (``MRR@10``); None when there is none."""
    import ir_measures

    try:
        found = [str(m) for m in ir_measures.parse_trec_measure(name)]
        if len(found) == 1:
            return found[0]
    except (ValueError, NameError, SyntaxError, TypeError, AttributeError, KeyError):
        pass
    head, rest = re.match(r"([^@(]*)(.*)", name, re.S).groups()  # nDCG, @10
    spellings = [k for k in ir_measures.measures.registry if k.lower() == head.lower()]
    return next((p for p in map(_parsed, (k + rest for k in spellings)) if p), None) or _parsed(name)


def measure(value: Any) -> str:
    """An ir-measures measure name in its canonical spelling, e.g. ``nDCG@10``; ValueError with the spelling to use."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a measure is a name such as nDCG@10, got {value!r}")
    if _parsed(value) == value:
        return value
    hint = _measure_hint(value)
    raise ValueError(f"unknown measure {value!r}" + (f": ir-measures spells it {hint}" if hint else
                                                      "; use ir-measures names such as nDCG@10, R@100, RR@10"))


def expected_measure(value: Any) -> str:
    """A measure an expectation may name: :func:`measure` or one of :data:`EFFICIENCY`."""
    if value in EFFICIENCY:
        return value
    near = [e for e in EFFICIENCY if isinstance(value, str) and value.lower() == e.lower()]
    if near:
        raise ValueError(f"unknown measure {value!r}: the kit spells it {near[0]}")
    return measure(value)


def dataset(value: Any) -> str:
    """A dataset name :func:`kit.data.load_dataset` resolves (nothing is loaded): an offline collection, a Table 1
    BEIR name or its ir_datasets id, ``nanobeir/<name>``, a BEIR-layout directory or an ir_datasets id."""
    name = text(value)
    named = [*LOCAL_DATASETS, *BEIR_DATASETS, *BEIR_DATASETS.values(), *(f"nanobeir/{n}" for n in NANOBEIR_DATASETS)]
    if name in named or Path(name).is_dir():
        return name
    import ir_datasets

    if name in ir_datasets.registry:
        return name
    close = difflib.get_close_matches(name, named, n=1)
    raise ValueError(f"unknown dataset {name!r}" + (f" (did you mean {close[0]}?)" if close else "")
                     + f"; the kit loads {', '.join(LOCAL_DATASETS)} offline, the BEIR names, nanobeir/<name>, "
                       "a directory in BEIR layout or an ir_datasets id")


def dataset_or_split(value: Any) -> str:
    """A dataset (:func:`dataset`) or a split of an offline BEIR collection, ``<name>/<split>`` (e.g.
    ``scifact/train``: its ``qrels/<split>.tsv``; ``scifact/dev`` and ``scifact/fit``: :data:`kit.data.DERIVED_SPLITS`);
    nothing is loaded."""
    name = text(value)
    base, _, split = name.partition("/")
    if split and base in LOCAL_DATASETS:
        beir = shared_dir() / "data" / "beir" / base
        splits = sorted(p.stem for p in (beir / "qrels").glob("*.tsv")) if beir.is_dir() else ["test"]
        splits += [d for d, source in DERIVED_SPLITS.items() if source in splits]
        if split not in splits:
            raise ValueError(f"{base} has no {split!r} split (it has {', '.join(splits)})")
        return name
    return dataset(name)


def dataset_list(value: Any) -> list[str]:
    return [dataset(v) for v in string_list(value)]


def measured_only(recipe: Recipe, where: str, scores: Mapping[str, float], measured: Sequence[str],
                  runner: str) -> None:
    """Every measure of the expectation ``scores`` (at key path ``where``) is one of ``measured``, what ``runner``
    measures there: else an InputError at its line before anything runs (the run would end in a FAIL against a
    score it never computed)."""
    for m in scores:
        if m not in measured:
            raise recipe.error(f"{where}.{m}", f"{m} is expected, but {runner} does not measure it (it measures "
                                               f"{', '.join(measured) or 'nothing'})",
                               fix="expect only what is measured, or measure it (e.g. add it to measures)")


def seeds(value: Any) -> tuple[int, ...]:
    """A non-empty list of distinct non-negative integer seeds, e.g. ``[42, 43, 44]``."""
    if not isinstance(value, list) or not value or len(set(value)) != len(value):
        raise ValueError(f"must be a list of distinct integers, got {value!r}")
    return tuple(integer(0)(v) for v in value)


def anything(value: Any) -> Any:
    return value
