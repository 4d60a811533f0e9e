"""train.data: the training-file reader, the teacher-score arithmetic, offline mining and the MS MARCO parser.

Expected values are worked out by hand in the comments. The miniature mining run uses the real Anserini index and the
two offline teachers on 10 documents; the MS MARCO tests write Parquet shards in the hub dataset's schema.
"""

from __future__ import annotations

import json
import os
import math
from collections import Counter
from pathlib import Path

import pytest

from kit.errors import InputError
from train import data as td
from train.examples import TrainExample, load_training_file, meta_path
from train.mining import (candidate_groups, default_flat_index, default_offline_path, mine_offline, offline_options,
                          read_ranking)
from train.msmarco import HardNegativeRow, build_msmarco, msmarco_examples, read_hard_negatives, select_candidates
from train.teachers import (OFFLINE_MARGIN, OFFLINE_SCALE, ensemble_scores, lift_positive, minmax_normalize,
                            softmax_entropy)

GOOD = {"query_id": "q1", "query": "what is x", "doc_ids": ["d1", "d2", "d3"], "docs": ["x is", "y", "z"],
        "teacher_scores": [3, 1.5, 0.0]}


def write_jsonl(path: Path, *records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def raises_at(path: Path, line: int | None, *words: str):
    """Assert the InputError raised by the ``with`` block is one line naming ``path:line`` and ``words``."""
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(InputError)
            self.info = self.ctx.__enter__()
            return self

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)
            msg = str(self.info.value)
            assert "\n" not in msg
            assert f"{path}:{line}:" in msg if line is not None else str(path) in msg
            for word in words:
                assert word in msg, msg
            return handled
    return Check()


# ---- reader -------------------------------------------------------------------------------------------------------

def test_reader_returns_validated_examples(tmp_path):
    second = {**GOOD, "query_id": "q2", "doc_ids": ["a", "b"], "docs": ["", "b"], "teacher_scores": [1, 2]}
    path = write_jsonl(tmp_path / "t.jsonl", GOOD, "", second)
    examples = load_training_file(path)
    assert examples == [TrainExample("q1", "what is x", ["d1", "d2", "d3"], ["x is", "y", "z"], [3.0, 1.5, 0.0]),
                        TrainExample("q2", "what is x", ["a", "b"], ["", "b"], [1.0, 2.0])]
    assert all(isinstance(s, float) for s in examples[0].teacher_scores)


BAD_LINES = [
    ({k: v for k, v in GOOD.items() if k != "docs"}, "missing field 'docs'"),
    ({**GOOD, "docs": ["x", "y"]}, "3 doc_ids, 2 docs, 3 teacher_scores"),
    ({**GOOD, "teacher_scores": [1.0, 2.0]}, "3 doc_ids, 3 docs, 2 teacher_scores"),
    ({**GOOD, "doc_ids": ["d1"], "docs": ["x"], "teacher_scores": [1]}, "1 document(s)"),
    ({**GOOD, "teacher_scores": [1, "high", 0]}, "teacher_scores[1] is 'high'"),
    ({**GOOD, "teacher_scores": [1, True, 0]}, "teacher_scores[1] is True"),
    ('{"query_id": "q", "query": "x", "doc_ids": ["a", "b"], "docs": ["a", "b"], "teacher_scores": [1, NaN]}',
     "NaN is not a finite number"),
    ({**GOOD, "query_id": 7}, "'query_id' must be a string"),
    ({**GOOD, "docs": "x y z"}, "'docs' must be a list"),
    ({**GOOD, "doc_ids": ["d1", "d2", "d1"]}, "document 'd1' appears twice"),
    ({**GOOD, "doc_ids": ["d1", "", "d3"]}, "doc_ids[1]"),
    ('{"query_id": "q1", ', "malformed JSON"),
]


@pytest.mark.parametrize("bad, words", BAD_LINES, ids=[w for _, w in BAD_LINES])
def test_reader_names_file_and_line_of_bad_input(tmp_path, bad, words):
    path = write_jsonl(tmp_path / "t.jsonl", GOOD, bad)
    with raises_at(path, 2, words):
        load_training_file(path)


