"""System kinds: what a system's run is keyed by and how it is made, one class per ``type`` of system.

:data:`SYSTEM_KINDS` maps a system's ``type`` to its kind, as Pyserini's ``document_encoder_class_map`` maps an
encoder's name to its class. :class:`pipeline.dataset.DatasetRun` asks the kind of each system for its run artifact
(:meth:`SystemKind.run_artifact`) and has it make the run (:meth:`SystemKind.make`); scoring is the engine's.
A new kind is one subclass of :class:`SystemKind` and one entry in :data:`SYSTEM_KINDS`.

Every default a run depends on is a class attribute of its kind, read both by the search call and by the run's key
(BM25's ``k1`` and ``b``, the fusion's method), so the two can never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from index.anserini import BM25_B, BM25_K1, build_flat_index, search_bm25
from index.dense import encode_corpus, load_encoder, search
from kit.lazy import lazy_import
from kit.manifest import Artifact
from kit.validate import EFFICIENCY
from pipeline import artifacts
from pipeline.metrics import sparsity_stats
from pipeline.specs import DocSpec, System

if TYPE_CHECKING:
    from pipeline.dataset import DatasetRun

fusion = lazy_import("pyserini.fusion")  # loaded when runs are fused
trectools = lazy_import("pyserini.trectools")

REMOVE_QUERY = True
"""BEIR's convention: a hit whose document id equals the query id is dropped (Anserini's ``-removeQuery``). The
exact dense search (:func:`index.dense.search`) has no such option; its runs' keys carry the setting all the same."""


class SystemKind:
    """One kind of system. ``type``: the name recipes give it; ``extra_measures``: what :meth:`make` measures beside
    the recipe's measures (ir-measures names)."""

    type: str = ""
    extra_measures: tuple[str, ...] = ()

    def run_inputs(self, run: DatasetRun, system: System) -> dict:
        """What ``system``'s run depends on besides the search settings (its index, its queries, its parameters)."""
        raise NotImplementedError

    def run_artifact(self, run: DatasetRun, system: System) -> Artifact:
        """The TREC run of ``system`` (:func:`pipeline.artifacts.run`)."""
        return artifacts.run(run.root, system.id, f"{self.type}-run", self.run_inputs(run, system),
                             run.settings.hits, REMOVE_QUERY)

    def make(self, run: DatasetRun, system: System, art: Artifact) -> dict[str, float]:
        """Write ``system``'s run to ``art`` (reused when cached) and return the measures the kind adds."""
        raise NotImplementedError

    def plan(self, run: DatasetRun, system: System) -> list[tuple[str, Artifact]]:
        """``(what, artifact)`` of each stage before the run, for ``--dry-run``."""
        return []

    def documents(self, system: System) -> DocSpec | None:
        """The sparse document encoding the system ranks (None: it needs none)."""
        return None


class BM25(SystemKind):
    """Anserini's BEIR "flat" condition: BM25 over the corpus text, stemmed, stopwords removed."""

    type = "bm25"
    k1 = BM25_K1
    b = BM25_B

    def index(self, run: DatasetRun) -> Artifact:
        return artifacts.flat_index(run.root, run.corpus())

    def run_inputs(self, run: DatasetRun, system: System) -> dict:
        return {"index": self.index(run).key, "queries": run.ds.queries_fingerprint(), "k1": self.k1, "b": self.b}

    def make(self, run: DatasetRun, system: System, art: Artifact) -> dict[str, float]:
        index = self.index(run)
        if not index.reusable(run.settings.force):
            with run.timer("index"):
                info = build_flat_index(run.ds.docs(), index.path, threads=run.settings.threads, overwrite=True,
                                        inputs=index.inputs)
            index.complete(documents=info.get("documents"))
        if not art.reusable(run.settings.force):
            with run.timer("search"):
                search_bm25(index.path, run.ds.queries, art.path, hits=run.settings.hits, threads=run.settings.threads,
                            remove_query=REMOVE_QUERY, k1=self.k1, b=self.b)
            art.complete()
        return {}

    def plan(self, run: DatasetRun, system: System) -> list[tuple[str, Artifact]]:
        return [("flat index", self.index(run))]


