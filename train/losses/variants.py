"""ℓ0 approximation activation variants of the paper (section 4.2, Table 3, section 5.3.3).

Each variant maps the raw max-pooled MLM logits ``x`` [N, V] of a batch of documents to two sets of document
vectors: one for the ranking loss and one for the FLOPS regularizer. SPLADE's activation is
``log(1 + relu(x))``; the paper's ℓ0 activation replaces ``relu`` by ``σ(x) = log(1 + relu(x))`` (eq. 1 and 6),
i.e. one more ``log1p``. The decoupled variants apply it to only one of the two objectives.

The activations themselves are :func:`encode.activations.activate` (the encoder uses the same code at indexing
time); their names are ``relu``, ``l0``, ``l0x2``, ``l0x3``.
"""

from __future__ import annotations

from torch import Tensor

from encode.activations import activate
from train.names import VARIANTS


def check_variant(name: str) -> tuple[str, str]:
    """(ranking activation, FLOPS activation) of a variant; ValueError naming the choices otherwise."""
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


def variant_vectors(max_logits: Tensor, variant: str) -> tuple[Tensor, Tensor]:
    """(rank_vectors, flops_vectors) of a variant, both [N, V], from the max-pooled logits ``x`` [N, V].

    ``x`` is the max over a document's (non-padding) tokens of the MLM logits. Because every activation is
    monotone non-decreasing, activating the max equals max-pooling the activated token logits (eq. 1).
    When both objectives use the same activation the same tensor is returned twice.
    """
    rank_name, flops_name = check_variant(variant)
    rank_vectors = activate(max_logits, rank_name)
    flops_vectors = rank_vectors if flops_name == rank_name else activate(max_logits, flops_name)
    return rank_vectors, flops_vectors
