"""The FLOPS-dominated regime (recipes/regime.yaml, python -m eval.regime): the file, the loss terms that show the
regime, and one end-to-end run at a one-step scale with two seeds through the code make regime runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import stage_mined_file

from eval import regime as regime_cli
from eval.ablator import Ablator, Scale
from eval.compare import check
from eval.schema import load_results
from eval.stats import holm
from kit.errors import InputError
from kit.paths import REPO
from train.conditions import REGIME, load_condition, load_regime


def test_the_regime_file_declares_table_2s_conditions_with_seeds():
    regime = load_regime()
    assert regime.conditions == ("baseline", "l0-mask", "l0-act", "l0-mask-l0-act")
    assert len(regime.seeds) >= 3 and regime.changes["lambda_d"] > load_condition("baseline").recipe().lambda_d
    assert set(regime.expected) <= set(regime.conditions)


@pytest.mark.parametrize("body, message", [
    ("set: {lambda_d: 1}\nseeds: [42]\nconditions:\n  baselin: {}\n", "'baselin' is not a condition of Table 2"),
    ("set: {lambda_d: 1}\nseeds: [42]\nconditions:\n  baseline: {}\n  de-l0-act: {}\n", "'de-l0-act' is not a"),
    ("set: {lambda_d: 1}\nseeds: [42]\nconditions:\n  l0-mask: {}\n", "baseline, which is missing"),
    ("set: {lambda_d: 1}\nseeds: [42, 42]\nconditions:\n  baseline: {}\n", "distinct"),
    ("set: {lamda_d: 1}\nseeds: [42]\nconditions:\n  baseline: {}\n", "lamda_d"),
    ("set: {lambda_d: 1}\nseeds: [42]\nconditions:\n  baseline: {expected: {nDCG@10: -1}}\n", "expected: must be a finite"),
])
def test_a_bad_regime_file_names_its_line(tmp_path, body, message):
    path = tmp_path / "regime.yaml"
    path.write_text(body)
    with pytest.raises(InputError, match=message) as err:
        load_regime(path)
    assert str(path) in str(err.value)


def test_a_bad_regime_file_is_one_line_from_the_command_line(tmp_path):
    path = tmp_path / "regime.yaml"
    path.write_text("set: {lambda_d: 1}\nseeds: [42]\nconditions:\n  baselin: {}\n")
    proc = subprocess.run([sys.executable, "-m", "eval.regime", "--regime", str(path), "--list-conditions"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}:4" in proc.stderr and "is not a condition of Table 2" in proc.stderr


def test_loss_terms_are_the_last_logged_step(tmp_path):
    (tmp_path / "log_history.json").write_text(json.dumps([
        {"step": 10, "lambda": 0.1, "flops": 20.0, "ranking": 2.0, "loss": 4.0},
        {"step": 20, "lambda": 1.0, "flops": 4.5, "ranking": 1.5, "loss": 6.0},
        {"step": 20, "train_loss": 5.0}]))
    terms = regime_cli.loss_terms(tmp_path)
    assert terms == {"step": 20, "flops_term": 4.5, "ranking": 1.5, "flops_over_ranking": 3.0}
    (tmp_path / "log_history.json").write_text("[]")
    with pytest.raises(InputError, match="no logged loss terms"):
        regime_cli.loss_terms(tmp_path)


def test_list_conditions_and_dry_run_print_every_seed(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_WORK", str(tmp_path))
    assert regime_cli.main(["--list-conditions"]) == 0
    out = capsys.readouterr().out
    for cid in ("baseline", "l0-mask", "l0-act", "l0-mask-l0-act"):
        for seed in load_regime().seeds:
            assert f"measure {cid} --seed {seed} --scale full --set lambda_d=1 --no-zero-shot" in out
    assert regime_cli.main(["--dry-run", "--seeds", "42,43"]) == 0
    out = capsys.readouterr().out
    assert out.count("[to train]") + out.count("[cached]") == 8


def test_regime_run_reports_loss_terms_seed_counts_and_tests(tmp_path, scifact_dir, monkeypatch):
    """Two conditions, two seeds, two training steps: the table has each condition's seed means, the loss terms of its
    models' last logging window, the seed counts, BM25 beside it; the claims are tested; every stored number is its
    per-item mean."""
    monkeypatch.setenv("KIT_WORK", str(tmp_path / "work"))
    data = load_condition("baseline").recipe().data
    stage_mined_file(data, scifact_dir, n_queries=4, docs_each=3, score=lambda q, i: 9.0 - 3 * i)
    path = tmp_path / "regime.yaml"
    path.write_text("set: {lambda_d: 1}\nseeds: [42, 7]\ntolerance: 0.002\n"
                    "conditions:\n  baseline: {}\n  l0-mask-l0-act: {expected: {nDCG@10: 0.0}}\n")
    scale = Scale("test", max_steps=2, max_length=32, batch_size=2, eval_max_length=32, queries=3, docs=20,
                  zero_shot=(), checked=True, overrides={"logging_steps": 1})
    ablator = Ablator(scale, root=tmp_path / "work" / "ablation")
    out = tmp_path / "results"
    code = regime_cli.run_regime(ablator, out, "python -m eval.regime --scale test", regime=load_regime(path))
    table = pd.read_csv(out / "regime" / "regime.csv")
    assert list(table["system"]) == ["baseline", "l0-mask-l0-act"] and (table["seeds"] == "42 7").all()
    # the expectation 0.0 is missed: the row fails, and so does the command
    assert code == 1 and list(table["check"].fillna("")) == ["", "FAIL"]
    meta = json.loads((out / "regime" / "regime.json").read_text())
    assert set(meta["loss_terms"]) == {"baseline@seed42", "baseline@seed7", "l0-mask-l0-act@seed42",
                                       "l0-mask-l0-act@seed7"}
    for cid in table["system"]:
        terms = [meta["loss_terms"][f"{cid}@seed{s}"] for s in (42, 7)]
        assert all(t["step"] == 2 for t in terms)
        row = table.set_index("system").loc[cid]
        assert row["flops_term"] == pytest.approx(sum(t["flops_term"] for t in terms) / 2)
        assert row["seeds_flops_dominant"] == sum(t["flops_over_ranking"] > 1 for t in terms)
    bm25 = next(r["metrics"]["nDCG@10"] for r in meta["rows"] if r["system"] == "bm25-flat")
    assert table["Δ_bm25"].tolist() == pytest.approx([round(100 * (v - bm25), 2) for v in table["nDCG@10"]])
    seed_lens = {s: next(r["metrics"]["Doc_Len"] for r in meta["rows"] if r["system"] == f"l0-mask-l0-act@seed{s}")
                 for s in (42, 7)}
    base_len = table.set_index("system").loc["baseline", "Doc_Len"]
    assert table.set_index("system").loc["l0-mask-l0-act", "seeds_shorter_than_baseline"] == \
        sum(v < base_len for v in seed_lens.values())
    claims = pd.DataFrame(meta["claims"])
    assert claims.groupby("family").size().to_dict() == {"regime vs baseline": 3, "regime vs BM25": 2}
    for _, family in claims.groupby("family"):
        assert family["p_holm"].tolist() == pytest.approx(holm(family["p_t"].tolist()))
    md = (out / "regime" / "regime.md").read_text()
    assert "λ·FLOPS (last window)" in md and "## What the tests say" in md and "BM25" in md
    stored = load_results(out / "regime" / "regime.json")
    assert stored.per_query["measure"].eq("Doc_Len").any()
    # its stored numbers are their per-item means, its table and Markdown what they render to; only the missed
    # expectation of the regime file fails
    (failed,) = check([out / "regime" / "regime.json"])
    assert "regime.json: rows[" in failed and "scifact l0-mask-l0-act nDCG@10" in failed
    assert "its expectation is 0 ± 0.002" in failed


def test_the_stored_regime_is_checked_against_the_regime_file():
    stored = REPO / "results" / "regime" / "regime.json"
    meta = json.loads(stored.read_text())
    assert meta["recipe"] == str(REGIME.relative_to(REPO))
    assert check([stored]) == []


def test_a_run_writing_a_subfolder_of_results_says_it_changed_the_stored_reference(tmp_path):
    """make figures/regime UPDATE=1 write results/figures/ and results/regime/: their last line must not claim the
    stored reference is unchanged (it did, for the figures)."""
    from eval.results import STORED, where_written

    assert "unchanged" not in where_written(STORED / "regime", "regime")
    assert "unchanged" not in where_written(STORED, "table1")
    assert "stored reference in results/ is unchanged" in where_written(tmp_path / "results" / "regime", "regime")
