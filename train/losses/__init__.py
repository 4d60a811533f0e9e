"""The paper's training objective (eq. 2): ranking loss + warmed-up λ_d · FLOPS on document vectors.

Building blocks live in one small module each — :mod:`.ranking` (KL, MarginMSE, InfoNCE), :mod:`.regularizers`
(FLOPS and the ℓ0 mask, eq. 3–5), :mod:`.schedule` (quadratic λ warm-up) and :mod:`.variants` (ℓ0 activation
variants, Table 3). :class:`SparseDistillLoss` combines them and returns every term by name so a trainer can
log each one, as sentence-transformers' ``SpladeLoss`` does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from train.losses.ranking import batch_scores, infonce_loss, kl_loss, margin_mse_loss, own_doc_scores
from train.losses.regularizers import doc_l0, flops_loss, l0_mask, l1_loss
from train.losses.schedule import warmup_lambda
from train.losses.variants import check_variant, variant_vectors
from train.names import RANKING_LOSSES, REGULARIZERS, VARIANTS

__all__ = [
    "RANKING_LOSSES",
    "REGULARIZERS",
    "VARIANTS",
    "SparseDistillLoss",
    "batch_scores",
    "doc_l0",
    "flops_loss",
    "infonce_loss",
    "kl_loss",
    "l0_mask",
    "l1_loss",
    "margin_mse_loss",
    "own_doc_scores",
    "variant_vectors",
    "warmup_lambda",
]


class SparseDistillLoss(nn.Module):
    """``L = L_rank + λ_eff(step) · FLOPS_d`` for an inference-free sparse retriever (paper eq. 2–6).

    Args:
        lambda_d: λ_d, the FLOPS weight reached after warm-up (the paper sweeps it, e.g. 0.04 in section 5.3.2).
        ranking: ``"kl"`` (KL to the teacher's softmax), ``"margin_mse"``, ``"infonce"``, or ``"kl+inbatch"``: the KL
            term plus InfoNCE over every document of the batch (the other queries' documents as extra negatives,
            which have no teacher scores), each query's positive as the target.
        threshold: t of the ℓ0 mask (eq. 5), e.g. 200 in section 5.3.1; ``None`` gives plain FLOPS.
        warmup_steps: T of the quadratic λ warm-up; 0 applies λ_d from the first step.
        variant: activation variant of :data:`VARIANTS` (``"baseline"``, ``"l0"``, ``"de-l0"``, ...); it decides
            how :meth:`doc_vectors` turns max-pooled logits into ranking and FLOPS vectors.
        temperature: InfoNCE temperature (``ranking="infonce"`` only).
        in_batch_negatives: InfoNCE over every document of the batch (``ranking="infonce"`` only).
        regularizer: ``"flops"`` (eq. 3) or ``"l1"`` (mean ℓ1 norm, the Li-LSR paper's document regularizer); the
            ℓ0 mask (``threshold``) applies to either.

    Raises:
        ValueError: on an unknown ranking loss or variant, a negative λ_d, T or t, or an InfoNCE-only option
            given to another ranking loss.
    """

    def __init__(
        self,
        *,
        lambda_d: float,
        ranking: str = "kl",
        threshold: float | None = None,
        warmup_steps: int = 0,
        variant: str = "baseline",
        temperature: float = 1.0,
        in_batch_negatives: bool = False,
        regularizer: str = "flops",
    ) -> None:
        super().__init__()
        if ranking not in RANKING_LOSSES:
            raise ValueError(f"unknown ranking loss {ranking!r}; choose one of {', '.join(RANKING_LOSSES)}")
        if ranking not in ("infonce", "kl+inbatch") and temperature != 1.0 or ranking != "infonce" and in_batch_negatives:
            raise ValueError("temperature applies to ranking='infonce' and 'kl+inbatch' only, in_batch_negatives to "
                             "'infonce' only")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if threshold is not None and threshold < 0:
            raise ValueError(f"threshold must be None or >= 0, got {threshold}")
        if regularizer not in REGULARIZERS:
            raise ValueError(f"unknown regularizer {regularizer!r}; choose one of {', '.join(REGULARIZERS)}")
        check_variant(variant)
        warmup_lambda(lambda_d, 0, warmup_steps)  # validates λ_d and T
        self.lambda_d = float(lambda_d)
        self.ranking = ranking
        self.threshold = threshold
        self.warmup_steps = warmup_steps
        self.variant = variant
        self.temperature = temperature
        self.in_batch_negatives = in_batch_negatives
        self.regularizer = regularizer

    def doc_vectors(self, max_logits: Tensor) -> tuple[Tensor, Tensor]:
        """(rank_vectors, flops_vectors) of this loss's variant from max-pooled MLM logits [N, V]."""
        return variant_vectors(max_logits, self.variant)

    def forward(
        self,
        query_vectors: Tensor,
        doc_rank_vectors: Tensor,
        doc_flops_vectors: Tensor,
        teacher_scores: Tensor | None = None,
        step: int = 0,
    ) -> dict[str, Tensor]:
        """Compute the loss and its named terms.

        Args:
            query_vectors: [Q, V] inference-free query vectors (token presence × IDF).
            doc_rank_vectors: [Q*D, V] document vectors for the ranking loss, query ``q``'s D documents in rows
                ``q*D ..`` with the positive first.
            doc_flops_vectors: [Q*D, V] document vectors for FLOPS (same tensor as ``doc_rank_vectors`` unless
                the variant decouples them).
            teacher_scores: [Q, D] teacher scores of each query's documents; required by ``kl`` and ``margin_mse``.
            step: optimizer step, for the λ warm-up.

        Returns:
            ``loss`` (to back-propagate), ``ranking`` and ``flops`` (the unweighted terms, ``loss = ranking +
            lambda * flops``; with ``regularizer="l1"`` also ``l1``, ``loss = ranking + lambda * l1`` and ``flops``
            detached, for the log), ``lambda`` (λ_eff at ``step``), ``doc_l0`` (mean ‖w‖₀ of the documents; every
            variant's two vectors share their zeros, since log1p keeps 0 at 0) and ``masked_fraction`` (fraction
            of documents the ℓ0 mask excludes; 0 without a threshold). The last three are detached 0-dim tensors.
        """
        if doc_rank_vectors.shape != doc_flops_vectors.shape:
            raise ValueError(
                f"rank vectors {tuple(doc_rank_vectors.shape)} and FLOPS vectors "
                f"{tuple(doc_flops_vectors.shape)} must have the same shape"
            )
        ranking = self._ranking_loss(query_vectors, doc_rank_vectors, teacher_scores)
        flops = flops_loss(doc_flops_vectors, self.threshold)
        l1 = l1_loss(doc_flops_vectors, self.threshold) if self.regularizer == "l1" else None
        lam = warmup_lambda(self.lambda_d, step, self.warmup_steps)
        with torch.no_grad():
            l0 = doc_l0(doc_flops_vectors)
            masked = 1.0 - l0_mask(doc_flops_vectors, self.threshold)
        terms = {"l1": l1} if l1 is not None else {}
        return {
            "loss": ranking + lam * (flops if l1 is None else l1),
            "ranking": ranking,
            "flops": flops if l1 is None else flops.detach(),
            **terms,
            "lambda": ranking.new_tensor(lam),
            "doc_l0": l0.mean(),
            "masked_fraction": masked.mean(),
        }

    def _ranking_loss(self, query_vectors: Tensor, doc_vectors: Tensor, teacher_scores: Tensor | None) -> Tensor:
        if self.ranking == "kl+inbatch":
            if teacher_scores is None:
                raise ValueError("ranking='kl+inbatch' needs teacher_scores of shape [Q, D]")
            kl = kl_loss(own_doc_scores(query_vectors, doc_vectors), teacher_scores)
            return kl + infonce_loss(batch_scores(query_vectors, doc_vectors), temperature=self.temperature,
                                     in_batch=True)
        if self.ranking == "infonce":
            scorer = batch_scores if self.in_batch_negatives else own_doc_scores
            return infonce_loss(
                scorer(query_vectors, doc_vectors), temperature=self.temperature, in_batch=self.in_batch_negatives
            )
        if teacher_scores is None:
            raise ValueError(f"ranking={self.ranking!r} needs teacher_scores of shape [Q, D]")
        student_scores = own_doc_scores(query_vectors, doc_vectors)
        loss_fn = kl_loss if self.ranking == "kl" else margin_mse_loss
        return loss_fn(student_scores, teacher_scores)

    def extra_repr(self) -> str:
        options = {"ranking": self.ranking, "lambda_d": self.lambda_d, "threshold": self.threshold,
                   "warmup_steps": self.warmup_steps, "variant": self.variant, "regularizer": self.regularizer}
        if self.ranking == "infonce":
            options.update(temperature=self.temperature, in_batch_negatives=self.in_batch_negatives)
        return ", ".join(f"{key}={value!r}" for key, value in options.items())
