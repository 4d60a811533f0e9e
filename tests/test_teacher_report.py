"""The teacher-ceiling study (recipes/studies/teachers.yaml, python -m eval.study teachers): references of any kind
of Table 1, fusions of them, splits as datasets, a malformed file as one line at its key, the fusion (against a
min-max sum computed by hand), and the stored record re-verified against the study file's expectations."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from test_faults import one_line_error, run

from eval.study.spec import load_study
from kit.errors import InputError
from kit.manifest import Artifact
from kit.paths import REPO
from pipeline.systems import Fusion, fusion_of
from report.compare import check

STUDY = REPO / "recipes" / "studies" / "teachers.yaml"


def test_the_study_names_table_1_systems_fusions_and_splits():
    study = load_study("teachers")
    refs = {r.id: r for r in study.references}
    assert list(study.conditions) == ["student"] and study.datasets == ("scifact/train", "scifact")
    student = study.conditions["student"]  # Table 1's kit-l0 model at its three seeds
    assert student.base.id == "l0-mask-l0-act" and student.run_seeds() == (42, 43, 44)
    assert refs["minilm+splade-tiny"].members == ("minilm-l6.dense", "splade-tiny.siamese")  # the training ensemble
    assert refs["bm25+minilm"].label == "BM25 + all-MiniLM-L6-v2 (fusion)"
    families = {c.family for c in study.comparisons}
    assert len(families) == 2 and {c.condition for c in study.comparisons} == {"student"}
    for family in families:  # the student against every other row, Holm within each split
        versus = [c.versus for c in study.comparisons if c.family == family]
        assert sorted(versus) == sorted(refs)
        assert len({c.datasets for c in study.comparisons if c.family == family}) == 1


@pytest.mark.parametrize("old, new, needle", [
    ("{id: minilm-l6.dense,", "{id: minilm-l6,", "references[1]: 'minilm-l6' is not a system of recipes/table1.yaml"),
    ("members: [bm25-flat, minilm-l6.dense]\n", "members: [bm25-flat]\n", "fusions.bm25+minilm.members: a fusion lists at least two"),
    ("datasets: [scifact/train, scifact]", "datasets: [scifact/trian, scifact]", "datasets: scifact has no 'trian' split"),
    ("expected: {scifact/train: {nDCG@10: 0.6974}", "expected: {scifact/dev: {nDCG@10: 0.6974}",
     "references[0].expected: 'scifact/dev' is not one of the study's datasets"),
    ("versus: bm25+minilm,", "versus: bm25+minlm,", "comparisons[4].versus: 'bm25+minlm' is not another condition"),
])
def test_a_bad_study_is_one_line_at_its_key(tmp_path, old, new, needle):
    text = STUDY.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "teachers.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_study(path)
    assert needle in str(err.value) and f"{path}:" in str(err.value), str(err.value)
    line = str(err.value).split(f"{path}:", 1)[1].split(":", 1)[0]
    assert new.splitlines()[0] in path.read_text().splitlines()[int(line) - 1]  # the line of the broken key
    one_line_error(run("eval.study", path, "--list-conditions"), f"teachers.yaml:{line}: {needle.split(':')[0]}")


def test_dry_run_names_every_split_and_fusion_and_runs_nothing(tmp_path):
    result = run("eval.study", "teachers", "--dry-run", env={"KIT_WORK": str(tmp_path)})
    assert result.rc == 0, result.err[-2000:]
    assert "references on each dataset (scifact/train, scifact): bm25-flat, minilm-l6.dense" in result.out
    assert "bm25+minilm+splade-tiny: pyserini.fusion.normalize" in result.out
    assert {p.name for p in tmp_path.iterdir()} <= {"logs"}  # nothing measured, loaded or downloaded


def _write_run(path, rows):
    path.write_text("".join(f"{q} Q0 {d} {i + 1} {s} x\n" for q, ranked in rows.items()
                            for i, (d, s) in enumerate(ranked)))


def test_fusion_is_the_sum_of_min_max_normalised_scores(tmp_path):
    a = {"q1": [("d1", 10.0), ("d2", 6.0), ("d3", 2.0)], "q2": [("d1", 3.0), ("d4", 1.0)]}
    b = {"q1": [("d3", 0.9), ("d2", 0.8), ("d4", 0.5)], "q2": [("d4", 0.7), ("d1", 0.2)]}
    arts = {}
    for name, rows in (("a", a), ("b", b)):
        art = Artifact.named(tmp_path / "runs", name, {"run": name}, suffix=".trec")
        art.path.parent.mkdir(parents=True, exist_ok=True)
        _write_run(art.path, rows)
        art.complete()
        arts[name] = art
    engine = SimpleNamespace(root=tmp_path, settings=SimpleNamespace(hits=1000, force=False),
                             run=lambda s: arts[s.id])
    members = [SimpleNamespace(id="a"), SimpleNamespace(id="b")]

    def fused():
        system, kind = fusion_of("ab", members), Fusion()
        art = kind.run_artifact(engine, system)
        kind.make(engine, system, art)
        return art.path

    path = fused()
    frame = pd.read_csv(path, sep=" ", header=None, names=["q", "q0", "d", "rank", "score", "tag"])

    def minmax(ranked):
        lo, hi = min(s for _, s in ranked), max(s for _, s in ranked)
        return {d: (s - lo) / (hi - lo) for d, s in ranked}

    for q in ("q1", "q2"):
        na, nb = minmax(a[q]), minmax(b[q])
        want = {d: na.get(d, 0.0) + nb.get(d, 0.0) for d in {*na, *nb}}
        got = frame[frame["q"] == q].set_index("d")["score"].to_dict()
        assert got == pytest.approx(want)
        assert list(frame[frame["q"] == q]["d"]) == sorted(want, key=lambda d: (-want[d], d))
    assert fused() == path  # cached by its runs' keys


def test_the_stored_record_meets_the_study_files_expectations(tmp_path):
    stored = REPO / "results" / "teachers.json"
    meta = json.loads(stored.read_text())
    assert meta["kind"] == "study" and meta["study"] == "recipes/studies/teachers.yaml"
    assert meta["datasets"] == ["scifact/train", "scifact"] and meta["checked"]
    assert check([stored]) == []
    # the check reads the study file's expectations, not the record's own copy: an edited expectation fails it
    edited = tmp_path / "recipes" / "studies" / "teachers.yaml"
    edited.parent.mkdir(parents=True)
    edited.write_text(STUDY.read_text(encoding="utf-8").replace(
        "{id: bm25-flat, expected: {scifact/train: {nDCG@10: 0.6974}", "{id: bm25-flat, expected: {scifact/train: "
        "{nDCG@10: 0.6900}"), encoding="utf-8")
    failed = check([stored], root=tmp_path)
    assert len(failed) == 4 and all("bm25-flat" in f or "BM25 (flat)" in f for f in failed), failed
    assert "scifact/train bm25-flat nDCG@10 = 0.697446, but its expectation is 0.69 ± 0.002" in failed[0]
    assert "the copy {'nDCG@10': 0.6974} ± 0.002 is not the expectation" in failed[1]
    checked = [r for r in meta["rows"] if "expected" in r]
    study = load_study("teachers")
    declared = [*study.references, *study.conditions.values()]
    assert len(checked) == sum(len(r.expected) for r in declared) == 14  # 6 references and the student, 2 splits


def test_replay_reads_a_record_that_names_splits_by_their_work_folder(tmp_path):
    """--replay reads rows by (dataset, system): a record naming the train split ``scifact__train`` (as the work
    folder does) re-derives the same claims as the stored one."""
    from eval.results import write_results
    from eval.schema import load_results
    from eval.study.replay import replayed

    stored = load_results(REPO / "results" / "teachers.json")
    slug = {"scifact/train": "scifact__train", "scifact": "scifact"}
    rows = [{**r, "dataset": slug[r["dataset"]]} for r in stored.rows]
    meta = {k: v for k, v in stored.meta.items() if k not in ("format", "per_query", "sha256")}
    write_results(tmp_path, "teachers", pd.read_csv(REPO / "results" / "teachers.csv"), "",
                  stored.per_query.assign(dataset=stored.per_query["dataset"].map(slug)),
                  {**meta, "rows": rows, "datasets": [slug[d] for d in meta["datasets"]]})
    study = load_study("teachers")
    old, new = replayed(study, tmp_path / "teachers.json"), replayed(study, REPO / "results" / "teachers.json")
    assert old.datasets == new.datasets == ["scifact/train", "scifact"] and old.references == new.references
    assert old.reference_pq.reset_index(drop=True).equals(new.reference_pq.reset_index(drop=True))


def test_the_documented_study_of_references_validates(tmp_path):
    page = (REPO / "docs" / "studies.md").read_text(encoding="utf-8")
    path = tmp_path / "teachers.yaml"
    path.write_text(page.split("```yaml\n")[2].split("```", 1)[0], encoding="utf-8")
    study = load_study(path)
    assert not study.conditions and study.reference("bm25+minilm+student").members[-1] == "kit-l0.splade-tiny"


def test_replay_measures_the_references_no_record_holds(tmp_path):
    """--replay of a record without a reference's rows measures that reference (and only it) instead of failing; the
    record says so in ``measured_by``."""
    from eval.results import write_results
    from eval.schema import load_results
    from eval.study.replay import replayed

    stored = load_results(REPO / "results" / "teachers.json")
    meta = {k: v for k, v in stored.meta.items() if k not in ("format", "per_query", "sha256")}
    write_results(tmp_path, "teachers", pd.read_csv(REPO / "results" / "teachers.csv"), "",
                  stored.per_query[stored.per_query["system"] != "bm25-flat"],
                  {**meta, "rows": [r for r in stored.rows if r["system"] != "bm25-flat"]})
    study = load_study("teachers")
    with pytest.raises(InputError, match="bm25-flat"):
        replayed(study, tmp_path / "teachers.json")
    asked = []

    def measure_missing(references, datasets):  # what the stored record holds for them, as a live run would measure
        asked.append(([r.id for r in references], datasets))
        rows = {(r["dataset"], r["system"]): r["metrics"] for r in stored.rows}
        return ({(d, r.id): rows[(d, r.id)] for d in datasets for r in references},
                stored.per_query[stored.per_query["system"] == "bm25-flat"])

    new, old = replayed(study, tmp_path / "teachers.json", measure_missing=measure_missing), replayed(
        study, REPO / "results" / "teachers.json")
    assert asked == [(["bm25-flat"], ["scifact/train", "scifact"])]
    assert new.references == old.references and "bm25-flat measured by the replay itself" in new.measured_by
