"""Paired significance tests, the Holm correction, and the verdict a claimed direction gets from them.

Two systems are compared over the same items (queries, or documents for Doc_Len), paired: the two-sided paired
t-test (``scipy.stats.ttest_rel``) and the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero differences dropped,
exact p-values for small samples). A family of comparisons reported together is corrected with Holm's step-down method
(``statsmodels.stats.multitest.multipletests(method="holm")``, family-wise error rate), and a claimed direction is judged
by :func:`verdict` on the corrected t-test p-value: "reproduced" only when the measured difference has the claimed sign
and is significant at :data:`ALPHA`.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

TIE = 1e-12
"""Two per-item values closer than this are equal (win/tie/loss, identical sides)."""
ALPHA = 0.05
TESTS = "paired two-sided t-test (scipy.stats.ttest_rel) and Wilcoxon signed-rank test (scipy.stats.wilcoxon)"
CORRECTION = "Holm's step-down correction (statsmodels multipletests, method='holm') over the comparisons shown together"
NOT_DISTINGUISHABLE = "not distinguishable at this scale"


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value): a condition's spread over its training seeds."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def paired_tests(new: Sequence[float], old: Sequence[float]) -> dict[str, float]:
    """Paired tests of ``new`` against ``old`` (same items, same order): ``{"t", "p_t", "p_wilcoxon"}``.

    Identical sides give ``t = 0`` and p-values 1 (scipy would return NaN / raise); a constant non-zero difference
    gives an infinite t and ``p_t = 0``.

    Raises:
        ValueError: samples of different lengths, fewer than 2 items, or a non-finite value.
    """
    from scipy import stats

    if len(new) != len(old) or len(new) < 2:
        raise ValueError(f"paired tests need two equally long samples of at least 2 values, got {len(new)} and {len(old)}")
    if not all(math.isfinite(x) for x in (*new, *old)):
        raise ValueError("paired tests need finite values")
    diffs = [a - b for a, b in zip(new, old)]
    if all(abs(d) <= TIE for d in diffs):
        return {"t": 0.0, "p_t": 1.0, "p_wilcoxon": 1.0}
    t = stats.ttest_rel(new, old)
    if math.isnan(t.statistic):  # constant non-zero differences: infinitely significant in the t-test's model
        t_stat, p_t = math.copysign(math.inf, diffs[0]), 0.0
    else:
        t_stat, p_t = float(t.statistic), float(t.pvalue)
    return {"t": t_stat, "p_t": p_t, "p_wilcoxon": float(stats.wilcoxon(new, old).pvalue)}


def win_tie_loss(new: Sequence[float], old: Sequence[float]) -> tuple[int, int, int]:
    """Items where ``new`` is higher / equal / lower than ``old`` (equal: within :data:`TIE`)."""
    wins = sum(a - b > TIE for a, b in zip(new, old))
    losses = sum(b - a > TIE for a, b in zip(new, old))
    return wins, len(new) - wins - losses, losses


def paired_summary(new: Sequence[float], old: Sequence[float]) -> dict[str, float]:
    """What every paired comparison reports: the mean difference, :func:`paired_tests` and :func:`win_tie_loss`."""
    tests = paired_tests(new, old)  # validates the samples first
    wins, ties, losses = win_tie_loss(new, old)
    return {"delta": math.fsum(new) / len(new) - math.fsum(old) / len(old), **tests,
            "wins": wins, "ties": ties, "losses": losses}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (an empty family gives an empty list)."""
    if not len(pvalues):
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(pvalues), alpha=ALPHA, method="holm")[1]]


def verdict(expected_sign: int, delta: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """What a measured difference says about a claimed direction (``expected_sign`` +1: higher, -1: lower, 0: no
    difference): ``reproduced`` (claimed sign, significant), ``opposite`` (the other sign, significant), or
    :data:`NOT_DISTINGUISHABLE`; for a claim of no difference ``consistent (no significant difference)`` or
    ``differs (significantly higher|lower)``."""
    significant = p_adjusted < alpha and delta != 0
    if expected_sign == 0:
        return (f"differs (significantly {'higher' if delta > 0 else 'lower'})" if significant
                else "consistent (no significant difference)")
    if not significant:
        return NOT_DISTINGUISHABLE
    return "reproduced" if (delta > 0) == (expected_sign > 0) else "opposite"
