"""One-line bugs on the trust and statistics path that no other test caught.

Each test names, in its docstring, the mutation it was written against: applied by hand, the test fails; reverted, it
passes. The numbers are small enough to check by hand.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import pandas as pd
import pytest

from eval.ablator import seed_system
from eval.study.derive import Run, build_tables, record_rows
from eval.study.runner import seed_means
from eval.study.spec import load_study
from eval.claims import Side, judge_family
from eval.stats import NOT_DISTINGUISHABLE, holm, paired_summary, paired_tests, seeds_by_queries, verdict, win_tie_loss
from kit import io

NAN, INF = float("nan"), float("inf")


# ---- eval.stats ------------------------------------------------------------------------------------------------------

def test_a_paired_t_test_by_hand():
    """Differences 3, -1, 2, 4: mean 2, sample variance (1 + 9 + 0 + 4) / 3 = 14/3, so t = 2 / sqrt(14/3 / 4)
    = sqrt(24/7). With 3 degrees of freedom the t CDF is 1/2 + (θ + sin θ cos θ) / π, θ = atan(t / sqrt 3), so the
    two-sided p is 1 - 2 (θ + sin θ cos θ) / π = 0.16116... Wilcoxon: ranks 1-4, the negative one ranked 1, so W- = 1;
    2 of the 16 sign patterns have W- <= 1, two-sided p = 2 · 2/16. Mutations: a one-sided test (p halved), the sides
    swapped (t negated)."""
    old = [0.5, 1.0, 0.25, 0.5]
    new = [3.5, 0.0, 2.25, 4.5]
    t = math.sqrt(24 / 7)
    theta = math.atan(t / math.sqrt(3))
    res = paired_tests(new, old)
    assert res["t"] == pytest.approx(t)
    assert res["p_t"] == pytest.approx(1 - 2 * (theta + math.sin(theta) * math.cos(theta)) / math.pi)
    assert res["p_wilcoxon"] == pytest.approx(0.25)
    back = paired_tests(old, new)  # two-sided: the same p-values the other way round
    assert back["t"] == pytest.approx(-t) and back["p_t"] == pytest.approx(res["p_t"])
    assert back["p_wilcoxon"] == pytest.approx(0.25)
    summary = paired_summary(new, old)
    assert summary["delta"] == pytest.approx(2.0) and (summary["wins"], summary["ties"], summary["losses"]) == (3, 0, 1)


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
@pytest.mark.parametrize("side", ["new", "old"])
def test_paired_tests_refuse_non_finite_values(bad, side):
    """Mutation: the finiteness check dropped. scipy's t of a sample holding NaN is NaN, which paired_tests reads as
    a constant difference: t = ±inf, p = 0, and the claim is "reproduced"."""
    new, old = [0.4, 0.5, 0.7, 0.2], [0.3, 0.5, 0.1, 0.2]
    (new if side == "new" else old)[2] = bad
    with pytest.raises(ValueError, match="finite"):
        paired_tests(new, old)


def test_a_nan_per_query_value_never_becomes_a_verdict():
    """The same mutation, where it bites: one NaN among a seed's per-query values stops the claims, instead of a
    "reproduced" verdict."""
    new = [[b + 0.01 for b in BASE], [b + 0.02 for b in BASE]]
    new[1][5] = NAN
    with pytest.raises(ValueError, match="finite"):
        seeds_by_queries(new, [BASE], True, False)


def test_a_constant_difference_is_infinitely_significant_with_its_sign():
    """Mutations: the infinite t of a constant difference given no sign (always +inf), or its p set to 1."""
    lower = paired_tests([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    higher = paired_tests([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert lower["t"] == -math.inf and higher["t"] == math.inf
    assert lower["p_t"] == 0.0 and higher["p_t"] == 0.0
    assert lower["p_wilcoxon"] == pytest.approx(0.25)  # three equal ranks, all one sign: 2 · 1/8


def test_win_tie_loss_counts_float_noise_as_a_tie():
    """0.1 + 0.2 is not 0.3 in floating point (5.6e-17 apart): a tie, not a win or a loss. Mutations: wins or losses
    counted with ``> 0`` instead of ``> TIE``, ties counted as losses, ties and losses swapped."""
    new = [0.1 + 0.2, 0.3, 0.5, 0.2, 0.9]
    old = [0.3, 0.1 + 0.2, 0.4, 0.6, 0.9]
    assert win_tie_loss(new, old) == (1, 3, 1)
    assert win_tie_loss(old, new) == (1, 3, 1)
    assert win_tie_loss([0.5, 0.5], [0.1, 0.2]) == (2, 0, 0)
    assert win_tie_loss([0.1, 0.2, 0.3], [0.5, 0.5, 0.3]) == (0, 1, 2)


def test_holm_steps_down_and_stays_monotone():
    """Holm, m = 3, p sorted 0.01 < 0.04 < 0.045: 3·0.01 = 0.03, 2·0.04 = 0.08, then 1·0.045 raised to the 0.08
    before it (monotone). Mutations: Hochberg's step-up (0.03, 0.045, 0.045), Šidák's variant (1 - 0.99³ = 0.0297),
    no monotone step (0.011 over 0.01 would keep 0.011), the adjusted values returned sorted instead of in input
    order."""
    assert holm([0.045, 0.01, 0.04]) == pytest.approx([0.08, 0.03, 0.08])
    assert holm([0.011, 0.01]) == pytest.approx([0.02, 0.02])
    assert holm([0.2, 0.001]) == pytest.approx([0.2, 0.002])


@pytest.mark.parametrize("sign, expected", [(1, NOT_DISTINGUISHABLE), (-1, NOT_DISTINGUISHABLE),
                                            (0, NOT_DISTINGUISHABLE)])
def test_no_difference_is_never_significant(sign, expected):
    """Mutation: ``delta != 0`` dropped from what counts as significant (a zero difference with a small p would be
    "opposite", or "differs")."""
    assert verdict(sign, 0.0, 0.001) == expected


# ---- eval.claims -----------------------------------------------------------------------------------------------------

QUERIES = [f"q{i}" for i in (3, 10, 1, 7, 12, 5, 8, 2, 11, 4, 9, 6)]  # not in sorted order: alignment must be by id
BASE = [0.2, 0.4, 0.1, 0.6, 0.3, 0.5, 0.2, 0.7, 0.4, 0.3, 0.6, 0.1]
NOISE = [0.031, -0.022, 0.0153, -0.0104, 0.0007, 0.0412, -0.0157, 0.0118, -0.0091, 0.0055, -0.0046, 0.0239]
# no two differences of a comparison equal in size: scipy's Wilcoxon stays exact and fast (ties need permutations)


def _sides(shuffle: str | None = None, rename: tuple[str, str] | None = None):
    """Three seeds of "gain" and of "baseline" and BM25's single row over QUERIES; ``shuffle``: that system's columns
    in another order; ``rename``: one of BM25's query ids exchanged."""
    seeds = [42, 43, 44]
    values = {"baseline": [[b + k * n for b, n in zip(BASE, NOISE)] for k in (0.0, 0.5, 1.0)],
              "gain": [[b + 0.02 + k * n for b, n in zip(BASE, NOISE[::-1])] for k in (0.2, 0.7, 1.1)],
              "bm25-flat": [[b - 0.05 + n for b, n in zip(BASE, NOISE)]]}
    sides = {}
    for system, rows in values.items():
        frame = pd.DataFrame(rows, index=seeds if system != "bm25-flat" else [0], columns=QUERIES)
        if system == shuffle:
            frame = frame[random.Random(7).sample(QUERIES, len(QUERIES))]
        if rename and system == "bm25-flat":
            frame = frame.rename(columns=dict([rename]))
        sides[system] = Side(frame, seeded=system != "bm25-flat")
    return lambda system, dataset, measure: sides[system]