def test_reader_rejects_an_empty_file(tmp_path):
    path = write_jsonl(tmp_path / "empty.jsonl")
    with raises_at(path, None, "no training examples"):
        load_training_file(path)


# ---- teacher-score arithmetic -------------------------------------------------------------------------------------

def test_minmax_normalize_by_hand():
    # (s - 1) / (3 - 1 + 1e-6)
    assert minmax_normalize([1, 3, 2]).tolist() == pytest.approx([0, 2 / (2 + 1e-6), 1 / (2 + 1e-6)], abs=1e-12)
    assert minmax_normalize([4.0, 4.0]).tolist() == [0.0, 0.0]  # a constant list: uniform target, no division by 0
    with pytest.raises(ValueError):
        minmax_normalize([])


def test_ensemble_averages_normalized_teachers_and_scales():
    # teacher a: [0.2, 0.6, 0.4] -> [0, 1, .5]; teacher b: [10, 0, 8] -> [1, 0, .8]; mean [.5, .5, .65]; x 10
    got = ensemble_scores([[0.2, 0.6, 0.4], [10, 0, 8]], 10)
    assert got.tolist() == pytest.approx([5.0, 5.0, 6.5], abs=1e-4)
    # the scale of one teacher's raw scores does not matter after normalisation
    assert ensemble_scores([[0.2, 0.6, 0.4], [1000, 0, 800]], 10).tolist() == pytest.approx(got.tolist())
    with pytest.raises(ValueError, match="same candidates"):
        ensemble_scores([[1, 2], [1, 2, 3]], 1)
    with pytest.raises(ValueError, match="scale"):
        ensemble_scores([[1, 2]], 0)


def test_lift_positive_by_hand():
    assert lift_positive([2, 5, 3], 1).tolist() == [6, 5, 3]      # below the best negative: lifted to 5 + 1
    assert lift_positive([5.5, 5, 3], 1).tolist() == [6, 5, 3]    # first but within the margin: lifted
    assert lift_positive([9, 5, 3], 1).tolist() == [9, 5, 3]      # first by more than the margin: unchanged
    assert lift_positive([2, 5], 0).tolist() == [5, 5]
    for bad in (-1, float("nan"), "1"):
        with pytest.raises(ValueError, match="margin"):
            lift_positive([1, 2], bad)


def test_softmax_entropy_by_hand():
    assert softmax_entropy([3, 3, 3, 3]) == pytest.approx(math.log(4))
    assert softmax_entropy([1000, 0]) == pytest.approx(0, abs=1e-9)
    # p = [1/4, 3/4]: scores 0 and ln 3
    assert softmax_entropy([0, math.log(3)]) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


# ---- negatives ----------------------------------------------------------------------------------------------------

def test_read_ranking_orders_by_score(tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 a 2 1.0 t\nq1 Q0 b 1 3.0 t\nq2 Q0 c 1 0.5 t\nq1 Q0 c 3 1.0 t\n")
    assert read_ranking(run) == {"q1": ["b", "a", "c"], "q2": ["c"]}
    run.write_text("q1 Q0 a 1\n")
    with raises_at(run, 1, "expected 6 columns"):
        read_ranking(run)


def test_candidate_groups_one_example_per_positive_and_no_positive_as_negative():
    queries = {"q1": "x", "q2": "y", "q3": "z", "q4": "unjudged"}
    qrels = {"q1": {"p1": 1, "p2": 1, "n0": 0}, "q2": {"p3": 1}, "q3": {"p4": 1}}
    ranking = {"q1": ["p2", "n1", "n0", "p1", "n2", "n3"], "q2": ["n1"], "q3": ["p4"], "q4": ["n1"]}
    groups, counts = candidate_groups(queries, qrels, ranking, negatives=3)
    # q1: judged non-relevant n0 may be a negative, both positives are excluded; q3 retrieved only its positive
    assert groups == [("q1", ["p1", "n1", "n0", "n2"]), ("q1", ["p2", "n1", "n0", "n2"]), ("q2", ["p3", "n1"])]
    assert counts == {"queries_with_fewer_negatives": 1, "pairs_without_negatives": 1}


# ---- miniature mining run (real Anserini index and teachers) ------------------------------------------------------

MINI_DOCS = {
    "d0": "Aspirin reduces the risk of heart attack in adults.",
    "d1": "Heart attack risk rises with smoking and high blood pressure.",
    "d2": "Vitamin D deficiency is common in northern countries.",
    "d3": "Vitamin D supplements do not prevent fractures in the elderly.",
    "d4": "Sleep deprivation impairs memory consolidation.",
    "d5": "Memory and sleep: the role of REM sleep in learning.",
    "d6": "Aspirin causes stomach bleeding in some adults.",
    "d7": "Blood pressure medication and heart health in adults.",
    "d8": "Fractures in the elderly are linked to falls and vitamin deficiency.",
    "d9": "Learning a language improves memory in adults.",
}
MINI_QUERIES = {"0": "Aspirin lowers heart attack risk in adults.", "1": "Vitamin D prevents fractures in the elderly.",
                "2": "Sleep helps memory and learning.", "3": "an unjudged query"}
MINI_QRELS = [("0", "d0"), ("1", "d3"), ("1", "d8"), ("2", "d5")]


def mini_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    write_jsonl(root / "corpus.jsonl", *({"_id": i, "title": "", "text": t} for i, t in MINI_DOCS.items()))
    write_jsonl(root / "queries.jsonl", *({"_id": i, "text": t} for i, t in MINI_QUERIES.items()))
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                              + "".join(f"{q}\t{d}\t1\n" for q, d in MINI_QRELS))
    return root


