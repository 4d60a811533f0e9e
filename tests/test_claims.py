"""Verdicts from tests (eval.claims): the paper's directions against the kit's per-item values, Holm per family."""

from __future__ import annotations

import pandas as pd
import pytest

from eval.claims import against_baseline, against_reference, summary
from eval.stats import NOT_DISTINGUISHABLE, holm

QUERIES = [str(i) for i in range(12)]


def _per_query(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "toy", "system": s, "query_id": q, "measure": m, "value": v}
                         for (s, m), vs in values.items() for q, v in zip(QUERIES, vs)])


BASE = [0.2, 0.4, 0.1, 0.6, 0.3, 0.5, 0.2, 0.7, 0.4, 0.3, 0.6, 0.1]
PAPER = pd.DataFrame([{"system": "baseline", "label": "Baseline", "nDCG@10": 50.0, "FLOPS": 2.0, "Doc_Len": 100.0},
                      {"system": "big", "label": "Big gain", "nDCG@10": 51.0, "FLOPS": 1.0, "Doc_Len": 100.5},
                      {"system": "small", "label": "Noise", "nDCG@10": 49.0, "FLOPS": 3.0, "Doc_Len": 90.0}])


def test_each_paper_direction_is_tested_and_holm_corrected_as_one_family():
    noise = [0.01, -0.02, 0.015, -0.01, 0.0, 0.02, -0.015, 0.01, -0.01, 0.005, -0.005, 0.0]
    pq = _per_query({
        ("baseline", "nDCG@10"): BASE, ("baseline", "FLOPS"): [2.0] * 12, ("baseline", "Doc_Len"): [100.0] * 12,
        ("big", "nDCG@10"): [b + 0.1 + n for b, n in zip(BASE, noise)],      # clearly higher, as the paper says
        ("big", "FLOPS"): [2.5 + n for n in noise],                          # clearly higher: the paper says lower
        ("big", "Doc_Len"): [100.0 + n for n in noise],                      # the paper's +0.5: no effect claimed
        ("small", "nDCG@10"): [b + n for b, n in zip(BASE, noise)],          # no measurable difference
        ("small", "FLOPS"): [2.0 + n for n in noise], ("small", "Doc_Len"): [100.0 + n for n in noise]})
    claims = against_baseline(PAPER, pq, ["toy"], "t", sparsity_dataset="toy").set_index(["system", "measure"])
    assert claims["p_holm"].tolist() == pytest.approx(holm(claims["p_t"].tolist()))
    assert claims.at[("big", "nDCG@10"), "claim"] == "higher"
    assert claims.at[("big", "nDCG@10"), "verdict"] == "reproduced"
    assert claims.at[("big", "nDCG@10"), "delta"] == pytest.approx(0.1 + sum(noise) / 12)
    assert claims.at[("big", "FLOPS"), "verdict"] == "opposite"
    assert claims.at[("big", "Doc_Len"), "claim"] == "no difference"  # |+0.5| < NO_EFFECT["Doc_Len"]
    assert claims.at[("big", "Doc_Len"), "verdict"] == "consistent (no significant difference)"
    assert claims.at[("small", "nDCG@10"), "verdict"] == NOT_DISTINGUISHABLE
    assert claims.at[("small", "Doc_Len"), "claim"] == "lower"
    lines = summary(claims.reset_index())
    assert any(line.startswith("- **Big gain** vs Baseline, nDCG@10 (paper: higher): toy +10.") and "reproduced" in line
               for line in lines)


def test_every_row_against_bm25_and_unequal_items_are_refused():
    pq = _per_query({("bm25-flat", "nDCG@10"): BASE, ("baseline", "nDCG@10"): [b - 0.1 - 0.01 * (i % 3) for i, b in enumerate(BASE)]})
    claims = against_reference({"baseline": "Baseline"}, pq, ["toy"], "r")
    assert claims.at[0, "verdict"] == "opposite" and claims.at[0, "versus"] == "bm25-flat"
    short = pq[pq["query_id"] != "3"].copy()
    short = pd.concat([short[short["system"] == "baseline"], pq[pq["system"] == "bm25-flat"]])
    with pytest.raises(ValueError, match="not measured on the same queries"):
        against_reference({"baseline": "Baseline"}, short, ["toy"], "r")
