"""Li-LSR as a study (recipes/studies/lilsr.yaml): its seeds, each condition's own query side, documents encoded whole
and FLOPS, Doc_Len and Query_Len measured on every dataset, the stored record re-derived from it, and its mistakes
as one line at their key."""

from __future__ import annotations

import json
import re

import pandas as pd
from test_faults import one_line_error, run

from eval.ablator import query_side
from eval.results import json_records
from eval.study.derive import derive
from eval.study.replay import replayed
from eval.study.spec import ALL_DATASETS, load_study
from kit.paths import REPO
from train.conditions import load_condition

STUDY = REPO / "recipes" / "studies" / "lilsr.yaml"
LEARNED = ("lilsr", "lilsr-anchor")


def test_the_study_runs_three_seeds_and_tests_every_learned_table_against_bow_idf():
    study = load_study("lilsr")
    assert study.sparsity == ALL_DATASETS and [r.id for r in study.references] == ["bm25-flat"]
    assert all(c.run_seeds() == (42, 43, 44) for c in study.conditions.values())
    sides = {c.id: (c.query.encoder, c.query.idf, c.query.table) for c in study.conditions.values()}
    assert sides["bow-idf"] == sides["lilsr-docs.bow-idf"] == ("bow-idf", "corpus", None)
    assert sides["lilsr"][0] == "lilsr" and sides["lilsr"][2] is None
    assert sides["lilsr-docs.idf-table"][2] == "corpus-idf"
    tested = {(c.condition, c.versus, c.measure, c.datasets) for c in study.comparisons}
    assert tested == {(s, "bow-idf", m, tuple(study.datasets)) for s in LEARNED for m in ("nDCG@10", "FLOPS")}
    assert {c.family for c in study.comparisons} == {"Li-LSR vs BoW×IDF"}  # one Holm family
    anchored = load_condition("lilsr-anchor").recipe()
    assert anchored.query_anchor > 0 and anchored.replace(query_anchor=0.0) == load_condition("lilsr").recipe()
    for d in study.datasets:  # every dataset has the sparsity columns, not the in-domain one alone
        assert {"FLOPS", "Doc_Len", "Query_Len"} <= set(study.measured(d))


def test_a_li_lsr_model_is_measured_with_its_own_table_and_an_l0_model_with_bow_idf():
    assert query_side(load_condition("lilsr").recipe()).encoder == "lilsr"
    assert query_side(load_condition("lilsr-anchor").recipe()).encoder == "lilsr"
    spec = query_side(load_condition("l0-mask-l0-act").recipe())
    assert (spec.encoder, spec.idf) == ("bow-idf", "model")


def test_the_stored_record_re_derives_from_the_study_file():
    """results/lilsr.json, replayed: the same rows (seed means with their expectations, each seed, BM25), the same
    paired tests number for number, every row within its expectation."""
    record = REPO / "results" / "lilsr.json"
    study = load_study("lilsr")
    m = replayed(study, record)
    stored = json.loads(record.read_text())
    per_query = pd.concat([m.means, m.seeds, m.reference_pq], ignore_index=True)
    d = derive(study, m.runs, m.references, per_query, m.datasets, m.checked, "test", m.scale, m.seconds)
    assert json_records(d.claims) == stored["claims"]
    assert d.rows == stored["rows"] and sum("expected" in r for r in d.rows) == 15  # 5 conditions x 3 datasets
    assert (d.table["check"] == "OK").all() and {r["seed"] for r in d.rows if "seed" in r} == {42, 43, 44}


def test_the_dry_run_lists_each_condition_seed_model():
    """15 models: 5 conditions x 3 seeds, where the conditions sharing a model (lilsr, lilsr-docs.*) name one folder."""
    proc = run("eval.study", "lilsr", "--dry-run")
    assert proc.rc == 0, proc.err
    # a model folder, or "<key of FILE, mined first>" on a checkout that has not mined the training file yet
    models = re.findall(r"^\[\d+/15\] (\S+) seed (\d+): model (.+?)(?:/model)? \[(?:cached|to train)\]", proc.out, re.M)
    assert len(models) == 15
    folder = {(c, s): f.split("/ablation/")[1] for c, s, f in models}
    for seed in ("42", "43", "44"):
        assert folder[("lilsr", seed)] == folder[("lilsr-docs.bow-idf", seed)] == folder[("lilsr-docs.idf-table", seed)]
        assert folder[("bow-idf", seed)].startswith("l0-mask-l0-act/")
    assert "references on each dataset (scifact, vaswani, cacm): bm25-flat" in proc.out


def test_a_query_side_without_whole_documents_is_one_line(tmp_path):
    path = tmp_path / "lilsr.yaml"
    path.write_text(STUDY.read_text(encoding="utf-8").replace("sparsity: all-datasets", "sparsity: in-domain"),
                    encoding="utf-8")
    err = one_line_error(run("eval.study", str(path), "--list-conditions"), str(path))
    assert "conditions[0].query" in err and "sparsity: all-datasets" in err


def test_a_comparison_listed_twice_is_refused_in_one_line(tmp_path):
    """The same data gets one verdict: a comparison repeated (here in another family, sides swapped) is refused at
    its line, naming the first listing. Query_Len, one value per model, is compared over the seeds like Doc_Len."""
    text = STUDY.read_text(encoding="utf-8")
    first = next(line for line in text.splitlines() if "versus: bow-idf, measure: FLOPS," in line)
    condition = first.split("condition: ")[1].split(",")[0]
    again = (first.replace("family: ", "family: again ").replace(f"condition: {condition}", "condition: bow-idf")
             .replace("versus: bow-idf", f"versus: {condition}"))
    path = tmp_path / "lilsr.yaml"
    path.write_text(text.replace(first, f"{first}\n{again}", 1), encoding="utf-8")
    err = one_line_error(run("eval.study", str(path), "--list-conditions"), str(path))
    assert "is already comparisons[" in err and "one comparison, one test, one verdict" in err
    path.write_text(text.replace("versus: bow-idf, measure: FLOPS,", "versus: bow-idf, measure: Query_Len,", 1),
                    encoding="utf-8")
    assert any(c.measure == "Query_Len" for c in load_study(path).comparisons)


def test_bad_seeds_in_the_study_are_one_line_naming_the_file(tmp_path):
    path = tmp_path / "lilsr.yaml"
    path.write_text(STUDY.read_text(encoding="utf-8").replace("seeds: [42, 43, 44]", "seeds: [42, 42]", 1),
                    encoding="utf-8")
    err = one_line_error(run("eval.study", str(path), "--list-conditions"), str(path))
    assert "seeds" in err and "distinct" in err


def test_bad_seeds_on_the_command_line_are_one_usage_line():
    proc = run("eval.study", "lilsr", "--seeds", "4,4", "--list-conditions")
    assert proc.rc == 2 and "Traceback" not in proc.err
    assert proc.err.strip().count("\n") == 0 and "seeds must be distinct" in proc.err
