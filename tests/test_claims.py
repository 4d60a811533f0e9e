"""Verdicts from tests whose unit is the training run (eval.stats, eval.claims): by hand, against the libraries, and
against the per-query test they replace."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval.claims import QUERIES_ONLY, Side, summary, judge_family
from eval.stats import (EQUIVALENT, NO_EFFECT, NOT_DISTINGUISHABLE, ONE_SEED, between_seeds, holm, margin, mde,
                        paired_tests, seeds_by_queries, tost, verdict)


def test_the_seeds_by_queries_test_by_hand():
    """Two seeds × three queries against a deterministic row of ones. Run means 7/3 and 4: their variance 25/18; the
    seed × query residuals ±1/6, ±1/6, ∓2/6 give a mean square (1/3) / 2 = 1/6; so σ²_run = 25/18 − (1/6)/3 = 4/3
    and the seed part of Var(Δ) is (4/3)/2 = 2/3. The per-query differences 1, 2, 3.5 have variance 19/12, so the
    query part is 19/36. Var(Δ) = 43/36; Satterthwaite: (43/36)² / ((2/3)²/1 + (19/36)²/2) = 3698/1513.
    Mutations: the residual not subtracted (σ²_run 25/18), the seed part divided by the number of queries, the
    query part taken from the seed-level differences."""
    new = [[1.0, 2.0, 4.0], [3.0, 4.0, 5.0]]
    res = seeds_by_queries(new, [[1.0, 1.0, 1.0]], new_seeded=True, old_seeded=False)
    assert res["delta"] == pytest.approx(13 / 6)
    assert res["var_seed"] == pytest.approx(2 / 3) and res["var_query"] == pytest.approx(19 / 36)
    assert res["se"] == pytest.approx(math.sqrt(43 / 36))
    assert res["df"] == pytest.approx(3698 / 1513)
    t = (13 / 6) / math.sqrt(43 / 36)
    assert res["p"] == pytest.approx(2 * stats.t.sf(t, 3698 / 1513))
    half = stats.t.ppf(0.975, 3698 / 1513) * math.sqrt(43 / 36)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((13 / 6 - half, 13 / 6 + half))


def test_the_standard_error_is_the_mixed_models():
    """Balanced synthetic data from the crossed model (run, query and condition × query random): the standard error
    of the condition effect equals statsmodels MixedLM's (REML), which fits the same model numerically."""
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    k, n = 3, 30
    query = rng.normal(0, 0.2, n)

    def side(mu: float) -> np.ndarray:
        return (mu + rng.normal(0, 0.03, (k, 1)) + query + rng.normal(0, 0.05, n)
                + rng.normal(0, 0.03, (k, n)))

    a, b = side(0.5), side(0.48)
    rows = [{"y": x[s, q], "cond": c, "run": f"{c}{s}", "query": q, "cq": f"{c}{q}", "g": 1}
            for c, x in (("a", a), ("b", b)) for s in range(k) for q in range(n)]
    model = sm.MixedLM.from_formula("y ~ C(cond, Treatment('b'))", groups="g", re_formula="0", data=pd.DataFrame(rows),
                                    vc_formula={"run": "0 + C(run)", "query": "0 + C(query)", "cq": "0 + C(cq)"})
    with warnings.catch_warnings():  # "the MLE may be on the boundary": a variance near 0, as generated
        warnings.simplefilter("ignore")
        fit = model.fit(reml=True, method=["lbfgs"])
    ours = seeds_by_queries(a, b)
    assert ours["delta"] == pytest.approx(fit.params.iloc[1])
    assert ours["se"] == pytest.approx(fit.bse.iloc[1], rel=1e-3)


