"""Li-LSR with seeds: recipes/lilsr.yaml's seeds, the seed means and their check, the paired
tests of every learned table against BoW × IDF, and the query side a Li-LSR model is measured with."""

from __future__ import annotations

import statistics
import subprocess
import sys

import pandas as pd
import pytest

from eval import lilsr
from eval.ablator import query_side
from eval.recipe import load_recipe
from eval.stats import holm
from kit.paths import REPO
from train.conditions import load_condition


def test_the_recipe_runs_three_seeds_and_tests_the_anchored_table():
    recipe = load_recipe(lilsr.RECIPE)
    assert len(recipe.seeds) >= 3
    assert {s.id for s in lilsr.learned(recipe)} == {"lilsr", "lilsr-anchor"}
    assert lilsr.VERSUS in {s.id for s in recipe.systems}
    anchored = load_condition("lilsr-anchor").recipe()
    assert anchored.query_anchor > 0 and anchored.replace(query_anchor=0.0) == load_condition("lilsr").recipe()


def test_a_li_lsr_model_is_measured_with_its_own_table_and_an_l0_model_with_bow_idf():
    assert query_side(load_condition("lilsr").recipe()).encoder == "lilsr"
    assert query_side(load_condition("lilsr-anchor").recipe()).encoder == "lilsr"
    spec = query_side(load_condition("l0-mask-l0-act").recipe())
    assert (spec.encoder, spec.idf) == ("bow-idf", "model")


def seed_rows(values: dict[tuple[str, int], float], recall: float = 0.5, doc_len: float = 100.0,
              query_len: float = 10.0) -> list[dict]:
    return [{"part": "seed", "dataset": "scifact", "system": system, "seed": seed, "label": system,
             "nDCG@10": v, "R@100": recall, "FLOPS": 1.0 + v, "Doc_Len": doc_len, "Query_Len": query_len, "query_us": 5.0}
            for (system, seed), v in values.items()]


def test_seed_summary_is_the_mean_and_sample_std_checked_against_the_expectation():
    recipe = load_recipe(lilsr.RECIPE)
    expected = recipe.systems[0].expected["scifact"]
    first = expected["nDCG@10"] - 0.001
    sparsity = {"doc_len": expected["Doc_Len"], "query_len": expected["Query_Len"]}
    rows = lilsr.seed_summary(recipe, seed_rows({("bow-idf", 42): first, ("bow-idf", 43): first + 0.002,
                                                 ("lilsr", 42): 0.1, ("lilsr", 43): 0.3}, expected["R@100"], **sparsity),
                              checked=True)
    by = {r["system"]: r for r in rows}
    assert by["bow-idf"]["nDCG@10"] == pytest.approx(expected["nDCG@10"]) and by["bow-idf"]["check"] == "OK"
    assert by["bow-idf"]["nDCG@10_std"] == pytest.approx(statistics.stdev([first, first + 0.002]), abs=1e-4)
    assert by["lilsr"]["nDCG@10"] == pytest.approx(0.2) and by["lilsr"]["check"] == "FAIL"
    assert by["lilsr"]["seeds"] == "42 43"
    # Doc_Len and Query_Len are expected too (relative tolerance): documents twice as long fail
    longer = lilsr.seed_summary(recipe, seed_rows({("bow-idf", 42): expected["nDCG@10"]}, expected["R@100"],
                                                  **{**sparsity, "doc_len": 2 * expected["Doc_Len"]}), checked=True)
    assert longer[0]["check"] == "FAIL" and longer[0]["check_detail"].startswith("Doc_Len")
    unchecked = lilsr.seed_summary(recipe, seed_rows({("lilsr", 42): 0.1}), checked=False)
    assert unchecked[0]["check"] == "" and unchecked[0]["nDCG@10_std"] is None


def per_query(values: dict[str, list[float]], measure: str = "nDCG@10") -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "scifact", "system": system, "query_id": f"q{i}", "measure": measure, "value": v}
                         for system, vs in values.items() for i, v in enumerate(vs)])


def test_claims_pair_the_per_query_seed_means_and_holm_correct_them():
    recipe = load_recipe(lilsr.RECIPE)
    base = [0.1 * i for i in range(10)]
    frame = pd.concat([
        per_query({"bow-idf@seed42": base, "bow-idf@seed43": base,
                   "lilsr@seed42": [v + 0.1 for v in base], "lilsr@seed43": [v + 0.3 for v in base],
                   "lilsr-anchor@seed42": [v + (0.01 if i % 2 else -0.01) for i, v in enumerate(base)],
                   "lilsr-anchor@seed43": base}),
        per_query({"bow-idf@seed42": [2.0] * 10, "bow-idf@seed43": [2.0] * 10,
                   "lilsr@seed42": [1.0 + 0.01 * i for i in range(10)], "lilsr@seed43": [1.0] * 10,
                   "lilsr-anchor@seed42": [2.0] * 10, "lilsr-anchor@seed43": [2.0] * 10}, "FLOPS")])
    means = lilsr.seed_means_frame(frame)
    claims = lilsr.lilsr_claims(recipe, means, ["scifact"]).set_index(["system", "measure"])
    assert claims.at[("lilsr", "nDCG@10"), "delta"] == pytest.approx(0.2)  # the seeds' +0.1 and +0.3, averaged
    assert claims.at[("lilsr", "nDCG@10"), "verdict"] == "reproduced"
    assert claims.at[("lilsr", "FLOPS"), "verdict"] == "reproduced"  # lower, as claimed
    assert claims.at[("lilsr-anchor", "nDCG@10"), "verdict"] == "not distinguishable at this scale"
    assert list(claims["p_holm"]) == pytest.approx(holm(list(claims["p_t"])))
    assert set(claims["versus"]) == {"bow-idf"}
    rows = lilsr.seed_summary(recipe, seed_rows({("bow-idf", 42): 0.5, ("lilsr", 42): 0.7, ("lilsr-anchor", 42): 0.51}),
                              checked=False)
    summary = lilsr.checks(rows, recipe, lilsr.lilsr_claims(recipe, means, ["scifact"]))
    # a higher mean is not a verdict: the anchored table's +0.01 is what its paired test says
    assert summary["lilsr_anchor_minus_bow_idf_ndcg10_scifact"] == pytest.approx(0.01)
    assert summary["lilsr_anchor_vs_bow_idf_ndcg10_scifact"] == "not distinguishable at this scale"
    assert summary["lilsr_vs_bow_idf_ndcg10_scifact"] == "reproduced"


def test_bad_seeds_in_the_recipe_are_one_line_naming_the_file(tmp_path):
    path = tmp_path / "lilsr.yaml"
    path.write_text(lilsr.RECIPE.read_text().replace("seeds: [42, 43, 44]", "seeds: [42, 42]"))
    assert "seeds: [42, 42]" in path.read_text()
    proc = subprocess.run([sys.executable, "-m", "eval.lilsr", "--recipe", str(path), "--list-conditions"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "seeds" in proc.stderr and "distinct" in proc.stderr


def test_list_conditions_names_the_seeds():
    proc = subprocess.run([sys.executable, "-m", "eval.lilsr", "--list-conditions", "--seeds", "7,8"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "seeds: 7, 8" in proc.stdout and "lilsr-anchor" in proc.stdout


@pytest.mark.parametrize("runner", ["eval.lilsr", "eval.study"])
def test_bad_seeds_on_the_command_line_are_one_usage_line(runner):
    args = ["table2"] if runner == "eval.study" else []
    proc = subprocess.run([sys.executable, "-m", runner, *args, "--seeds", "4,4", "--list-conditions"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "seeds must be distinct" in proc.stderr
