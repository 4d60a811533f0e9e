"""Training conditions as data: ``recipes/conditions/<id>.yaml``, one file per trained model the kit reports.

A condition names a training recipe and the fields it changes, and, for the ablation (Tables 2-3), the datasets it
is evaluated on with the scores ``make ablation`` measured::

    id: l0-mask-l0-act                 # the file's stem
    tables: [2, 3]                     # the paper's tables it is a row of (empty: a model other runners use)
    train: recipes/train/tiny.yaml     # the training recipe (repository-relative)
    set: {variant: l0}                 # training-recipe fields changed
    mask: true                         # keep the recipe's threshold t (the l0 mask); false: plain FLOPS
    seeds: [42, 43, 44]                # training seeds (default: the recipe's own seed)
    evaluate: [scifact, vaswani, cacm]
    expected: {scifact: {nDCG@10: 0.667}, ...}   # per dataset, the mean over the seeds
    tolerance: 0.002
    calibration: {...}                 # a field set by eval.calibrate: its procedure and probes (a record)

:func:`trained_model` gives a condition's model (trained once, cached by its training key: :mod:`train.cache`); Table
1's row of the kit's own l0 model is ``trained_model("l0-mask-l0-act")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kit import validate as V
from kit.errors import InputError
from kit.paths import REPO
from train.cache import train_cached
from train.recipe import TRAIN_FIELDS, TrainRecipe, load_train_recipe

CONDITIONS = REPO / "recipes" / "conditions"

MEASURED = ("nDCG@10",)
"""What ``eval.ablation`` measures for a condition on each dataset it is evaluated on; on :data:`SPARSITY_DATASET`
also :data:`SPARSITY`. An expectation of anything else is refused when read."""
SPARSITY_DATASET = "scifact"
SPARSITY = ("FLOPS", "Doc_Len")


def measured(dataset: str) -> tuple[str, ...]:
    """The measures ``eval.ablation`` (Tables 2-3, the figures, the regime) reports for a trained model on ``dataset``."""
    return (*MEASURED, *(SPARSITY if dataset == SPARSITY_DATASET else ()))


@dataclass(frozen=True)
class Condition:
    """One training condition (see the module docstring for the file's keys)."""

    id: str
    train: Path
    changes: Mapping[str, Any] = field(default_factory=dict)
    mask: bool = True
    tables: tuple[int, ...] = ()
    seeds: tuple[int, ...] = ()
    evaluate: tuple[str, ...] = ()
    expected: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    tolerance: float = 0.002
    path: Path | None = None

    def recipe(self, seed: int | None = None, **changes: Any) -> TrainRecipe:
        """The effective training recipe: the condition's fields, then ``changes`` (a scale's or a sweep's), then
        ``seed``. Without the mask the recipe's threshold is dropped (plain FLOPS)."""
        base = load_train_recipe(self.train)
        merged = {**self.changes, **changes}
        threshold = merged.pop("threshold", base.threshold)
        if self.mask and threshold is None:
            raise InputError(self.path, f"{self.id} keeps the l0 mask but {self.train} sets no threshold",
                             fix="set threshold in the training recipe, or mask: false")
        if seed is not None:
            merged["seed"] = seed
        return base.replace(threshold=threshold if self.mask else None, **merged)

    def run_seeds(self, override: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """The seeds a run trains: ``override`` (SEEDS=), else the condition's, else the recipe's own."""
        return override or self.seeds or (load_train_recipe(self.train).seed,)


def _changes(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of training-recipe field -> value")
    out = {}
    for key, raw in value.items():
        if key not in TRAIN_FIELDS or key in ("base_model", "data"):
            raise ValueError(f"{key!r} is not a training-recipe field a condition may set")
        out[key] = TRAIN_FIELDS[key](raw)
    return out


def measure_scores(value: Any, where: str = "") -> dict[str, float]:
    """An expectation ``{measure: score}``: each measure an ir-measures name in its canonical spelling or FLOPS /
    Doc_Len (:func:`kit.validate.expected_measure`), each score a finite number >= 0; ValueError otherwise."""
    prefix = f"{where}: " if where else ""
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{prefix}expected a mapping of measure -> score")
    try:
        return {V.expected_measure(m): V.number(0)(v) for m, v in value.items()}
    except ValueError as exc:
        raise ValueError(f"{prefix}{exc}") from None


def expected_scores(value: Any) -> dict[str, dict[str, float]]:
    """Expectations per dataset (or split): ``{dataset: {measure: score}}``; ValueError on anything else."""
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of dataset -> {measure: score}")
    return {str(dataset): measure_scores(scores, str(dataset)) for dataset, scores in value.items()}


def _tables(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of table numbers, got {value!r}")
    return tuple(V.integer(2, 3)(v) for v in value)


def _calibration(value: Any) -> dict:
    """``calibration``: how a calibrated field got its value (``python -m eval.calibrate``); a record, not a setting."""
    if not isinstance(value, dict) or not {"field", "match", "split", "probes"} <= set(value):
        raise ValueError("expected the mapping eval.calibrate writes (field, match, split, probes, ...)")
    return value


def load_condition(name_or_path: str | Path) -> Condition:
    """A condition by id (``recipes/conditions/<id>.yaml``) or path; InputError (file:line) on anything malformed."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONDITIONS / f"{name_or_path}.yaml"
        if not path.is_file():
            raise InputError(None, f"unknown condition {str(name_or_path)!r}",
                             fix=f"one of {', '.join(condition_ids())} (recipes/conditions/)")
    recipe = V.load_mapping(path, "condition", fix="see recipes/conditions/")
    values = V.fields(recipe, recipe.data, {
        "id": V.text, "tables": _tables, "train": V.text, "set": _changes, "mask": V.flag, "seeds": V.seeds,
        "evaluate": V.dataset_list, "expected": expected_scores, "tolerance": V.number(0), "calibration": _calibration},
        required=("id", "train"))
    if values["id"] != path.stem:
        raise recipe.error("id", f"{values['id']!r} differs from the file name {path.stem!r}", fix="make them equal")
    train = REPO / values["train"]
    if not train.is_file():
        raise recipe.error("train", f"{values['train']} not found", fix="a path relative to the repository")
    condition = Condition(id=values["id"], train=train, changes=values.get("set", {}), mask=values.get("mask", True),
                          tables=values.get("tables", ()), seeds=values.get("seeds", ()),
                          evaluate=tuple(values.get("evaluate", ())), expected=values.get("expected", {}),
                          tolerance=values.get("tolerance", 0.002), path=path)
    unknown = set(condition.expected) - set(condition.evaluate)
    if unknown:
        raise recipe.error("expected", f"datasets {sorted(unknown)} are not evaluated", fix="list them in evaluate")
    for dataset, scores in condition.expected.items():
        V.measured_only(recipe, f"expected.{dataset}", scores, measured(dataset), f"eval.ablation on {dataset}")
    condition.recipe()  # the training recipe and the changes must make a valid recipe
    return condition


def condition_ids(table: int | None = None) -> list[str]:
    """Every condition's id (``table``: only the rows of that paper table), sorted."""
    ids = sorted(p.stem for p in CONDITIONS.glob("*.yaml"))
    return ids if table is None else [i for i in ids if table in load_condition(i).tables]


def trained_model(condition: str | Condition, seed: int | None = None) -> tuple[Path, str]:
    """The full-scale model of a condition (trained on demand, cached) and the activation it ranks with."""
    condition = condition if isinstance(condition, Condition) else load_condition(condition)
    recipe = condition.recipe(seed)
    return train_cached(condition.id, recipe), recipe.activation
