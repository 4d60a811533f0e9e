"""A study of ``sparsity: all-datasets`` (eval.study.systems): a condition with a query side of its own, measured as a
system (its documents encoded whole, FLOPS, Doc_Len and Query_Len on every dataset) through the real CLI at smoke
scale, and its record re-derived by ``compare --check`` like any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import stage_mined_file
from test_faults import run

from train.conditions import load_condition

pytestmark = pytest.mark.integration

STUDY = """\
study: query-side
title: "A condition with its own query side"
in_domain: scifact
datasets: [scifact]
sparsity: all-datasets
references: [bm25-flat]
conditions:
  - id: own-query
    from: baseline
    label: Baseline, BoW × corpus IDF queries
    query: {encoder: bow-idf, idf: corpus}
    expected: {}                       # the condition file's are of its own datasets
tables:
  - id: main
    rows: [own-query, bm25-flat]
    columns: {scifact: [nDCG@10, FLOPS, Doc_Len, Query_Len]}
"""


def test_a_condition_with_its_own_query_side_runs_at_smoke_scale(tmp_path, scifact_dir):
    work = tmp_path / "work"
    stage_mined_file(work / "train" / Path(load_condition("baseline").recipe().data).name, scifact_dir,
                     n_queries=8, docs_each=3, score=lambda q, i: 9.0 - 3 * i)
    study = tmp_path / "query-side.yaml"
    study.write_text(STUDY)
    env = {"KIT_WORK": str(work)}
    out = tmp_path / "results"
    result = run("eval.study", study, "--scale", "smoke", "--out", out, env=env)
    assert result.rc == 0, result.err[-3000:]
    record = json.loads((out / "query-side.json").read_text())
    rows = {r["system"]: r["metrics"] for r in record["rows"]}
    assert set(rows) == {"own-query", "own-query@seed42", "bm25-flat"}
    assert {"nDCG@10", "FLOPS", "Doc_Len", "Query_Len"} <= set(rows["own-query"])
    assert rows["own-query"]["Query_Len"] > 0 and rows["own-query"]["Doc_Len"] > 0
    # the documents are the whole slice's, in the dataset's shared folder (not the model's own eval folder)
    assert list(work.glob("scifact*/vectors")), sorted(p.name for p in work.iterdir())
    # the query side is the one the condition names: BoW × IDF from the corpus, not the model's idf.json
    assert list(work.glob("scifact*/queries/own-query.*.jsonl"))
    assert list(work.glob("scifact*/idf/corpus-idf.*.json")), "no corpus IDF: the queries used the model's idf.json"
    check = run("report.compare", "--check", "--against", out / "query-side.json", env=env)
    assert check.rc == 0 and "0 failures" in check.out, check.out[-2000:] + check.err[-2000:]
