"""Teacher scores: the heterogeneous dense + sparse ensemble of Geng et al. (2024) and the rules applied to it.

Each teacher's scores are min-max normalised per query over its candidate documents, the teachers are averaged and the
result is multiplied by a scale -- exactly ``BiEncoderWrapper.get_scores_batch`` of the authors' training code
(github.com/zhichao-aws/opensearch-sparse-model-tuning-sample, ``scripts/train/bi_encoder_wrapper.py``). The offline
teachers are all-MiniLM-L6-v2 (dense, cosine) and SPLADE-tiny (siamese sparse, dot product); the judged positive can
be lifted above the negatives (:func:`lift_positive`). :mod:`train.mining` and :mod:`train.msmarco` use them.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

from encode.query import SpladeQueryEncoder
from kit.lazy import lazy_import
from kit.models import resolve_model

doc_encoder = lazy_import("encode.doc_encoder")  # torch: loaded when a teacher scores

#: Geng et al.'s ``(s - min) / (max - min + 1e-6)``: a constant score list normalises to all zeros (a uniform target).
MINMAX_EPS = 1e-6
POSITIVE_RULES = ("lift", "keep")

DENSE_TEACHER = "all-MiniLM-L6-v2"
SPARSE_TEACHER = "splade-tiny"
#: The offline teachers by name: BM25 (the mining run's own scores), MiniLM (dense, cosine), SPLADE-tiny (siamese).
TEACHERS = ("bm25", "minilm", "splade-tiny")
DEFAULT_TEACHERS = ("minilm", "splade-tiny")
_TEACHER_MODELS = {"minilm": DENSE_TEACHER, "splade-tiny": SPARSE_TEACHER}
_TEACHER_NAMES = {"bm25": "bm25", **_TEACHER_MODELS}
#: Chosen on SciFact train (see :func:`~train.mining.mine_offline`): the softmax over 8 candidates keeps 1.11 of its
#: ln 8 = 2.08 nats.
OFFLINE_SCALE = 5.0
#: log-odds of a lifted judged positive over the best negative (teacher-score units).
OFFLINE_MARGIN = 1.0


# ---- checks of numbers and names ----------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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


# ---- normalisation and ensembles ----------------------------------------------------------------------------------

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


def _final_scores(raw: np.ndarray, positive_rule: str, margin: float) -> np.ndarray:
    return lift_positive(raw, margin) if positive_rule == "lift" else raw


# ---- the offline teachers -----------------------------------------------------------------------------------------

def dense_teacher_scores(groups: Sequence[tuple[str, list[str]]], queries: Mapping[str, str],
                         docs: Mapping[str, str], model: str = DENSE_TEACHER, device: str | None = None,
                         batch_size: int = 32) -> tuple[list[np.ndarray], dict]:
    """Cosine similarity of sentence-transformers embeddings, each text encoded once; returns scores and model info."""
    from sentence_transformers import SentenceTransformer

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
    encoder = doc_encoder.SpladeDocEncoder(model, activation="relu", device=device, batch_size=batch_size)
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
