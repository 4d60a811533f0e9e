"""The teacher-ceiling report (recipes/teachers.yaml, python -m eval.teachers): the recipe, the fusion (against a
min-max sum computed by hand), the student's paired tests, and the stored report re-verified."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from eval import teachers
from eval.compare import check
from eval.stats import holm
from kit.errors import InputError
from kit.manifest import Artifact
from kit.paths import REPO


def test_the_recipe_names_table_1_systems_and_fusions_of_them():
    report = teachers.load_teacher_report()
    assert report.student == "kit-l0.splade-tiny" and "bm25-flat" in report.systems
    assert set(report.splits.values()) == {"scifact", "scifact/train"}
    assert report.fusions["minilm+splade-tiny"] == ("minilm-l6.dense", "splade-tiny.siamese")  # the training ensemble


@pytest.mark.parametrize("change, message", [
    ("systems: [bm25-flat, minilm-l6]", "'minilm-l6' is not a system of recipes/table1.yaml"),
    ("fusions: {x: [bm25-flat]}", "at least two"),
    ("expected: {bm25-flat: {dev: {nDCG@10: 0.5}}}", "expected.bm25-flat"),
])
def test_a_bad_recipe_names_its_line(tmp_path, change, message):
    key = change.split(":")[0]
    lines = [line for line in (REPO / "recipes" / "teachers.yaml").read_text().splitlines()
             if not line.startswith(f"{key}:") and not line.startswith("  ")]
    path = tmp_path / "teachers.yaml"
    path.write_text("\n".join([*lines, change]) + "\n")
    with pytest.raises(InputError, match=message) as err:
        teachers.load_teacher_report(path)
    assert f"{path}:" in str(err.value)
    proc = subprocess.run([sys.executable, "-m", "eval.teachers", "--recipe", str(path), "--list-conditions"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and message.split("'")[0] in proc.stderr


def test_dry_run_prints_every_split_and_fusion_and_runs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_WORK", str(tmp_path))
    assert teachers.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# scifact__train: 5183 documents, 809 queries" in out and "# scifact: 5183 documents, 300 queries" in out
    assert out.count("bm25+minilm+splade-tiny: pyserini.fusion.normalize") == 2 and "[cached]" not in out
    assert not (tmp_path / "results").exists()


def _write_run(path, rows):
    path.write_text("".join(f"{q} Q0 {d} {i + 1} {s} x\n" for q, ranked in rows.items()
                            for i, (d, s) in enumerate(ranked)))


def test_fusion_is_the_sum_of_min_max_normalised_scores(tmp_path):
    a = {"q1": [("d1", 10.0), ("d2", 6.0), ("d3", 2.0)], "q2": [("d1", 3.0), ("d4", 1.0)]}
    b = {"q1": [("d3", 0.9), ("d2", 0.8), ("d4", 0.5)], "q2": [("d4", 0.7), ("d1", 0.2)]}
    arts = []
    for name, rows in (("a", a), ("b", b)):
        art = Artifact.named(tmp_path / "runs", name, {"run": name}, suffix=".trec")
        art.path.parent.mkdir(parents=True, exist_ok=True)
        _write_run(art.path, rows)
        art.complete()
        arts.append(art)
    run = SimpleNamespace(root=tmp_path, settings=SimpleNamespace(hits=1000, force=False),
                          run=lambda s: arts[s])
    path = teachers.fused_run(run, "ab", [0, 1])
    fused = pd.read_csv(path, sep=" ", header=None, names=["q", "q0", "d", "rank", "score", "tag"])

    def minmax(ranked):
        lo, hi = min(s for _, s in ranked), max(s for _, s in ranked)
        return {d: (s - lo) / (hi - lo) for d, s in ranked}

    for q in ("q1", "q2"):
        na, nb = minmax(a[q]), minmax(b[q])
        want = {d: na.get(d, 0.0) + nb.get(d, 0.0) for d in {*na, *nb}}
        got = fused[fused["q"] == q].set_index("d")["score"].to_dict()
        assert got == pytest.approx(want)
        assert list(fused[fused["q"] == q]["d"]) == sorted(want, key=lambda d: (-want[d], d))
    assert teachers.fused_run(run, "ab", [0, 1]) == path  # cached by its runs' keys


def test_the_student_is_tested_against_every_other_row_with_holm():
    pq = pd.DataFrame([{"dataset": "s", "system": sid, "query_id": q, "measure": "nDCG@10", "value": v}
                       for sid, values in (("student", [0.5, 0.6, 0.7, 0.2]), ("bm25", [0.4, 0.6, 0.5, 0.1]),
                                           ("fusion", [0.9, 0.8, 0.9, 0.6]))
                       for q, v in zip("abcd", values)])
    rows = [{"system": "student"}, {"system": "bm25"}, {"system": "fusion"}]
    teachers.student_tests(rows, pq, "student")
    assert "student_delta" not in rows[0]
    assert rows[1]["student_delta"] == pytest.approx(0.1) and rows[2]["student_delta"] == pytest.approx(-0.3)
    assert (rows[1]["student_wins"], rows[1]["student_ties"], rows[1]["student_losses"]) == (3, 1, 0)
    assert [rows[1]["student_p_holm"], rows[2]["student_p_holm"]] == pytest.approx(
        holm([rows[1]["student_p_t"], rows[2]["student_p_t"]]))


def test_the_stored_report_is_its_per_query_means_and_meets_its_expectations(tmp_path):
    stored = REPO / "results" / "teachers.json"
    meta = json.loads(stored.read_text())
    assert meta["kind"] == "teachers" and set(meta["splits"]) == {"train", "test"}
    assert meta["recipe"] == "recipes/teachers.yaml"
    assert check([stored]) == []
    # the check reads the recipe's expectations, not the file's own copy: an edited expectation fails it
    recipe = tmp_path / "teachers.yaml"
    recipe.write_text((REPO / "recipes" / "teachers.yaml").read_text().replace(
        "bm25-flat: {train: {nDCG@10: 0.6974}", "bm25-flat: {train: {nDCG@10: 0.6900}"))
    failed = check([stored], recipe)  # the number, and the stored copy of the expectation
    assert len(failed) == 2 and all("scifact__train bm25-flat" in f for f in failed)
    expected = teachers.load_teacher_report().expected
    checked = [r for r in meta["rows"] if "expected" in r]
    assert len(checked) == sum(len(v) for v in expected.values()) > 0
