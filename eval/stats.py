"""Significance tests whose unit of replication is the training run, equivalence tests, the Holm correction, and the
verdict a claimed direction gets from them.

**Seeds × queries** (:func:`seeds_by_queries`: nDCG@10, R@k and FLOPS, one value per query and model). Each side of a
comparison is a matrix of per-query values, one row per training seed (a reference such as BM25 is one deterministic
row). The model is the balanced crossed linear mixed model

    y[c, s, q] = μ_c + r[c, s] + u[q] + v[c, q] + e[c, s, q]

with the training run ``r`` (seed, nested in its condition), the query ``u`` and the condition × query interaction
``v`` random. The effect is the difference of the grand means, and its variance is

    Var(Δ) = σ²_r (1/k_A + 1/k_B) + Var_q(Δ_q) / n

``Var_q(Δ_q)`` is the variance over the n queries of the per-query seed-mean differences, which estimates the query
terms exactly. σ²_r is the ANOVA (method-of-moments) estimate: the variance of the run means less the seed × query
residual mean square over n, pooled over the trained sides and truncated at 0. For balanced data these are REML's
estimates, so the standard error is statsmodels ``MixedLM``'s (pinned by a test). The p-value and the 95% CI use
Student's t with Satterthwaite's degrees of freedom, not MixedLM's normal approximation, which is too liberal with
3 seeds. Two properties follow. With no seed variance the test is the paired t-test over queries
(``scipy.stats.ttest_rel``) on the seed means. With large seed variance, three seeds cannot make it significant
however many queries there are. A trained side with one seed has no estimate of σ²_r, so its comparison is
"inconclusive (one seed)".

**Seeds** (:func:`between_seeds`: Doc_Len and Query_Len, one value per model over a fixed corpus). The documents are
not replicates of a model. The test is over the runs: ``scipy.stats.ttest_ind`` (pooled variance, as the mixed model
above has it) against another condition's seeds, or ``scipy.stats.ttest_1samp`` against a reference's single value.

**Equivalence** (:func:`tost`): a difference is "none" only when both one-sided tests (TOST, Schuirmann 1987) reject
a difference of :func:`margin` or more; otherwise an absent significant difference is "inconclusive".

A family of comparisons reported together is corrected with Holm's step-down method
(:func:`holm`, which equals ``statsmodels.stats.multitest.multipletests(method="holm")``: a test pins it; the library
call costs a garbage collection each time), the difference tests and the equivalence tests each as one family. :func:`verdict` judges a claimed direction on the corrected p-values. The per-query paired t-test and the
Wilcoxon signed-rank test over seed means (:func:`paired_summary`) stay in the record as descriptions of the query
level, and do not decide any verdict.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import numpy as np

TIE = 1e-12
"""Two per-item values closer than this are equal (win/tie/loss, identical sides)."""
ALPHA = 0.05
POWER = 0.8
"""The power at which :func:`mde` states the smallest detectable effect."""
TESTS = "paired two-sided t-test (scipy.stats.ttest_rel) and Wilcoxon signed-rank test (scipy.stats.wilcoxon)"
SEED_TESTS = ("seeds × queries: crossed mixed model (training run, query, condition × query random), Student t with "
              "Satterthwaite df; Doc_Len and Query_Len: t-test over the seeds' values")
CORRECTION = "Holm's step-down correction over the comparisons shown together"
NOT_DISTINGUISHABLE = "inconclusive"
ONE_SEED = "inconclusive (one seed)"
EQUIVALENT = "reproduced (equivalent)"
NO_EFFECT = "no effect (equivalent)"
MARGINS = {"effectiveness": 0.01, "relative": 0.05}
"""Equivalence margins: ±1 point (0.01) of an effectiveness measure; ±5% of the compared side's mean for FLOPS,
Doc_Len and Query_Len (the FLOPS band within which the paper's rows are "comparable")."""
MARGIN_TEXT = (f"±{100 * MARGINS['effectiveness']:g} point of nDCG@10, ±{MARGINS['relative']:.0%} of FLOPS or "
               "Doc_Len")
RELATIVE = ("FLOPS", "Doc_Len", "Query_Len")
BETWEEN_SEEDS = ("Doc_Len", "Query_Len")
"""Measures with one value per model over a fixed corpus: tested over the seeds, never over documents."""


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


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the input order; a None (no test) stays None and is not counted in the family."""
    tested = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0  # Holm's step-down: the k-th smallest p times (m - k + 1), kept monotone, at most 1
    for rank, i in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * float(pvalues[i])))
        out[i] = running
    return out


def margin(measure: str, versus_mean: float) -> float:
    """The equivalence margin of a comparison on ``measure`` (:data:`MARGINS`), in the measure's own units."""
    return MARGINS["relative"] * abs(versus_mean) if measure in RELATIVE else MARGINS["effectiveness"]


def _t_summary(delta: float, se: float, df: float, alpha: float = ALPHA) -> dict[str, float]:
    """t, two-sided p and the (1 − alpha) confidence interval of an effect ``delta`` with standard error ``se``."""
    from scipy import stats

    if se == 0.0:  # identical sides, or a constant difference: infinitely (in)significant in the t-test's model
        t = 0.0 if delta == 0 else math.copysign(math.inf, delta)
        return {"t_seed": t, "p": 1.0 if delta == 0 else 0.0, "ci_low": delta, "ci_high": delta}
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    t = delta / se
    return {"t_seed": t, "p": float(2 * stats.t.sf(abs(t), df)), "ci_low": delta - half, "ci_high": delta + half}


def _finite(*arrays: np.ndarray) -> None:
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError("seed-aware tests need finite values")


def seeds_by_queries(new: np.ndarray, old: np.ndarray, new_seeded: bool = True, old_seeded: bool = True
                     ) -> dict[str, float | bool]:
    """The seeds × queries test (module docstring) of ``new`` against ``old``: matrices (seeds × queries) over the same
    queries in the same order. A side that is not ``seeded`` is one deterministic row (a reference).

    Returns ``delta``, ``se``, ``df``, ``t_seed``, ``p``, ``ci_low``, ``ci_high``, the variance components
    ``var_seed`` and ``var_query`` (their sum is ``se``²) and ``seeds_known`` (False: a trained side has one seed, and
    ``p`` is the query-level test alone).

    Raises:
        ValueError: different numbers of queries, fewer than 2 queries, a deterministic side of more than one row,
            or a non-finite value.
    """
    new, old = np.atleast_2d(np.asarray(new, float)), np.atleast_2d(np.asarray(old, float))
    n = new.shape[1]
    if old.shape[1] != n or n < 2:
        raise ValueError(f"seed-aware tests need the same queries on both sides, at least 2, got {n} and {old.shape[1]}")
    for side, seeded in ((new, new_seeded), (old, old_seeded)):
        if not seeded and side.shape[0] != 1:
            raise ValueError(f"a deterministic side is one run, got {side.shape[0]}")
    _finite(new, old)
    per_query = new.mean(axis=0) - old.mean(axis=0)
    delta = float(new.mean() - old.mean())
    var_query = float(per_query.var(ddof=1)) / n
    trained = [x for x, seeded in ((new, new_seeded), (old, old_seeded)) if seeded]
    seeds_known = all(x.shape[0] >= 2 for x in trained)
    var_seed, df_seed, var_run, residual = 0.0, 0, 0.0, 0.0
    if trained and seeds_known:
        df_seed = sum(x.shape[0] - 1 for x in trained)
        runs = sum((x.shape[0] - 1) * x.mean(axis=1).var(ddof=1) for x in trained) / df_seed
        residual = sum(((x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()) ** 2).sum()
                       for x in trained) / (df_seed * (n - 1))
        var_run = max(0.0, runs - residual / n)
        var_seed = var_run * sum(1 / x.shape[0] for x in trained)
    variance = var_seed + var_query
    df = (n - 1.0 if var_seed == 0 else
          variance ** 2 / (var_seed ** 2 / df_seed + (var_query ** 2 / (n - 1) if var_query else 0.0)))
    return {"delta": delta, "se": math.sqrt(variance), "df": float(df),
            **_t_summary(delta, math.sqrt(variance), float(df)), "var_seed": float(var_seed), "var_query": var_query,
            "seeds_known": seeds_known,
            "plan": Plan(float(var_run), float(residual), float(per_query.var(ddof=1)), n,
                         tuple(x.shape[0] for x in trained))}


MOST_SEEDS = 100
"""The most seeds per condition a plan considers."""


@dataclass(frozen=True)
class Plan:
    """The variance components of one seeds × queries test, to ask how many seeds a given effect would need."""

    var_run: float     # σ²_r: between training runs
    residual: float    # σ²_e: seed × query
    var_diff: float    # the variance over queries of the per-query seed-mean differences
    queries: int
    seeds: tuple[int, ...]  # of each trained side

    def se(self, seeds: int) -> float:
        """The standard error with ``seeds`` seeds on each trained side (the same queries)."""
        interaction = max(0.0, self.var_diff - self.residual * sum(1 / k for k in self.seeds))  # 2σ²_v, or σ²_v
        per_side = len(self.seeds) / seeds
        return math.sqrt(self.var_run * per_side + (interaction + self.residual * per_side) / self.queries)

    def seeds_needed(self, effect: float, alpha: float = ALPHA, power: float = POWER, most: int = MOST_SEEDS
                     ) -> int | None:
        """The fewest seeds per trained side at which an effect of size ``effect`` is detected with ``power``
        (normal quantiles: a plan, not a test); None when even ``most`` seeds do not, the query sample being the
        limit."""
        from scipy import stats

        if not self.seeds or effect == 0:
            return None
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
        return next((k for k in range(2, most + 1) if z * self.se(k) <= abs(effect)), None)


def between_seeds(new: Sequence[float], old: Sequence[float], new_seeded: bool = True, old_seeded: bool = True
                  ) -> dict[str, float | bool]:
    """The test over the runs (module docstring) of ``new`` against ``old``: one value per training seed, or one
    deterministic value of a reference (not ``seeded``). Returns the keys of :func:`seeds_by_queries`."""
    from scipy import stats

    a, b = np.asarray(new, float), np.asarray(old, float)
    _finite(a, b)
    delta = float(a.mean() - b.mean())
    sides = [(x, s) for x, s in ((a, new_seeded), (b, old_seeded)) if s]
    seeds_known = all(len(x) >= 2 for x, _ in sides)
    if not sides:  # two deterministic values over the same corpus: the difference is exact
        return {"delta": delta, "se": 0.0, "df": 1.0, **_t_summary(delta, 0.0, 1.0), "var_seed": 0.0,
                "var_query": 0.0, "seeds_known": True}
    if not seeds_known:
        return {"delta": delta, "se": None, "df": None, "t_seed": None, "p": None, "ci_low": None, "ci_high": None,
                "var_seed": None, "var_query": 0.0, "seeds_known": False}
    if len(sides) == 2:
        df = len(a) + len(b) - 2
        pooled = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / df
        se = math.sqrt(pooled * (1 / len(a) + 1 / len(b)))
        library = stats.ttest_ind(a, b, equal_var=True) if se else None
    else:
        x, const = (a, float(b[0])) if new_seeded else (b, float(a[0]))
        df = len(x) - 1
        se = math.sqrt(x.var(ddof=1) / len(x))
        library = stats.ttest_1samp(x, const) if se else None
    out = _t_summary(delta, se, df)
    if library is not None:  # the library's p-value (the same t and df; a test pins the agreement)
        out["p"] = float(library.pvalue)
    return {"delta": delta, "se": se, "df": float(df), **out, "var_seed": se * se, "var_query": 0.0,
            "seeds_known": True}


def tost(delta: float, se: float | None, df: float | None, bound: float) -> float | None:
    """Two one-sided tests of equivalence within ``±bound``: the larger of the two one-sided p-values (None when the
    effect has no standard error)."""
    from scipy import stats

    if se is None:
        return None
    if se == 0.0:
        return 0.0 if abs(delta) < bound else 1.0
    return float(max(stats.t.sf((delta + bound) / se, df), stats.t.cdf((delta - bound) / se, df)))


def mde(se: float | None, df: float | None, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """The smallest effect a two-sided test at ``alpha`` detects with probability ``power``, given the standard error."""
    from scipy import stats

    if se is None:
        return None
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def verdict(expected_sign: int, delta: float, p_adjusted: float | None, p_equivalent: float | None = None,
            alpha: float = ALPHA) -> str:
    """What a measured difference says about a claimed direction (``expected_sign`` +1: higher, -1: lower, 0: no
    difference), from the Holm-adjusted difference test ``p_adjusted`` and equivalence test ``p_equivalent``.

    - a direction: ``reproduced`` (claimed sign, significant), ``opposite`` (the other sign, significant),
      :data:`NO_EFFECT` (equivalent within the margin), else :data:`NOT_DISTINGUISHABLE`;
    - no difference: :data:`EQUIVALENT`, ``differs (significantly higher|lower)``, else :data:`NOT_DISTINGUISHABLE`;
    - no p-value (a trained side with one seed): :data:`ONE_SEED`.
    """
    if p_adjusted is None:
        return ONE_SEED
    significant = p_adjusted < alpha and delta != 0
    equivalent = p_equivalent is not None and p_equivalent < alpha
    if expected_sign == 0:
        if significant:
            return f"differs (significantly {'higher' if delta > 0 else 'lower'})"
        return EQUIVALENT if equivalent else NOT_DISTINGUISHABLE
    if significant:
        return "reproduced" if (delta > 0) == (expected_sign > 0) else "opposite"
    return NO_EFFECT if equivalent else NOT_DISTINGUISHABLE
