"""Ranking losses of the paper's objective (L_rank in eq. 2) and the student scores they consume.

The student score is the inner product of the inference-free query vector (token presence × IDF) and the
document vector: ``s(q, d) = q · d`` (paper section 3). Every loss takes a score matrix whose row ``q`` holds
the scores of query ``q``'s own documents, column 0 being the positive and columns 1.. its hard negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def own_doc_scores(query_vectors: Tensor, doc_vectors: Tensor) -> Tensor:
    """Scores of each query against its own documents, shape [Q, D].

    Args:
        query_vectors: [Q, V].
        doc_vectors: [Q*D, V], query ``q``'s documents in rows ``q*D .. q*D+D-1`` (positive first).
    """
    n_queries, n_docs = _check_pair(query_vectors, doc_vectors)
    grouped = doc_vectors.reshape(n_queries, n_docs // n_queries, -1)
    return torch.einsum("qv,qdv->qd", query_vectors, grouped)


def batch_scores(query_vectors: Tensor, doc_vectors: Tensor) -> Tensor:
    """Scores of every query against every document of the batch, shape [Q, Q*D] (for in-batch negatives)."""
    _check_pair(query_vectors, doc_vectors)
    return query_vectors @ doc_vectors.T


def kl_loss(student_scores: Tensor, teacher_scores: Tensor) -> Tensor:
    """KL(softmax(teacher) ‖ softmax(student)) per query, averaged over queries.

    ``kl_div(..., reduction="batchmean")`` divides the sum over all entries by Q, which is exactly the mean over
    queries of the per-query KL divergence. The teacher side carries no gradient.

    Args:
        student_scores: [Q, D] student scores of each query's own documents.
        teacher_scores: [Q, D] teacher (cross-encoder) scores of the same documents.
    """
    _check_scores(student_scores, teacher_scores)
    return F.kl_div(
        F.log_softmax(student_scores, dim=1),
        F.log_softmax(teacher_scores.detach(), dim=1),
        log_target=True,
        reduction="batchmean",
    )


def margin_mse_loss(student_scores: Tensor, teacher_scores: Tensor) -> Tensor:
    """MarginMSE (Hofstätter et al., 2020): mean of ``((s₀ − s_k) − (t₀ − t_k))²`` over queries and negatives k.

    Column 0 is the positive; every other column is a negative. The teacher side carries no gradient.
    """
    _check_scores(student_scores, teacher_scores)
    teacher_scores = teacher_scores.detach()
    student_margin = student_scores[:, :1] - student_scores[:, 1:]
    teacher_margin = teacher_scores[:, :1] - teacher_scores[:, 1:]
    return F.mse_loss(student_margin, teacher_margin)


def infonce_loss(scores: Tensor, *, temperature: float = 1.0, in_batch: bool = False) -> Tensor:
    """InfoNCE: cross-entropy of ``scores / temperature`` with each query's positive as the target.

    Args:
        scores: ``in_batch=False``: [Q, D] scores of each query's own documents (positive in column 0), from
            :func:`own_doc_scores`. ``in_batch=True``: [Q, Q*D] scores against every document of the batch, laid
            out as :func:`batch_scores` gives them, so query ``q``'s positive is column ``q*D``; the documents of
            the other queries (their positives included) act as extra negatives.
        temperature: softmax temperature, > 0.
        in_batch: use all documents of the batch as candidates.

    Note: with in-batch negatives the authors' public code drops the other queries' positives from the candidates;
    here every document of the batch is a candidate, as in sentence-transformers' MultipleNegativesRankingLoss.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if scores.dim() != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(f"scores must have shape [Q, D] with D >= 2, got {tuple(scores.shape)}")
    n_queries = scores.shape[0]
    if in_batch:
        if scores.shape[1] % n_queries:
            raise ValueError(f"in-batch scores must have shape [Q, Q*D], got {tuple(scores.shape)}")
        targets = torch.arange(n_queries, device=scores.device) * (scores.shape[1] // n_queries)
    else:
        targets = torch.zeros(n_queries, dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores / temperature, targets)


def _check_pair(query_vectors: Tensor, doc_vectors: Tensor) -> tuple[int, int]:
    if query_vectors.dim() != 2 or doc_vectors.dim() != 2 or query_vectors.shape[1] != doc_vectors.shape[1]:
        raise ValueError(
            f"expected query vectors [Q, V] and doc vectors [Q*D, V], got {tuple(query_vectors.shape)} "
            f"and {tuple(doc_vectors.shape)}"
        )
    n_queries, n_docs = query_vectors.shape[0], doc_vectors.shape[0]
    if n_queries == 0 or n_docs % n_queries:
        raise ValueError(f"{n_docs} doc vectors cannot be split evenly over {n_queries} queries")
    return n_queries, n_docs


def _check_scores(student_scores: Tensor, teacher_scores: Tensor) -> None:
    if student_scores.dim() != 2 or student_scores.shape[1] < 2 or student_scores.shape[0] == 0:
        raise ValueError(f"scores must have shape [Q, D] with D >= 2, got {tuple(student_scores.shape)}")
    if teacher_scores.shape != student_scores.shape:
        raise ValueError(
            f"teacher scores {tuple(teacher_scores.shape)} do not match student scores {tuple(student_scores.shape)}"
        )
