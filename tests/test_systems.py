"""The system kinds (:mod:`pipeline.systems`): every type a recipe accepts has one, and a run's key holds the very
parameters its search call receives."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from eval.recipe import SYSTEM_TYPES
from pipeline import systems
from pipeline.dataset import DatasetRun
from pipeline.settings import Settings
from pipeline.specs import System


def test_every_system_type_a_recipe_accepts_has_a_kind():
    assert set(SYSTEM_TYPES) <= set(systems.SYSTEM_KINDS)
    for name, kind in systems.SYSTEM_KINDS.items():
        assert kind.type == name and issubclass(kind, systems.SystemKind)
        assert systems.kind_of(System(id="s", label="s", type=name)).type == name
    with pytest.raises(ValueError, match="unknown type 'splade'; one of bm25"):
        systems.kind_of(System(id="s", label="s", type="splade"))


def _toy_run(tmp_path: Path) -> DatasetRun:
    ds = SimpleNamespace(name="toy", corpus_fingerprint=lambda: "corpus", queries_fingerprint=lambda: "queries",
                         docs=lambda: iter([]), queries={"q1": "sparse retrieval"}, qrels={"q1": {"d1": 1}},
                         num_docs=1)
    return DatasetRun(ds, Settings(hits=7, device="cpu"), root=tmp_path)


def test_bm25_search_gets_the_parameters_of_its_run_key(tmp_path, monkeypatch):
    """k1, b, hits and query removal go into the run's key and, explicitly, into the search call: changing one of
    them on either side (or leaving the call to ``search_bm25``'s own defaults) fails here."""
    calls = []

    def build_flat_index(docs, index_dir, **kwargs):
        Path(index_dir).mkdir(parents=True)
        return {"documents": 1}

    def search_bm25(index_dir, queries, run_path, **kwargs):
        calls.append(kwargs)
        Path(run_path).parent.mkdir(parents=True, exist_ok=True)
        Path(run_path).write_text("q1 Q0 d1 1 1.0 bm25\n")

    monkeypatch.setattr(systems, "build_flat_index", build_flat_index)
    monkeypatch.setattr(systems, "search_bm25", search_bm25)
    run = _toy_run(tmp_path)
    bm25 = System(id="bm25-flat", label="BM25", type="bm25")
    art, extra = run.make_run(bm25)
    assert extra == {} and len(calls) == 1
    key = art.inputs
    assert (key["stage"], key["k1"], key["b"]) == ("bm25-run", 0.9, 0.4)  # Anserini's BEIR flat condition
    assert {name: calls[0].get(name) for name in ("k1", "b", "hits", "remove_query")} == \
        {name: key[name] for name in ("k1", "b", "hits", "remove_query")}
    assert run.make_run(bm25)[0] == art and len(calls) == 1  # cached under that key
