"""Distillation training data: one JSONL line per training example, a ``.meta.json`` sidecar saying how it was made.

The paper ("Exploring l0 Sparsification for Inference-free Sparse Retrievers", SIGIR 2025, Section 5.1) fine-tunes on
MS MARCO with teacher scores prepared "following (Geng et al., 2024)" and a KL-divergence ranking loss. Every builder
here writes the same record, which the trainer reads with :func:`load_training_file`::

    {"query_id": "0", "query": "...", "doc_ids": ["pos", "neg1", ...], "docs": ["...", ...],
     "teacher_scores": [12.3, 4.5, ...]}

``docs[0]`` is a judged positive, the rest are hard negatives; the three lists align and hold at least two documents.

Two builders:

- :func:`mine_offline` (no network): BEIR SciFact's train split, BM25 hard negatives from the kit's Anserini flat index
  and the heterogeneous dense + sparse teacher ensemble of Geng et al. (2024, arXiv:2411.04403): each teacher's
  scores are min-max normalised per query over its candidate documents, the teachers are averaged and the result is
  multiplied by a scale -- exactly ``BiEncoderWrapper.get_scores_batch`` of the authors' training code
  (github.com/zhichao-aws/opensearch-sparse-model-tuning-sample, ``scripts/train/bi_encoder_wrapper.py``, which
  defaults to ``score_scale=30``). The offline teachers are all-MiniLM-L6-v2 (dense, cosine) and SPLADE-tiny (siamese
  sparse, dot product).
- :func:`build_msmarco` (online): the authors' released MS MARCO training data, ``opensearch-project/msmarco-hard-
  negatives`` on the Hugging Face hub, with passage and query texts from ``ir_datasets``.

Both write atomically and reuse a complete earlier output (JSONL and sidecar) when it was made with the same options.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from kit.argtypes import ArgumentParser, non_negative_float, positive_float, positive_int
from kit.errors import InputError, cli
from kit.io import atomic_write, read_jsonl, write_json
from kit.paths import dataset_slug, work_dir

FIELDS = ("query_id", "query", "doc_ids", "docs", "teacher_scores")
FORMAT_VERSION = 1

#: Geng et al.'s ``(s - min) / (max - min + 1e-6)``: a constant score list normalises to all zeros (a uniform target).
MINMAX_EPS = 1e-6
POSITIVE_RULES = ("lift", "keep")
SAMPLINGS = ("top", "spread")

DENSE_TEACHER = "all-MiniLM-L6-v2"
SPARSE_TEACHER = "splade-tiny"
#: The offline teachers by name: BM25 (the mining run's own scores), MiniLM (dense, cosine), SPLADE-tiny (siamese).
TEACHERS = ("bm25", "minilm", "splade-tiny")
DEFAULT_TEACHERS = ("minilm", "splade-tiny")
_TEACHER_MODELS = {"minilm": DENSE_TEACHER, "splade-tiny": SPARSE_TEACHER}
_TEACHER_NAMES = {"bm25": "bm25", **_TEACHER_MODELS}
#: Chosen on SciFact train (see :func:`mine_offline`): the softmax over 8 candidates keeps 1.11 of its ln 8 = 2.08 nats.
OFFLINE_SCALE = 5.0
#: log-odds of a lifted judged positive over the best negative (teacher-score units).
OFFLINE_MARGIN = 1.0

HF_HARD_NEGATIVES = "opensearch-project/msmarco-hard-negatives"
HF_HARD_NEGATIVES_FILES = "data/train-*.parquet"
MSMARCO_IR_DATASET = "msmarco-passage/train"


# ---- the file format ----------------------------------------------------------------------------------------------

class TrainExample(NamedTuple):
    """One training example: a query, its candidate documents (positive first) and the teacher's score of each."""

    query_id: str
    query: str
    doc_ids: list[str]
    docs: list[str]
    teacher_scores: list[float]