@pytest.fixture(scope="module")
def mini_mined(tmp_path_factory):
    """Mine the miniature collection once for this module, with the work directory under a temporary folder."""
    tmp = tmp_path_factory.mktemp("mine")
    root = mini_beir(tmp / "mini")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KIT_WORK", str(tmp / "work"))
        out = mine_offline(str(root), "train", negatives=3, depth=10, device="cpu")
    return tmp, root, out


def test_mini_mining_run(mini_mined, monkeypatch):
    from kit.data import load_dataset

    tmp, root, out = mini_mined
    assert out == tmp / "work" / "train" / "mini-train.bm25-neg3.minilm+splade-tiny.jsonl"
    monkeypatch.setenv("KIT_WORK", str(tmp / "work"))
    flat = default_flat_index(str(root), load_dataset(str(root), "train").corpus_fingerprint())
    assert flat.path.parent == tmp / "work" / "mini" / "indexes" and flat.ready()  # the index the table runner shares
    examples = load_training_file(out)
    positives = {}
    for q, d in MINI_QRELS:
        positives.setdefault(q, set()).add(d)
    # one example per judged pair, in query order; query 3 has no judgment
    assert [(ex.query_id, ex.doc_ids[0]) for ex in examples] == MINI_QRELS
    for ex in examples:
        assert ex.doc_ids[0] in positives[ex.query_id]
        assert not set(ex.doc_ids[1:]) & positives[ex.query_id]
        assert 2 <= len(ex.doc_ids) <= 4
        assert ex.docs == [MINI_DOCS[d] for d in ex.doc_ids]
        assert ex.query == MINI_QUERIES[ex.query_id]
        assert ex.teacher_scores[0] >= max(ex.teacher_scores[1:]) + OFFLINE_MARGIN - 1e-6  # lifted
        assert all(0 <= s <= OFFLINE_SCALE + OFFLINE_MARGIN for s in ex.teacher_scores)
    # the two examples of query 1 share their negatives
    assert examples[1].doc_ids[1:] == examples[2].doc_ids[1:]

    meta = json.loads(meta_path(out).read_text())
    fingerprints = meta["params"].pop("fingerprints")
    assert meta["params"] == {"dataset": str(root), "split": "train", "negatives": 3, "depth": 10,
                              "scale": OFFLINE_SCALE, "positive_rule": "lift", "margin": OFFLINE_MARGIN,
                              "teachers": ["all-MiniLM-L6-v2", "splade-tiny"]}
    assert set(fingerprints) == {"corpus", "queries", "qrels", "teachers"} and len(fingerprints["teachers"]) == 2
    assert meta["counts"]["judged_pairs"] == 4 and meta["stats"]["examples"] == 4
    assert meta["stats"]["positive_at_top"] == 1.0
    assert 0 <= meta["stats"]["ensemble_positive_at_top"] <= 1
    assert set(meta["stats"]["entropy_by_scale"]) == {"1", "2", "5", "10", "20", "30"}
    assert [t["name"] for t in meta["teachers"]] == ["all-MiniLM-L6-v2", "splade-tiny"]
    assert meta["seconds"]["total"] > 0 and {"teacher minilm", "teacher splade-tiny"} <= set(meta["seconds"])


