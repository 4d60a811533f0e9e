"""Quadratic warm-up of the FLOPS weight λ_d.

SPLADE-style training does not apply the full regularizer weight from the first step: the weight grows
quadratically from 0 to λ_d over the first T steps (Formal et al., 2021), and the paper's authors use this
schedule (``flops_d_lambda`` with ``flops_d_T`` in their public training code). The same schedule is
sentence-transformers' ``SpladeRegularizerWeightSchedulerCallback(scheduler_type="quadratic")``.
"""

from __future__ import annotations

import math


def warmup_lambda(lambda_max: float, step: int, warmup_steps: int) -> float:
    """λ_eff(step) = λ · min(1, step / T)², the regularizer weight at ``step``.

    Args:
        lambda_max: λ_d, the weight reached at the end of warm-up (paper eq. 2); finite and >= 0.
        step: current optimizer step; >= 0. (The authors' trainer passes ``global_step + 1``, so its first
            update already has a small non-zero weight; sentence-transformers' callback passes ``global_step``.)
        warmup_steps: T, the number of warm-up steps; >= 0. ``T = 0`` applies λ from the first step.

    Raises:
        ValueError: on a negative or non-finite λ, a negative step or a negative T.
    """
    if not (math.isfinite(lambda_max) and lambda_max >= 0):
        raise ValueError(f"lambda_max must be a finite number >= 0, got {lambda_max}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if warmup_steps == 0 or step >= warmup_steps:
        return float(lambda_max)
    return float(lambda_max) * (step / warmup_steps) ** 2
