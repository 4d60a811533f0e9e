"""End to end on a SciFact slice: encode → Anserini impact/flat indexes → search → ir-measures → table, resumable."""

import json

import pandas as pd
import pytest
from test_faults import table as one_dataset_table

pytestmark = pytest.mark.integration

RECIPE = """
table: 1
datasets: [unused]
measures: [nDCG@10, R@100]
hits: 100
max_length: 128
factor: 100
systems:
  - {id: bm25-flat, type: bm25, paper: bm25}
  - {id: tiny.siamese, type: sparse, doc: {model: splade-tiny, activation: relu}, query: {encoder: splade}}
  - {id: tiny.bow-idf.l0, type: sparse, doc: {model: splade-tiny, activation: l0}, query: {encoder: bow-idf, idf: corpus},
     paper: l0-mask-l0-act, expected: {slice: {nDCG@10: 0.0}}, tolerance: 0.0}
"""


@pytest.fixture(scope="module")
def scifact_slice(tmp_path_factory, scifact_dir):
    """30 test queries, their judged docs and 170 other docs, in BEIR layout."""
    from conftest import write_beir_slice

    return write_beir_slice(tmp_path_factory.mktemp("data") / "slice", scifact_dir)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory, scifact_slice):
    from eval.reproduce import main

    tmp = tmp_path_factory.mktemp("run")
    recipe = tmp / "recipe.yaml"
    recipe.write_text(RECIPE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KIT_WORK", str(tmp / "work"))
        code = main(["--recipe", str(recipe), "--datasets", str(scifact_slice), "--out", str(tmp / "results"), "--device", "cpu"])
    return tmp, recipe, code


def test_table_has_every_system_with_scores_and_sparsity(reproduced):
    tmp, _, code = reproduced
    table = one_dataset_table(tmp / "results")
    assert list(table.index) == ["bm25-flat", "tiny.siamese", "tiny.bow-idf.l0"]
    assert table["nDCG@10"].between(0.2, 1.0).all(), table
    sparse = table.drop(index="bm25-flat")
    assert (sparse["FLOPS"] > 0).all() and (sparse["Doc_Len"] > 5).all()
    assert table["FLOPS"].isna().iloc[0]  # BM25 has no learned vectors
    # the deliberately wrong expected score (0.0, tolerance 0) must FAIL and the command must exit 1
    assert table.at["tiny.bow-idf.l0", "check"] == "FAIL"
    assert code == 1


def test_outputs_and_provenance(reproduced):
    tmp, _, _ = reproduced
    meta = json.loads((tmp / "results" / "table1.json").read_text())
    assert {"command", "commit", "date", "machine", "versions", "stage_seconds"} <= set(meta)
    assert "encode docs" in meta["stage_seconds"]
    per_query = pd.read_csv(tmp / "results" / "per-query" / "table1.csv.gz")
    assert set(per_query["measure"]) == {"nDCG@10", "R@100"}
    assert per_query.groupby("system")["query_id"].nunique().eq(30).all()
    assert "| slice |" in (tmp / "results" / "table1.md").read_text() or "slice" in (tmp / "results" / "table1.md").read_text()


def test_rerun_resumes_without_recomputing(reproduced, scifact_slice, monkeypatch):
    from eval.reproduce import main

    tmp, recipe, _ = reproduced
    parts = sorted((tmp / "work" / "slice" / "vectors").rglob("part-*.jsonl"))
    assert parts
    before = {p: p.stat().st_mtime_ns for p in parts}
    monkeypatch.setenv("KIT_WORK", str(tmp / "work"))
    main(["--recipe", str(recipe), "--datasets", str(scifact_slice), "--out", str(tmp / "results2"), "--device", "cpu"])
    assert {p: p.stat().st_mtime_ns for p in parts} == before
    a = one_dataset_table(tmp / "results")
    b = one_dataset_table(tmp / "results2")
    pd.testing.assert_series_equal(a["nDCG@10"], b["nDCG@10"])


def test_seismic_backend_from_the_recipe_matches_anserini(reproduced, scifact_slice, monkeypatch):
    """The same work dir with ``index: {backend: seismic, ...}``: vectors reused, a Seismic index built beside the
    Anserini one, and the same scores (a 200-document slice is far below Seismic's posting-list cut)."""
    from eval.reproduce import main

    tmp, recipe, _ = reproduced
    seismic = tmp / "seismic.yaml"
    seismic.write_text(recipe.read_text() + "index: {backend: seismic, seismic: {heap_factor: 1.0}}\n")
    monkeypatch.setenv("KIT_WORK", str(tmp / "work"))
    code = main(["--recipe", str(seismic), "--datasets", str(scifact_slice), "--out", str(tmp / "results-seismic"),
                 "--device", "cpu"])
    anserini = one_dataset_table(tmp / "results")
    table = one_dataset_table(tmp / "results-seismic")
    sparse = ["tiny.siamese", "tiny.bow-idf.l0"]
    assert code == 1  # the slice's deliberately impossible expected score still fails the run
    assert table.loc[sparse, "nDCG@10"].tolist() == pytest.approx(anserini.loc[sparse, "nDCG@10"].tolist(), abs=1e-3)
    indexes = sorted(p.name for p in (tmp / "work" / "slice" / "indexes").iterdir())
    assert any(".seismic." in name for name in indexes) and any(".anserini." in name for name in indexes)


def test_cache_keys_follow_every_input(scifact_slice, scifact_dir, tmp_path):
    """The vectors' key changes with the corpus, the model, the activation, max length, factor, the device and the
    precision (fp16 on CUDA changes quantized weights), and nothing else; the runs' keys follow their inputs."""
    import dataclasses

    from conftest import write_beir_slice

    from pipeline.dataset import DatasetRun
    from pipeline.settings import Settings
    from eval.recipe import load_recipe

    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(RECIPE)
    recipe = load_recipe(recipe_path)
    sparse = recipe.systems[2]

    def run_for(dataset=scifact_slice, device="cpu", recipe=recipe, **changes):
        return DatasetRun.load(str(dataset), Settings.of(recipe, device=device, **changes), root=tmp_path / "work")

    base = run_for()
    key = base.vectors(sparse.doc).key
    assert run_for().vectors(sparse.doc).key == key  # deterministic
    other_corpus = write_beir_slice(tmp_path / "other" / "slice", scifact_dir, n_queries=5, n_other=10, seed=5)

    changed = {
        "corpus": run_for(other_corpus).vectors(sparse.doc).key,
        "activation": base.vectors(dataclasses.replace(sparse.doc, activation="relu")).key,
        "max_length": run_for(recipe=dataclasses.replace(recipe, max_length=32)).vectors(sparse.doc).key,
        "factor": run_for(recipe=dataclasses.replace(recipe, factor=10.0)).vectors(sparse.doc).key,
        "device+fp16": run_for(device="cuda").vectors(sparse.doc).key,
        "bf16 on cpu": run_for(dtype="bfloat16").vectors(sparse.doc).key,
    }
    assert len(set(changed.values()) | {key}) == len(changed) + 1, changed
    assert run_for(device="cuda").vectors(sparse.doc).inputs["dtype"] == "float16"
    assert base.run(sparse).key != run_for(recipe=dataclasses.replace(recipe, hits=10)).run(sparse).key


def test_vectors_cut_to_the_query_terms_give_the_same_run(scifact_slice, tmp_path):
    """``DatasetRun(query_terms=...)`` (Tables 2-3's zero-shot columns): documents encoded over the queries' terms
    alone rank exactly as whole vectors do, under their own cache key, and never yield a document length."""
    from encode.writer import read_vectors
    from pipeline.dataset import DatasetRun
    from pipeline.settings import Settings
    from eval.recipe import load_recipe

    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(RECIPE)
    recipe = load_recipe(recipe_path)
    sparse = recipe.systems[2]
    whole = DatasetRun.load(str(scifact_slice), Settings.of(recipe, device="cpu"), root=tmp_path / "whole")
    cut = DatasetRun(whole.ds, whole.settings, root=tmp_path / "cut", name=whole.name, query_terms=sparse)
    results = {}
    for name, run in (("whole", whole), ("cut", cut)):
        run.encode_docs([sparse.doc])
        results[name] = run.run_system(sparse)
    assert cut.run(sparse).path.read_text() == whole.run(sparse).path.read_text()
    assert results["cut"]["nDCG@10"] == results["whole"]["nDCG@10"] > 0
    assert "Doc_Len" in results["whole"] and "Doc_Len" not in results["cut"] and "FLOPS" not in results["cut"]

    assert cut.vectors(sparse.doc).key != whole.vectors(sparse.doc).key
    terms = {t for vec in cut.query_vectors(sparse).values() for t in vec}
    whole_vectors = dict(read_vectors(whole.vectors_dir(sparse.doc)))
    cut_vectors = dict(read_vectors(cut.vectors_dir(sparse.doc)))
    assert cut_vectors.keys() == whole_vectors.keys()
    for doc_id, vector in whole_vectors.items():
        assert cut_vectors[doc_id] == {t: w for t, w in vector.items() if t in terms}
    assert sum(map(len, cut_vectors.values())) < sum(map(len, whole_vectors.values())) / 2
    with pytest.raises(ValueError, match="query terms"):
        cut.doc_frequencies(sparse.doc)
