"""Studies as data (eval.study): every stored study file validates, a study's comparisons re-derive the stored
verdicts, a malformed file is one line at its key, and a new study written only as YAML runs end to end at smoke
scale, its record re-derived by ``compare --check`` like any other."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import stage_mined_file
from test_faults import one_line_error, run

from eval.schema import load_results
from eval.ablator import seed_system
from eval.study.derive import RAW_COLUMNS, Run, comparisons, derive
from eval.results import json_records
from eval.study.replay import replayed
from eval.study.spec import STUDIES, load_study
from kit.errors import InputError
from kit.paths import REPO
from train.conditions import load_condition

pytestmark = pytest.mark.integration

def example_study() -> str:
    """The complete example of docs/studies.md (the page's first YAML block)."""
    page = (REPO / "docs" / "studies.md").read_text(encoding="utf-8")
    return page.split("```yaml\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_study_file_validates(path):
    study = load_study(path)
    assert study.tables and (study.conditions or study.references)
    for t in study.tables:
        assert set(t.rows) <= study.known()


def _runs_of(record: Path, study) -> tuple[dict, dict, pd.DataFrame, list[str]]:
    res = load_results(record)
    metrics = {(r["dataset"], r["system"]): r["metrics"] for r in res.rows}
    datasets = list(res.meta["datasets"])
    runs = {c: [Run(c, s, {d: metrics[(d, seed_system(c, s))] for d in datasets}) for s in res.meta["seeds"][c]]
            for c in study.conditions}
    refs = {(d, r.id): metrics[(d, r.id)] for d in datasets for r in study.references}
    return runs, refs, res.per_query, datasets


@pytest.mark.parametrize("n", [2, 3])
def test_table_studies_re_derive_the_stored_verdicts(n):
    """The comparisons of recipes/studies/table<n>.yaml, tested on the stored measurements, give the stored claims
    number for number: the study file says what the paper's table claims, and nothing else."""
    record = REPO / "results" / f"table{n}.json"
    study = load_study(f"table{n}")
    runs, refs, pq, datasets = _runs_of(record, study)
    stored = pd.DataFrame(json.loads(record.read_text())["claims"])
    derived = comparisons(study, pq, datasets, runs, refs)
    assert len(derived) == len(stored)
    for column in ("family", "system", "versus", "measure", "dataset", "claim", "verdict", "test", "seeds"):
        assert derived[column].tolist() == stored[column].tolist(), column
    for column in ("delta", "ci_low", "ci_high", "p", "p_holm", "p_tost_holm", "mde", "mean", "mean_versus"):
        assert derived[column].tolist() == stored[column].tolist(), column  # bit-identical
    seconds = {c: dict.fromkeys(RAW_COLUMNS, 0.0) for c in runs}
    table = derive(study, runs, refs, pq, datasets, True, "test", "full", seconds).table
    assert (table["check"] == "OK").all()  # every condition's seed mean within its condition file's expectation


def test_the_teachers_study_re_derives_the_stored_record():
    """recipes/studies/teachers.yaml, the student's seeds beside references and fusions on two splits, re-derived
    from the stored record's rows and per-query values: the same claims, rows and checks, number for number."""
    record = REPO / "results" / "teachers.json"
    study = load_study("teachers")
    m = replayed(study, record)
    stored = json.loads(record.read_text())
    per_query = pd.concat([m.means, m.seeds, m.reference_pq], ignore_index=True)
    d = derive(study, m.runs, m.references, per_query, m.datasets, m.checked, "test", m.scale, m.seconds)
    assert list(m.runs) == ["student"] and m.datasets == ["scifact/train", "scifact"]
    assert json_records(d.claims) == stored["claims"]  # bit-identical: deltas, p-values, W/T/L, Holm, verdicts
    assert d.rows == stored["rows"]
    assert (d.table["check"] == "OK").all()
    assert d.table.set_index("system")["seeds"].to_dict() == {**{r.id: "" for r in study.references}, "student": "42 43 44"}
    assert [c["family"] for c in stored["claims"]].count("student vs every row (train)") == 6


def test_a_malformed_study_is_one_line_at_its_key(tmp_path):
    good = example_study().replace("study: smoke-act", "study: bad")
    cases = [(good.replace("versus: relu", "versus: nope"), ":27: comparisons[0].versus: 'nope' is not another"),
             (good.replace("rows: [relu, l0]", "rows: [relu, l1]"), ":21: tables[0].rows[1]: 'l1' is not a condition"),
             (good.replace("from: l0-act", "from: l0-actt"), ":12: conditions[1].from: "),
             (good.replace("claim: higher", "claim: better"), ":30: comparisons[0].claim: "),
             (good.replace("[nDCG@10, FLOPS, Doc_Len]", "[ndcg@10]"), "ir-measures spells it nDCG@10"),
             (good.replace("datasets: [scifact]   ", "datasets: [vaswani]   "), ":5: in_domain: 'scifact' is not one")]
    for text, needle in cases:
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        with pytest.raises(InputError) as err:
            load_study(path)
        assert needle in str(err.value), (needle, str(err.value))
    path.write_text(good.replace("versus: relu", "versus: nope"))
    one_line_error(run("eval.study", path, "--dry-run"), "bad.yaml:27: comparisons[0].versus")


SWEEP_STUDY = """\
study: bad
title: a sweep
in_domain: scifact
datasets: [scifact]
sweeps:
  - id: lam
    field: lambda_d
    values: [0.01, 0.1]
    conditions: [baseline, l0-mask]
    set: {max_steps: 120}
    expected:
      lam.baseline.0.01: {scifact: {nDCG@10: 0.64}}
tables:
  - {id: t, rows: [lam], columns: {scifact: [nDCG@10, Doc_Len]}}
plots:
  - {id: p, sweep: lam, x: FLOPS, y: nDCG@10}
"""


def test_a_sweep_declares_its_points_and_a_malformed_one_is_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(SWEEP_STUDY)
    study = load_study(path)
    assert list(study.conditions) == ["lam.baseline.0.01", "lam.baseline.0.1", "lam.l0-mask.0.01", "lam.l0-mask.0.1"]
    assert study.tables[0].rows == tuple(study.conditions)
    assert study.conditions["lam.l0-mask.0.1"].changes == {"max_steps": 120, "lambda_d": 0.1}
    assert study.conditions["lam.baseline.0.01"].expected == {"scifact": {"nDCG@10": 0.64}}
    cases = [("field: lambda_d", "field: lambda", ":7: sweeps[0].field: "),
             ("values: [0.01, 0.1]", "values: [0.01, 0.01]", ":8: sweeps[0].values: a value is listed twice"),
             ("conditions: [baseline, l0-mask]", "conditions: [baseline, l0-masks]",
              ":9: sweeps[0].conditions[1]: 'l0-masks' is not a condition file"),
             ("lam.baseline.0.01: {", "lam.baseline.0.02: {", ":12: sweeps[0].expected.lam.baseline.0.02: "),
             ("set: {max_steps: 120}", "set: {lambda_d: 0.5}", ":10: sweeps[0].set: lambda_d is the swept field"),
             ("x: FLOPS", "x: threshold", ":16: plots[0].x: 'threshold' is neither a measure nor the swept field"),
             ("sweep: lam,", "sweep: lambda,", ":16: plots[0].sweep: ")]
    for old, new, needle in cases:
        path.write_text(SWEEP_STUDY.replace(old, new))
        with pytest.raises(InputError) as err:
            load_study(path)
        assert needle in str(err.value), (needle, str(err.value))
    path.write_text(SWEEP_STUDY.replace("x: FLOPS", "x: threshold"))
    one_line_error(run("eval.study", path, "--dry-run"), "bad.yaml:16: plots[0].x")


def test_replay_reads_a_record_of_single_seed_conditions_named_by_their_ids(tmp_path):
    """The figure points' former layout (python -m eval.ablation figures): no ``seeds`` map, each point's one run under
    its own id, wall times as a model's timing.json columns. Built here from the stored record's seed-42 runs and
    replayed with a one-seed copy of the study, it gives those runs back."""
    import gzip

    from eval.study.replay import replayed

    doc = json.loads((REPO / "results" / "figures.json").read_text())
    old = {k: v for k, v in doc.items() if k not in ("seeds", "study", "checked")}
    seed42 = [{k: v for k, v in r.items() if k != "seed"} | {"system": r["condition"]}
              for r in doc["rows"] if r.get("seed") == 42]
    old.update(kind="figures", recipe="recipes/figures.yaml",
               rows=seed42 + [r for r in doc["rows"] if "condition" not in r])
    (tmp_path / "figures.json").write_text(json.dumps(old))
    table = pd.read_csv(REPO / "results" / "figures.csv").rename(columns={"train_s": "train", "eval_s": "eval_scifact"})
    table.to_csv(tmp_path / "figures.csv", index=False)
    (tmp_path / "per-query").mkdir()
    pq = pd.read_csv(REPO / "results" / "per-query" / "figures.csv.gz")
    points = set(pq.loc[pq["system"].str.contains("@seed"), "system"].str.split("@").str[0])
    pq = pq[~pq["system"].isin(points) & (~pq["system"].str.contains("@seed") | pq["system"].str.endswith("@seed42"))]
    pq = pq.assign(system=pq["system"].str.replace("@seed42", "", regex=False))
    with gzip.open(tmp_path / "per-query" / "figures.csv.gz", "wt") as fh:
        pq.to_csv(fh, index=False)
    one_seed = tmp_path / "figures.yaml"
    one_seed.write_text((STUDIES / "figures.yaml").read_text().replace("seeds: [42, 43, 44]", "seeds: [42]"))
    study = load_study(one_seed)
    m = replayed(study, tmp_path / "figures.json")
    assert all([r.seed for r in m.runs[c]] == [42] for c in study.conditions)
    stored = {(r["dataset"], r["system"]): r["metrics"] for r in doc["rows"]}
    assert all(stored[("scifact", seed_system(c, 42))] == m.runs[c][0].scores["scifact"] for c in study.conditions)
    first = table.iloc[0]
    assert m.seconds[first["system"]] == {"train_s": first["train"], "eval_s": first["eval_scifact"]}


def test_expectations_apply_only_at_the_declared_seeds():
    """An expectation is a seed mean over the declared seeds: ``--seeds 42`` alone is measured, not checked (it printed
    FAIL against Table 2's three-seed means and exited 1); the declared seeds, or none given, are checked."""
    from eval.ablator import get_scale
    from eval.study.runner import checked_at

    study, full = load_study("table2"), get_scale("full")
    assert checked_at(study, full, None) and checked_at(study, full, (42, 43, 44))
    assert not checked_at(study, full, (42,)) and not checked_at(study, full, (44, 43, 42))
    assert not checked_at(study, get_scale("smoke"), None)


def test_a_yaml_only_study_runs_at_smoke_scale_and_checks(tmp_path, scifact_dir):
    """Two conditions and one comparison, written only as YAML: trained, measured, tabulated, tested and written
    by python -m eval.study; compare --check re-derives every number of the record from the study file."""
    work = tmp_path / "work"
    stage_mined_file(work / "train" / Path(load_condition("baseline").recipe().data).name, scifact_dir,
                     n_queries=8, docs_each=3, score=lambda q, i: 9.0 - 3 * i)
    study = tmp_path / "smoke-act.yaml"
    study.write_text(example_study())
    env = {"KIT_WORK": str(work)}
    plan = run("eval.study", study, "--scale", "smoke", "--dry-run", env=env)
    assert plan.rc == 0 and "[1/2] relu seed 42" in plan.out and "[to train]" in plan.out, plan.err[-2000:]
    out = tmp_path / "results"
    result = run("eval.study", study, "--scale", "smoke", "--out", out, env=env)
    assert result.rc == 0, result.err[-3000:]
    assert "[2/2] l0 seed 42" in result.err + result.out
    record = json.loads((out / "smoke-act.json").read_text())
    assert record["kind"] == "study" and record["seeds"] == {"relu": [42], "l0": [42]}
    assert [c["verdict"] for c in record["claims"]] and record["claims"][0]["source"] == "ours"
    rows = {(r["system"], r.get("seed")) for r in record["rows"]}
    assert {("relu", None), ("relu@seed42", 42), ("bm25-flat", None)} <= rows
    md = (out / "smoke-act.md").read_text()
    assert "| ReLU | 42 |" in md and "BM25" in md and "## Comparisons" in md
    check = run("report.compare", "--check", "--against", out / "smoke-act.json", env=env)
    assert check.rc == 0 and "0 failures" in check.out, check.out[-2000:] + check.err[-2000:]
    # a number edited in the record is caught by the same generic re-derivation
    edited = (out / "smoke-act.md").read_text().replace("| ReLU | 42 |", "| ReLU | 43 |")
    (out / "smoke-act.md").write_text(edited)
    assert run("report.compare", "--check", "--against", out / "smoke-act.json", env=env).rc == 1


def test_no_two_study_files_test_the_same_comparison(tmp_path):
    """Table 3 used to re-test Table 2's rows against the Baseline in a family of its own, so the same models got two
    verdicts. Stored study files share no comparison; a copy of Table 2 under another id shares all of its own."""
    from eval.study.consistency import shared_comparisons

    studies = [load_study(p) for p in sorted(STUDIES.glob("*.yaml"))]
    assert shared_comparisons(studies) == []
    copy = tmp_path / "table2-again.yaml"
    copy.write_text((STUDIES / "table2.yaml").read_text().replace("study: table2", "study: table2-again"))
    found = shared_comparisons([load_study("table2"), load_study(copy)])
    assert len(found) == sum(len(c.datasets) for c in load_study("table2").comparisons)
    assert found[0].startswith("table2-again: l0-mask against baseline on FLOPS (scifact) is also tested by table2")