ROWS = [{"system": "gain", "label": "Gain", "versus": "baseline", "measure": "nDCG@10", "dataset": "toy", "sign": 1},
        {"system": "gain", "label": "Gain", "versus": "bm25-flat", "measure": "nDCG@10", "dataset": "toy", "sign": 1},
        {"system": "baseline", "label": "Baseline", "versus": "bm25-flat", "measure": "nDCG@10", "dataset": "toy",
         "sign": 1}]


@pytest.mark.parametrize("system", ["baseline", "bm25-flat"])
def test_claims_pair_the_items_by_id_not_by_column_order(system):
    """One side's queries in another order: every claim -- deltas, CIs, p-values, W/T/L, verdicts -- is the same.
    Mutation: the other side not re-indexed to the first's query order (``old.values[new.values.columns]``
    dropped)."""
    expected = judge_family(ROWS, _sides(), "f")
    pd.testing.assert_frame_equal(judge_family(ROWS, _sides(shuffle=system), "f"), expected)
    assert (expected["wins"] + expected["ties"] + expected["losses"] == expected["items"]).all()


def test_claims_report_each_sides_mean_and_the_effect():
    """Mutations: ``mean_versus`` taken from the wrong side; the effect from the first seed only."""
    row = judge_family(ROWS, _sides(), "f").iloc[0]
    assert row["mean"] == pytest.approx(sum(BASE) / 12 + 0.02 + (0.2 + 0.7 + 1.1) / 3 * sum(NOISE) / 12)
    assert row["mean_versus"] == pytest.approx(sum(BASE) / 12 + 0.5 * sum(NOISE) / 12)
    assert row["delta"] == pytest.approx(row["mean"] - row["mean_versus"])
    assert (row["seeds"], row["seeds_versus"]) == (3, 3)


