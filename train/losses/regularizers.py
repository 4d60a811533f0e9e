"""FLOPS regularizer on document vectors, with the paper's ℓ0 mask (eq. 3–5).

Document vectors here carry no IDF factor: eq. 3 divides the IDF-weighted vector ``w_j`` by ``IDF_j``, which
gives back the model's own activation, so the regularizer sees the raw (non-IDF) document weights.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_vectors(doc_vectors: Tensor) -> None:
    if doc_vectors.dim() != 2 or doc_vectors.shape[0] == 0:
        raise ValueError(f"doc_vectors must have shape [N, V] with N >= 1, got {tuple(doc_vectors.shape)}")


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and threshold < 0:
        raise ValueError(f"threshold must be None or >= 0, got {threshold}")


def doc_l0(doc_vectors: Tensor) -> Tensor:
    """‖w_i‖₀ of each document: the number of non-zero vocabulary weights, shape [N] (float, no gradient)."""
    _check_vectors(doc_vectors)
    return (doc_vectors.detach() != 0).sum(dim=1).to(doc_vectors.dtype)


def l0_mask(doc_vectors: Tensor, threshold: float | None) -> Tensor:
    """The paper's mask M_i = 1[‖w_i‖₀ > t] (section 4.1), shape [N], no gradient.

    A document that already has at most ``t`` active tokens gets 0 and leaves the FLOPS sum. ``threshold=None``
    masks nothing (all ones), which is plain FLOPS.
    """
    _check_threshold(threshold)
    l0 = doc_l0(doc_vectors)
    if threshold is None:
        return torch.ones_like(l0)
    return (l0 > threshold).to(doc_vectors.dtype)


def flops_loss(doc_vectors: Tensor, threshold: float | None = None) -> Tensor:
    """FLOPS of a batch of document vectors, optionally with the ℓ0 mask (paper eq. 3 and 4).

    ``L = Σ_j ( (1/N) Σ_i M_i |w_ij| )²`` over the N documents of the batch (positives and negatives alike).
    The mean divides by **all** N documents, masked ones included: a masked document contributes zeros, it does
    not shrink the denominator. The mask is computed without gradient, so masked documents receive exactly zero
    gradient from this term.

    This equals sentence-transformers' ``FlopsLoss(threshold=t).compute_loss_from_embeddings`` for the
    non-negative vectors a SPLADE model produces (that implementation omits ``|·|``, which only matters for
    negative weights); both divide by N.

    Note: the authors' public trainer reshapes the batch to ``[Q, D, V]`` and sums the FLOPS of each document
    slot (positive, first negative, ...) computed over the Q queries; this function follows eq. 3 (one FLOPS
    over all N documents), as sentence-transformers' ``SpladeLoss`` does.

    Args:
        doc_vectors: [N, V] document vectors (no IDF factor).
        threshold: t of eq. 5; ``None`` disables the mask.
    """
    _check_vectors(doc_vectors)
    mask = l0_mask(doc_vectors, threshold)
    mean_weight = (doc_vectors.abs() * mask.unsqueeze(1)).sum(dim=0) / doc_vectors.shape[0]
    return (mean_weight**2).sum()


def l1_loss(doc_vectors: Tensor, threshold: float | None = None) -> Tensor:
    """Mean ℓ1 norm of a batch of document vectors, optionally with the paper's ℓ0 mask.

    ``L = (1/N) Σ_i M_i Σ_j |w_ij|``: the document regularizer of Li-LSR (Nardini et al., "Effective Inference-Free
    Retrieval for Learned Sparse Representations", SIGIR 2025, λ_d 1e-5 "Big" / 1e-4 "Medium"). Unlike FLOPS it
    penalises every activation alike, not the tokens many documents share. ``threshold`` applies the mask M of
    eq. 5 exactly as :func:`flops_loss` does (masked documents count in N and get zero gradient).
    """
    _check_vectors(doc_vectors)
    mask = l0_mask(doc_vectors, threshold)
    return (doc_vectors.abs().sum(dim=1) * mask).sum() / doc_vectors.shape[0]