def meta_path(path: str | Path) -> Path:
    """The sidecar of a training file: ``<file>.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_record(rec: dict) -> TrainExample:
    """A validated :class:`TrainExample` from one decoded line; ValueError says what is wrong."""
    for field in ("query_id", "query"):
        if not isinstance(rec[field], str):
            raise ValueError(f"{field!r} must be a string, found {type(rec[field]).__name__}")
    if not rec["query_id"].strip():
        raise ValueError("empty 'query_id'")
    for field in ("doc_ids", "docs", "teacher_scores"):
        if not isinstance(rec[field], list):
            raise ValueError(f"{field!r} must be a list, found {type(rec[field]).__name__}")
    doc_ids, docs, scores = rec["doc_ids"], rec["docs"], rec["teacher_scores"]
    if not len(doc_ids) == len(docs) == len(scores):
        raise ValueError(f"lists differ in length: {len(doc_ids)} doc_ids, {len(docs)} docs, "
                         f"{len(scores)} teacher_scores")
    if len(doc_ids) < 2:
        raise ValueError(f"{len(doc_ids)} document(s); an example needs a positive and at least one negative")
    for i, (doc_id, doc, score) in enumerate(zip(doc_ids, docs, scores)):
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise ValueError(f"doc_ids[{i}] is {doc_id!r}, not a non-empty string")
        if not isinstance(doc, str):
            raise ValueError(f"docs[{i}] is {type(doc).__name__}, not a string")
        if not _is_number(score):
            raise ValueError(f"teacher_scores[{i}] is {score!r}, not a finite number")
    if len(set(doc_ids)) != len(doc_ids):
        repeated = next(d for d, n in Counter(doc_ids).items() if n > 1)
        raise ValueError(f"document {repeated!r} appears twice")
    return TrainExample(rec["query_id"], rec["query"], list(doc_ids), list(docs), [float(s) for s in scores])


def iter_training_file(path: str | Path) -> Iterator[TrainExample]:
    """Stream the examples of a training file (plain or ``.gz``), validating each line.

    Raises :class:`~kit.errors.InputError` naming ``file:line`` for malformed JSON, a missing field, a field of the
    wrong type, lists of different lengths, fewer than two documents, a non-numeric or non-finite score, a repeated
    document, and for a file without any example.
    """
    count = 0
    for lineno, rec in read_jsonl(path, required=FIELDS):
        try:
            yield _check_record(rec)
        except ValueError as err:
            raise InputError(path, str(err), lineno, fix="each line is {\"query_id\": str, \"query\": str, "
                             "\"doc_ids\": [str], \"docs\": [str], \"teacher_scores\": [number]}, positive first, "
                             ">= 2 documents") from None
        count += 1
    if not count:
        raise InputError(path, "no training examples", fix="build one with `python -m train.data mine-offline`")


def load_training_file(path: str | Path) -> list[TrainExample]:
    """All examples of a training file, validated (see :func:`iter_training_file`)."""
    return list(iter_training_file(path))


# ---- teacher scores -----------------------------------------------------------------------------------------------

def minmax_normalize(scores: Sequence[float], eps: float = MINMAX_EPS) -> np.ndarray:
    """``(s - min) / (max - min + eps)`` over one query's candidates (Geng et al., 2024): best ~1, worst 0."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or not len(s):
        raise ValueError("minmax_normalize needs a non-empty 1-d list of scores")
    return (s - s.min()) / (s.max() - s.min() + eps)


def ensemble_scores(per_teacher: Sequence[Sequence[float]], scale: float) -> np.ndarray:
    """Geng et al.'s heterogeneous ensemble: the mean of each teacher's min-max normalised scores, times ``scale``."""
    if not per_teacher:
        raise ValueError("ensemble_scores needs at least one teacher")
    normalized = [minmax_normalize(s) for s in per_teacher]
    if len({len(s) for s in normalized}) != 1:
        raise ValueError("every teacher must score the same candidates")
    return np.mean(normalized, axis=0) * _positive_number("scale", scale)