def test_claims_refuse_sides_measured_on_other_items_of_the_same_count():
    """Mutation: the same-items check comparing counts instead of ids (a side with q3 exchanged for another query
    then pairs other queries)."""
    with pytest.raises(ValueError, match="not measured on the same queries"):
        judge_family(ROWS, _sides(rename=("q3", "q99")), "f")


# ---- eval.study: what a condition's own row holds -------------------------------------------------------------------

SEEDS = {42: 0.0, 43: 0.01, 44: 0.08}  # seed: offset; mean 0.03, median 0.01


def test_a_conditions_per_query_values_are_the_mean_over_its_seeds():
    """Three seeds with a skewed spread: the condition's per-query value is their mean (0.03 over the first seed),
    not the median (0.01), the first or the largest seed. Mutations on ``eval.study.runner.seed_means``."""
    frame = pd.DataFrame([{"dataset": "toy", "system": seed_system("l0-act", seed), "condition": "l0-act",
                           "query_id": q, "measure": "nDCG@10", "value": b + off}
                          for seed, off in SEEDS.items() for q, b in zip(QUERIES, BASE)])
    means = seed_means(frame.sample(frac=1, random_state=3))
    assert set(means["system"]) == {"l0-act"} and len(means) == 12
    got = means.set_index("query_id")["value"]
    assert [got[q] for q in QUERIES] == pytest.approx([b + 0.03 for b in BASE])


def _runs(study) -> dict:
    return {c: [Run(c, seed, {"scifact": {"nDCG@10": 0.5 + i / 100 + off, "FLOPS": 1.0 + i + 10 * off,
                                          "Doc_Len": 10.0 * (i + 1) + 100 * off}})
                for seed, off in SEEDS.items()]
            for i, c in enumerate(study.tables[0].rows)}


def test_a_conditions_own_row_is_the_mean_over_its_seeds():
    """The table's row and the kit-results/1 row of a condition hold the mean of its three seeds' scores (median,
    first seed or a dropped seed would differ), each seed's own row its own score. Mutations: ``mean_std`` and
    ``record_rows`` taking the median or the first seed."""
    study = load_study("table2")
    runs = _runs(study)
    references = {("scifact", r.id): {"nDCG@10": 0.6} for r in study.references}
    table = build_tables(study, runs, references, ["scifact"], False,
                         {c: {"train_s": 0.0, "eval_s": 0.0} for c in runs})
    row = table.set_index("system").loc["l0-act"]  # Table 2's third row: i = 2
    assert row["scifact nDCG@10"] == pytest.approx(0.52 + 0.03)
    assert row["scifact FLOPS"] == pytest.approx(3.0 + 0.3) and row["scifact Doc_Len"] == pytest.approx(30.0 + 3.0)
    assert row["seeds"] == "42 43 44"
    rows = {r["system"]: r["metrics"] for r in record_rows(study, runs, references, ["scifact"], checked=False)}
    assert rows["l0-act"]["nDCG@10"] == pytest.approx(0.55)
    assert rows["l0-act"]["FLOPS"] == pytest.approx(3.3) and rows["l0-act"]["Doc_Len"] == pytest.approx(33.0)
    assert rows[seed_system("l0-act", 44)]["nDCG@10"] == pytest.approx(0.60)


# ---- kit.io: a live writer's temporaries -----------------------------------------------------------------------------

def _foreign_temp(folder: Path, pid: int, host: str | None = None) -> Path:
    mine = io.temp_name(folder / "part-00000.jsonl")
    name = mine.name.replace(f"-{os.getpid()}.", f"-{pid}.")
    if host is not None:
        name = name.replace(f".{io._HOST}-", f".{host}-")
    path = folder / name
    path.write_text("being written")
    return path


def test_a_temporary_whose_writer_cannot_be_signalled_is_kept(tmp_path, monkeypatch):
    """``os.kill(pid, 0)`` raising PermissionError means the process exists (another user's): its temporary is in
    use and must survive the cleanup. Mutation: PermissionError read as "dead"."""
    live = _foreign_temp(tmp_path, 4_000_000)

    def kill(pid, sig):
        assert sig == 0
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(io.os, "kill", kill)
    assert io.clean_stale(tmp_path) == []
    assert live.read_text() == "being written"


def test_a_temporary_of_another_host_is_kept(tmp_path, monkeypatch):
    """A folder shared between machines: a pid names a process of its own host only, so another host's temporary
    is never judged here, even when no process of that pid runs on this one. Mutation: the host check dropped."""
    def kill(pid, sig):
        raise ProcessLookupError(pid)

    monkeypatch.setattr(io.os, "kill", kill)
    other = "00000000" if io._HOST != "00000000" else "11111111"
    theirs = _foreign_temp(tmp_path, 4_000_000, host=other)
    dead = _foreign_temp(tmp_path, 4_000_001)
    assert io.clean_stale(tmp_path) == [dead]
    assert theirs.exists() and not dead.exists()
