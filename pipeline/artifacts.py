"""Each stage's cached artifact: its folder, its name and the description of its inputs, in one place per stage.

A stage's key is the SHA-256 of the description returned here (:class:`kit.manifest.Artifact`); an artifact is
reused only when its manifest holds exactly that description. These functions compute nothing: they take the
fingerprints and settings a stage depends on and say where its result lives and what it is keyed by. The code that
computes each one is :class:`pipeline.dataset.DatasetRun`'s (documents, queries, statistics) and the system kinds'
(:mod:`pipeline.systems`: indexes, runs).

Changing a description changes every key of that stage, so every cached artifact of it is recomputed.
"""

from __future__ import annotations

from pathlib import Path

from index.anserini import flat_index_inputs
from kit.manifest import Artifact
from pipeline.settings import model_label
from pipeline.specs import DenseSpec, DocSpec, IndexSpec


def doc_vectors(root: Path, corpus: str, model_files: str, doc: DocSpec, encoding: str, max_length: int,
                factor: float, precision: dict, only_terms_of_queries: str | None = None) -> Artifact:
    """The quantized document vectors of ``doc``'s model and activation (a ``python -m encode`` folder);
    ``only_terms_of_queries``: the key of the query vectors they are cut to (None: whole vectors)."""
    inputs = {"stage": "doc-vectors", "corpus": corpus, "model": model_files, "encoding": encoding,
              "activation": doc.activation, "max_length": max_length, "factor": factor, **precision}
    label = f"{model_label(doc.model)}.{doc.activation}.len{max_length}.q{factor:g}"
    if only_terms_of_queries is not None:
        inputs["only_terms_of_queries"] = only_terms_of_queries
        label += ".query-terms"
    return Artifact.named(root / "vectors", label, inputs, is_dir=True)


def _beside(vectors: Artifact) -> str:
    """The name of ``vectors`` without its key: artifacts made from them are named after them."""
    return vectors.path.name.rsplit(".", 1)[0]


def impact_index(root: Path, vectors: Artifact, spec: IndexSpec) -> Artifact:
    """The sparse index of ``vectors`` in ``spec``'s backend, with its parameters."""
    inputs = {"stage": "impact-index", "vectors": vectors.key, "backend": spec.backend,
              "params": [list(p) for p in spec.params]}
    return Artifact.named(root / "indexes", f"{_beside(vectors)}.{spec.backend}", inputs, is_dir=True)


def doc_stats(root: Path, vectors: Artifact, stage: str) -> Artifact:
    """Counts over ``vectors`` cached beside them: ``doc-frequencies`` (documents per token) or ``doc-lengths``."""
    suffix = {"doc-frequencies": "doc-df", "doc-lengths": "doc-len"}[stage]
    return Artifact.named(root / "stats", f"{_beside(vectors)}.{suffix}", {"stage": stage, "vectors": vectors.key},
                          suffix=".json")


def corpus_idf(root: Path, corpus: str, tokenizer_files: str) -> Artifact:
    """The corpus IDF of a tokenizer's tokens (BoW x IDF queries)."""
    return Artifact.named(root / "idf", "corpus-idf", {"stage": "corpus-idf", "corpus": corpus,
                                                      "tokenizer": tokenizer_files}, suffix=".json")


def idf_lookup_table(root: Path, corpus: str, tokenizer_files: str) -> Artifact:
    """The corpus IDF written as a Li-LSR lookup table."""
    return Artifact.named(root / "tables", "corpus-idf", {"stage": "idf-lookup-table", "corpus": corpus,
                                                         "tokenizer": tokenizer_files}, suffix=".json")


def query_vectors(root: Path, system_id: str, queries: str, encoder: str, tokenizer_files: str, weights: dict,
                  factor: float) -> Artifact:
    """A system's quantized query vectors: the queries, the encoder, its tokenizer and what it weighs tokens with."""
    inputs = {"stage": "query-vectors", "queries": queries, "encoder": encoder, "tokenizer": tokenizer_files,
              "weights": weights, "factor": factor}
    return Artifact.named(root / "queries", system_id, inputs, suffix=".jsonl")


def flat_index(root: Path, corpus: str) -> Artifact:
    """The BM25 (flat) Lucene index of the corpus text (:func:`index.anserini.flat_index_inputs`)."""
    return Artifact.named(root / "indexes", "flat", flat_index_inputs(corpus), is_dir=True)


def dense_corpus(root: Path, corpus: str, model_files: str, spec: DenseSpec, precision: dict) -> Artifact:
    """The corpus embedded by a bi-encoder (:mod:`index.dense`)."""
    inputs = {"stage": "dense-corpus", "corpus": corpus, "model": model_files, "max_length": spec.max_length,
              **precision}
    return Artifact.named(root / "dense", f"{model_label(spec.model)}.len{spec.max_length or 'model'}", inputs,
                          is_dir=True)


def run(root: Path, system_id: str, stage: str, inputs: dict, hits: int, remove_query: bool) -> Artifact:
    """A system's TREC run: keyed by its kind's ``stage``, the ``inputs`` the kind names and the search settings."""
    return Artifact.named(root / "runs", system_id, {"stage": stage, **inputs, "hits": hits,
                                                     "remove_query": remove_query}, suffix=".trec")


def fused_run(root: Path, label: str, method: str, runs: list[str], hits: int) -> Artifact:
    """The fusion of runs (their keys, in order) by ``method``, over each run's top ``hits``."""
    return Artifact.named(root / "runs", label, {"stage": "fusion", "method": method, "runs": runs, "hits": hits},
                          suffix=".trec")
