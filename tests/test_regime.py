"""The FLOPS-dominated regime (recipes/studies/regime.yaml, python -m eval.study regime): the study, the training
measures that show the regime, and one end-to-end run at a two-step scale with two seeds through the code make regime
runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import stage_mined_file
from test_faults import one_line_error, run

from eval.ablator import Ablator, Scale, seed_system
from eval.stats import holm
from eval.study.runner import measured, run_study
from eval.study.spec import load_study
from eval.study.training import training_measures
from kit.errors import InputError
from kit.paths import REPO
from report.compare import check
from train.conditions import load_condition

REGIME_STUDY = """\
study: regime-test
title: a regime
in_domain: scifact
datasets: [scifact]
training: [flops_term, ranking, flops_over_ranking]
references: [bm25-flat]
conditions:
  - {id: baseline, from: baseline, set: {lambda_d: 1}, seeds: [42, 7]}
  - {id: l0, from: l0-mask-l0-act, set: {lambda_d: 1}, seeds: [42, 7], expected: {scifact: {nDCG@10: 0.0}}}
tables:
  - {id: t, rows: [baseline, l0], columns: {scifact: [nDCG@10, Doc_Len, flops_term, flops_over_ranking]}}
comparisons:
  - {family: f, condition: l0, versus: baseline, measure: Doc_Len, datasets: [scifact], claim: lower, source: ours}
  - {family: f, condition: l0, versus: bm25-flat, measure: nDCG@10, datasets: [scifact], claim: higher, source: ours}
"""


def test_the_regime_study_is_table_2s_conditions_at_a_larger_lambda_with_seeds():
    study = load_study("regime")
    assert list(study.conditions) == ["baseline", "l0-mask", "l0-act", "l0-mask-l0-act"]
    for c in study.conditions.values():
        assert len(c.seeds) >= 3 and c.changes == {"lambda_d": 1.0} and c.expected["scifact"]["nDCG@10"] > 0
        assert c.recipe(42).lambda_d > load_condition(c.base.id).recipe(42).lambda_d
    assert study.training == ("flops_term", "ranking", "flops_over_ranking")


def test_loss_terms_are_the_last_logged_step(tmp_path):
    (tmp_path / "log_history.json").write_text(json.dumps([
        {"step": 10, "lambda": 0.1, "flops": 20.0, "ranking": 2.0, "loss": 4.0},
        {"step": 20, "lambda": 1.0, "flops": 4.5, "ranking": 1.5, "loss": 6.0, "masked_fraction": 0.5},
        {"step": 20, "train_loss": 5.0}]))
    terms = training_measures(tmp_path)
    assert terms == {"step": 20, "flops_term": 4.5, "ranking": 1.5, "flops_over_ranking": 3.0, "masked_fraction": 0.5}
    (tmp_path / "log_history.json").write_text("[]")
    with pytest.raises(InputError, match="no logged loss terms"):
        training_measures(tmp_path)


def test_a_training_measure_is_named_and_never_compared(tmp_path):
    path = tmp_path / "bad.yaml"
    for old, new, needle in [("training: [flops_term,", "training: [flops_trem,", ":5: training: "),
                             ("measure: Doc_Len", "measure: flops_term", ":13: comparisons[0].measure: flops_term is a "
                                                                        "training log's value")]:
        path.write_text(REGIME_STUDY.replace("study: regime-test", "study: bad").replace(old, new))
        with pytest.raises(InputError) as err:
            load_study(path)
        assert needle in str(err.value), (needle, str(err.value))
    one_line_error(run("eval.study", path, "--dry-run"), "bad.yaml:13: comparisons[0].measure")


def test_regime_run_reports_training_measures_seed_means_and_tests(tmp_path, scifact_dir, monkeypatch):
    """Two conditions, two seeds, two training steps: the table has each condition's seed means and its models' last
    logging window; the claims are tested; every stored number is re-derived by the check, and the missed expectation
    of the study file fails it."""
    monkeypatch.setenv("KIT_WORK", str(tmp_path / "work"))
    data = load_condition("baseline").recipe().data
    stage_mined_file(data, scifact_dir, n_queries=4, docs_each=3, score=lambda q, i: 9.0 - 3 * i)
    path = tmp_path / "regime-test.yaml"
    path.write_text(REGIME_STUDY)
    study = load_study(path)
    scale = Scale("test", max_steps=2, max_length=32, batch_size=2, eval_max_length=32, queries=3, docs=20,
                  zero_shot=(), checked=True, overrides={"logging_steps": 1})
    ablator = Ablator(scale, root=tmp_path / "work" / "ablation", in_domain=study.in_domain, measures=study.measures)
    out = tmp_path / "results"
    m = measured(study, ablator, None)
    code = run_study(study, m, out, "python -m eval.study regime-test --scale test")
    table = pd.read_csv(out / "regime-test.csv").set_index("system")
    assert list(table.index) == ["baseline", "l0"] and (table["seeds"] == "42 7").all()
    # the expectation 0.0 is missed: the row fails, and so does the command
    assert code == 1 and list(table["check"].fillna("")) == ["", "FAIL"]
    for cid, runs in m.runs.items():
        logged = [training_measures(r.model) for r in runs]
        assert all(t["step"] == 2 for t in logged)
        assert table.loc[cid, "scifact flops_term"] == pytest.approx(sum(t["flops_term"] for t in logged) / 2, abs=1e-6)
    meta = json.loads((out / "regime-test.json").read_text())
    rows = {r["system"]: r["metrics"] for r in meta["rows"]}
    assert rows[seed_system("l0", 7)]["flops_over_ranking"] == training_measures(m.runs["l0"][1].model)["flops_over_ranking"]
    claims = pd.DataFrame(meta["claims"])
    assert len(claims) == 2 and claims["p_holm"].tolist() == pytest.approx(holm(claims["p"].tolist()))
    md = (out / "regime-test.md").read_text()
    assert "scifact flops_term" in md and "Training columns" in md and "## Comparisons" in md
    (failed,) = check([out / "regime-test.json"])
    assert "regime-test.json: rows[" in failed and "scifact l0 nDCG@10" in failed and "its expectation is 0 ± 0.002" in failed


def test_the_stored_regime_is_checked_against_the_study_file():
    stored = REPO / "results" / "regime.json"
    meta = json.loads(stored.read_text())
    measured_by = meta.get("measured_by", meta["command"])  # a replay names the command that measured
    assert meta["study"] == "recipes/studies/regime.yaml" and measured_by.startswith("python -m eval.study regime")
    assert check([stored]) == []


def test_a_run_writing_results_says_it_changed_the_stored_reference(tmp_path):
    from eval.results import STORED, where_written

    assert "unchanged" not in where_written(STORED, "regime")
    assert "stored reference in results/ is unchanged" in where_written(tmp_path / "results", "regime")