def test_mining_reuses_its_output_and_refuses_other_options(mini_mined):
    tmp, root, out = mini_mined
    stamp = out.stat().st_mtime_ns
    index = tmp / "work" / "mini" / "indexes" / "flat"
    # no model is loaded and nothing is written: the call returns at once
    assert mine_offline(str(root), "train", negatives=3, depth=10, out=out, index_dir=index) == out
    assert out.stat().st_mtime_ns == stamp
    with raises_at(out, None, "scale=", "--overwrite"):
        mine_offline(str(root), "train", negatives=3, depth=10, out=out, index_dir=index, scale=3.0)


@pytest.mark.parametrize("kwargs, words", [
    ({"negatives": 0}, "negatives"), ({"depth": 2, "negatives": 3}, "depth"), ({"scale": -1}, "scale"),
    ({"positive_rule": "boost"}, "positive rule"), ({"margin": -0.5}, "margin"),
])
def test_mining_validates_options_before_any_work(kwargs, words, tmp_path):
    with pytest.raises(ValueError, match=words):
        mine_offline("scifact", out=tmp_path / "x.jsonl", **kwargs)


# ---- MS MARCO hub format ------------------------------------------------------------------------------------------

def write_parquet(path: Path, rows: list[tuple]) -> Path:
    """A shard in the schema of the hub dataset's card: query: string, docs: list<string>, scores: list<double>."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("query", pa.string()), ("docs", pa.list_(pa.string())), ("scores", pa.list_(pa.float64()))])
    table = pa.Table.from_pylist([dict(zip(("query", "docs", "scores"), row)) for row in rows], schema=schema)
    pq.write_table(table, path, row_group_size=2)
    return path


HUB_ROWS = [
    ("1000", ["7", "8", "9", "10"], [0.5, 2.5, -1.0, 1.5]),   # positive 9 is ranked last by the teacher
    ("1001", ["20", "21", "22"], [3.0, 1.0, 2.0]),           # positive 20 is the teacher's best
    ("1002", ["30", "31"], [1.0, 0.0]),                      # no judged positive among the candidates
    ("4242", ["7", "20"], [1.0, 0.0]),                       # query not in the train queries
]


def test_read_hard_negatives_streams_rows_across_shards(tmp_path):
    a = write_parquet(tmp_path / "train-00000-of-00002.parquet", HUB_ROWS[:3])
    b = write_parquet(tmp_path / "train-00001-of-00002.parquet", HUB_ROWS[3:])
    rows = list(read_hard_negatives([a, b], batch_rows=2))
    assert rows == [HardNegativeRow(q, d, s) for q, d, s in HUB_ROWS]


@pytest.mark.parametrize("row, words", [
    (("q", ["a", "b"], [1.0]), "2 docs and 1 scores"),
    (("q", ["a"], [1.0]), "1 docs and 1 scores"),
    (("q", ["a", "b"], [1.0, float("nan")]), "non-finite"),
    ((None, ["a", "b"], [1.0, 2.0]), "null"),
])
def test_read_hard_negatives_names_the_bad_row(tmp_path, row, words):
    path = write_parquet(tmp_path / "bad.parquet", [HUB_ROWS[0], row])
    with raises_at(path, 2, "row 2", words):
        list(read_hard_negatives([path]))


def test_read_hard_negatives_rejects_other_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"query": ["q"], "pos": [["a"]]}), other)
    with raises_at(other, None, "no column(s) docs, scores"):
        list(read_hard_negatives([other]))
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with raises_at(junk, None, "not a readable Parquet file"):
        list(read_hard_negatives([junk]))


def test_select_candidates_by_hand():
    row = HardNegativeRow("q", ["a", "b", "c", "d", "e", "f"], [1.0, 6.0, 5.0, 4.0, 3.0, 2.0])
    # by score: b c d e f a; positives a and c -> c (the best-scored positive); negatives [b d e f] (a is judged)
    assert select_candidates(row, {"a", "c"}, 2, "top") == (["c", "b", "d"], [5.0, 6.0, 4.0])
    # spread: linspace(0, 3, 3) = 0, 1.5, 3 -> ranks 0, 2, 3 of [b d e f]
    assert select_candidates(row, {"a", "c"}, 3, "spread") == (["c", "b", "e", "f"], [5.0, 6.0, 3.0, 2.0])
    assert select_candidates(row, {"a", "c"}, 9, "spread")[0] == ["c", "b", "d", "e", "f"]
    assert select_candidates(row, {"zzz"}, 2) is None
    assert select_candidates(HardNegativeRow("q", ["a", "b"], [1.0, 2.0]), {"a", "b"}, 2) is None
    with pytest.raises(ValueError, match="sampling"):
        select_candidates(row, {"a"}, 2, "random")


QUERIES = {"1000": "first query", "1001": "second query", "1002": "third query"}
QRELS = {"1000": {"9"}, "1001": {"20"}, "1002": {"99"}}
PASSAGES = {d: f"passage {d}" for d in ("7", "8", "9", "10", "20", "21", "22", "30", "31")}


def test_msmarco_examples_from_rows():
    lookups = []

    def doc_texts(ids):
        lookups.append(ids)
        return {d: PASSAGES[d] for d in ids}

    counts = Counter()
    rows = [HardNegativeRow(q, d, s) for q, d, s in HUB_ROWS]
    examples = list(msmarco_examples(rows, QUERIES, QRELS, doc_texts, negatives=2, scale=2.0, counts=counts, chunk=3))
    assert examples == [
        TrainExample("1000", "first query", ["9", "8", "10"], ["passage 9", "passage 8", "passage 10"],
                     [-2.0, 5.0, 3.0]),
        TrainExample("1001", "second query", ["20", "22", "21"], ["passage 20", "passage 22", "passage 21"],
                     [6.0, 4.0, 2.0]),
    ]
    assert counts == {"rows": 4, "no_positive_in_candidates": 1, "unknown_query": 1}
    assert lookups == [["10", "20", "21", "22", "8", "9"]]  # one batched lookup per chunk with a usable row
    lifted = list(msmarco_examples(rows[:1], QUERIES, QRELS, doc_texts, negatives=2, positive_rule="lift", margin=1))
    assert lifted[0].teacher_scores == [3.5, 2.5, 1.5]


class FakeMsMarco:
    """The parts of ir_datasets' msmarco-passage/train that build_msmarco uses."""

    class _Query:
        def __init__(self, query_id, text):
            self.query_id, self.text = query_id, text

    class _Qrel:
        def __init__(self, query_id, doc_id, relevance):
            self.query_id, self.doc_id, self.relevance = query_id, doc_id, relevance

    class _Doc:
        def __init__(self, doc_id, text):
            self.doc_id, self.text = doc_id, text

    def queries_iter(self):
        return (self._Query(q, t) for q, t in QUERIES.items())

    def qrels_iter(self):
        return (self._Qrel(q, d, 1) for q, ds in QRELS.items() for d in ds)

    def docs_store(self):
        fake = self

        class Store:
            def get_many(self, ids):
                return {d: fake._Doc(d, PASSAGES[d]) for d in ids if d in PASSAGES}
        return Store()