def test_with_no_seed_variance_it_is_the_paired_t_test_over_queries():
    """Every seed of a side equal: no run variance, and the test is scipy's paired t-test over the queries of the
    seed means (same t, same p, n − 1 degrees of freedom)."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, 40)
    new = np.tile(base + rng.normal(0.03, 0.05, 40), (3, 1))
    old = np.tile(base, (3, 1))
    res = seeds_by_queries(new, old)
    ref = paired_tests(new[0].tolist(), old[0].tolist())
    assert res["var_seed"] == 0.0 and res["df"] == 39
    assert res["t_seed"] == pytest.approx(ref["t"]) and res["p"] == pytest.approx(ref["p_t"])


def test_large_seed_variance_is_not_called_significant_where_a_per_query_test_would():
    """Three seeds per side whose runs differ by a few points and no true effect: the per-query paired t-test over
    seed means sees the chance difference of the seed means as certain (p < 1e-10); the seed-aware test does not."""
    rng = np.random.default_rng(3)
    n = 300
    query = rng.uniform(0.1, 0.9, n)
    new = query + rng.normal(0, 0.03, (3, 1)) + rng.normal(0, 0.005, (3, n))
    old = query + rng.normal(0, 0.03, (3, 1)) + rng.normal(0, 0.005, (3, n))
    per_query = paired_tests(new.mean(axis=0).tolist(), old.mean(axis=0).tolist())
    ours = seeds_by_queries(new, old)
    assert per_query["p_t"] < 1e-10
    assert ours["p"] > 0.05 and ours["ci_low"] < 0 < ours["ci_high"]


def test_a_side_of_one_seed_has_no_seed_aware_verdict():
    """A trained side with one seed: its run variance is unknown, so the test is flagged and the verdict is
    "inconclusive (one seed)" however small the per-query p. A deterministic reference of one row is not flagged."""
    new, old = [[0.5, 0.6, 0.7, 0.9]], [[0.1, 0.2, 0.2, 0.3]]
    assert seeds_by_queries(new, old, True, False)["seeds_known"] is False
    assert seeds_by_queries(new, old, False, False)["seeds_known"] is True
    side = {"new": Side(pd.DataFrame(new, index=[42]), True), "old": Side(pd.DataFrame(old), False)}
    claims = judge_family([{"system": "new", "versus": "old", "measure": "nDCG@10", "dataset": "toy", "sign": 1}],
                         lambda s, d, m: side[s], "f")
    assert claims.at[0, "verdict"] == ONE_SEED and claims.at[0, "test"] == QUERIES_ONLY
    assert claims.at[0, "p"] is None and claims.at[0, "p_holm"] is None


def test_between_seeds_is_the_librarys_t_test_over_runs():
    """Doc_Len over the seeds: scipy's pooled two-sample t-test against another condition's seeds, the one-sample
    t-test against a reference's single value; documents are never the replicates."""
    a, b = [120.0, 131.0, 126.0], [140.0, 139.0, 150.0]
    res = between_seeds(a, b)
    lib = stats.ttest_ind(a, b, equal_var=True)
    assert res["p"] == pytest.approx(lib.pvalue) and res["t_seed"] == pytest.approx(lib.statistic)
    assert res["df"] == 4
    one = between_seeds(a, [100.0], True, False)
    assert one["p"] == pytest.approx(stats.ttest_1samp(a, 100.0).pvalue) and one["df"] == 2
    assert between_seeds([120.0], b)["p"] is None  # one seed: no variance, no test


def test_tost_by_hand_and_the_margins():
    """Δ 0.002, SE 0.004, df 10, margin 0.01: the two one-sided statistics are 3 and −2, so p = P(T ≥ 2) with
    10 df. Margins: ±1 point of nDCG@10; ±5% of the compared side's FLOPS or Doc_Len."""
    assert tost(0.002, 0.004, 10, 0.01) == pytest.approx(stats.t.sf(2, 10))
    assert tost(0.0, 0.0, 10, 0.01) == 0.0 and tost(0.02, 0.0, 10, 0.01) == 1.0
    assert margin("nDCG@10", 0.6) == 0.01 and margin("FLOPS", 2.0) == pytest.approx(0.1)
    assert margin("Doc_Len", 300.0) == pytest.approx(15.0)
    assert mde(0.01, 1e9) == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * 0.01, rel=1e-6)


@pytest.mark.parametrize("sign, delta, p, p_eq, expected", [
    (1, 0.02, 0.01, 0.9, "reproduced"), (1, -0.02, 0.01, 0.9, "opposite"), (1, 0.002, 0.6, 0.01, NO_EFFECT),
    (1, 0.002, 0.6, 0.2, NOT_DISTINGUISHABLE), (0, 0.001, 0.8, 0.01, EQUIVALENT),
    (0, 0.001, 0.8, 0.3, NOT_DISTINGUISHABLE), (0, -0.03, 0.001, 1.0, "differs (significantly lower)"),
    (1, 0.02, None, None, ONE_SEED), (1, 0.0, 0.001, 0.9, NOT_DISTINGUISHABLE)])
def test_verdicts(sign, delta, p, p_eq, expected):
    """"No difference" needs the equivalence test; an absent significant difference alone is "inconclusive"."""
    assert verdict(sign, delta, p, p_eq) == expected


