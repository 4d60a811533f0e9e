"""Table 1 as a study of references (``python -m eval.study table1``, alias ``python -m eval.reproduce``): a table
recipe's own datasets and measures under ``--recipe``, and a replay that keeps the measuring run's wall times. Each
through the real command line, on records written by the runner's own writer (no data loaded)."""

from __future__ import annotations

import json

from conftest import write_table1_record
from test_faults import no_traceback_ok, run

from report.check import check

VALUES = {"bm25": [0.5, 0.0, 1.0, 0.25, 0.75], "dense": [0.6, 0.1, 0.9, 0.25, 0.8]}


def test_a_recipe_brings_its_own_datasets_and_expectations(tmp_path):
    """``--recipe`` without ``--datasets`` measures the recipe's datasets (vaswani here), with the expectations it
    gives them; the study's own (SciFact) would drop them: every row measured, none checked."""
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("table: 1\ndatasets: [vaswani]\nmeasures: [nDCG@10, R@100]\nsystems:\n"
                      "  - {id: bm25-flat, type: bm25, expected: {vaswani: {nDCG@10: 0.5, R@100: 0.9}}}\n")
    result = run("eval.reproduce", "--recipe", recipe, "--list-conditions")
    no_traceback_ok(result)
    assert ("bm25-flat: bm25 system of Table 1; one run per dataset; expected vaswani nDCG@10 0.5, R@100 0.9"
            in result.out)


def test_a_replay_keeps_the_wall_times_of_the_run_it_replays(tmp_path):
    """A replayed record keeps the measuring run's ``stage_seconds`` (what ``python -m bench.e2e`` and
    docs/stored-results.md read) beside its command (``measured_by``), and re-derives the same table."""
    record = write_table1_record(tmp_path, VALUES, tolerance=0.002, dataset="vaswani")
    doc = json.loads(record.read_text())
    doc["stage_seconds"] = {"index": 1.5, "search": 0.25}
    record.write_text(json.dumps(doc, indent=2))
    out = tmp_path / "replayed"
    result = run("eval.study", "table1", "--recipe", tmp_path / "toy.yaml", "--replay", record, "--out", out)
    no_traceback_ok(result)
    replayed = json.loads((out / "table1.json").read_text())
    assert replayed["stage_seconds"] == {"index": 1.5, "search": 0.25}
    assert replayed["measured_by"] == doc["command"] and replayed["rows"] == doc["rows"]
    assert (out / "table1.csv").read_text() == (tmp_path / "table1.csv").read_text()
    assert check([out / "table1.json"], quiet=True) == []
