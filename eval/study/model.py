"""What a study is, once read: its conditions, references, tables and comparisons (:mod:`eval.study.spec` reads a
study file into these; :mod:`eval.study.consistency` checks that they hold together)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from eval.recipe import QuerySpec, System
from eval.study.sweeps import Plot, Sweep
from train.conditions import Condition
from train.recipe import TrainRecipe

REFERENCE_TOLERANCE = 0.002
SPARSITY = ("FLOPS", "Doc_Len")
"""Measured from the document vectors on the study's in-domain dataset only (``sparsity: in-domain``)."""
SYSTEM_SPARSITY = ("FLOPS", "Doc_Len", "Query_Len")
"""Measured on every dataset when the study's ``sparsity`` is :data:`ALL_DATASETS`."""
IN_DOMAIN, ALL_DATASETS = "in-domain", "all-datasets"
CLAIMS = {"higher": 1, "lower": -1, "no difference": 0}


@dataclass(frozen=True)
class StudyCondition:
    """A trained model of the study: ``base`` (a condition file) with ``changes`` on top."""

    id: str
    label: str
    base: Condition
    changes: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    expected: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    tolerance: float = 0.002
    swept: tuple[str, Any] | None = None  # a sweep's point: (field, value)
    query: QuerySpec | None = None  # its own query side (sparsity: all-datasets); None: the one it was trained with

    def run_seeds(self, override: tuple[int, ...] | None = None) -> tuple[int, ...]:
        return override or self.seeds or self.base.run_seeds()

    def recipe(self, seed: int, **scale_changes: Any) -> TrainRecipe:
        return self.base.recipe(seed, **{**scale_changes, **self.changes})


@dataclass(frozen=True)
class Reference:
    """A system measured once per dataset beside the conditions: one of :data:`REFERENCE_RECIPE` (``system``), or the
    fusion of other references (``system.members``), with the scores it is expected to reach."""

    id: str
    label: str
    system: System
    expected: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    tolerance: float = REFERENCE_TOLERANCE

    @property
    def members(self) -> tuple[str, ...]:
        """The ids of the references a fusion fuses (empty for a single system)."""
        return tuple(m.id for m in self.system.members) if self.system.type == "fusion" else ()


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    rows: tuple[str, ...]
    columns: Mapping[str, tuple[str, ...]]  # dataset -> measures, in order
    paper: int | None = None  # the paper table whose numbers annotate the rows (eval.paper.load_paper_table)


@dataclass(frozen=True)
class Comparison:
    family: str
    condition: str
    versus: str
    measure: str
    datasets: tuple[str, ...]
    claim: str
    source: str
    paper_delta: float | None = None
    at: str | None = None  # a frontier comparison (eval.study.frontier): curves compared at equal values of this

    @property
    def sign(self) -> int:
        return CLAIMS[self.claim]


@dataclass(frozen=True)
class Study:
    id: str
    title: str
    description: str
    in_domain: str
    datasets: tuple[str, ...]
    measures: tuple[str, ...]
    conditions: Mapping[str, StudyCondition]
    references: tuple[Reference, ...]  # Table 1's systems, then the fusions of them
    tables: tuple[Table, ...]
    comparisons: tuple[Comparison, ...]
    caveat: str = ""
    path: Path | None = None
    sweeps: tuple[Sweep, ...] = ()
    plots: tuple[Plot, ...] = ()
    training: tuple[str, ...] = ()  # training measures (eval.study.training), on the in-domain dataset's row
    sparsity: str = IN_DOMAIN  # ALL_DATASETS: documents encoded whole and SYSTEM_SPARSITY measured on every dataset

    def measured(self, dataset: str) -> tuple[str, ...]:
        """What the runner measures for a condition on ``dataset``."""
        training = self.training if dataset == self.in_domain else ()
        if self.sparsity == ALL_DATASETS:
            return (*self.measures, *SYSTEM_SPARSITY, *training)
        return (*self.measures, *((*SPARSITY, *training) if dataset == self.in_domain else ()))

    def reference_measures(self, reference: "Reference") -> tuple[str, ...]:
        """What is measured for a reference: the study's measures, and for a sparse one the sparsity measures
        (:data:`SPARSITY`) a table shows (from its document and query vectors, as its kind measures them)."""
        shown = {m for t in self.tables for ms in t.columns.values() for m in ms}
        extra = tuple(m for m in SPARSITY if m in shown) if reference.system.type == "sparse" else ()
        return (*self.measures, *extra)

    def known(self) -> set[str]:
        """Every row a table or comparison may name: conditions, references and fusions."""
        return set(self.conditions) | {r.id for r in self.references}

    def reference(self, rid: str) -> Reference | None:
        return next((r for r in self.references if r.id == rid), None)

    def curves(self) -> dict[str, tuple[str, ...]]:
        """Every curve a frontier comparison may name, ``<sweep id>.<condition>``, with its points' ids."""
        return {f"{s.id}.{base}": tuple(p for p, b, _ in s.points() if b == base) for s in self.sweeps for base in s.bases}
