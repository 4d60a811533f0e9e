"""Readers of kit.formats and loaders of kit.data: formats, one-line errors for bad input, the offline collections, and
the ir_datasets mapping."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest

from kit import data
from kit.data import BEIR_DATASETS, load_beir_local, load_dataset, load_ir_datasets, read_cacm, read_vaswani
from kit.dataset import Dataset, Doc
from kit.formats import (read_beir_corpus, read_beir_qrels, read_beir_queries, read_smart_docs, read_smart_qrels,
                         read_smart_queries, read_topics_tsv, read_trec_docs, read_trec_qrels, read_trec_topics)
from kit.errors import InputError


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (gzip-compressed when the name ends in .gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def bad_input(fn, path: Path, line: int | None, *words: str) -> str:
    """Call ``fn``; it must raise InputError whose one-line str() names ``path:line`` and contains ``words``."""
    with pytest.raises(InputError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"error: {path}:{line}: " if line is not None else f"error: {path}: "), msg
    assert "(fix: " in msg
    for word in words:
        assert word in msg, msg
    return msg


# ---- BEIR JSONL ------------------------------------------------------------------------------------------------------

def test_beir_corpus_flat_text_convention(tmp_path):
    path = write(tmp_path / "corpus.jsonl", jsonl(
        {"_id": "a", "title": "Title", "text": "body text"},
        {"_id": "b", "text": "no title"},
        {"_id": "c", "title": None, "text": " padded "},
        {"_id": "d", "title": "", "text": ""},
        "",
        {"_id": 7, "title": "only title", "text": "", "metadata": {}},
    ))
    assert list(read_beir_corpus(path)) == [
        Doc("a", "Title body text"), Doc("b", "no title"), Doc("c", "padded"), Doc("d", ""), Doc("7", "only title")]


def test_beir_corpus_gz_reads_the_same(tmp_path):
    text = jsonl({"_id": "1", "title": "t", "text": "x"}, {"_id": "2", "text": "y"})
    assert list(read_beir_corpus(write(tmp_path / "c.jsonl.gz", text))) == list(
        read_beir_corpus(write(tmp_path / "c.jsonl", text)))


def test_beir_corpus_malformed_json(tmp_path):
    path = write(tmp_path / "corpus.jsonl", jsonl({"_id": "1", "text": "ok"}, '{"_id": "2", "text": '))
    bad_input(lambda: list(read_beir_corpus(path)), path, 2, "malformed JSON")


@pytest.mark.parametrize("record, field", [({"title": "t", "text": "x"}, "_id"), ({"_id": "2", "title": "t"}, "text")])
def test_beir_corpus_missing_field(tmp_path, record, field):
    path = write(tmp_path / "corpus.jsonl", jsonl({"_id": "1", "text": "ok"}, record))
    bad_input(lambda: list(read_beir_corpus(path)), path, 2, f"missing field {field!r}")


@pytest.mark.parametrize("record, words", [({"_id": "1", "text": 3}, ("'text'", "string")),
                                           ({"_id": "1", "text": "x", "title": ["a"]}, ("'title'",)),
                                           ({"_id": " ", "text": "x"}, ("empty '_id'",))])
def test_beir_corpus_wrong_types(tmp_path, record, words):
    path = write(tmp_path / "corpus.jsonl", jsonl(record))
    bad_input(lambda: list(read_beir_corpus(path)), path, 1, *words)


def test_beir_corpus_duplicate_id_names_both_lines(tmp_path):
    path = write(tmp_path / "corpus.jsonl", jsonl(
        {"_id": "1", "text": "a"}, {"_id": "2", "text": "b"}, {"_id": "3", "text": "c"}, {"_id": "2", "text": "d"}))
    bad_input(lambda: list(read_beir_corpus(path)), path, 4, "duplicate _id '2'", "first on line 2")


def test_beir_queries(tmp_path):
    records = ({"_id": "q1", "text": " what? ", "metadata": {}}, {"_id": "q2", "text": ""})
    path = write(tmp_path / "queries.jsonl", jsonl(*records))
    assert read_beir_queries(path) == {"q1": "what?", "q2": ""}


def test_beir_queries_duplicate(tmp_path):
    path = write(tmp_path / "queries.jsonl", jsonl({"_id": "q1", "text": "a"}, {"_id": "q1", "text": "b"}))
    bad_input(lambda: read_beir_queries(path), path, 2, "duplicate query _id 'q1'", "first on line 1")


# ---- column formats --------------------------------------------------------------------------------------------------

def test_beir_qrels_header_is_optional(tmp_path):
    body = "q1\td1\t1\nq1\td2\t0\nq2\td1\t2\n"
    expected = {"q1": {"d1": 1, "d2": 0}, "q2": {"d1": 2}}
    assert read_beir_qrels(write(tmp_path / "a.tsv", "query-id\tcorpus-id\tscore\n" + body)) == expected
    assert read_beir_qrels(write(tmp_path / "b.tsv", body)) == expected


def test_beir_qrels_wrong_columns(tmp_path):
    path = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1 d2 1\n")
    bad_input(lambda: read_beir_qrels(path), path, 3, "expected 3 tab-separated columns, found 1")


def test_beir_qrels_non_integer_relevance(tmp_path):
    path = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0.5\n")
    bad_input(lambda: read_beir_qrels(path), path, 3, "relevance '0.5' is not an integer")


def test_trec_qrels_plain_and_gz(tmp_path):
    text = "1 0 d1 1\n1 0 d2 0\n\n2\tQ0\td1\t-1\n1 0 d1 1\n"
    expected = {"1": {"d1": 1, "d2": 0}, "2": {"d1": -1}}
    assert read_trec_qrels(write(tmp_path / "q.txt", text)) == expected
    assert read_trec_qrels(write(tmp_path / "q.txt.gz", text)) == expected


@pytest.mark.parametrize("line, found", [("1 d3 1", 3), ("1 0 d3 1 extra", 5)])
def test_trec_qrels_wrong_columns(tmp_path, line, found):
    path = write(tmp_path / "q.txt.gz", f"1 0 d1 1\n{line}\n")
    bad_input(lambda: read_trec_qrels(path), path, 2, f"expected 4 whitespace-separated columns, found {found}")


def test_trec_qrels_non_integer_relevance(tmp_path):
    path = write(tmp_path / "q.txt", "1 0 d1 1\n1 0 d2 yes\n")
    bad_input(lambda: read_trec_qrels(path), path, 2, "relevance 'yes' is not an integer")


def test_qrels_conflicting_duplicate(tmp_path):
    path = write(tmp_path / "q.txt", "1 0 d1 1\n1 0 d2 1\n1 0 d1 2\n")
    bad_input(lambda: read_trec_qrels(path), path, 3, "'d1'", "on line 1")


def test_topics_tsv_plain_and_gz(tmp_path):
    text = "1\tfirst query \n\n2\tsecond\n"
    assert read_topics_tsv(write(tmp_path / "t.tsv", text)) == {"1": "first query", "2": "second"}
    assert read_topics_tsv(write(tmp_path / "t.tsv.gz", text)) == {"1": "first query", "2": "second"}


@pytest.mark.parametrize("line, found", [("2 no tab", 1), ("2\ttab\tinside", 3)])
def test_topics_tsv_wrong_columns(tmp_path, line, found):
    path = write(tmp_path / "t.tsv", f"1\tok\n{line}\n")
    bad_input(lambda: read_topics_tsv(path), path, 2, f"expected 2 tab-separated columns, found {found}")


def test_topics_tsv_duplicate(tmp_path):
    path = write(tmp_path / "t.tsv", "1\ta\n2\tb\n1\tc\n")
    bad_input(lambda: read_topics_tsv(path), path, 3, "duplicate query id '1'", "first on line 1")


def test_missing_file_is_input_error(tmp_path):
    bad_input(lambda: read_topics_tsv(tmp_path / "nope.tsv"), tmp_path / "nope.tsv", None, "file not found")


# ---- classic formats -------------------------------------------------------------------------------------------------

TREC_DOCS = """<DOC>
<DOCNO> 10 </DOCNO>
first line  of
<TEXT>second</TEXT> line
</DOC>

