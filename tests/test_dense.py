"""Dense baseline (index.dense): all-MiniLM-L6-v2, offline, exact inner-product faiss search, and its recipe system."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_faults import table as one_dataset_table

from eval.recipe import DenseSpec, load_recipe
from kit.formats import read_beir_corpus
from kit.errors import InputError


@pytest.fixture(scope="module")
def encoder():
    from index.dense import load_encoder

    return load_encoder("all-MiniLM-L6-v2", device="cpu", max_length=64)


@pytest.fixture(scope="module")
def docs(scifact_dir):
    out = []
    for doc in read_beir_corpus(scifact_dir / "corpus.jsonl"):
        out.append(doc)
        if len(out) == 40:
            return out


def test_flat_index_search_is_exact_cosine(tmp_path, encoder, docs):
    from index.dense import encode_corpus, load_index, search

    meta = encode_corpus(iter(docs), encoder, tmp_path / "idx", model="all-MiniLM-L6-v2", show_progress=False)
    assert meta["count"] == 40 and meta["dim"] == 384 and meta["max_length"] == 64
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["docids.txt", "index.faiss", "metadata.json"]
    index, docids = load_index(tmp_path / "idx")
    assert docids == [d.doc_id for d in docs]
    # the query is a document's first words: brute-force cosine over the same embeddings gives the same ranking
    queries = {"q1": " ".join(docs[7].text.split()[:12]), "q2": "vitamin D deficiency and bone density"}
    n = search(tmp_path / "idx", queries, encoder, tmp_path / "run.trec", hits=5)
    run = pd.read_csv(tmp_path / "run.trec", sep=" ", names=["qid", "q0", "docid", "rank", "score", "tag"],
                      dtype={"qid": str, "docid": str})
    assert n == 2 and len(run) == 10 and set(run["tag"]) == {"dense"}
    emb_d = encoder.encode([d.text for d in docs], convert_to_numpy=True)
    assert np.allclose(np.linalg.norm(emb_d, axis=1), 1.0, atol=1e-5)  # the model's Normalize module: IP == cosine
    for qid, text in queries.items():
        scores = emb_d @ encoder.encode([text], convert_to_numpy=True)[0]
        top = np.argsort(-scores)[:5]
        got = run[run["qid"] == qid]
        assert list(got["docid"]) == [docs[i].doc_id for i in top]
        assert np.allclose(got["score"], scores[top], atol=1e-4)
        assert list(got["rank"]) == [1, 2, 3, 4, 5]
    assert run[run["qid"] == "q1"]["docid"].iloc[0] == docs[7].doc_id


def test_empty_corpus_leaves_no_folder(tmp_path, encoder):
    from index.dense import encode_corpus

    with pytest.raises(ValueError, match="no documents"):
        encode_corpus(iter([]), encoder, tmp_path / "idx", model="m", show_progress=False)
    assert not (tmp_path / "idx").exists()


RECIPE = """
datasets: [x]
measures: [nDCG@10]
hits: 100
systems:
  - {id: minilm.dense, type: dense, dense: {model: all-MiniLM-L6-v2, max_length: 64}, paper: tas-b}
"""


def test_recipe_dense_system_and_errors(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    (system,) = load_recipe(path).systems
    assert system.type == "dense" and system.dense == DenseSpec("all-MiniLM-L6-v2", 64) and system.doc is None
    path.write_text(RECIPE.replace("dense: {model: all-MiniLM-L6-v2, max_length: 64}", "doc: {model: x}"))
    with pytest.raises(InputError, match=r"r.yaml:\d+: systems\[0\].dense: missing key\(s\) model"):
        load_recipe(path)
    path.write_text(RECIPE.replace("max_length: 64", "max_length: -3"))
    with pytest.raises(InputError, match=r"systems\[0\].dense.max_length: must be an integer >= 1, got -3"):
        load_recipe(path)


def test_table1_recipe_has_the_dense_row_and_names_the_papers_dense_models():
    from kit.paths import REPO

    from eval.study.spec import load_study

    recipe = load_recipe(REPO / "recipes" / "table1.yaml")
    dense = [s for s in recipe.systems if s.type == "dense"]
    assert [s.dense.model for s in dense] == ["all-MiniLM-L6-v2"]
    study = {r.id: r for r in load_study("table1").references}  # Table 1 measures it, with its expected scores
    assert "nDCG@10" in study[dense[0].id].expected["scifact"]
    text = (REPO / "recipes" / "table1.yaml").read_text()
    assert "facebook/contriever-msmarco" in text and "sentence-transformers/msmarco-distilbert-base-tas-b" in text


def test_reproduce_measures_a_dense_row_and_caches_the_index(tmp_path, docs, scifact_dir, monkeypatch):
    """eval.reproduce on a 40-doc BEIR folder: dense row scored, index cached under work/<dataset>/dense/."""
    from eval.reproduce import main

    root = tmp_path / "mini"
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": d.doc_id, "title": "", "text": d.text}) + "\n" for d in docs)
    with open(root / "queries.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": f"q{i}", "text": " ".join(docs[i].text.split()[:10])}) + "\n" for i in range(5))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                             + "".join(f"q{i}\t{docs[i].doc_id}\t1\n" for i in range(5)))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    monkeypatch.setenv("KIT_WORK", str(tmp_path / "work"))
    assert main(["--recipe", str(recipe), "--datasets", str(root), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    cached = list((tmp_path / "work" / "mini" / "dense").glob("all-MiniLM-L6-v2.len64.*/index.faiss"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    assert main(["--recipe", str(recipe), "--datasets", str(root), "--out", str(tmp_path / "out2"), "--device", "cpu"]) == 0
    assert cached[0].stat().st_mtime_ns == mtime
    table = one_dataset_table(tmp_path / "out")
    assert list(table.index) == ["minilm.dense"] and table["nDCG@10"].iloc[0] > 0.8  # queries are the docs' first words
    assert pd.isna(table["FLOPS"].iloc[0])
    meta = json.loads((tmp_path / "out" / "table1.json").read_text())
    assert meta["format"] == "kit-results/1" and meta["rows"][0]["system"] == "minilm.dense"