def lift_positive(scores: Sequence[float], margin: float) -> np.ndarray:
    """Raise ``scores[0]`` (the judged positive) to at least ``max(scores[1:]) + margin``; others are unchanged.

    A positive the teacher already ranks first by ``margin`` or more keeps its score, so the rule only corrects the
    teacher where it contradicts the relevance judgments.
    """
    s = np.array(scores, dtype=np.float64)
    if len(s) < 2:
        raise ValueError("lift_positive needs a positive and at least one negative")
    if not (_is_number(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    s[0] = max(s[0], s[1:].max() + margin)
    return s


def softmax_entropy(scores: Sequence[float]) -> float:
    """Entropy (nats) of ``softmax(scores)``: 0 for a one-hot target, ``ln(n)`` for a uniform one."""
    s = np.asarray(scores, dtype=np.float64)
    logp = s - s.max()
    logp -= np.log(np.exp(logp).sum())
    return float(-(np.exp(logp) * logp).sum())


def _positive_number(name: str, value) -> float:
    if not (_is_number(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def _final_scores(raw: np.ndarray, positive_rule: str, margin: float) -> np.ndarray:
    return lift_positive(raw, margin) if positive_rule == "lift" else raw


# ---- output with statistics ---------------------------------------------------------------------------------------

class _Stats:
    """Running statistics of the written examples."""

    def __init__(self):
        self.examples = 0
        self.docs = 0
        self.entropy = 0.0
        self.normalized_entropy = 0.0
        self.positive_at_top = 0
        self.positive_probability = 0.0
        self.queries: set[str] = set()

    def add(self, ex: TrainExample) -> None:
        self.examples += 1
        self.docs += len(ex.doc_ids)
        self.queries.add(ex.query_id)
        h = softmax_entropy(ex.teacher_scores)
        self.entropy += h
        self.normalized_entropy += h / math.log(len(ex.doc_ids))
        self.positive_at_top += ex.teacher_scores[0] >= max(ex.teacher_scores[1:])
        s = np.asarray(ex.teacher_scores)
        self.positive_probability += float(1 / np.exp(s - s[0]).sum())

    def summary(self) -> dict:
        n = max(self.examples, 1)
        return {"examples": self.examples, "queries": len(self.queries), "mean_docs_per_example": self.docs / n,
                "mean_teacher_entropy": self.entropy / n,
                "mean_teacher_entropy_normalized": self.normalized_entropy / n,
                "positive_at_top": self.positive_at_top / n,
                "mean_positive_probability": self.positive_probability / n}


def _write_examples(out: Path, examples: Iterable[TrainExample], total: int | None = None) -> dict:
    """Write ``examples`` as JSONL (atomically) and return their statistics."""
    from tqdm.auto import tqdm

    stats = _Stats()
    with atomic_write(out) as fh:
        for ex in tqdm(examples, total=total, unit="example", desc=f"writing {out.name}"):
            fh.write(json.dumps(ex._asdict(), ensure_ascii=False) + "\n")
            stats.add(ex)
    if not stats.examples:
        out.unlink()
        raise RuntimeError(f"no training example could be built for {out}")
    return stats.summary()


def _reusable(out: Path, params: dict, overwrite: bool) -> bool:
    """True when ``out`` and its sidecar exist and were made with ``params``; InputError when the options differ."""
    meta = meta_path(out)
    if overwrite or not (out.exists() and meta.exists()):
        return False
    try:
        made_with = json.loads(meta.read_text(encoding="utf-8")).get("params", {})
    except json.JSONDecodeError:
        return False  # a damaged sidecar: rebuild
    differ = {k: (made_with.get(k), v) for k, v in params.items() if made_with.get(k) != v}
    if differ:
        detail = ", ".join(f"{k}={old!r} (asked {new!r})" for k, (old, new) in differ.items())
        raise InputError(out, f"exists but was made with {detail}",
                         fix="pass overwrite=True (--overwrite) or another output path (--out)")
    return True


# ---- offline mining (SciFact) -------------------------------------------------------------------------------------

def default_offline_path(dataset: str = "scifact", split: str = "train", negatives: int = 7,
                         teachers: Sequence[str] = DEFAULT_TEACHERS) -> Path:
    """``work_dir()/train/<dataset>-<split>.bm25-neg<k>.<teacher>+<teacher>....jsonl``."""
    return work_dir() / "train" / f"{dataset_slug(dataset)}-{split}.bm25-neg{negatives}.{'+'.join(teachers)}.jsonl"


def offline_options(path: str | Path) -> dict | None:
    """The :func:`mine_offline` options whose default output is ``path`` (SciFact), or None for any other path."""
    import re

    path = Path(path)
    match = re.fullmatch(r"scifact-(\w+)\.bm25-neg(\d+)\.([\w+-]+)\.jsonl", path.name)
    if not match or path.parent.resolve() != (work_dir() / "train").resolve():
        return None
    teachers = tuple(match.group(3).split("+"))
    if not set(teachers) <= set(TEACHERS):
        return None
    return {"dataset": "scifact", "split": match.group(1), "negatives": int(match.group(2)), "teachers": teachers}


def default_flat_index(dataset: str, corpus_fingerprint: str):
    """The BM25 index the table runner uses too: the :class:`kit.manifest.Artifact`
    ``work_dir()/<dataset>/indexes/flat.<key of the corpus>``."""
    from index.anserini import flat_index_inputs
    from kit.manifest import Artifact

    return Artifact.named(work_dir() / dataset_slug(dataset) / "indexes", "flat",
                          flat_index_inputs(corpus_fingerprint), is_dir=True)


def read_run_scores(run_path: str | Path) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}`` from a TREC run."""
    scores: dict[str, dict[str, float]] = {}
    with open(run_path, encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) == 6:
                scores.setdefault(fields[0], {})[fields[2]] = float(fields[4])
    return scores


def read_ranking(run_path: str | Path) -> dict[str, list[str]]:
    """``{qid: [docid, ...]}`` from a TREC run, best first (by score, ties in file order)."""
    hits: dict[str, list[tuple[float, int, str]]] = {}
    with open(run_path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise InputError(run_path, f"expected 6 columns, found {len(fields)}", lineno,
                                 fix="a TREC run line is 'qid Q0 docid rank score tag'")
            hits.setdefault(fields[0], []).append((-float(fields[4]), lineno, fields[2]))
    return {qid: [doc for *_, doc in sorted(rows)] for qid, rows in hits.items()}


def candidate_groups(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                     ranking: Mapping[str, Sequence[str]], negatives: int) -> tuple[list[tuple[str, list[str]]], dict]:
    """One ``(qid, [positive, neg, ...])`` per judged (query, positive) pair, negatives the best-ranked non-positives.

    A negative is any retrieved document the query does not judge relevant (relevance > 0); every positive of the
    query is excluded, not only the example's own. Pairs whose query retrieved no negative are left out and counted.
    """
    groups: list[tuple[str, list[str]]] = []
    counts = Counter()
    for qid in queries:
        positives = [doc for doc, rel in qrels.get(qid, {}).items() if rel > 0]
        if not positives:
            continue
        negs = [doc for doc in ranking.get(qid, ()) if qrels[qid].get(doc, 0) <= 0][:negatives]
        if not negs:
            counts["pairs_without_negatives"] += len(positives)
            continue
        counts["queries_with_fewer_negatives"] += len(negs) < negatives
        groups.extend((qid, [pos, *negs]) for pos in positives)
    return groups, dict(counts)


def _doc_texts(docs: Iterable[tuple[str, str]], wanted: set[str], source: str) -> dict[str, str]:
    texts = {doc_id: text for doc_id, text in docs if doc_id in wanted}
    missing = sorted(wanted - texts.keys())
    if missing:
        raise InputError(source, f"{len(missing)} judged or retrieved documents are not in the corpus "
                                 f"(e.g. {missing[0]!r})",
                         fix="the qrels and the corpus must come from the same dataset")
    return texts


def dense_teacher_scores(groups: Sequence[tuple[str, list[str]]], queries: Mapping[str, str],
                         docs: Mapping[str, str], model: str = DENSE_TEACHER, device: str | None = None,
                         batch_size: int = 32) -> tuple[list[np.ndarray], dict]:
    """Cosine similarity of sentence-transformers embeddings, each text encoded once; returns scores and model info."""
    from sentence_transformers import SentenceTransformer

    from kit.models import resolve_model

    encoder = SentenceTransformer(resolve_model(model), device=device)
    qids = sorted({qid for qid, _ in groups})
    dids = sorted({d for _, ids in groups for d in ids})
    kwargs = dict(batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=True)
    q_emb = dict(zip(qids, encoder.encode([queries[q] for q in qids], **kwargs)))
    d_emb = dict(zip(dids, encoder.encode([docs[d] for d in dids], **kwargs)))
    scores = [np.array([float(q_emb[qid] @ d_emb[d]) for d in ids]) for qid, ids in groups]
    return scores, {"name": model, "kind": "dense, cosine similarity", "max_seq_length": encoder.max_seq_length}


def sparse_teacher_scores(groups: Sequence[tuple[str, list[str]]], queries: Mapping[str, str],
                          docs: Mapping[str, str], model: str = SPARSE_TEACHER, device: str | None = None,
                          batch_size: int = 32) -> tuple[list[np.ndarray], dict]:
    """Siamese SPLADE (ReLU, max pooling) on both sides, dot product of the sparse vectors; returns scores and info."""
    from encode.doc_encoder import SpladeDocEncoder
    from encode.query import SpladeQueryEncoder

    encoder = SpladeDocEncoder(model, activation="relu", device=device, batch_size=batch_size)
    qids = sorted({qid for qid, _ in groups})
    dids = sorted({d for _, ids in groups for d in ids})
    q_vec = dict(zip(qids, SpladeQueryEncoder(encoder).encode_batch([queries[q] for q in qids])))
    d_vec = dict(zip(dids, encoder.encode([docs[d] for d in dids], show_progress=True)))

    def dot(q: Mapping[str, float], d: Mapping[str, float]) -> float:
        return float(sum(w * d.get(t, 0.0) for t, w in q.items()))

    scores = [np.array([dot(q_vec[qid], d_vec[d]) for d in ids]) for qid, ids in groups]
    return scores, {"name": model, "kind": "siamese sparse (SPLADE, relu), dot product",
                    "max_length": encoder.max_length}


def positive_at_top(scores: Iterable[Sequence[float]]) -> float:
    """Fraction of score lists whose first entry (the positive) is at least as high as every other."""
    flags = [s[0] >= max(s[1:]) for s in scores]
    return sum(flags) / len(flags) if flags else float("nan")


def entropy_by_scale(normalized: Sequence[np.ndarray], scales: Iterable[float], positive_rule: str,
                     margin: float) -> dict[str, float]:
    """Mean softmax entropy of the final teacher scores for each candidate ``scale`` (to choose one)."""
    return {f"{s:g}": float(np.mean([softmax_entropy(_final_scores(n * s, positive_rule, margin)) for n in normalized]))
            for s in scales}


def mine_offline(dataset: str = "scifact", split: str = "train", negatives: int = 7, depth: int = 100,
                 out: str | Path | None = None, scale: float = OFFLINE_SCALE, positive_rule: str = "lift",
                 margin: float = OFFLINE_MARGIN, *, device: str | None = None, batch_size: int = 32, threads: int = 2,
                 index_dir: str | Path | None = None, overwrite: bool = False, command: str | None = None,
                 teachers: Sequence[str] = DEFAULT_TEACHERS) -> Path:
    """Mine distillation data offline: BM25 hard negatives, dense + sparse teacher ensemble, positive first.

    1. ``kit.data.load_dataset(dataset, split)`` (SciFact train: 809 queries, 919 judged pairs);
    2. BM25 (Anserini defaults k1=0.9, b=0.4) over the flat index ``default_flat_index(dataset)`` -- the one the table
       runner uses; built if missing, reused otherwise -- retrieving ``depth`` documents per query;
    3. one example per judged (query, positive) pair, as the authors' SciFact demo does
       (``demo_train_data.py`` of opensearch-sparse-model-tuning-sample): ``[positive, k best-ranked non-relevant]``;
       a query with two positives gives two examples with the same negatives, so every judgment is used;
    4. teacher scores: :func:`ensemble_scores` of the ``teachers`` (:data:`TEACHERS`): all-MiniLM-L6-v2 cosine and
       SPLADE-tiny siamese dot products by default, ``bm25`` adds the mining run's own BM25 scores (a candidate
       BM25 did not retrieve, i.e. a judged positive below ``depth``, scores 0);
    5. ``positive_rule="lift"`` (default) applies :func:`lift_positive` with ``margin``; ``"keep"`` keeps the
       ensemble's score. On SciFact train (7 negatives) the ensemble ranks the judged positive first in only 57% of
       the examples (MiniLM alone 55%, SPLADE-tiny 54%; the meta records the rates), so keeping its scores would
       teach the student to put a non-relevant document above the judged one in 43% of them: the default trusts the
       judgments over two small teachers and keeps the teachers' ordering of the negatives.

    ``scale`` (default 5) puts the teacher scores in the student's range (BoW x IDF dot products, roughly 0-30 for
    the tiny model) and was chosen by the mean softmax entropy it leaves over 8 candidates (recorded for several
    scales in the meta as ``entropy_by_scale``; lifted, margin 1): 1.89 nats at scale 1 (nearly uniform; the
    maximum is ln 8 = 2.08), 1.11 at 5, 0.59 at 10 and 0.33 at Geng et al.'s 30 (nearly one-hot).
    Returns the output path; an existing complete output made with the same options is reused.
    """
    from kit.data import load_dataset

    negatives = _count("negatives", negatives)
    depth = _count("depth", depth)
    if depth < negatives:
        raise ValueError(f"depth ({depth}) must be at least negatives ({negatives})")
    scale = _positive_number("scale", scale)
    positive_rule = _choice("positive rule", positive_rule, POSITIVE_RULES)
    lift_positive([1.0, 0.0], margin)  # validates the margin
    teachers = tuple(teachers)
    if not teachers or len(set(teachers)) != len(teachers) or not set(teachers) <= set(TEACHERS):
        raise ValueError(f"teachers must be distinct names among {', '.join(TEACHERS)}, got {list(teachers)}")
    from kit.fingerprint import model_fingerprint
    from kit.hub import local_model_dir

    out = Path(out) if out is not None else default_offline_path(dataset, split, negatives, teachers)
    ds = load_dataset(dataset, split)
    index = default_flat_index(dataset, ds.corpus_fingerprint()) if index_dir is None else None
    index_dir = Path(index_dir) if index_dir is not None else index.path
    params = {"dataset": dataset, "split": split, "negatives": negatives, "depth": depth, "scale": scale,
              "positive_rule": positive_rule, "margin": margin if positive_rule == "lift" else None,
              "teachers": [_TEACHER_NAMES[t] for t in teachers],
              # what the examples are made of: a changed corpus, split or teacher model is never served stale
              "fingerprints": {"corpus": ds.corpus_fingerprint(), "queries": ds.queries_fingerprint(),
                               "qrels": ds.qrels_fingerprint(),
                               "teachers": [model_fingerprint(local_model_dir(_TEACHER_MODELS[t]))
                                            for t in teachers if t in _TEACHER_MODELS]}}
    if _reusable(out, params, overwrite):
        return out

    seconds: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    groups, counts, bm25_scores = _bm25_groups(ds, index_dir, depth, negatives, threads, lap)
    if index is not None and not index.ready():
        index.complete()
    wanted = {d for _, ids in groups for d in ids}
    texts = _doc_texts(ds.docs(), wanted, ds.source or dataset)
    lap("read texts")
    scored: dict[str, list[np.ndarray]] = {}
    infos = []
    for teacher in teachers:
        if teacher == "bm25":
            scored[teacher] = [np.array([bm25_scores.get(qid, {}).get(d, 0.0) for d in ids]) for qid, ids in groups]
            infos.append({"name": "bm25", "kind": "BM25 of the mining run (Anserini, k1 0.9, b 0.4); a candidate it "
                                                  f"did not retrieve in its top {depth} scores 0"})
        else:
            score = dense_teacher_scores if teacher == "minilm" else sparse_teacher_scores
            scored[teacher], info = score(groups, ds.queries, texts, model=_TEACHER_MODELS[teacher], device=device,
                                          batch_size=batch_size)
            infos.append(info)
        lap(f"teacher {teacher}")

    normalized = [ensemble_scores(per_teacher, 1.0) for per_teacher in zip(*(scored[t] for t in teachers))]
    examples = (TrainExample(qid, ds.queries[qid], ids, [texts[d] for d in ids],
                             [round(float(x), 6) for x in _final_scores(n * scale, positive_rule, margin)])
                for (qid, ids), n in zip(groups, normalized))
    stats = _write_examples(out, examples, total=len(groups))
    lap("write")
    pairs = sum(1 for qid in ds.queries for rel in ds.qrels.get(qid, {}).values() if rel > 0)
    meta = {
        "format": FORMAT_VERSION, "params": params, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command or (f"train.data.mine_offline(dataset={dataset!r}, split={split!r}, "
                               f"negatives={negatives}, depth={depth}, scale={scale}, "
                               f"positive_rule={positive_rule!r}, margin={margin})"),
        "dataset": ds.name, "split": split, "source": ds.source,
        "examples_per": "judged (query, positive) pair; positive first, then the best-ranked non-relevant documents",
        "negatives": {"source": "bm25", "index": str(index_dir), "k1": 0.9, "b": 0.4, "depth": depth,
                      "per_example": negatives, "excluded": "every document the query judges relevant"},
        "teachers": infos,
        "normalization": "per example, each teacher min-max over the example's candidates "
                         f"((s - min) / (max - min + {MINMAX_EPS:g})), then the mean over teachers (Geng et al., 2024)",
        "scale": scale,
        "positive_rule": ({"rule": "lift", "margin": margin,
                           "definition": "score[0] = max(score[0], max(score[1:]) + margin) after scaling"}
                          if positive_rule == "lift" else {"rule": "keep"}),
        "counts": {"queries": len(ds.queries), "judged_pairs": pairs, **counts},
        "stats": {**stats,
                  "ensemble_positive_at_top": positive_at_top(normalized),
                  **{f"{t}_positive_at_top": positive_at_top(scored[t]) for t in teachers},
                  "entropy_by_scale": entropy_by_scale(normalized, (1, 2, 5, 10, 20, 30), positive_rule, margin)},
        "seconds": {**seconds, "total": round(time.perf_counter() - start, 3)},
    }
    write_json(meta_path(out), meta)
    return out


def _bm25_groups(ds, index_dir: Path, depth: int, negatives: int, threads: int,
                 lap: Callable[[str], None]) -> tuple[list[tuple[str, list[str]]], dict, dict]:
    """Build or reuse the flat index, run BM25 to ``depth`` and form the candidate groups (with the BM25 scores)."""
    from index.anserini import build_flat_index, search_bm25

    from index.anserini import flat_index_inputs

    info = build_flat_index(ds.docs(), index_dir, threads=threads, inputs=flat_index_inputs(ds.corpus_fingerprint()))
    lap("index (reused)" if info.get("reused") else "index")
    with tempfile.TemporaryDirectory(prefix="kit-mine.") as tmp:
        search_bm25(index_dir, ds.queries, Path(tmp) / "bm25.trec", hits=depth, threads=threads, remove_query=False)
        ranking = read_ranking(Path(tmp) / "bm25.trec")
        scores = read_run_scores(Path(tmp) / "bm25.trec")
    lap("bm25 search")
    return (*candidate_groups(ds.queries, ds.qrels, ranking, negatives), scores)


# ---- MS MARCO (online) --------------------------------------------------------------------------------------------

class HardNegativeRow(NamedTuple):
    """One row of ``opensearch-project/msmarco-hard-negatives``: a query id, candidate passage ids, teacher scores."""

    query_id: str
    doc_ids: list[str]
    scores: list[float]


def read_hard_negatives(paths: Iterable[str | Path], batch_rows: int = 4096) -> Iterator[HardNegativeRow]:
    """Stream the rows of the hub dataset's Parquet shards, validating each one.

    Format, as published (evidence, since nothing can be downloaded here):

    - the dataset card (huggingface.co/datasets/opensearch-project/msmarco-hard-negatives, README.md at e93a363)
      declares one config with ``data_files: data/train-*``, format parquet, 502,939 train examples and the
      features ``query: string``, ``docs: sequence<string>``, ``scores: sequence<float64>``; for each MS MARCO train
      query, the top-100 passages retrieved by opensearch-neural-sparse-encoding-doc-v1, with re-ranking scores from
      the cross-encoders ms-marco-MiniLM-L12-v2 and monot5-3b-msmarco;
    - the authors' ``prepare_msmarco_hard_negatives.py`` (opensearch-sparse-model-tuning-sample) maps ``query`` and
      each of ``docs`` through the ``_id`` of BeIR/msmarco's queries and corpus, i.e. they are MS MARCO ids, the ids
      ``ir_datasets`` uses for ``msmarco-passage``; their KD training (``configs/config_l0.yaml``: ``data_type: kd``,
      ``loss_types: [kldiv]``, default ``score_scale: 1.0``) feeds ``scores`` to the KL loss unchanged;
    - a third-party audit of the same revision reports two Parquet shards (917,108,315 bytes) and notes that rows carry
      no positive label: the judged positive must come from the MS MARCO qrels.

    Integer ids are accepted and turned into strings. A row whose lists differ in length, hold fewer than two
    passages or a non-finite score raises InputError naming the file and the row (counted from 1, as ``line``).
    """
    import pyarrow.parquet as pq

    for path in paths:
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, ValueError) as err:
            raise InputError(path, f"not a readable Parquet file ({err})", fix="download the shard again") from None
        missing = {"query", "docs", "scores"} - set(parquet.schema_arrow.names)
        if missing:
            raise InputError(path, f"no column(s) {', '.join(sorted(missing))}",
                             fix=f"expected the columns query, docs, scores of {HF_HARD_NEGATIVES}")
        row = 0
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=["query", "docs", "scores"]):
            for query, docs, scores in zip(*(batch.column(c).to_pylist() for c in ("query", "docs", "scores"))):
                row += 1
                yield _check_hard_negative(path, row, query, docs, scores)


def _check_hard_negative(path, row: int, query, docs, scores) -> HardNegativeRow:
    fix = "each row is query: str, docs: [str], scores: [float] of equal length >= 2"
    if query is None or docs is None or scores is None:
        raise InputError(path, f"row {row}: null value", row, fix=fix)
    if len(docs) != len(scores) or len(docs) < 2:
        raise InputError(path, f"row {row}: {len(docs)} docs and {len(scores)} scores", row, fix=fix)
    if not all(_is_number(s) for s in scores):
        raise InputError(path, f"row {row}: non-finite or missing score", row, fix=fix)
    return HardNegativeRow(str(query), [str(d) for d in docs], [float(s) for s in scores])


def select_candidates(row: HardNegativeRow, positives: Iterable[str], negatives: int,
                      sampling: str = "top") -> tuple[list[str], list[float]] | None:
    """``([positive, negatives...], their scores)`` for one row, or None when no judged positive is a candidate.

    The positive is the judged positive with the highest stored score. Negatives are the other candidates that are
    not judged positive, ordered by stored score (best first): ``top`` keeps the ``negatives`` best (the hardest),
    ``spread`` keeps ``negatives`` evenly spaced ranks from the best to the worst (the teacher's whole score range).
    """
    _choice("sampling", sampling, SAMPLINGS)
    judged = set(positives)
    order = sorted(range(len(row.doc_ids)), key=lambda i: -row.scores[i])
    pos = [i for i in order if row.doc_ids[i] in judged]
    if not pos:
        return None
    rest = [i for i in order if row.doc_ids[i] not in judged]
    if not rest:
        return None
    if sampling == "spread" and len(rest) > negatives:
        picks = np.unique(np.round(np.linspace(0, len(rest) - 1, negatives)).astype(int))
        rest = [rest[i] for i in picks]
    chosen = [pos[0], *rest[:negatives]]
    return [row.doc_ids[i] for i in chosen], [row.scores[i] for i in chosen]


def msmarco_examples(rows: Iterable[HardNegativeRow], queries: Mapping[str, str],
                     qrels: Mapping[str, Iterable[str]], doc_texts: Callable[[list[str]], Mapping[str, str]],
                     negatives: int = 7, sampling: str = "top", scale: float = 1.0, positive_rule: str = "keep",
                     margin: float = 1.0, counts: Counter | None = None, chunk: int = 1000) -> Iterator[TrainExample]:
    """Turn hub rows into :class:`TrainExample` s: texts by id, positive from ``qrels``, scores ``x scale``.

    ``doc_texts(ids)`` returns ``{id: text}`` for a batch of passage ids (``ir_datasets``' docstore in
    :func:`build_msmarco`); rows are processed ``chunk`` at a time. Rows that cannot be used are skipped and counted
    in ``counts`` (``unknown_query``, ``no_positive_in_candidates``).
    """
    counts = counts if counts is not None else Counter()
    negatives = _count("negatives", negatives)
    scale = _positive_number("scale", scale)
    _choice("positive rule", positive_rule, POSITIVE_RULES)
    rows = iter(rows)
    while batch := [row for _, row in zip(range(chunk), rows)]:
        picked = []
        for row in batch:
            counts["rows"] += 1
            if row.query_id not in queries:
                counts["unknown_query"] += 1
                continue
            chosen = select_candidates(row, qrels.get(row.query_id, ()), negatives, sampling)
            if chosen is None:
                counts["no_positive_in_candidates"] += 1
                continue
            picked.append((row.query_id, *chosen))
        texts = doc_texts(sorted({d for _, ids, _ in picked for d in ids})) if picked else {}
        for qid, ids, scores in picked:
            missing = [d for d in ids if d not in texts]
            if missing:
                raise InputError(None, f"passage {missing[0]!r} (query {qid!r}) is not in the MS MARCO collection",
                                 fix="the hard negatives and the passages must both be MS MARCO passage v1")
            final = _final_scores(np.asarray(scores) * scale, positive_rule, margin)
            yield TrainExample(qid, queries[qid], ids, [texts[d] for d in ids], [round(float(x), 6) for x in final])


def download_hard_negatives(revision: str | None = None) -> list[Path]:
    """Download (or find in the Hugging Face cache) the Parquet shards ``data/train-*.parquet``; needs a network."""
    from huggingface_hub import snapshot_download

    root = Path(snapshot_download(HF_HARD_NEGATIVES, repo_type="dataset", revision=revision,
                                  allow_patterns=[HF_HARD_NEGATIVES_FILES]))
    files = sorted(root.glob(HF_HARD_NEGATIVES_FILES))
    if not files:
        raise RuntimeError(f"{HF_HARD_NEGATIVES} has no {HF_HARD_NEGATIVES_FILES} at revision {revision or 'main'}")
    return files


def build_msmarco(out: str | Path, negatives: int = 7, sampling: str = "top", scale: float = 1.0,
                  positive_rule: str = "keep", margin: float = 1.0, *, limit: int | None = None,
                  hard_negatives: Sequence[str | Path] | None = None, revision: str | None = None,
                  overwrite: bool = False, command: str | None = None) -> Path:
    """The paper's training data: MS MARCO train queries with the authors' hard negatives and teacher scores.

    Rows come from ``hard_negatives`` (local Parquet shards) or are downloaded from :data:`HF_HARD_NEGATIVES`;
    query and passage texts, and the qrels that name each query's positive, come from ``ir_datasets``
    (``msmarco-passage/train``, whose passages ``ir_datasets`` already repairs for the collection's mixed encoding).
    One example per row whose candidates include a judged positive: that positive, then ``negatives`` candidates
    chosen by ``sampling`` (:func:`select_candidates`). Teacher scores are the stored cross-encoder scores times
    ``scale`` (1, as the authors' KD configuration uses them); ``positive_rule="keep"`` leaves the positive's score
    as stored, ``"lift"`` applies :func:`lift_positive`. ``limit`` stops after that many rows.
    """
    import ir_datasets

    negatives = _count("negatives", negatives)
    sampling = _choice("sampling", sampling, SAMPLINGS)
    scale = _positive_number("scale", scale)
    positive_rule = _choice("positive rule", positive_rule, POSITIVE_RULES)
    lift_positive([1.0, 0.0], margin)
    if limit is not None:
        _count("limit", limit)
    out = Path(out)
    params = {"dataset": "msmarco-passage", "split": "train", "negatives": negatives, "sampling": sampling,
              "scale": scale, "positive_rule": positive_rule, "margin": margin if positive_rule == "lift" else None,
              "limit": limit, "source": HF_HARD_NEGATIVES, "revision": revision}
    if _reusable(out, params, overwrite):
        return out

    start = time.perf_counter()
    files = [Path(p) for p in hard_negatives] if hard_negatives else download_hard_negatives(revision)
    ds = ir_datasets.load(MSMARCO_IR_DATASET)
    queries = {q.query_id: q.text for q in ds.queries_iter()}
    qrels: dict[str, set[str]] = {}
    for qrel in ds.qrels_iter():
        if qrel.relevance > 0:
            qrels.setdefault(qrel.query_id, set()).add(qrel.doc_id)
    store = ds.docs_store()

    def doc_texts(ids: list[str]) -> dict[str, str]:
        return {doc_id: doc.text for doc_id, doc in store.get_many(ids).items()}

    rows = read_hard_negatives(files)
    if limit is not None:
        rows = (row for _, row in zip(range(limit), rows))
    counts: Counter = Counter()
    stats = _write_examples(out, msmarco_examples(rows, queries, qrels, doc_texts, negatives, sampling, scale,
                                                  positive_rule, margin, counts), total=limit)
    meta = {
        "format": FORMAT_VERSION, "params": params, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command or (f"train.data.build_msmarco({str(out)!r}, negatives={negatives}, "
                               f"sampling={sampling!r}, scale={scale}, positive_rule={positive_rule!r})"),
        "dataset": "msmarco-passage", "split": "train",
        "source": {"hard_negatives": HF_HARD_NEGATIVES, "revision": revision or "main",
                   "files": [str(f) for f in files], "texts_and_qrels": f"ir_datasets:{MSMARCO_IR_DATASET}"},
        "examples_per": "hub row (query) whose candidates include a judged positive; positive first",
        "negatives": {"source": "top-100 of opensearch-neural-sparse-encoding-doc-v1 (stored in the dataset)",
                      "per_example": negatives, "sampling": sampling, "excluded": "judged positives"},
        "teachers": [{"name": "cross-encoder/ms-marco-MiniLM-L12-v2 + castorini/monot5-3b-msmarco",
                      "kind": "stored re-ranking scores of the dataset"}],
        "normalization": "none (stored scores)", "scale": scale,
        "positive_rule": ({"rule": "lift", "margin": margin,
                           "definition": "score[0] = max(score[0], max(score[1:]) + margin) after scaling"}
                          if positive_rule == "lift" else {"rule": "keep"}),
        "counts": dict(counts), "stats": stats, "seconds": {"total": round(time.perf_counter() - start, 3)},
    }
    write_json(meta_path(out), meta)
    return out


# ---- command line -------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m train.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, scale: float, rule: str) -> None:
        p.add_argument("--negatives", type=positive_int, default=7, help="hard negatives per example (default 7)")
        p.add_argument("--scale", type=positive_float, default=scale, help=f"teacher score scale (default {scale:g})")
        p.add_argument("--positive-rule", choices=POSITIVE_RULES, default=rule,
                       help=f"lift the judged positive above the negatives, or keep the teacher's score ({rule})")
        p.add_argument("--margin", type=non_negative_float, default=OFFLINE_MARGIN,
                       help="margin of a lifted positive over the best negative (default 1)")
        p.add_argument("--overwrite", action="store_true", help="rebuild even if the output exists")

    mine = sub.add_parser("mine-offline", help="BM25 negatives + MiniLM/SPLADE-tiny teachers (offline, SciFact)")
    mine.add_argument("--dataset", default="scifact", help="dataset name or BEIR directory (default scifact)")
    mine.add_argument("--split", default="train", help="qrels split (default train)")
    mine.add_argument("--depth", type=positive_int, default=100, help="BM25 depth to mine from (default 100)")
    mine.add_argument("--out", type=Path, help="output JSONL (default under work/train/)")
    mine.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    mine.add_argument("--batch-size", type=positive_int, default=32)
    mine.add_argument("--threads", type=positive_int, default=2)
    mine.add_argument("--teachers", nargs="+", choices=TEACHERS, default=list(DEFAULT_TEACHERS),
                      help="the teacher ensemble (default: %(default)s)")
    common(mine, OFFLINE_SCALE, "lift")

    marco = sub.add_parser("msmarco", help=f"MS MARCO train with {HF_HARD_NEGATIVES} (online)")
    marco.add_argument("--out", type=Path, required=True, help="output JSONL")
    marco.add_argument("--sampling", choices=SAMPLINGS, default="top", help="which negatives to keep (default top)")
    marco.add_argument("--limit", type=positive_int, help="stop after this many hub rows")
    marco.add_argument("--hard-negatives", nargs="+", type=Path, metavar="PARQUET",
                       help="local Parquet shards instead of downloading them")
    marco.add_argument("--revision", help="hub revision of the dataset (default main)")
    common(marco, 1.0, "keep")

    check = sub.add_parser("check", help="validate a training file and print its statistics")
    check.add_argument("file", type=Path)
    return parser


@cli
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    command = shlex.join(["python", "-m", "train.data", *argv])
    if args.command == "mine-offline":
        path = mine_offline(args.dataset, args.split, args.negatives, args.depth, args.out, args.scale,
                            args.positive_rule, args.margin, device=args.device, batch_size=args.batch_size,
                            threads=args.threads, overwrite=args.overwrite, command=command, teachers=args.teachers)
    elif args.command == "msmarco":
        path = build_msmarco(args.out, args.negatives, args.sampling, args.scale, args.positive_rule, args.margin,
                             limit=args.limit, hard_negatives=args.hard_negatives, revision=args.revision,
                             overwrite=args.overwrite, command=command)
    else:
        stats = _Stats()
        for ex in iter_training_file(args.file):
            stats.add(ex)
        print(json.dumps(stats.summary(), indent=2))
        return 0
    summary = json.loads(meta_path(path).read_text(encoding="utf-8"))["stats"]
    print(f"{path}\n{json.dumps(summary, indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