<DOC>
<DOCNO>11</DOCNO>
</DOC>
"""


def test_trec_docs_text_and_empty_doc(tmp_path):
    path = write(tmp_path / "docs.trec", TREC_DOCS)
    assert list(read_trec_docs(path)) == [Doc("10", "first line of second line"), Doc("11", "")]


@pytest.mark.parametrize("text, line, words", [
    ("<DOC>\n<DOCNO>1</DOCNO>\nx\n</DOC>\nstray\n", 5, ("expected <DOC>",)),
    ("<DOC>\nno number\n</DOC>\n", 1, ("without a <DOCNO>",)),
    ("<DOC>\n<DOCNO>1</DOCNO>\n<DOC>\n</DOC>\n", 3, ("opened on line 1 is not closed",)),
    ("<DOC>\n<DOCNO>1</DOCNO>\nx\n", 1, ("not closed before the end",)),
    ("<DOC>\n<DOCNO>1</DOCNO>\n</DOC>\n<DOC>\n<DOCNO>1</DOCNO>\n</DOC>\n", 4, ("duplicate DOCNO '1'", "line 1")),
])
def test_trec_docs_bad_input(tmp_path, text, line, words):
    path = write(tmp_path / "docs.trec", text)
    bad_input(lambda: list(read_trec_docs(path)), path, line, *words)


def test_trec_topics_both_styles(tmp_path):
    path = write(tmp_path / "topics.trec", "<top>\n<num>1</num><title>\nFIRST  QUERY\n</title>\n</top>\n"
                                           "<top>\n<num> Number: 301\n<title> Topic: Foreign   Minorities\n\n"
                                           "<desc> Description:\nignored\n</top>\n")
    assert read_trec_topics(path) == {"1": "FIRST QUERY", "301": "Foreign Minorities"}


@pytest.mark.parametrize("text, line, words", [
    ("<top><num>1</num><title>a</title></top>\n<top><num>2</num>\n</top>\n", 2, ("without a <title>",)),
    ("<top><num>1</num><title>a</title></top>\n\n<top><num>2</num><title>b</title>\n", 3, ("outside <top>",)),
    ("<top><num>1</num><title>a</title></top>\n<top><num>1</num><title>b</title></top>\n", 2, ("duplicate topic",)),
])
def test_trec_topics_bad_input(tmp_path, text, line, words):
    path = write(tmp_path / "topics.trec", text)
    bad_input(lambda: read_trec_topics(path), path, line, *words)


SMART_DOCS = """.I 1
.T
A  Title
.B
CACM December, 1958
.W
An abstract
on two lines.
.X
1\t5\t1
.I 2
.T
Only a title
.A
Someone, A.
"""


def test_smart_docs(tmp_path):
    path = write(tmp_path / "docs.all", SMART_DOCS)
    assert list(read_smart_docs(path)) == [Doc("1", "A Title An abstract on two lines."), Doc("2", "Only a title")]


def test_smart_queries_skip_bare_terminator(tmp_path):
    path = write(tmp_path / "query.text", ".I 1\n.W\n first query\n.N\n 1. someone\n\n.I 02\n.W\nsecond\n.I 0\n")
    assert read_smart_queries(path) == {"1": "first query", "2": "second"}


@pytest.mark.parametrize("text, line, words", [
    ("before\n.I 1\n.W\nq\n", 1, ("text outside a field",)),
    (".I 1\nno marker\n", 2, ("text outside a field",)),
    (".I one\n.W\nq\n", 1, ("record id 'one' is not a number",)),
    (".I 1\n.W\nq\n.I 01\n.W\nr\n", 4, ("duplicate record id '1'", "first on line 1")),
    (".I 1\n.W\nq\n.I 2\n.N\n 2. author\n", 4, ("query 2 has no .W text",)),
])
def test_smart_queries_bad_input(tmp_path, text, line, words):
    path = write(tmp_path / "query.text", text)
    bad_input(lambda: read_smart_queries(path), path, line, *words)


def test_smart_qrels_normalise_ids(tmp_path):
    path = write(tmp_path / "qrels.text", "01 1410  0 0\n01 0007 0 0\n10 3 0 0\n")
    assert read_smart_qrels(path) == {"1": {"1410": 1, "7": 1}, "10": {"3": 1}}
    bad = write(tmp_path / "bad.text", "01 1410 0 0\nx1 3 0 0\n")
    bad_input(lambda: read_smart_qrels(bad), bad, 2, "query id 'x1' is not a number")


# ---- local BEIR directories ------------------------------------------------------------------------------------------

def beir_dir(root: Path, gz: bool = False, qrels: str = "query-id\tcorpus-id\tscore\nq1\td2\t1\nq3\td1\t0\n") -> Path:
    ext = ".gz" if gz else ""
    write(root / f"corpus.jsonl{ext}", jsonl({"_id": "d1", "title": "T", "text": "one"}, {"_id": "d2", "text": "two"}))
    write(root / f"queries.jsonl{ext}", jsonl(*({"_id": f"q{i}", "text": f"query {i}"} for i in (1, 2, 3))))
    write(root / "qrels" / f"test.tsv{ext}", qrels)
    write(root / "qrels" / "dev.tsv", "query-id\tcorpus-id\tscore\nq2\td1\t1\n")
    return root


@pytest.mark.parametrize("gz", [False, True])
def test_load_beir_local_restricts_queries_to_judged(tmp_path, gz):
    ds = load_beir_local(beir_dir(tmp_path / "toy", gz=gz))
    assert (ds.name, ds.num_docs) == ("toy", 2)
    assert ds.queries == {"q1": "query 1", "q3": "query 3"}
    assert ds.qrels == {"q1": {"d2": 1}, "q3": {"d1": 0}}
    assert list(ds.docs()) == [Doc("d1", "T one"), Doc("d2", "two")]
    assert list(ds.docs()) == list(ds.docs()), "docs() must be re-iterable"
    dev = load_beir_local(tmp_path / "toy", split="dev")
    assert (dev.name, dev.queries) == ("toy/dev", {"q2": "query 2"})


def test_load_beir_local_bad_split_and_layout(tmp_path):
    root = beir_dir(tmp_path / "toy")
    with pytest.raises(ValueError, match="choose from dev, test"):
        load_beir_local(root, split="train")
    (root / "queries.jsonl").unlink()
    bad_input(lambda: load_beir_local(root), root, None, "queries.jsonl or queries.jsonl.gz not found")


def test_load_beir_local_qrels_for_unknown_query(tmp_path):
    root = beir_dir(tmp_path / "toy", qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\n")
    bad_input(lambda: load_beir_local(root), root / "qrels" / "test.tsv", 3, "query 'q9' is not in")


def test_load_dataset_directory_and_unknown_name(tmp_path):
    assert load_dataset(str(beir_dir(tmp_path / "toy"))).queries == {"q1": "query 1", "q3": "query 3"}
    with pytest.raises(ValueError, match="unknown dataset 'no-such-set'.*scifact, vaswani, cacm.*trec-covid"):
        load_dataset("no-such-set")
    with pytest.raises(ValueError, match="only a test split"):
        load_dataset("cacm", split="train")


# ---- the offline collections -----------------------------------------------------------------------------------------

def pairs(qrels) -> int:
    return sum(len(judged) for judged in qrels.values())


def test_scifact_offline_counts_and_speed():
    start = time.perf_counter()
    ds = load_dataset("scifact")
    docs = list(ds.docs())
    seconds = time.perf_counter() - start
    assert seconds < 2.0, f"reading SciFact took {seconds:.2f} s"
    assert (len(docs), ds.num_docs, len(ds.queries), len(ds.qrels), pairs(ds.qrels)) == (5183, 5183, 300, 300, 339)
    assert ds.name == "scifact" and "beir/scifact" in ds.source
    assert len({d.doc_id for d in docs}) == 5183
    assert all(d.text for d in docs)
    train = load_dataset("scifact", split="train")
    assert (train.name, len(train.queries), pairs(train.qrels)) == ("scifact/train", 809, 919)


def test_scifact_doc_text_is_title_space_text(scifact_dir):
    with open(scifact_dir / "corpus.jsonl", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    doc = next(read_beir_corpus(scifact_dir / "corpus.jsonl"))
    assert doc == Doc(first["_id"], f"{first['title']} {first['text']}")


def test_scifact_matches_anserini_topics_and_qrels(shared):
    ds = load_dataset("scifact")
    folder = shared / "data" / "beir-topics-qrels"
    assert ds.queries == read_topics_tsv(folder / "topics.beir-v1.0.0-scifact.test.tsv.gz")
    assert ds.qrels == read_trec_qrels(folder / "qrels.beir-v1.0.0-scifact.test.txt.gz")


def test_vaswani(shared):
    ds = read_vaswani(shared / "data" / "classic" / "vaswani")
    docs = list(ds.docs())
    assert (len(docs), ds.num_docs, len(ds.queries), len(ds.qrels), pairs(ds.qrels)) == (11429, 11429, 93, 93, 2083)
    assert docs[0] == Doc("1", "compact memories have flexible capacities a digital data storage system with capacity "
                               "up to bits and random and or sequential access is described")
    assert ds.queries["1"] == "MEASUREMENT OF DIELECTRIC CONSTANT OF LIQUIDS BY THE USE OF MICROWAVE TECHNIQUES"
    ids = {d.doc_id for d in docs}
    assert all(doc_id in ids for judged in ds.qrels.values() for doc_id in judged)
    assert load_dataset("vaswani").queries == ds.queries


def test_cacm(shared):
    ds = read_cacm(shared / "data" / "classic" / "cacm")
    docs = {d.doc_id: d.text for d in ds.docs()}
    assert (len(docs), ds.num_docs, len(ds.queries), len(ds.qrels), pairs(ds.qrels)) == (3204, 3204, 64, 52, 796)
    assert set(ds.queries) == {str(i) for i in range(1, 65)}
    assert set(ds.qrels) <= set(ds.queries)
    assert {"34", "35", "41", "46", "47", "50", "51", "52", "53", "54", "55", "56"} == set(ds.queries) - set(ds.qrels)
    assert all(doc_id in docs for judged in ds.qrels.values() for doc_id in judged)
    assert docs["1"] == "Preliminary Report-International Algebraic Language"  # no abstract
    assert docs["1410"].startswith("Interarrival Statistics for Time Sharing Systems The optimization of time-shared")
    assert "CACM" not in docs["1410"] and "SDC" in docs["1410"]  # .B (source) dropped, .W kept
    assert ds.queries["1"].startswith("What articles exist which deal with TSS (Time Sharing System)")
    assert load_dataset("cacm").qrels == ds.qrels


# ---- BEIR registry and the online path (ir_datasets mocked) ----------------------------------------------------------

def test_beir_datasets_are_the_13_of_table_1(shared):
    import ir_datasets

    assert len(BEIR_DATASETS) == 13 and not any("cqadupstack" in n for n in BEIR_DATASETS)
    assert BEIR_DATASETS["nq"] == "beir/nq" and BEIR_DATASETS["webis-touche2020"] == "beir/webis-touche2020/v2"
    expected_queries = {"trec-covid": 50, "nfcorpus": 323, "nq": 3452, "hotpotqa": 7405, "fiqa": 648, "arguana": 1406,
                        "webis-touche2020": 49, "dbpedia-entity": 400, "scidocs": 1000, "fever": 6666,
                        "climate-fever": 1535, "scifact": 300, "quora": 10000}
    assert set(expected_queries) == set(BEIR_DATASETS)
    folder = shared / "data" / "beir-topics-qrels"
    for name, dataset_id in BEIR_DATASETS.items():
        assert dataset_id in ir_datasets.registry
        assert ir_datasets.load(dataset_id).has_qrels(), dataset_id
        topics = read_topics_tsv(folder / f"topics.beir-v1.0.0-{name}.test.tsv.gz")
        qrels = read_trec_qrels(folder / f"qrels.beir-v1.0.0-{name}.test.txt.gz")
        assert len(topics) == expected_queries[name] and set(qrels) == set(topics), name


class FakeIrDataset:
    """Stands in for an ir_datasets dataset; records are the package's own named tuples."""

    def __init__(self):
        from ir_datasets.datasets.beir import BeirTitleDoc
        from ir_datasets.formats import GenericQuery, TrecQrel, TrecQuery

        self.docs = [BeirTitleDoc("d1", "body", "Title"), BeirTitleDoc("d2", "", ""), BeirTitleDoc("d3", "x", "")]
        self.queries = [GenericQuery("q1", "first"), GenericQuery("q2", "unjudged"), TrecQuery("q3", "title", "d", "n")]
        self.qrels = [TrecQrel("q1", "d1", 2, "0"), TrecQrel("q3", "d3", 0, "0")]
        self.docs_iterations = 0

    def has_docs(self): return True
    def has_queries(self): return True
    def has_qrels(self): return True
    def docs_count(self): return len(self.docs)
    def queries_iter(self): return iter(self.queries)
    def qrels_iter(self): return iter(self.qrels)

    def docs_iter(self):
        self.docs_iterations += 1
        return iter(self.docs)