def test_build_msmarco_from_local_shards(tmp_path, monkeypatch):
    import ir_datasets

    monkeypatch.setattr(ir_datasets, "load", lambda dataset_id: FakeMsMarco())
    shard = write_parquet(tmp_path / "train-00000-of-00001.parquet", HUB_ROWS)
    out = build_msmarco(tmp_path / "marco.jsonl", negatives=1, hard_negatives=[shard], command="test")
    examples = load_training_file(out)
    assert [(ex.query_id, ex.doc_ids, ex.teacher_scores) for ex in examples] == [
        ("1000", ["9", "8"], [-1.0, 2.5]), ("1001", ["20", "22"], [3.0, 2.0])]
    meta = json.loads(meta_path(out).read_text())
    assert meta["counts"] == {"rows": 4, "no_positive_in_candidates": 1, "unknown_query": 1}
    assert meta["stats"]["positive_at_top"] == 0.5 and meta["positive_rule"] == {"rule": "keep"}
    assert meta["source"]["files"] == [str(shard)] and meta["command"] == "test"


# ---- command line -------------------------------------------------------------------------------------------------

def test_cli_check_and_bad_input(tmp_path, capsys):
    good = write_jsonl(tmp_path / "good.jsonl", GOOD)
    assert td.main(["check", str(good)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["examples"] == 1 and stats["positive_at_top"] == 1.0
    assert stats["mean_positive_probability"] == pytest.approx(1 / (1 + math.exp(-1.5) + math.exp(-3)))
    bad = write_jsonl(tmp_path / "bad.jsonl", {**GOOD, "teacher_scores": [1]})
    assert td.main(["check", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}:1: lists differ in length") and "\n" not in err
    with pytest.raises(SystemExit) as info:
        td.main(["mine-offline", "--negatives", "0"])
    assert info.value.code == 2


@pytest.mark.integration
def test_mining_a_scifact_slice_through_the_cli(tmp_path, scifact_dir):
    """``python -m train.data mine-offline`` on a SciFact train slice (the full file is what make ablation mines):
    one example per judged (query, positive) pair, the positive first, negatives the query never judged relevant;
    a re-run reuses the file, and a changed corpus is never served the old file."""
    import subprocess
    import sys

    from conftest import write_beir_slice

    from kit.data import load_dataset
    from kit.paths import REPO

    data = write_beir_slice(tmp_path / "slice", scifact_dir, n_queries=12, n_other=60, split="train")
    out = tmp_path / "mined.jsonl"
    command = [sys.executable, "-m", "train.data", "mine-offline", "--dataset", str(data), "--negatives", "3",
               "--depth", "20", "--batch-size", "16", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "KIT_WORK": str(tmp_path / "work")}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ds = load_dataset(str(data), "train")
    examples = load_training_file(out)
    assert len(examples) == sum(1 for v in ds.qrels.values() for r in v.values() if r > 0)
    for ex in examples:
        assert ds.qrels[ex.query_id].get(ex.doc_ids[0], 0) > 0
        assert all(ds.qrels[ex.query_id].get(d, 0) <= 0 for d in ex.doc_ids[1:])
        assert ex.teacher_scores[0] == max(ex.teacher_scores)  # lifted positive
    stamp = out.stat().st_mtime_ns
    assert subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True).returncode == 0
    assert out.stat().st_mtime_ns == stamp  # reused
    with open(data / "corpus.jsonl", "a") as fh:
        fh.write(json.dumps({"_id": "new-doc", "title": "", "text": "A document added later."}) + "\n")
    changed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert changed.returncode == 2 and "exists but was made with fingerprints" in changed.stderr


def test_bm25_joins_the_teacher_ensemble(tmp_path, monkeypatch):
    """``--teachers bm25 minilm splade-tiny``: BM25's own scores of each candidate (0 for one it did not retrieve)
    are min-max normalised and averaged with the two models', and the output is named after its teachers."""
    root = mini_beir(tmp_path / "mini")
    monkeypatch.setenv("KIT_WORK", str(tmp_path / "work"))
    out = mine_offline(str(root), "train", negatives=3, depth=10, device="cpu",
                          teachers=("bm25", "minilm", "splade-tiny"))
    assert out.name == "mini-train.bm25-neg3.bm25+minilm+splade-tiny.jsonl"
    meta = json.loads(meta_path(out).read_text())
    assert meta["params"]["teachers"] == ["bm25", "all-MiniLM-L6-v2", "splade-tiny"]
    assert [t["name"] for t in meta["teachers"]] == ["bm25", "all-MiniLM-L6-v2", "splade-tiny"]
    assert {"bm25_positive_at_top", "minilm_positive_at_top", "ensemble_positive_at_top"} <= set(meta["stats"])
    assert offline_options(default_offline_path(teachers=("bm25", "minilm"))) is not None
    with pytest.raises(ValueError, match="teachers must be distinct"):
        mine_offline(str(root), "train", teachers=("bm25", "bm25"))
