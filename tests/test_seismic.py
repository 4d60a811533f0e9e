"""Seismic backend (index/seismic.py) and the backend interface (index/backends.py) on tiny hand-made vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("seismic")

from index.backends import BACKENDS, get_backend  # noqa: E402
from index.seismic import INDEX_FILE, SeismicParams, build_seismic_index, search_seismic  # noqa: E402
from kit.errors import InputError  # noqa: E402

# d_j weights; the queries' exact dot products are worked out by hand in the tests below.
DOCS = {
    "d1": {"apple": 3, "pie": 1},
    "d2": {"pie": 5},
    "d3": {"apple": 1, "tart": 2},
    "d4": {"tart": 7, "apple": 2},
    "d5": {"banana": 4, "##s": 1},
    "d6": {},
}


def write_vectors(directory: Path, docs: dict = DOCS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": doc_id, "contents": "", "vector": vector}) for doc_id, vector in docs.items()]
    (directory / "part-00000.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def read_run(path: Path) -> dict[str, list[tuple[str, float]]]:
    run: dict[str, list[tuple[str, float]]] = {}
    for line in Path(path).read_text().splitlines():
        qid, _, doc, rank, score, _ = line.split()
        run.setdefault(qid, []).append((doc, float(score)))
        assert int(rank) == len(run[qid])
    return run


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("seismic")
    build_seismic_index(write_vectors(root / "vectors"), root / "index", threads=1, require_complete=False)
    return root / "index"


def test_build_record(index):
    info = json.loads((index / "kit-build.json").read_text())
    assert (index / INDEX_FILE).stat().st_size > 0
    assert info["kind"] == "seismic"
    assert info["documents"] == 6 and info["empty_documents"] == 1  # d6 has no weight: not indexed
    assert info["postings"] == 9  # 2 + 1 + 2 + 2 + 2 non-zeros
    assert info["params"] == SeismicParams().build_options()


def test_exact_top_documents(index, tmp_path):
    # q1 = apple + 2 tart: d4 = 2 + 14 = 16, d3 = 1 + 4 = 5, d1 = 3; q2 = pie: d2 = 5, d1 = 1
    queries = {"q1": {"apple": 1, "tart": 2}, "q2": {"pie": 1}, "q3": {}, "q4": {"unknown": 3}}
    record = search_seismic(index, queries, tmp_path / "run.trec", hits=10, threads=1,
                            params=SeismicParams(heap_factor=1.0))
    run = read_run(tmp_path / "run.trec")
    assert run["q1"] == [("d4", 16.0), ("d3", 5.0), ("d1", 3.0)]
    assert run["q2"] == [("d2", 5.0), ("d1", 1.0)]
    assert "q4" not in run  # no document shares a token: no hits
    assert record["queries"] == 3 and record["empty_queries"] == 1  # q3 has no weight: not searched
    assert record["search_seconds"] >= 0


def test_hits_cut_and_remove_query(index, tmp_path):
    queries = {"d4": {"apple": 1, "tart": 2}}
    search_seismic(index, queries, tmp_path / "kept.trec", hits=2, threads=1, remove_query=False)
    assert [doc for doc, _ in read_run(tmp_path / "kept.trec")["d4"]] == ["d4", "d3"]
    search_seismic(index, queries, tmp_path / "removed.trec", hits=2, threads=1)
    assert [doc for doc, _ in read_run(tmp_path / "removed.trec")["d4"]] == ["d3", "d1"]


def test_many_queries_two_threads_keep_their_own_hits(index, tmp_path):
    """batch_search's result lists are matched to queries by id, not by position (they need not come in order)."""
    tokens = {"d1": "pie", "d2": "pie", "d4": "tart", "d5": "banana"}  # each doc's heaviest token
    queries = {f"q{i:03d}": {tokens[doc]: 1} for i, doc in enumerate(["d2", "d4", "d5"] * 40)}
    search_seismic(index, queries, tmp_path / "run.trec", hits=1, threads=2)
    run = read_run(tmp_path / "run.trec")
    assert {qid: hits[0][0] for qid, hits in run.items()} == {
        qid: {"pie": "d2", "tart": "d4", "banana": "d5"}[next(iter(vector))] for qid, vector in queries.items()}


