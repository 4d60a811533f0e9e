"""Training measures: what a trained model's own log says about its training, one value per model.

A study that lists ``training: [flops_term, ranking, ...]`` reads them from each model's ``log_history.json`` (the
trainer's logged steps) at the last logging window: the regularizer's weighted term ``λ·FLOPS`` (λ after its
warm-up), the ranking loss, their ratio (> 1: the FLOPS term dominates), the fraction of the batch's documents the ℓ0
mask exempted, and the documents' mean non-zero count in training; ``masked_mean`` is the exempted fraction
averaged over the whole training (every logging window): how much the mask binds through it. They are measured on the
in-domain dataset's row, shown as mean ± sd over the seeds like any measure, and have no per-item values: no
comparison tests them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from eval.schema import TRAINING_METRICS
from kit.errors import InputError

TRAINING_MEASURES = dict(zip(TRAINING_METRICS, (  # the record's names (eval.schema), each with what it is
    "λ·FLOPS, the weighted regularizer (λ after its warm-up)",
    "the ranking (distillation) loss",
    "λ·FLOPS over the ranking loss (> 1: FLOPS-dominated)",
    "the fraction of the batch's documents the ℓ0 mask exempts (‖w‖₀ ≤ t)",
    "the documents' mean non-zero count in the training batch",
    "the fraction of documents the ℓ0 mask exempts, averaged over every logging window of the training"), strict=True))


def training_measures(model: Path) -> dict[str, float]:
    """The training measures of a model from its ``log_history.json``: the terms of its last logging window (each the
    trainer's mean over the window's steps) with its ``step``, and ``masked_mean`` over every window; a term the log
    lacks (``masked_fraction`` without the mask) is left out; InputError when the log is unreadable or holds no loss
    terms."""
    path = Path(model) / "log_history.json"
    try:
        logged = [e for e in json.loads(path.read_text(encoding="utf-8")) if "ranking" in e and "flops" in e]
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the training log ({exc})", fix="retrain the model (delete its folder)")
    if not logged:
        raise InputError(path, "no logged loss terms", fix="train with logging_steps below max_steps")
    last = logged[-1]
    flops_term, ranking = float(last["lambda"]) * float(last["flops"]), float(last["ranking"])
    terms = {"step": int(last["step"]), "flops_term": flops_term, "ranking": ranking,
             "flops_over_ranking": flops_term / ranking if ranking else math.inf}
    terms.update({k: float(last[k]) for k in ("masked_fraction", "doc_l0") if k in last})
    if all("masked_fraction" in e for e in logged):
        terms["masked_mean"] = sum(float(e["masked_fraction"]) for e in logged) / len(logged)
    if not all(math.isfinite(v) for v in terms.values()):
        raise InputError(path, f"non-finite loss terms at step {terms['step']}: {terms}", fix="retrain the model")
    return terms
