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

    from kit.data import read_beir_corpus

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
