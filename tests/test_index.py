"""index/: Anserini impact and flat indexes, their search, atomic builds and the CLI.

The impact expectations are computed by hand: Anserini's impact score is sum_t q_t * d_t over shared tokens.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path

import pytest

from index.__main__ import main
from kit.formats import read_beir_corpus, read_topics_tsv
from index.anserini import (
    _parse_counters,
    _search_seconds,
    build_flat_index,
    build_impact_index,
    sanitize_query,
    search_bm25,
    search_impact,
)
from index.lucene import _log_problems, index_stats
from index.vectors import impact_query_text
from kit.errors import InputError

# Wordpieces, BERT's special tokens, punctuation and case: all must reach the index and the query unchanged.
DOC_VECTORS = {
    "d1": {"apple": 3, "##ing": 2, "[unused0]": 5},
    "d2": {"apple": 1, "don't": 4, "u.s.": 7, "self-driving": 2, "##ing": 1},
    "d3": {"Apple": 9, "(a": 6, "b)": 1, "x:y": 2, "a*": 3, '"q"': 4, "café": 2, "apple": 1},
}
QUERY_VECTORS = {
    "q1": {"apple": 2},
    "q2": {"##ing": 3, "[unused0]": 1},
    "q3": {"don't": 1, "u.s.": 2, "(a": 5},
    "q4": {"Apple": 1, "b)": 10, "x:y": 1, "a*": 2, '"q"': 1, "café": 3},
    "q5": {"self-driving": 7, "apple": 0},
    "q6": {"unseen": 4},
    "q7": {"apple": 0},
}
# By hand: q1 = 2*3 | 2*1 | 2*1; q2 = 3*2 + 1*5 | 3*1; q3 = 5*6 | 1*4 + 2*7; q4 = 9 + 10 + 2 + 6 + 4 + 6; q5 = 7*2.
# Ties (q1: d2, d3) are broken by ascending docid, and Anserini lowers each later tied score by 1e-6 so that
# trec_eval keeps that order (its ScoreTiesAdjusterReranker); q6 matches nothing; q7 has no positive weight.
EXPECTED = {
    "q1": [("d1", 6.0), ("d2", 2.0), ("d3", 1.999999)],
    "q2": [("d1", 11.0), ("d2", 3.0)],
    "q3": [("d3", 30.0), ("d2", 18.0)],
    "q4": [("d3", 37.0)],
    "q5": [("d2", 14.0)],
}


def read_run(path) -> dict[str, list[tuple[str, int, float]]]:
    """Parse a TREC run, asserting its format: 6 columns, Q0, ranks 1..n, non-increasing scores, unique docs."""
    run: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
    finished: set[str] = set()
    previous = None
    for line in Path(path).read_text().splitlines():
        cols = line.split()
        assert len(cols) == 6 and cols[1] == "Q0", line
        qid, _, doc, rank, score, _tag = cols
        if qid != previous:
            assert qid not in finished, f"query {qid} appears in two blocks"
            if previous is not None:
                finished.add(previous)
            previous = qid
        hits = run[qid]
        assert int(rank) == len(hits) + 1, line
        assert not hits or float(score) <= hits[-1][2], line
        assert doc not in {d for d, _, _ in hits}, line
        hits.append((doc, int(rank), float(score)))
    return dict(run)


def write_vectors(folder: Path, records: dict[str, dict], extra_line: str | None = None) -> Path:
    """Two shards (plain and gzipped) and a metadata.json that must not be indexed."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": i, "contents": "", "vector": v}) for i, v in records.items()]
    if extra_line is not None:
        lines.append(extra_line)
    half = max(1, len(lines) // 2)
    (folder / "part-00000.jsonl").write_text("\n".join(lines[:half]) + "\n")
    with gzip.open(folder / "part-00001.jsonl.gz", "wt") as fh:
        fh.write("\n".join(lines[half:]) + "\n")
    (folder / "metadata.json").write_text(json.dumps({"model": "hand-made", "factor": 1}))
    return folder


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ---- impact index ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def impact_index(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("impact")
    vectors = write_vectors(root / "vectors", DOC_VECTORS)
    stats = build_impact_index(vectors, root / "index", threads=2, optimize=True,  # one segment: unique terms known
                               require_complete=False)  # hand-made vectors, no python -m encode sidecar
    return root / "index", stats


def test_impact_query_text_repeats_tokens():
    assert impact_query_text({"b": 2, "##a": 1, "c": 0}) == "##a b b"
    assert impact_query_text({}) == ""


def test_impact_scores_match_hand_computation(impact_index, tmp_path):
    index, _ = impact_index
    result = search_impact(index, QUERY_VECTORS, tmp_path / "run.txt", hits=10, threads=1)
    run = read_run(tmp_path / "run.txt")
    assert {q: [(d, s) for d, _, s in hits] for q, hits in run.items()} == EXPECTED
    assert result["queries"] == 6 and result["empty_queries"] == 1
    assert result["seconds"] > 0 and result["search_seconds"] is not None


def test_impact_hits_cut_the_ranking(impact_index, tmp_path):
    index, _ = impact_index
    search_impact(index, {"q1": {"apple": 1}, "d2": {"apple": 1}}, tmp_path / "run.txt", hits=1)
    assert {q: [d for d, _, _ in h] for q, h in read_run(tmp_path / "run.txt").items()} == {"q1": ["d1"], "d2": ["d1"]}


def test_impact_index_stats(impact_index):
    index, built = impact_index
    tokens = {t for v in DOC_VECTORS.values() for t in v}
    expected = {"documents": 3, "non_empty_documents": 3, "unique_terms": len(tokens),
                "total_terms": sum(sum(v.values()) for v in DOC_VECTORS.values())}
    assert index_stats(index) == expected == {k: built[k] for k in expected}
    assert built["input_documents"] == 3 and built["reused"] is False


def test_existing_index_is_reused_or_rebuilt(impact_index, tmp_path):
    index, built = impact_index
    again = build_impact_index(index.parent / "vectors", index, require_complete=False)
    assert again["reused"] is True and again["total_terms"] == built["total_terms"]
    other = write_vectors(tmp_path / "other-vectors", {"d1": {"apple": 1}})
    with pytest.raises(InputError, match="built from other inputs"):  # never reused for different vectors
        build_impact_index(other, index, require_complete=False)
    with pytest.raises(InputError, match="is a 'impact' index"):
        build_flat_index([], index)
    (tmp_path / "other").mkdir()
    with pytest.raises(InputError, match="not a complete index built by the kit"):
        build_impact_index(index.parent / "vectors", tmp_path / "other", require_complete=False)


@pytest.mark.parametrize("vector, message", [
    ({"two words": 1}, "whitespace"),
    ({"tab\there": 1}, "whitespace"),
    ({"x" * 256: 1}, "longer than 255"),
    ({"a": 2.5}, "not an integer"),
    ({"a": True}, "not an integer"),
    ({"a": -1}, "negative"),
    ({f"t{i}": 1 for i in range(1025)}, "more than 1024 tokens"),
])
def test_bad_query_vectors_are_rejected(impact_index, tmp_path, vector, message):
    with pytest.raises(ValueError, match=message):
        search_impact(impact_index[0], {"q": vector}, tmp_path / "run.txt")
    assert not (tmp_path / "run.txt").exists()


def test_whole_bert_vocabulary_survives_index_and_query(splade_tiny_path, tmp_path):
    """Every wordpiece of the BERT uncased vocabulary ([CLS], [unused0], ##s, punctuation) is its own term."""
    vocab = sorted(json.loads((Path(splade_tiny_path) / "tokenizer.json").read_text())["model"]["vocab"])
    assert len(vocab) == 30522
    doc = {t: 1 + i % 3 for i, t in enumerate(vocab)}
    write_vectors(tmp_path / "vectors", {"all": doc, "other": {"[CLS]": 1}})
    built = build_impact_index(tmp_path / "vectors", tmp_path / "index", optimize=True, require_complete=False)
    # No token split, merged or case-folded: one term per token and the weights add up.
    assert built["unique_terms"] == len(vocab) and built["total_terms"] == sum(doc.values()) + 1
    chunks = [vocab[i:i + 1000] for i in range(0, len(vocab), 1000)]
    queries = {f"c{k}": {t: 1 + j % 2 for j, t in enumerate(chunk)} for k, chunk in enumerate(chunks)}
    search_impact(tmp_path / "index", queries, tmp_path / "run.txt", hits=1)
    run = read_run(tmp_path / "run.txt")
    assert {q: hits[0][::2] for q, hits in run.items()} == {
        q: ("all", float(sum(w * doc[t] for t, w in v.items()))) for q, v in queries.items()}


@pytest.mark.parametrize("line, message", [
    ('{"id": "bad", "vector": {"two words": 3}}', "whitespace"),
    ('{"id": "bad", "vector": {"a": 2.7}}', "not an integer"),
    ('{"id": "bad", "vector": {"' + "y" * 300 + '": 1}}', "longer than 255"),
    ('{"id": "d1", "vector": {"a": 1}}', "duplicate document id"),
    ('{"id": "bad", "vector": {"a": 1}', "malformed JSON"),
    ('{"id": "bad"}', "missing field 'vector'"),
])
def test_bad_document_vectors_fail_with_file_and_line(tmp_path, line, message):
    vectors = write_vectors(tmp_path / "vectors", DOC_VECTORS, extra_line=line)
    with pytest.raises(InputError, match=message) as err:
        build_impact_index(vectors, tmp_path / "index", require_complete=False)
    assert "part-00001.jsonl.gz:2" in str(err.value)
    assert not (tmp_path / "index").exists() and leftovers(tmp_path) == []


def test_failed_anserini_leaves_no_index(tmp_path):
    bad = write_vectors(tmp_path / "bad", DOC_VECTORS, extra_line='{"id": "bad", "vector": {')
    # Unvalidated malformed JSON: Anserini logs an error yet exits 0 -- the log check must catch it.
    with pytest.raises(RuntimeError, match="reported errors"):
        build_impact_index(bad, tmp_path / "index", validate=False, require_complete=False)
    # The JVM refuses to start (exit 1).
    with pytest.raises(RuntimeError, match="exit 1"):
        build_impact_index(write_vectors(tmp_path / "good", DOC_VECTORS), tmp_path / "index", heap="1k",
                           require_complete=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "good"]


def test_options_are_validated(impact_index, tmp_path):
    with pytest.raises(ValueError, match="hits"):
        search_impact(impact_index[0], {"q": {"a": 1}}, tmp_path / "run.txt", hits=0)
    with pytest.raises(ValueError, match="heap"):
        search_impact(impact_index[0], {"q": {"a": 1}}, tmp_path / "run.txt", heap="lots")
    with pytest.raises(ValueError, match="query id"):
        search_impact(impact_index[0], {"q 1": {"a": 1}}, tmp_path / "run.txt")
    with pytest.raises(ValueError, match="b must be"):
        search_bm25(impact_index[0], {"q": "a"}, tmp_path / "run.txt", b=1.5)
    with pytest.raises(InputError, match="not a Lucene index"):
        search_bm25(tmp_path, {"q": "a"}, tmp_path / "run.txt")


def test_log_parsing():
    log = """2026 INFO  [main] index.AbstractIndexer (AbstractIndexer.java:292) - Total 5,183 documents indexed
2026 INFO  [main] index.AbstractIndexer (AbstractIndexer.java:294) - indexed:            5,183
2026 INFO  [main] index.AbstractIndexer (AbstractIndexer.java:295) - unindexable:            0
2026 INFO  [main] index.AbstractIndexer (AbstractIndexer.java:296) - empty:                  2
2026 INFO  [main] index.AbstractIndexer (AbstractIndexer.java:297) - skipped:                0
2026 INFO  [main] index.AbstractIndexer (AbstractIndexer.java:298) - errors:                 0"""
    assert _parse_counters(log) == {"indexed": 5183, "unindexable": 0, "empty": 2, "skipped": 0, "errors": 0}
    assert _log_problems(log) == []
    search = ("ranker: bm25(k1=0.9,b=0.4), reranker: default: 100 queries processed\n"
              "ranker: bm25(k1=0.9,b=0.4), reranker: default: 1,200 queries processed in 00:00:04 = ~250.00 q/s")
    assert _search_seconds(search) == 4.8 and _search_seconds("") is None
    trace = "java.lang.NullPointerException: boom\n\tat java.base/java.lang.String.<init>(Unknown Source)\n"
    assert _log_problems(trace + 'Error: "x" does not appear to be a valid index.') == [
        "java.lang.NullPointerException: boom", 'Error: "x" does not appear to be a valid index.']


# ---- flat index and BM25 --------------------------------------------------------------------------------------------

def test_sanitize_query():
    assert sanitize_query("a\tb\nc\r\nd") == "a b c  d"


def test_remove_query_and_query_sanitising(tmp_path):
    docs = [("q1", "cats chase dogs"), ("x", "dogs bark at cats"), ("y", "birds sing")]
    build_flat_index(iter(docs), tmp_path / "flat", threads=1)
    queries = {"q1": "cats\tand\ndogs", "q2": " \t\n", "q3": "birds"}
    removed = search_bm25(tmp_path / "flat", queries, tmp_path / "removed.txt", hits=10, threads=1)
    kept = search_bm25(tmp_path / "flat", queries, tmp_path / "kept.txt", hits=10, threads=1, remove_query=False)
    assert removed["queries"] == 2 and removed["empty_queries"] == 1
    assert kept["queries"] == 2 and kept["empty_queries"] == 1
    assert {q: [d for d, _, _ in h] for q, h in read_run(tmp_path / "removed.txt").items()} == {
        "q1": ["x"], "q3": ["y"]}
    assert sorted(d for d, _, _ in read_run(tmp_path / "kept.txt")["q1"]) == ["q1", "x"]
    # Anserini logs a too-long query's TooManyClauses and exits 0 with an incomplete run: it must raise.
    with pytest.raises(RuntimeError, match="TooManyClauses"):
        search_bm25(tmp_path / "flat", {"long": " ".join(f"w{i}" for i in range(1100))}, tmp_path / "long.txt")
    assert not (tmp_path / "long.txt").exists()


def test_flat_build_rejects_bad_docs(tmp_path):
    with pytest.raises(ValueError, match="document id"):
        build_flat_index([("a b", "text")], tmp_path / "flat")
    with pytest.raises(ValueError, match="duplicate"):
        build_flat_index([("a", "text"), ("a", "more")], tmp_path / "flat")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def scifact_slice(scifact_dir):
    """The 300 test queries, their judged documents and 500 other documents."""
    qrels: dict[str, set[str]] = defaultdict(set)
    for line in (scifact_dir / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, doc, _ = line.split("\t")
        qrels[qid].add(doc)
    judged = set().union(*qrels.values())
    docs, others = [], 0
    with open(scifact_dir / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["_id"] in judged or others < 500:
                others += rec["_id"] not in judged
                docs.append((rec["_id"], f"{rec['title']} {rec['text']}"))
    queries = {}
    with open(scifact_dir / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["_id"] in qrels:
                queries[rec["_id"]] = rec["text"]
    return docs, queries, qrels


def test_bm25_on_scifact_slice(scifact_slice, tmp_path):
    docs, queries, qrels = scifact_slice
    built = build_flat_index(docs, tmp_path / "flat", threads=2)
    assert built["documents"] == len(docs) and len(queries) == 300
    result = search_bm25(tmp_path / "flat", queries, tmp_path / "run.txt", hits=20, threads=2)
    run = read_run(tmp_path / "run.txt")
    assert result["queries"] == 300 and set(run) == set(queries)
    assert all(1 <= len(hits) <= 20 for hits in run.values())
    ids = {d for d, _ in docs}
    assert all(d in ids for hits in run.values() for d, _, _ in hits)
    found = sum(len(qrels[q] & {d for d, _, _ in hits}) for q, hits in run.items())
    assert found / sum(map(len, qrels.values())) > 0.9  # recall@20 in an 840-document corpus


# ---- command line ---------------------------------------------------------------------------------------------------

def test_cli_search_and_stats(impact_index, tmp_path, capsys):
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"id": q, "vector": v}) + "\n" for q, v in QUERY_VECTORS.items()))
    assert main(["search-impact", "--index", str(impact_index[0]), "--queries", str(queries),
                 "--output", str(tmp_path / "run.txt"), "--hits", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["queries"] == 6
    assert {q: [(d, s) for d, _, s in h] for q, h in read_run(tmp_path / "run.txt").items()} == EXPECTED
    assert main(["stats", "--index", str(impact_index[0])]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 3


def test_cli_bad_input_is_one_line(impact_index, tmp_path, capsys):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "vector": {"a": 1}}\n{"id": "q2", "vector": {"a b": 1}}\n')
    assert main(["search-impact", "--index", str(impact_index[0]), "--queries", str(queries),
                 "--output", str(tmp_path / "run.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{queries}:2" in err and "whitespace" in err
    assert main(["build-impact", "--vectors", str(tmp_path / "missing"), "--index", str(tmp_path / "i")]) == 2
    assert "vectors folder not found" in capsys.readouterr().err


# ---- the full SciFact BM25 flat baseline ---------------------------------------------------------------------------

@pytest.mark.integration
def test_scifact_bm25_flat_reproduces_anserini(shared, scifact_dir, tmp_path):
    import ir_measures
    from ir_measures import R, nDCG

    built = build_flat_index(read_beir_corpus(scifact_dir / "corpus.jsonl"), tmp_path / "flat", threads=2)
    assert built["documents"] == 5183
    beir = shared / "data" / "beir-topics-qrels"
    topics = read_topics_tsv(beir / "topics.beir-v1.0.0-scifact.test.tsv.gz")
    search_bm25(tmp_path / "flat", topics, tmp_path / "run.txt", hits=1000, threads=2)
    qrels = list(ir_measures.read_trec_qrels(str(beir / "qrels.beir-v1.0.0-scifact.test.txt.gz")))
    scores = ir_measures.calc_aggregate([nDCG @ 10, R @ 100, R @ 1000], qrels,
                                        ir_measures.read_trec_run(str(tmp_path / "run.txt")))
    assert {str(m): round(v, 4) for m, v in scores.items()} == {"nDCG@10": 0.6789, "R@100": 0.9253, "R@1000": 0.9767}


@pytest.fixture(scope="module")
def dumped_archive(tmp_path_factory) -> Path:
    """`python -m index class-archive` (what make setup runs) into a temporary archive, once for this module."""
    archive = tmp_path_factory.mktemp("share") / "anserini.jsa"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KIT_CLASS_ARCHIVE", str(archive))
        assert main(["class-archive"]) == 0 and archive.is_file()
        assert [p.name for p in archive.parent.iterdir()] == ["anserini.jsa"]  # no class list or partial dump left
        dumped = archive.stat().st_mtime_ns
        assert main(["class-archive"]) == 0 and archive.stat().st_mtime_ns == dumped  # make setup again: kept
    return archive


def test_the_class_data_archive_is_valid_used_and_changes_no_result(impact_index, dumped_archive, tmp_path,
                                                                     monkeypatch):
    """`python -m index class-archive` (make setup) dumps an archive this JVM maps (-Xshare:on refuses an unusable
    one); every Anserini call then passes it, and searches and statistics are the same with it as without."""
    import subprocess

    import kit.java as java

    index, _ = impact_index
    without = tmp_path / "without.trec"
    search_impact(index, QUERY_VECTORS, without, hits=10, threads=1)
    stats = index_stats(index)

    archive = dumped_archive
    monkeypatch.setenv("KIT_CLASS_ARCHIVE", str(archive))
    check = subprocess.run([java.java_executable(), "-Xshare:on", f"-XX:SharedArchiveFile={archive}", "-cp",
                            str(java.anserini_jar()), "io.anserini.index.IndexReaderUtils", "-index", str(index),
                            "-stats"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    calls = []
    real = subprocess.run
    monkeypatch.setattr(java.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or real(cmd, **kw))
    search_impact(index, QUERY_VECTORS, tmp_path / "with.trec", hits=10, threads=1)
    assert index_stats(index) == stats
    assert (tmp_path / "with.trec").read_text() == without.read_text()
    assert len(calls) == 2 and all(f"-XX:SharedArchiveFile={archive}" in cmd for cmd in calls)


def test_the_archive_is_named_by_the_runtime_and_the_jar(tmp_path, monkeypatch):
    import kit.java as java

    monkeypatch.delenv("KIT_CLASS_ARCHIVE", raising=False)
    jar = tmp_path / "anserini-fatjar.jar"
    jar.write_bytes(b"one")
    monkeypatch.setattr(java, "anserini_jar", lambda: jar)
    first = java.class_archive()
    assert first.suffix == ".jsa" and java.ANSERINI_VERSION in first.name
    jar.write_bytes(b"a rebuilt jar")  # another jar never maps the old archive, nor another runtime
    second = java.class_archive()
    monkeypatch.setattr(java, "java_executable", lambda: str(tmp_path / "java"))
    assert len({first, second, java.class_archive()}) == 3


def test_the_jvm_start_benchmark_times_both_ways_and_leaves_the_environment_alone(impact_index, dumped_archive,
                                                                                  monkeypatch):
    from bench.jvm_start import timed_calls

    archive = dumped_archive
    monkeypatch.setenv("KIT_CLASS_ARCHIVE", str(archive))
    times = timed_calls(impact_index[0], repeat=2)
    assert {k: len(v) for k, v in times.items()} == {True: 2, False: 2} and min(times[True] + times[False]) > 0
    import os

    assert os.environ["KIT_CLASS_ARCHIVE"] == str(archive)
