"""Session-wide fixtures: offline paths and the tiny models, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.models import resolve_model
from kit.paths import shared_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "data").exists():
        pytest.fail(f"offline data not found at {path}; the kit expects ../shared beside the checkout")
    return path


TINY_RECIPE = """
table: 1
datasets: [unused]
measures: [nDCG@10, R@100]
hits: 100
max_length: 64
factor: 100
systems:
  - {id: bm25-flat, type: bm25}
  - {id: tiny.bow-idf.l0, type: sparse, doc: {model: splade-tiny, activation: l0}, query: {encoder: bow-idf, idf: corpus}}
"""
"""The fault suites' Table 1 recipe: BM25 and one inference-free SPLADE-tiny system, on a dataset each test names."""


@pytest.fixture(scope="module")
def root(tmp_path_factory, request) -> Path:
    """A folder of the test module's own, for the data its module-scoped fixtures build once."""
    return tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_"))


@pytest.fixture(scope="module")
def recipe(root) -> Path:
    """:data:`TINY_RECIPE` written once into the module's folder."""
    path = root / "tiny.yaml"
    path.write_text(TINY_RECIPE)
    return path


@pytest.fixture(scope="session")
def scifact_dir(shared) -> Path:
    return shared / "data" / "beir" / "scifact"


@pytest.fixture(scope="session")
def splade_tiny_path() -> str:
    return resolve_model("splade-tiny")


@pytest.fixture(scope="session")
def splade_tiny(splade_tiny_path):
    """(tokenizer, BertForMaskedLM in eval mode) for the bundled SPLADE-tiny."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(splade_tiny_path)
    model = AutoModelForMaskedLM.from_pretrained(splade_tiny_path).eval()
    return tok, model


def write_training_file(path: Path, scifact_dir: Path, n_queries: int = 8, docs_each: int = 4, score=None) -> Path:
    """A training file in train.data's format: real SciFact abstracts, queries from their first words, doc 0 the
    positive; ``score(q, i)`` gives the teacher score of query ``q``'s ``i``-th doc."""
    import json

    from kit.formats import read_beir_corpus

    score = score or (lambda q, i: 10.0 - 2.5 * i + 0.1 * q)
    docs = []
    for doc in read_beir_corpus(scifact_dir / "corpus.jsonl"):
        docs.append(doc)
        if len(docs) == n_queries * docs_each:
            break
    with open(path, "w", encoding="utf-8") as fh:
        for q in range(n_queries):
            group = docs[q * docs_each:(q + 1) * docs_each]
            record = {"query_id": f"q{q}", "query": " ".join(group[0].text.split()[:8]),
                      "doc_ids": [d.doc_id for d in group], "docs": [d.text for d in group],
                      "teacher_scores": [score(q, i) for i in range(docs_each)]}
            fh.write(json.dumps(record) + "\n")
    return path


def write_beir_slice(root: Path, scifact_dir: Path, n_queries: int = 30, n_other: int = 170, seed: int = 0,
                     split: str = "test", offset: int = 0) -> Path:
    """A BEIR-layout slice of SciFact: ``n_queries`` judged queries of ``split`` (by id, from ``offset``), their
    judged documents and ``n_other`` random other documents."""
    import json
    import random

    (root / "qrels").mkdir(parents=True)
    qrels = [line.rstrip("\n").split("\t") for line in open(scifact_dir / "qrels" / f"{split}.tsv")][1:]
    qids = sorted({q for q, _, _ in qrels}, key=int)[offset:offset + n_queries]
    keep_q = set(qids)
    judged = {d for q, d, _ in qrels if q in keep_q}
    docs = [json.loads(line) for line in open(scifact_dir / "corpus.jsonl")]
    others = random.Random(seed).sample([d for d in docs if d["_id"] not in judged], n_other)
    with open(root / "corpus.jsonl", "w") as fh:
        for d in [d for d in docs if d["_id"] in judged] + others:
            fh.write(json.dumps(d) + "\n")
    with open(root / "queries.jsonl", "w") as fh:
        for line in open(scifact_dir / "queries.jsonl"):
            if json.loads(line)["_id"] in keep_q:
                fh.write(line)
    with open(root / "qrels" / f"{split}.tsv", "w") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines("\t".join(r) + "\n" for r in qrels if r[0] in keep_q)
    return root


def stage_mined_file(path: Path, scifact_dir: Path, **kwargs) -> Path:
    """A small training file where the kit caches its mined SciFact file, with the sidecar the miner writes (its
    SHA-256): reused as the mined file is, instead of being mined again (train.cache.ensure_training_data)."""
    from train.examples import write_meta

    path.parent.mkdir(parents=True, exist_ok=True)
    write_training_file(path, scifact_dir, **kwargs)
    write_meta(path, {"staged_by": "tests"})
    return path


def write_table1_record(folder: Path, values: dict[str, list[float]], expected_shift: float = 0.0,
                        tolerance: float | None = None, shift: float = 0.0, drop: str | None = None,
                        dataset: str = "toy") -> Path:
    """A Table 1 record as ``python -m eval.study table1 --recipe toy.yaml`` writes it (the study runner's own
    writer, sealed), from ``values``: each system's nDCG@10 on queries 1, 2, ... of ``dataset`` (toy.yaml's).

    ``toy.yaml`` gives each system (type bm25) its stored score + ``expected_shift`` as expectation, at ``tolerance``
    (None: the recipe's default); ``shift`` moves the first system's stored score away from its per-query mean;
    ``drop`` leaves that query out of the last system's values. Stored scores have 4 decimals, as the old runner's."""
    import pandas as pd

    from eval.recipe import load_recipe
    from eval.study.regression import with_systems
    from eval.study.runner import PER_QUERY, Measurements, run_study
    from eval.study.spec import load_study

    last = list(values)[-1]
    per_query = pd.DataFrame([(dataset, s, str(q), "nDCG@10", v) for s, vs in values.items()
                              for q, v in enumerate(vs, start=1) if not (s == last and str(q) == drop)],
                             columns=PER_QUERY)
    means = per_query.groupby("system", sort=False)["value"].mean()
    scores = {(dataset, s): {"nDCG@10": round(float(m), 4)} for s, m in means.items()}
    first = next(iter(scores))
    scores[first]["nDCG@10"] = round(scores[first]["nDCG@10"] + shift, 6)
    recipe_path = folder / "toy.yaml"
    recipe_path.write_text(f"table: 1\ndatasets: [{dataset}]\nmeasures: [nDCG@10]\nsystems:\n" + "".join(
        f"  - {{id: {s}, type: bm25, expected: {{{dataset}: {{nDCG@10: {round(float(m), 4) + expected_shift:.6f}}}}}"
        + ("" if tolerance is None else f", tolerance: {tolerance}") + "}\n" for s, m in means.items()))
    recipe = load_recipe(recipe_path)
    study = with_systems(load_study("table1"), recipe.systems, [dataset], recipe.measures)
    empty = pd.DataFrame(columns=PER_QUERY)
    command = f"python -m eval.study table1 --recipe {recipe_path}"
    measured = Measurements({}, empty, empty, {}, scores, per_query, [dataset], "full", True)
    run_study(study, measured, folder, command, meta={"recipe": str(recipe_path)})
    return folder / "table1.json"