@pytest.fixture
def fake_ir_datasets(monkeypatch):
    import ir_datasets

    fake, calls = FakeIrDataset(), []

    def load(dataset_id):
        if dataset_id not in ir_datasets.registry:
            raise KeyError(dataset_id)
        calls.append(dataset_id)
        return fake

    monkeypatch.setattr(ir_datasets, "load", load)
    return fake, calls


def test_load_ir_datasets_mapping(fake_ir_datasets):
    fake, calls = fake_ir_datasets
    ds = load_ir_datasets("beir/scifact/test")
    assert calls == ["beir/scifact/test"]
    assert (ds.name, ds.source, ds.num_docs) == ("beir/scifact/test", "ir_datasets:beir/scifact/test", 3)
    assert ds.queries == {"q1": "first", "q3": "title"}  # judged only; TrecQuery via default_text()
    assert ds.qrels == {"q1": {"d1": 2}, "q3": {"d3": 0}}
    assert fake.docs_iterations == 0, "documents must stream lazily"
    assert list(ds.docs()) == [Doc("d1", "Title body"), Doc("d2", ""), Doc("d3", "x")]
    assert list(ds.docs()) == list(ds.docs()) and fake.docs_iterations == 3


def test_load_ir_datasets_unknown_id(fake_ir_datasets):
    with pytest.raises(ValueError, match="unknown ir_datasets id 'beir/nope'"):
        load_ir_datasets("beir/nope")


