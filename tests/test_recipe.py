"""Recipes validate with one-line errors; the expected-score check fails loudly."""

import pytest

from eval.recipe import load_recipe
from eval.results import check_expected
from kit.errors import InputError
from kit.paths import REPO


def test_shipped_table1_recipe_loads():
    r = load_recipe(REPO / "recipes" / "table1.yaml")
    assert r.datasets == ["scifact"]
    ids = [s.id for s in r.systems]
    assert ids[0] == "bm25-flat" and "splade-tiny.bow-idf.l0" in ids
    assert not any(s.expected for s in r.systems)  # the registry: Table 1's expectations are its study file's


@pytest.mark.parametrize("text,needle", [
    ("datasets: [scifact]\nsystems: [{id: x, type: colbert}]\n", "not one of bm25, sparse, dense"),
    ("datasets: [scifact]\nsystems: [{id: x, type: sparse, doc: {model: m, activation: tanh}, query: {encoder: bow-idf}}]\n",
     "activation"),
    ("datasets: [scifact]\nsystems: [{id: x, type: bm25}, {id: x, type: bm25}]\n", "duplicate system ids"),
    ("systems: []\n", "missing key(s) datasets"),
    ("datasets: [scifact]\nhitz: 10\nsystems: []\n", ":2: hitz: unknown key"),
    ("datasets: [scifact]\nhits: many\nsystems: []\n", ":2: hits: must be an integer"),
    ("datasets: [scifact]\nfactor: -5\nsystems: []\n", ":2: factor: must be a finite number > 0"),
    ("datasets: [scifact]\nfactor: 1e10\nsystems: []\n", "<= 10000"),
    ("datasets: [scifact]\nsystems:\n  - {id: x, type: bm25, tolerence: 0.1}\n", ":3: systems[0].tolerence: unknown key"),
    ("datasets: [scifact]\nsystems:\n  - {id: x, type: bm25, expected: {scifact: {nDCG@10: .nan}}}\n",
     "must be a finite number"),
    ("datasets: [scifact]\nsystems: [{id: x, type: bm25, expected: {scifact: {nDCG@@10: 1}}}]\n", "unknown measure"),
    ("datasets: [scifact\nsystems: []\n", "invalid YAML"),
])
def test_bad_recipes_name_the_file(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_recipe(path)
    line = str(err.value)
    assert str(path) in line and needle in line and "\n" not in line


def check(system, dataset: str, scores: dict) -> tuple[str, str]:
    """A row's verdict as the study runner gives it: its expected scores on ``dataset``, within its tolerance."""
    return check_expected(system.expected.get(dataset), system.tolerance, scores)


def test_check_ok_and_fail():
    from eval.study.spec import load_study

    bm25 = load_study("table1").reference("bm25-flat")
    good = {"nDCG@10": 0.67891, "R@100": 0.92533, "R@1000": 0.97667}
    assert check(bm25, "scifact", good) == ("OK", "")
    status, detail = check(bm25, "scifact", {**good, "nDCG@10": 0.6700})
    assert status == "FAIL" and "nDCG@10" in detail
    assert check(bm25, "nfcorpus", good) == ("", "")


@pytest.mark.parametrize("offset, status", [(0.0015, "OK"), (-0.0015, "OK"), (0.0025, "FAIL"), (-0.0025, "FAIL")])
def test_check_at_the_edge_of_the_tolerance(offset, status):
    """A measured score 1.5 / 2.5 thousandths from its expectation with tolerance 0.002: OK / FAIL exactly."""
    from eval.recipe import System

    system = System(id="x", label="x", type="bm25", expected={"d": {"nDCG@10": 0.5}}, tolerance=0.002)
    assert check(system, "d", {"nDCG@10": 0.5 + offset})[0] == status


def test_requirements_and_environment_pin_the_same_versions():
    import yaml

    req = {l.split("==")[0].lower(): l.split("==")[1] for l in (REPO / "requirements.txt").read_text().splitlines()
           if "==" in l and not l.startswith("#")}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    envpins = {l.split("==")[0].lower(): l.split("==")[1] for l in pip if "==" in l}
    assert req == envpins


def test_reproduce_unknown_dataset_is_one_line_exit_2(capsys):
    from eval.reproduce import main

    assert main(["--datasets", "no-such-dataset"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --datasets: unknown dataset 'no-such-dataset'") and "\n" not in err


def test_reproduce_bad_recipe_is_one_line_exit_2(tmp_path, capsys):
    from eval.reproduce import main

    bad = tmp_path / "r.yaml"
    bad.write_text("datasets: [scifact]\nsystems: [{id: x, type: dense}]\n")
    assert main(["--recipe", str(bad)]) == 2
    assert f"{bad}" in capsys.readouterr().err


def test_trained_doc_encoder_is_resolved_to_the_ablation_model(tmp_path, monkeypatch):
    import pipeline.plan
    from pipeline.plan import resolve_trained

    r = load_recipe(REPO / "recipes" / "table1.yaml")
    kit = next(s for s in r.systems if s.doc is not None and s.doc.trained)
    assert kit.doc.trained == "l0-mask-l0-act" and kit.doc.activation == "l0"
    assert all(s.doc.trained is None for s in r.systems if s.doc is not None and s is not kit)
    monkeypatch.setattr(pipeline.plan, "trained_model", lambda row, seed: (tmp_path / row / f"seed{seed}", "l0"))
    resolved = resolve_trained(kit)
    assert resolved.doc.model == str(tmp_path / "l0-mask-l0-act" / "seedNone") and resolved.doc.trained is None
    assert resolved.id == kit.id and resolved.query == kit.query
    # a seeded run (a study condition-seed) resolves each seed's model
    assert resolve_trained(kit, 43).doc.model == str(tmp_path / "l0-mask-l0-act" / "seed43")
    monkeypatch.setattr(pipeline.plan, "trained_model", lambda row, seed: (tmp_path / "m", "relu"))
    with pytest.raises(InputError, match="set doc.activation: relu"):
        resolve_trained(kit)


def test_trained_model_is_the_full_scale_table2_row(tmp_path, monkeypatch, scifact_dir):
    from conftest import write_training_file

    from train.cache import model_dir
    from train.conditions import load_condition
    from train.recipe import load_train_recipe

    monkeypatch.setenv("KIT_WORK", str(tmp_path))
    tiny = load_train_recipe(REPO / "recipes" / "train" / "tiny.yaml")
    tiny.data.parent.mkdir(parents=True)
    write_training_file(tiny.data, scifact_dir)  # the cache key holds the training file's content
    row = load_condition("l0-mask-l0-act").recipe()
    assert row.to_dict() == tiny.to_dict()  # the shipped recipe *is* the mask + activation condition
    assert model_dir("l0-mask-l0-act", row).parent.parent == tmp_path / "ablation" / "l0-mask-l0-act"


@pytest.mark.parametrize("doc", ["{model: m, trained: l0-mask-l0-act}", "{activation: l0}"])
def test_doc_needs_exactly_one_of_model_and_trained(tmp_path, doc):
    path = tmp_path / "bad.yaml"
    path.write_text(f"datasets: [scifact]\nsystems: [{{id: x, type: sparse, doc: {doc}, query: {{encoder: bow-idf}}}}]\n")
    with pytest.raises(InputError, match="or doc: {trained"):
        load_recipe(path)


def test_index_block_picks_the_backend_and_validates_its_parameters(tmp_path):
    base = "datasets: [scifact]\nsystems: [{id: x, type: bm25}]\n"
    path = tmp_path / "r.yaml"
    path.write_text(base + "index: {backend: seismic, seismic: {heap_factor: 0.8, n_postings: 1000}}\n")
    spec = load_recipe(path).index
    assert spec.backend == "seismic" and dict(spec.params) == {"heap_factor": 0.8, "n_postings": 1000}
    assert spec.get().params.heap_factor == 0.8
    assert load_recipe(REPO / "recipes" / "table1.yaml").index is None  # Anserini unless asked
    for block, needle in (("{backend: faiss}", "not one of anserini, seismic"),
                          ("{backend: seismic, seismic: {heap_factr: 1}}", "index.seismic"),
                          ("{backend: anserini, anserini: {k: 1}}", "takes no parameters"),
                          ("{backend: seismic, lucene: {}}", "index.lucene: unknown key")):
        path.write_text(base + f"index: {block}\n")
        with pytest.raises(InputError, match=needle) as err:
            load_recipe(path)
        assert str(path) in str(err.value)