class Sparse(SystemKind):
    """Learned sparse retrieval: document vectors in an impact index, query vectors from the system's query encoder,
    searched by the recipe's backend; FLOPS, Doc_Len and Query_Len measured from the indexed vectors."""

    type = "sparse"
    extra_measures = EFFICIENCY

    def run_inputs(self, run: DatasetRun, system: System) -> dict:
        return {"index": run.index(system.doc).key, "queries": run.queries(system).key}

    def make(self, run: DatasetRun, system: System, art: Artifact) -> dict[str, float]:
        index = run.impact_index(system.doc)
        queries = run.query_vectors(system)
        if not art.reusable(run.settings.force):
            with run.timer("search"):
                run.settings.index.get().search(index, queries, art.path, hits=run.settings.hits,
                                                threads=run.settings.threads, remove_query=REMOVE_QUERY)
            art.complete()
        if run.cut(system.doc):  # vectors cut to the query terms have no length of their own
            return {}
        with run.timer("sparsity stats"):
            return sparsity_stats(run.doc_frequencies(system.doc), queries.values())

    def plan(self, run: DatasetRun, system: System) -> list[tuple[str, Artifact]]:
        return [("vectors", run.vectors(system.doc)), ("index", run.index(system.doc)),
                ("queries", run.queries(system))]

    def documents(self, system: System) -> DocSpec | None:
        return system.doc


class Dense(SystemKind):
    """A bi-encoder (:mod:`index.dense`): the corpus embedded once per model and max length, exact inner-product
    search."""

    type = "dense"

    def corpus(self, run: DatasetRun, system: System) -> Artifact:
        spec = system.dense
        return artifacts.dense_corpus(run.root, run.corpus(), run.model_files(spec.model), spec, run.precision())

    def run_inputs(self, run: DatasetRun, system: System) -> dict:
        return {"index": self.corpus(run, system).key, "queries": run.ds.queries_fingerprint(), "device": run.device}

    def make(self, run: DatasetRun, system: System, art: Artifact) -> dict[str, float]:
        if art.reusable(run.settings.force):
            return {}
        spec, settings = system.dense, run.settings
        encoder = load_encoder(spec.model, device=settings.device, max_length=spec.max_length)
        corpus = self.corpus(run, system)
        if not corpus.reusable(settings.force):
            print(f"[{run.key}] dense-encoding {run.ds.num_docs or ''} docs with {spec.model}", flush=True)
            with run.timer("encode docs (dense)"):
                meta = encode_corpus(run.ds.docs(), encoder, corpus.path, model=spec.model,
                                     batch_size=settings.batch_size, total=run.ds.num_docs)
            corpus.complete(documents=meta["count"])
        with run.timer("search (dense)"):
            search(corpus.path, run.ds.queries, encoder, art.path, hits=settings.hits, batch_size=settings.batch_size)
        art.complete()
        return {}

    def plan(self, run: DatasetRun, system: System) -> list[tuple[str, Artifact]]:
        return [("dense index", self.corpus(run, system))]


class Fusion(SystemKind):
    """The fusion of its ``members``' runs (``pyserini.fusion.normalize``: each run's scores min-max normalised per
    query over its top ``hits``, then summed), keyed by the members' run keys; a member's run is made when missing."""

    type = "fusion"
    method = "pyserini.fusion.normalize"

    def run_artifact(self, run: DatasetRun, system: System) -> Artifact:
        return artifacts.fused_run(run.root, f"fusion-{system.id}", self.method,
                                   [run.run(m).key for m in system.members], run.settings.hits)

    def make(self, run: DatasetRun, system: System, art: Artifact) -> dict[str, float]:
        parts = [run.run(m) for m in system.members]
        for member, part in zip(system.members, parts):
            if not part.ready():
                run.make_run(member)
        if not art.reusable(run.settings.force):
            fused = fusion.normalize([trectools.TrecRun(str(p.path)) for p in parts], depth=run.settings.hits,
                                     k=run.settings.hits)
            fused.save_to_txt(str(art.path), tag=f"fusion-{system.id}")
            art.complete()
        return {}

    def plan(self, run: DatasetRun, system: System) -> list[tuple[str, Artifact]]:
        return [(f"run of {m.id}", run.run(m)) for m in system.members]


SYSTEM_KINDS: dict[str, type[SystemKind]] = {kind.type: kind for kind in (BM25, Sparse, Dense, Fusion)}


def kind_of(system: System) -> SystemKind:
    """The kind of ``system`` (ValueError naming the known ones for another ``type``)."""
    try:
        return SYSTEM_KINDS[system.type]()
    except KeyError:
        raise ValueError(f"system {system.id!r}: unknown type {system.type!r}; one of "
                         f"{', '.join(SYSTEM_KINDS)}") from None


def fusion_of(system_id: str, members, label: str | None = None) -> System:
    """A fusion system of ``members`` (systems whose runs it fuses)."""
    return System(id=system_id, label=label or system_id, type="fusion", members=tuple(members))