def test_load_dataset_beir_name_uses_anserini_topics_and_online_corpus(fake_ir_datasets, shared):
    fake, calls = fake_ir_datasets
    folder = shared / "data" / "beir-topics-qrels"
    for name in ("nq", "beir/nq"):
        ds = load_dataset(name)
        assert ds.name == "nq" and calls[-1] == "beir/nq"
        assert ds.queries == read_topics_tsv(folder / "topics.beir-v1.0.0-nq.test.tsv.gz")
        assert len(ds.queries) == 3452 and pairs(ds.qrels) == 4201
        assert ds.num_docs == 3 and list(ds.docs())[0] == Doc("d1", "Title body")


def test_load_dataset_routes_other_ids_and_splits_to_ir_datasets(fake_ir_datasets):
    fake, calls = fake_ir_datasets
    assert load_dataset("msmarco-passage/dev/small").name == "msmarco-passage/dev/small"
    assert load_dataset("fiqa", split="dev").name == "beir/fiqa/dev"
    assert calls == ["msmarco-passage/dev/small", "beir/fiqa/dev"]
    with pytest.raises(ValueError, match="choose from dev, test, train"):
        load_dataset("fiqa", split="validation")


def test_dataset_is_plain_data():
    ds = Dataset("toy", {"q": "t"}, {"q": {"d": 1}}, lambda: iter([Doc("d", "x")]))
    assert ds.num_docs is None and ds.source == "" and list(ds.docs()) == [Doc("d", "x")]
    assert data.LOCAL_DATASETS == ("scifact", "vaswani", "cacm")