def test_backend_interface_matches_direct_calls(index, tmp_path):
    assert BACKENDS == ("anserini", "seismic")
    backend = get_backend("seismic", {"heap_factor": 1.0}, query_cut=None)
    assert backend.params == SeismicParams(heap_factor=1.0)
    backend.search(index, {"q": {"banana": 1}}, tmp_path / "run.trec", hits=5, threads=2)
    assert read_run(tmp_path / "run.trec") == {"q": [("d5", 4.0)]}
    assert backend.index_bytes(index) >= (index / INDEX_FILE).stat().st_size


def test_reuse_and_param_mismatch(index, tmp_path):
    vectors = write_vectors(tmp_path / "vectors")
    assert build_seismic_index(vectors, index, threads=1, require_complete=False)["reused"] is True
    with pytest.raises(InputError, match="was built with"):
        build_seismic_index(vectors, index, threads=1, require_complete=False, params=SeismicParams(n_postings=10))


@pytest.mark.parametrize("options, message", [
    ({"heap_factor": 0}, "heap_factor must be a number > 0"),
    ({"n_postings": 0}, "n_postings must be an integer >= 1"),
    ({"query_cut": 2.5}, "query_cut must be an integer >= 1"),
    ({"centroid_fraction": 1.5}, r"centroid_fraction must be a number in \(0, 1\]"),
    ({"max_fraction": 0.5}, "max_fraction must be a number >= 1"),
    ({"heap_fator": 0.9}, "unknown seismic parameter"),
])
def test_bad_params(options, message):
    with pytest.raises(ValueError, match=message):
        get_backend("seismic", options)


def test_bad_backend_choices():
    with pytest.raises(ValueError, match="unknown backend 'lucene'; choose one of anserini, seismic"):
        get_backend("lucene")
    with pytest.raises(ValueError, match="anserini backend takes no parameters"):
        get_backend("anserini", heap_factor=0.9)


def test_bad_inputs_are_one_line(tmp_path):
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    (vectors / "part-00000.jsonl").write_text('{"id": "d1", "vector": {"a": 1}}\n{"id": "d2", "vector": {"a": -1}}\n')
    with pytest.raises(InputError) as err:
        build_seismic_index(vectors, tmp_path / "index", threads=1, require_complete=False)
    assert "part-00000.jsonl" in str(err.value) and "2" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="not a Seismic index"):
        search_seismic(tmp_path, {"q": {"a": 1}}, tmp_path / "run.trec")
    with pytest.raises(ValueError, match="at most|1 to 100"):
        build_seismic_index(write_vectors(tmp_path / "long", {"d": {"x" * 101: 1}}), tmp_path / "i2", threads=1, require_complete=False)


def test_cli_backend_flag(tmp_path, capsys):
    from index.__main__ import main

    vectors = write_vectors(tmp_path / "vectors")
    assert main(["build-impact", "--backend", "seismic", "--vectors", str(vectors), "--index", str(tmp_path / "ix"),
                 "--threads", "1", "--centroid-fraction", "0.5", "--no-manifest"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["centroid_fraction"] == 0.5
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q", "vector": {"pie": 2}}\n')
    assert main(["search-impact", "--backend", "seismic", "--index", str(tmp_path / "ix"), "--queries", str(queries),
                 "--output", str(tmp_path / "run.trec"), "--heap-factor", "1.0"]) == 0
    assert read_run(tmp_path / "run.trec") == {"q": [("d2", 10.0), ("d1", 2.0)]}
    assert main(["build-impact", "--backend", "seismic", "--vectors", str(vectors), "--index", str(tmp_path / "bad"),
                 "--summary-energy", "0", "--no-manifest"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "summary_energy must be a number in (0, 1]" in err


@pytest.mark.integration
def test_same_ranking_as_anserini(index, tmp_path):
    """Seismic (heap factor 1, no cut) and Anserini's exact impact search agree on the hand-made collection."""
    anserini = get_backend("anserini")
    anserini.build(write_vectors(tmp_path / "vectors"), tmp_path / "lucene", threads=1, require_complete=False)
    queries = {"q1": {"apple": 1, "tart": 2}, "q2": {"pie": 3, "banana": 1}}
    anserini.search(tmp_path / "lucene", queries, tmp_path / "a.trec", hits=10, threads=1)
    get_backend("seismic", heap_factor=1.0).search(index, queries, tmp_path / "s.trec", hits=10, threads=1)
    assert read_run(tmp_path / "a.trec") == read_run(tmp_path / "s.trec")
