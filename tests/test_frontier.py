"""Frontier comparisons (eval.study.frontier): two sweeps' curves compared at equal FLOPS, each seed's curve
interpolated per query, tested with the seed-aware test like any comparison; a malformed one is one line at its key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_faults import one_line_error, run

from eval.ablator import seed_system
import eval.claims as claims_module
from eval.claims import Side
from eval.study.derive import Run, comparisons
from eval.study.frontier import Curve, grid, overlap
from eval.study.spec import load_study
from kit.errors import InputError

STUDY = """\
study: front
title: a frontier
in_domain: scifact
datasets: [scifact]
sweeps:
  - id: lam
    field: lambda_d
    values: [0.01, 0.1]
    conditions: [baseline, l0-mask]
    seeds: [1, 2, 3]
tables:
  - {id: t, rows: [lam], columns: {scifact: [nDCG@10, FLOPS]}}
comparisons:
  - {family: f, condition: lam.l0-mask, versus: lam.baseline, at: FLOPS, measure: nDCG@10, datasets: [scifact],
     claim: higher, source: ours}
"""
QUERIES = [f"q{i}" for i in range(40)]


def test_a_curve_interpolates_each_query_as_numpy_does():
    rng = np.random.default_rng(0)
    x = np.array([1.3, 0.4, 2.0, 0.9])  # points in sweep order, not in x order
    items = pd.DataFrame(rng.random((4, 6)), columns=[f"q{i}" for i in range(6)])
    curve = Curve(x, items)
    order = np.argsort(x)
    for value in (0.4, 0.65, 0.9, 1.1, 1.999, 2.0):
        expected = [np.interp(value, x[order], items[q].to_numpy()[order]) for q in items.columns]
        np.testing.assert_allclose(curve.at(value).to_numpy(), expected, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="outside the curve's range"):
        curve.at(2.01)


def test_the_overlap_is_what_every_seed_covers():
    curves = [Curve(np.array([1.0, 2.0]), pd.DataFrame([[0], [0]])), Curve(np.array([1.2, 2.4]), pd.DataFrame([[0], [0]]))]
    assert overlap(curves) == (1.2, 2.0)
    assert grid(1.2, 2.0) == [1.4, 1.6, 1.8]


def _measurements(shift: float):
    """Three seeds of two curves: the baseline's nDCG@10 rises with FLOPS (0.5 + 0.1·FLOPS per query, seed noise);
    the mask's curve is the baseline's moved ``shift`` to the left (the same effectiveness at less cost)."""
    rng = np.random.default_rng(7)
    runs, frames = {}, []
    base = rng.random(len(QUERIES)) * 0.2
    for cond, dx in (("baseline", 0.0), ("l0-mask", -shift)):
        for lam, flops in ((0.01, 2.0), (0.1, 1.0)):
            point = f"lam.{cond}.{lam:g}"
            runs[point] = []
            for seed in (1, 2, 3):
                f = flops + dx + 0.01 * seed
                values = base + 0.5 + 0.1 * (f - dx) + 0.002 * rng.standard_normal(len(QUERIES))
                runs[point].append(Run(point, seed, {"scifact": {"nDCG@10": float(values.mean()), "FLOPS": f}}))
                frames.append(pd.DataFrame({"dataset": "scifact", "system": seed_system(point, seed),
                                            "query_id": QUERIES, "measure": "nDCG@10", "value": values}))
    return runs, pd.concat(frames, ignore_index=True)


def test_a_curve_left_of_another_is_higher_at_equal_flops(tmp_path):
    """At equal λ_d both models have the same nDCG@10; at equal FLOPS the one that reaches it more cheaply is ahead,
    by 0.1·shift per query: the test recovers that effect at each of the three common values, seeds as replicates."""
    path = tmp_path / "front.yaml"
    path.write_text(STUDY)
    study = load_study(path)
    runs, pq = _measurements(shift=0.3)
    claims = comparisons(study, pq, ["scifact"], runs, {})
    assert len(claims) == 3 and set(claims["family"]) == {"f"}
    lo, hi = 1.03, 1.71  # the baseline seeds cover 1.01-2.01 … 1.03-2.03, the mask seeds 0.71-1.71 … 0.73-1.73
    assert [float(s.rsplit("=", 1)[1]) for s in claims["system"]] == grid(lo, hi)
    assert claims["system"].iloc[0] == f"lam.l0-mask@FLOPS={grid(lo, hi)[0]:g}"
    assert claims["label"].iloc[0].startswith("l0-mask (lambda_d sweep) at FLOPS")
    np.testing.assert_allclose(claims["delta"], 0.03, atol=0.002)
    assert (claims["test"] == "seeds × queries").all() and (claims["seeds"] == 3).all()
    assert (claims["verdict"] == "reproduced").all()
    # each side is each seed's own curve interpolated: recompute the first value by hand with numpy
    value = grid(lo, hi)[0]
    sides = {}
    for cond in ("l0-mask", "baseline"):
        rows = []
        for seed in (1, 2, 3):
            pts = [f"lam.{cond}.0.01", f"lam.{cond}.0.1"]
            x = [next(r for r in runs[p] if r.seed == seed).scores["scifact"]["FLOPS"] for p in pts]
            y = [pq[pq["system"] == seed_system(p, seed)].set_index("query_id")["value"] for p in pts]
            order = np.argsort(x)
            rows.append([np.interp(value, np.array(x)[order], np.array([y[i][q] for i in range(2)])[order])
                         for q in QUERIES])
        sides[cond] = Side(pd.DataFrame(rows, index=[1, 2, 3], columns=QUERIES), seeded=True)
    by_hand = claims_module.test_one(sides["l0-mask"], sides["baseline"], "nDCG@10")
    assert claims["delta"].iloc[0] == pytest.approx(by_hand["delta"], abs=1e-12)
    assert claims["p"].iloc[0] == pytest.approx(by_hand["p"], rel=1e-9)


def test_curves_that_share_no_flops_are_an_error_that_names_both_ranges(tmp_path):
    path = tmp_path / "front.yaml"
    path.write_text(STUDY)
    runs, pq = _measurements(shift=1.5)
    with pytest.raises(ValueError, match=r"share no FLOPS range .*lam.l0-mask: -0.49-0.53; lam.baseline: 1.01-2.03"):
        comparisons(load_study(path), pq, ["scifact"], runs, {})


def test_a_smoke_scale_with_one_point_per_curve_leaves_the_frontier_out(tmp_path):
    path = tmp_path / "front.yaml"
    path.write_text(STUDY)
    runs, pq = _measurements(shift=0.3)
    runs = {k: v for k, v in runs.items() if k.endswith("0.01")}
    assert comparisons(load_study(path), pq, ["scifact"], runs, {}).empty


@pytest.mark.parametrize("old, new, needle", [
    ("condition: lam.l0-mask,", "condition: lam.l0-mask.0.1,", "comparisons[0].condition: 'lam.l0-mask.0.1' is not a curve"),
    ("versus: lam.baseline,", "versus: lam.l0-mask,", "comparisons[0].versus: a curve compared with itself"),
    ("measure: nDCG@10,", "measure: Doc_Len,", "comparisons[0].measure: Doc_Len at equal FLOPS is not an effectiveness"),
    ("at: FLOPS,", "at: nDCG@10,", "comparisons[0].at: "),
])
def test_a_malformed_frontier_comparison_is_one_line_at_its_key(tmp_path, old, new, needle):
    path = tmp_path / "front.yaml"
    path.write_text(STUDY.replace(old, new))
    with pytest.raises(InputError) as err:
        load_study(path)
    assert needle in str(err.value) and "front.yaml:" in str(err.value)


def test_the_cli_refuses_a_frontier_on_another_dataset_in_one_line(tmp_path):
    path = tmp_path / "front.yaml"
    path.write_text(STUDY.replace("datasets: [scifact]\nsweeps", "datasets: [scifact, vaswani]\nsweeps")
                    .replace("measure: nDCG@10, datasets: [scifact]", "measure: nDCG@10, datasets: [vaswani]"))
    one_line_error(run("eval.study", path, "--dry-run"), "front.yaml:", "comparisons[0].datasets: FLOPS is measured on "
                   "scifact only")


def test_at_smoke_scale_the_page_says_the_frontiers_are_not_tested(tmp_path):
    from eval.study.derive import derive

    path = tmp_path / "front.yaml"
    path.write_text(STUDY)
    runs, pq = _measurements(shift=0.3)
    study = load_study(path)
    smoke = derive(study, runs, {}, pq, ["scifact"], False, "python -m eval.study front", "smoke", {})
    assert smoke.claims.empty and "at equal FLOPS are not tested at scale `smoke`" in smoke.markdown
    full = derive(study, runs, {}, pq, ["scifact"], False, "python -m eval.study front", "full", {})
    assert len(full.claims) == 3 and "not tested" not in full.markdown
