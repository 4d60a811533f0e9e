"""What a system is: the document encoder, query encoder, bi-encoder or member runs it ranks with.

Plain data: recipes (:mod:`eval.recipe`) parse YAML into these, the engine (:mod:`pipeline.dataset`) turns them into
cached artifacts, and the system kinds (:mod:`pipeline.systems`) make their runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from index.backends import get_backend

CORPUS_IDF_TABLE = "corpus-idf"
"""``query: {encoder: lilsr, table: corpus-idf}``: the corpus IDF used as a lookup table (repeated tokens summed)."""

TRAINED_PREFIX = "trained:"
"""``doc.model`` of a system whose documents come from a model the kit trains itself (``doc: {trained: <row>}``):
the model of that condition (:func:`train.conditions.trained_model`), trained on demand and cached."""


@dataclass(frozen=True)
class DocSpec:
    model: str
    activation: str = "relu"

    @property
    def trained(self) -> str | None:
        """The condition this doc encoder is trained by, or None for a model named by hub id / directory."""
        return self.model[len(TRAINED_PREFIX):] if self.model.startswith(TRAINED_PREFIX) else None


@dataclass(frozen=True)
class QuerySpec:
    encoder: str
    idf: str = "corpus"
    table: str | None = None  # lilsr: Li-LSR lookup table (file or model dir); default: the doc model's directory


@dataclass(frozen=True)
class DenseSpec:
    """A bi-encoder for :mod:`index.dense`: offline short name, hub id or directory; ``max_length`` None = the
    model's own."""

    model: str
    max_length: int | None = None


@dataclass
class System:
    """One ranked list per query. ``type`` names its kind (:data:`pipeline.systems.SYSTEM_KINDS`): ``bm25``;
    ``sparse`` (``doc`` + ``query``); ``dense`` (``dense``); ``fusion`` (``members``: the systems whose runs it
    fuses)."""

    id: str
    label: str
    type: str
    paper: str | None = None
    doc: DocSpec | None = None
    query: QuerySpec | None = None
    dense: DenseSpec | None = None
    expected: dict[str, dict[str, float]] = field(default_factory=dict)
    tolerance: float = 0.0005
    members: tuple["System", ...] = ()


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
        return get_backend(self.backend, dict(self.params))