def test_holm_leaves_untested_comparisons_out_of_the_family():
    """A None (a one-seed comparison) stays None and does not count towards the family's size."""
    assert holm([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])
    assert holm([None]) == [None]


def test_a_family_reports_effects_cis_and_verdicts_in_order():
    """judge_family on two claims of seeded conditions: Holm over both, the CI around each effect, and a summary line
    that prints the effect with its CI."""
    rng = np.random.default_rng(5)
    base = rng.uniform(0.2, 0.8, 50)
    frames = {"base": base + rng.normal(0, 0.01, (3, 50)), "gain": base + 0.05 + rng.normal(0, 0.01, (3, 50)),
              "same": base + rng.normal(0, 0.01, (3, 50))}
    side = {k: Side(pd.DataFrame(v, index=[42, 43, 44], columns=[f"q{i}" for i in range(50)]), True)
            for k, v in frames.items()}
    rows = [{"system": "gain", "label": "Gain", "versus": "base", "label_versus": "Base", "measure": "nDCG@10",
             "dataset": "toy", "sign": 1},
            {"system": "same", "label": "Same", "versus": "base", "label_versus": "Base", "measure": "nDCG@10",
             "dataset": "toy", "sign": 0}]
    claims = judge_family(rows, lambda s, d, m: side[s], "f")
    assert claims["p_holm"].tolist() == pytest.approx(holm(claims["p"].tolist()))
    assert claims.at[0, "verdict"] == "reproduced" and claims.at[1, "verdict"] == EQUIVALENT
    assert claims.at[0, "ci_low"] < claims.at[0, "delta"] < claims.at[0, "ci_high"]
    lines = summary(claims)
    assert lines[0].startswith("- **Gain** vs Base, nDCG@10 (paper: higher): toy +4.9") and "[+" in lines[0]


def test_a_plan_gives_the_seeds_an_effect_needs_or_says_the_queries_limit_it():
    """The plan of a test reproduces its own standard error at the seeds it had. With only run variance σ²_r =
    1e-4 on two trained sides, SE(k)² = 2e-4 / k, so detecting 0.01 at 80% power (z = 1.960 + 0.842) needs
    k ≥ 2 z² = 15.7: 16 seeds. With only query variance no number of seeds helps: None."""
    from eval.stats import Plan

    rng = np.random.default_rng(4)
    query = rng.uniform(0.1, 0.9, 80)
    res = seeds_by_queries(query + rng.normal(0, 0.02, (3, 1)) + rng.normal(0, 0.05, (3, 80)),
                           query + rng.normal(0, 0.02, (4, 1)) + rng.normal(0, 0.05, (4, 80)))
    assert res["plan"].se(3) != res["se"]  # 3 against 4 seeds: the plan's k is per side
    assert Plan(res["plan"].var_run, res["plan"].residual, res["plan"].var_diff, 80, (3, 3)).se(3) > 0
    z2 = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2
    assert Plan(1e-4, 0.0, 0.0, 100, (3, 3)).seeds_needed(0.01) == math.ceil(2 * z2)
    assert Plan(0.0, 0.0, 0.04, 100, (3, 3)).seeds_needed(0.01) is None
    balanced = seeds_by_queries(query + rng.normal(0, 0.02, (3, 1)) + rng.normal(0, 0.05, (3, 80)),
                                query + rng.normal(0, 0.02, (3, 1)) + rng.normal(0, 0.05, (3, 80)))
    assert balanced["plan"].se(3) == pytest.approx(balanced["se"])


def test_holm_equals_the_librarys():
    """The kit's Holm step-down is statsmodels' (which it does not call: each call collects garbage)."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(9)
    for m in (1, 2, 5, 17):
        p = rng.uniform(0, 0.2, m).tolist()
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist())
    assert holm([0.01, 0.01, 0.04]) == pytest.approx(multipletests([0.01, 0.01, 0.04], method="holm")[1].tolist())


def test_the_power_line_gives_each_measure_its_own_unit():
    """A Doc_Len family printed "Doc_Len 6.0–26.8 (nDCG ×100)": the ×100 note belongs to effectiveness alone."""
    from eval.claims import power_lines

    claims = pd.DataFrame({"measure": ["nDCG@10", "Doc_Len", "FLOPS"], "mde": [0.0079, 6.0, 0.1],
                           "claim": ["higher"] * 3, "paper_delta": [None] * 3, "test": ["seeds"] * 3,
                           "seeds_needed": [None] * 3})
    line = power_lines(claims)[0]
    assert line.endswith("nDCG@10 0.79 (×100); Doc_Len 6.0; FLOPS 0.100."), line
