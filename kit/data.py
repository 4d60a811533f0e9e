"""Test collections as plain data: queries, relevance judgments and a re-iterable document stream.

The paper ("Exploring l0 Sparsification for Inference-free Sparse Retrievers", SIGIR 2025, Section 5.1) evaluates
zero-shot on 13 BEIR datasets (Table 1) with nDCG@10. This module reads every collection format the kit needs into one
:class:`Dataset` shape:

- BEIR layout (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``), e.g. the offline SciFact copy;
- Anserini's official BEIR topics (``qid<TAB>text``) and TREC qrels (``qid iter docid rel``);
- the classic Vaswani (TREC SGML) and CACM (SMART) collections used for quick offline checks;
- any ``ir_datasets`` id (online; the corpus is streamed through ``docs_iter()``);
- the 13 NanoBEIR subsets (online, parquet files checked against ``shared_dir()/data/nanobeir_manifest.tsv``).

A document's text follows Pyserini's BEIR "flat" convention: ``(title + " " + text).strip()``. Every reader validates as
it goes and raises :class:`~kit.errors.InputError` naming the file and line of the first bad record.
"""

from __future__ import annotations

import functools
import gzip
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

from kit.errors import InputError
from kit.fingerprint import file_sha256, text_file_sha256
from kit.io import open_text, read_jsonl
from kit.paths import shared_dir

Qrels = dict[str, dict[str, int]]

#: The 13 BEIR datasets of the paper's Table 1 (in its row order) -> the ir_datasets id of their test split.
BEIR_DATASETS: dict[str, str] = {
    "trec-covid": "beir/trec-covid",
    "nfcorpus": "beir/nfcorpus/test",
    "nq": "beir/nq",
    "hotpotqa": "beir/hotpotqa/test",
    "fiqa": "beir/fiqa/test",
    "arguana": "beir/arguana",
    "webis-touche2020": "beir/webis-touche2020/v2",
    "dbpedia-entity": "beir/dbpedia-entity/test",
    "scidocs": "beir/scidocs",
    "fever": "beir/fever/test",
    "climate-fever": "beir/climate-fever",
    "scifact": "beir/scifact/test",
    "quora": "beir/quora/test",
}

#: Collections read from ``shared_dir()/data`` without a network.
LOCAL_DATASETS = ("scifact", "vaswani", "cacm")

_BEIR_QRELS_HEADER = ["query-id", "corpus-id", "score"]


class Doc(NamedTuple):
    """One document: its id and the text an encoder or indexer sees."""

    doc_id: str
    text: str


@dataclass
class Dataset:
    """A test collection: queries and qrels in memory, documents streamed on demand.

    ``docs()`` returns a fresh iterator on every call, so a corpus can be read once for IDF and again for encoding.
    ``corpus_key``, when a loader can give it cheaply, identifies the documents' content (a digest of the corpus
    files, or an ir_datasets id whose downloads ir_datasets verifies); otherwise :meth:`corpus_fingerprint` hashes
    the document stream itself.
    """

    name: str
    queries: dict[str, str]
    qrels: Qrels
    docs: Callable[[], Iterator[Doc]]
    num_docs: int | None = None
    source: str = ""
    corpus_key: str | None = None

    def corpus_fingerprint(self) -> str:
        """What the documents are (ids and texts): every cached artifact built from them is keyed by it."""
        if self.corpus_key is None:
            from kit.fingerprint import stream_sha256

            self.corpus_key = "stream:" + stream_sha256((d.doc_id, d.text) for d in self.docs())
        return self.corpus_key

    def queries_fingerprint(self) -> str:
        """Digest of the query ids and texts (the topics a run searches)."""
        from kit.fingerprint import digest

        return digest(sorted(self.queries.items()))

    def qrels_fingerprint(self) -> str:
        from kit.fingerprint import digest

        return digest(sorted((q, sorted(d.items())) for q, d in self.qrels.items()))


# ---- line-oriented formats -------------------------------------------------------------------------------------------

def _columns(path: str | Path, n: int, layout: str, tab: bool) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, fields)`` per non-blank line; a line without exactly ``n`` columns is an InputError."""
    kind = "tab-separated" if tab else "whitespace-separated"
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t") if tab else line.split()
            if len(fields) != n:
                raise InputError(path, f"expected {n} {kind} columns, found {len(fields)}", lineno,
                                 fix=f"each line must be '{layout}'")
            yield lineno, fields


def _collect_qrels(path: str | Path, rows: Iterable[tuple[int, str, str, str]]) -> tuple[Qrels, dict[str, int]]:
    """Build qrels from ``(line, qid, docid, relevance)`` rows; also return the first line of each query id.

    A repeated judgment with the same relevance is harmless and ignored; a conflicting one is an InputError.
    """
    qrels: Qrels = {}
    first_line: dict[str, int] = {}
    pair_line: dict[tuple[str, str], int] = {}
    for lineno, qid, docid, rel in rows:
        try:
            value = int(rel)
        except ValueError:
            raise InputError(path, f"relevance {rel!r} is not an integer", lineno,
                             fix="relevance grades must be integers such as 0, 1, 2") from None
        judged = qrels.setdefault(qid, {})
        first_line.setdefault(qid, lineno)
        if docid in judged and judged[docid] != value:
            raise InputError(path, f"query {qid!r} judges document {docid!r} as {value} here but as {judged[docid]} "
                                   f"on line {pair_line[qid, docid]}", lineno,
                             fix="keep one judgment per (query, document) pair")
        judged[docid] = value
        pair_line.setdefault((qid, docid), lineno)
    return qrels, first_line


def _beir_qrels(path: str | Path) -> tuple[Qrels, dict[str, int]]:
    def rows():
        for lineno, fields in _columns(path, 3, "query-id<TAB>corpus-id<TAB>score", tab=True):
            if lineno == 1 and [f.strip() for f in fields] == _BEIR_QRELS_HEADER:
                continue
            yield lineno, fields[0].strip(), fields[1].strip(), fields[2].strip()

    return _collect_qrels(path, rows())


def _trec_qrels(path: str | Path) -> tuple[Qrels, dict[str, int]]:
    rows = ((lineno, qid, docid, rel)
            for lineno, (qid, _iteration, docid, rel) in _columns(path, 4, "qid iter docid rel", tab=False))
    return _collect_qrels(path, rows)


def read_beir_qrels(path: str | Path) -> Qrels:
    """BEIR qrels: ``query-id<TAB>corpus-id<TAB>score`` with that header line (a file without it is read the same)."""
    return _beir_qrels(path)[0]


def read_trec_qrels(path: str | Path) -> Qrels:
    """TREC qrels ``qid iter docid rel`` (four whitespace-separated columns), plain or ``.gz``."""
    return _trec_qrels(path)[0]


def read_smart_qrels(path: str | Path) -> Qrels:
    """SMART qrels (CACM ``qrels.text``): ``qid docid 0 0``, every listed pair relevant (1).

    Numeric ids are normalised (``"01"`` -> ``"1"``) to match the ``.I`` ids of the SMART query and document files.
    """
    def rows():
        for lineno, (qid, docid, _a, _b) in _columns(path, 4, "qid docid 0 0", tab=False):
            qid, docid = _numeric_id(path, lineno, qid, "query id"), _numeric_id(path, lineno, docid, "document id")
            yield lineno, qid, docid, "1"

    return _collect_qrels(path, rows())[0]


def read_topics_tsv(path: str | Path) -> dict[str, str]:
    """Anserini topics ``qid<TAB>text``, plain or ``.gz``; duplicate query ids are an InputError."""
    queries: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, (qid, text) in _columns(path, 2, "qid<TAB>query text", tab=True):
        qid = qid.strip()
        _check_unique(path, lineno, qid, lines, "query id")
        queries[qid] = text.strip()
    return queries


def _check_unique(path: str | Path, lineno: int, key: str, lines: dict[str, int], what: str) -> None:
    if key in lines:
        raise InputError(path, f"duplicate {what} {key!r} (first on line {lines[key]})", lineno,
                         fix=f"each {what} must appear once")
    lines[key] = lineno


def _numeric_id(path: str | Path, lineno: int, value: str, what: str) -> str:
    if not value.isdigit():
        raise InputError(path, f"{what} {value!r} is not a number", lineno, fix="SMART ids are positive integers")
    return str(int(value))


# ---- BEIR JSONL ------------------------------------------------------------------------------------------------------

def _string(path: str | Path, lineno: int, rec: dict, field: str, *, optional: bool = False) -> str:
    """A record's string field; ``_id`` may also be an integer, an optional field may be missing or null."""
    value = rec.get(field)
    if value is None and optional:
        return ""
    if field == "_id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(path, f"field {field!r} must be a string, found {type(value).__name__}", lineno,
                         fix=f"write {field!r} as a JSON string")
    if field == "_id" and not value.strip():
        raise InputError(path, "empty '_id'", lineno, fix="every record needs a non-empty id")
    return value


def read_beir_corpus(path: str | Path) -> Iterator[Doc]:
    """Stream a BEIR ``corpus.jsonl(.gz)`` (``{"_id", "title", "text"}``, title optional) as ``title + " " + text``.

    Empty documents are kept (text ``""``). Ids are checked for uniqueness with a set of ids (the first line of a
    duplicate is found by re-reading the file only when one occurs).
    """
    seen: set[str] = set()
    for lineno, rec in read_jsonl(path, required=("_id", "text")):
        doc_id = _string(path, lineno, rec, "_id")
        text = _string(path, lineno, rec, "text")
        title = _string(path, lineno, rec, "title", optional=True)
        if doc_id in seen:
            first = next(n for n, r in read_jsonl(path) if _string(path, n, r, "_id") == doc_id)
            raise InputError(path, f"duplicate _id {doc_id!r} (first on line {first})", lineno,
                             fix="document ids must be unique")
        seen.add(doc_id)
        yield Doc(doc_id, f"{title} {text}".strip())


def read_beir_queries(path: str | Path) -> dict[str, str]:
    """BEIR ``queries.jsonl(.gz)``: ``{"_id", "text"}`` -> ``{qid: text}``; duplicate ids are an InputError."""
    queries: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, rec in read_jsonl(path, required=("_id", "text")):
        qid = _string(path, lineno, rec, "_id")
        _check_unique(path, lineno, qid, lines, "query _id")
        queries[qid] = _string(path, lineno, rec, "text").strip()
    return queries


def _existing(root: Path, *names: str) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise InputError(root, f"{' or '.join(names)} not found",
                     fix="a BEIR directory holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv")


def _count_records(path: Path) -> int:
    """Number of non-blank lines (one binary pass; no JSON parsing)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _judged(queries: dict[str, str], qrels: Qrels, first_line: dict[str, int], qrels_path: str | Path,
            queries_path: str | Path) -> dict[str, str]:
    """BEIR's convention: keep the queries that have judgments; a judged query missing from the topics is an error."""
    for qid, lineno in first_line.items():
        if qid not in queries:
            raise InputError(qrels_path, f"query {qid!r} is not in {queries_path}", lineno,
                             fix="the qrels and the queries must come from the same dataset")
    return {qid: text for qid, text in queries.items() if qid in qrels}


def load_beir_local(root: str | Path, split: str = "test") -> Dataset:
    """A directory in BEIR layout; queries are restricted to those judged in ``qrels/<split>.tsv`` (as BEIR does)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a directory", fix="pass a directory holding corpus.jsonl, queries.jsonl, qrels/")
    splits = sorted(p.name.split(".")[0] for p in (root / "qrels").glob("*.tsv*"))
    if split not in splits:
        raise ValueError(f"split {split!r} not found in {root / 'qrels'}; choose from {', '.join(splits) or '(none)'}")
    corpus = _existing(root, "corpus.jsonl", "corpus.jsonl.gz")
    queries_path = _existing(root, "queries.jsonl", "queries.jsonl.gz")
    qrels_path = _existing(root / "qrels", f"{split}.tsv", f"{split}.tsv.gz")
    qrels, first_line = _beir_qrels(qrels_path)
    queries = _judged(read_beir_queries(queries_path), qrels, first_line, qrels_path, queries_path)
    return Dataset(name=root.name if split == "test" else f"{root.name}/{split}", queries=queries, qrels=qrels,
                   docs=functools.partial(read_beir_corpus, corpus), num_docs=_count_records(corpus),
                   source=str(root.resolve()), corpus_key="file:" + text_file_sha256(corpus))


# ---- classic collections ---------------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]*>")
_DOCNO = re.compile(r"<DOCNO>\s*(.*?)\s*</DOCNO>", re.IGNORECASE | re.DOTALL)
_TOP = re.compile(r"<top>(.*?)</top>", re.IGNORECASE | re.DOTALL)
_NUM = re.compile(r"<num>\s*(?:Number:)?\s*([^<\s]+)", re.IGNORECASE)
_TITLE = re.compile(r"<title>\s*(?:Topic:)?(.*?)(?=<|\Z)", re.IGNORECASE | re.DOTALL)


def _squash(text: str) -> str:
    return " ".join(text.split())


def read_trec_docs(path: str | Path) -> Iterator[Doc]:
    """TREC SGML documents: ``<DOC>``/``</DOC>`` on their own lines, a ``<DOCNO>``, the rest is text (tags dropped)."""
    lines: dict[str, int] = {}
    start: int | None = None
    body: list[str] = []
    fix = "each document is <DOC> <DOCNO>id</DOCNO> text </DOC>, the DOC tags on their own lines"
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            tag = line.strip().upper()
            if start is None:
                if tag == "<DOC>":
                    start, body = lineno, []
                elif tag:
                    raise InputError(path, f"expected <DOC>, found {line.strip()[:40]!r}", lineno, fix=fix)
            elif tag == "</DOC>":
                raw = "".join(body)
                match = _DOCNO.search(raw)
                if not match or not match.group(1):
                    raise InputError(path, "document without a <DOCNO>", start, fix=fix)
                doc_id = match.group(1)
                _check_unique(path, start, doc_id, lines, "DOCNO")
                yield Doc(doc_id, _squash(_TAG.sub(" ", raw[:match.start()] + " " + raw[match.end():])))
                start = None
            elif tag == "<DOC>":
                raise InputError(path, f"<DOC> opened on line {start} is not closed", lineno, fix=fix)
            else:
                body.append(line)
    if start is not None:
        raise InputError(path, "<DOC> is not closed before the end of the file", start, fix=fix)


def read_trec_topics(path: str | Path) -> dict[str, str]:
    """TREC topics ``<top> <num>id</num> <title>text</title> </top>`` (closing tags optional inside ``<top>``)."""
    with open_text(path) as fh:
        content = fh.read()
    fix = "each topic is <top> <num>id</num> <title>query</title> </top>"
    queries: dict[str, str] = {}
    lines: dict[str, int] = {}
    end = 0

    def check_gap(stop: int) -> None:
        gap = content[end:stop]
        if gap.strip():
            at = end + len(gap) - len(gap.lstrip())
            raise InputError(path, "text outside <top> ... </top>", content.count("\n", 0, at) + 1, fix=fix)

    for match in _TOP.finditer(content):
        lineno = content.count("\n", 0, match.start()) + 1
        check_gap(match.start())
        end = match.end()
        num, title = _NUM.search(match.group(1)), _TITLE.search(match.group(1))
        if not num or not title:
            raise InputError(path, f"topic without a {'<num>' if not num else '<title>'}", lineno, fix=fix)
        _check_unique(path, lineno, num.group(1), lines, "topic number")
        queries[num.group(1)] = _squash(title.group(1))
    check_gap(len(content))
    return queries


_SMART_MARKER = re.compile(r"\.([A-Z])\s*")
_SMART_ID = re.compile(r"\.I(?:\s+(\S+))?\s*")


def _smart_records(path: str | Path) -> Iterator[tuple[int, str, dict[str, str]]]:
    """SMART records: ``.I <id>`` then field markers (``.T``, ``.W``, ...) alone on a line, each followed by its text.

    Yields ``(line of .I, id, {field letter: whitespace-normalised text})``; ids are normalised numbers.
    """
    lines: dict[str, int] = {}
    fix = "SMART records start with '.I <number>', each field with a marker such as '.T' or '.W' on its own line"
    rec_id, start, fields, field = None, 0, {}, None
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            id_match = _SMART_ID.fullmatch(line)
            if id_match:
                if rec_id is not None:
                    yield start, rec_id, {k: _squash(" ".join(v)) for k, v in fields.items()}
                if not id_match.group(1):
                    raise InputError(path, ".I without an id", lineno, fix=fix)
                rec_id = _numeric_id(path, lineno, id_match.group(1), "record id")
                start, fields, field = lineno, {}, None
                _check_unique(path, lineno, rec_id, lines, "record id")
            elif (marker := _SMART_MARKER.fullmatch(line)) and rec_id is not None:
                field = marker.group(1)
                fields.setdefault(field, [])
            elif line.strip():
                if field is None:
                    raise InputError(path, f"text outside a field: {line.strip()[:40]!r}", lineno, fix=fix)
                fields[field].append(line)
    if rec_id is not None:
        yield start, rec_id, {k: _squash(" ".join(v)) for k, v in fields.items()}


def read_smart_docs(path: str | Path) -> Iterator[Doc]:
    """SMART documents (CACM ``cacm.all``): text is title (``.T``) + " " + abstract (``.W``); other fields ignored."""
    for _line, doc_id, fields in _smart_records(path):
        yield Doc(doc_id, f"{fields.get('T', '')} {fields.get('W', '')}".strip())


def read_smart_queries(path: str | Path) -> dict[str, str]:
    """SMART queries (CACM ``query.text``): ``.I`` id and ``.W`` text.

    A record with no fields at all (the distribution ends with a bare ``.I 0``) is skipped; a query with fields but
    no ``.W`` text is an InputError.
    """
    queries: dict[str, str] = {}
    for lineno, qid, fields in _smart_records(path):
        if not fields:
            continue
        if not fields.get("W"):
            raise InputError(path, f"query {qid} has no .W text", lineno, fix="give each query a '.W' field")
        queries[qid] = fields["W"]
    return queries


def _classic(name: str, root: Path, docs: tuple[Doc, ...], queries: dict[str, str], qrels: Qrels,
             qrels_path: Path, queries_path: Path, docs_path: Path) -> Dataset:
    missing = sorted(set(qrels) - set(queries), key=lambda q: (len(q), q))
    if missing:
        raise InputError(qrels_path, f"{len(missing)} judged queries are not in {queries_path} (e.g. {missing[0]!r})",
                         fix="the qrels and the queries must come from the same collection")
    return Dataset(name=name, queries=queries, qrels=qrels, docs=lambda: iter(docs), num_docs=len(docs),
                   source=str(root.resolve()), corpus_key="file:" + file_sha256(docs_path))


def read_vaswani(root: str | Path) -> Dataset:
    """The Vaswani (NPL) collection as Terrier ships it: ``corpus/doc-text.trec``, ``query-text.trec``, ``qrels``."""
    root = Path(root)
    qrels_path, queries_path, docs_path = root / "qrels", root / "query-text.trec", root / "corpus" / "doc-text.trec"
    return _classic("vaswani", root, tuple(read_trec_docs(docs_path)),
                    read_trec_topics(queries_path), read_trec_qrels(qrels_path), qrels_path, queries_path, docs_path)


def read_cacm(root: str | Path) -> Dataset:
    """The CACM collection (SMART distribution): ``cacm.all``, ``query.text``, ``qrels.text``; all 64 queries kept."""
    root = Path(root)
    qrels_path, queries_path, docs_path = root / "qrels.text", root / "query.text", root / "cacm.all"
    return _classic("cacm", root, tuple(read_smart_docs(docs_path)),
                    read_smart_queries(queries_path), read_smart_qrels(qrels_path), qrels_path, queries_path, docs_path)


# ---- NanoBEIR (online) -----------------------------------------------------------------------------------------------

#: The 13 NanoBEIR subsets (zeta-alpha-ai; 50 queries and up to ~5k documents each, BEIR ids as in Table 1 where they
#: exist; NanoBEIR has MS MARCO instead of TREC-COVID) -> their Hugging Face dataset ids.
NANOBEIR_DATASETS: dict[str, str] = {
    "arguana": "zeta-alpha-ai/NanoArguAna",
    "climate-fever": "zeta-alpha-ai/NanoClimateFEVER",
    "dbpedia-entity": "zeta-alpha-ai/NanoDBPedia",
    "fever": "zeta-alpha-ai/NanoFEVER",
    "fiqa": "zeta-alpha-ai/NanoFiQA2018",
    "hotpotqa": "zeta-alpha-ai/NanoHotpotQA",
    "msmarco": "zeta-alpha-ai/NanoMSMARCO",
    "nfcorpus": "zeta-alpha-ai/NanoNFCorpus",
    "nq": "zeta-alpha-ai/NanoNQ",
    "quora": "zeta-alpha-ai/NanoQuoraRetrieval",
    "scidocs": "zeta-alpha-ai/NanoSCIDOCS",
    "scifact": "zeta-alpha-ai/NanoSciFact",
    "webis-touche2020": "zeta-alpha-ai/NanoTouche2020",
}
NANOBEIR_PARTS = ("docs", "queries", "qrels")
_MANIFEST_HEADER = ["dataset", "part", "url", "md5", "bytes"]
_HUB_URL = re.compile(r"https://huggingface\.co/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)")


class ManifestEntry(NamedTuple):
    """One file of a NanoBEIR subset: where to get it and what it must hash to."""

    url: str
    md5: str
    bytes: int


def nanobeir_manifest_path() -> Path:
    return shared_dir() / "data" / "nanobeir_manifest.tsv"


def read_nanobeir_manifest(path: str | Path | None = None) -> dict[tuple[str, str], ManifestEntry]:
    """``{(dataset, part): ManifestEntry}`` from ``dataset<TAB>part<TAB>url<TAB>md5<TAB>bytes`` (with that header)."""
    path = Path(path) if path is not None else nanobeir_manifest_path()
    layout = "<TAB>".join(_MANIFEST_HEADER)
    entries: dict[tuple[str, str], ManifestEntry] = {}
    for lineno, fields in _columns(path, 5, layout, tab=True):
        if lineno == 1 and fields == _MANIFEST_HEADER:
            continue
        name, part, url, md5, size = fields
        if name not in NANOBEIR_DATASETS or part not in NANOBEIR_PARTS or not _HUB_URL.fullmatch(url) \
                or not re.fullmatch(r"[0-9a-f]{32}", md5) or not size.isdigit():
            raise InputError(path, f"bad entry {name!r} {part!r}", lineno,
                             fix=f"each line is '{layout}': a NanoBEIR subset, docs|queries|qrels, a huggingface.co "
                                 "resolve URL, a 32-hex md5 and a byte count")
        entries[name, part] = ManifestEntry(url, md5, int(size))
    return entries


def _hub_download(url: str) -> Path:
    """Download (or reuse from the Hugging Face cache) one ``huggingface.co/datasets/.../resolve/...`` file; online."""
    from huggingface_hub import hf_hub_download

    repo_id, revision, filename = _HUB_URL.fullmatch(url).groups()
    return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision, repo_type="dataset"))


def _md5(path: Path) -> str:
    import hashlib

    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_nanobeir(name: str, manifest: str | Path | None = None,
                   download: Callable[[str], Path] | None = None) -> dict[str, Path]:
    """The three parquet files of a NanoBEIR subset, checked against the manifest's md5 sums.

    ``download(url) -> local path`` defaults to the Hugging Face hub (online; files are cached by huggingface_hub).
    """
    download = download or _hub_download
    if name not in NANOBEIR_DATASETS:
        raise ValueError(f"unknown NanoBEIR subset {name!r}; choose from {', '.join(NANOBEIR_DATASETS)}")
    manifest_path = Path(manifest) if manifest is not None else nanobeir_manifest_path()
    entries = read_nanobeir_manifest(manifest_path)
    files = {}
    for part in NANOBEIR_PARTS:
        if (name, part) not in entries:
            raise InputError(manifest_path, f"no {part} entry for {name}", fix="restore the manifest from ../shared")
        entry = entries[name, part]
        path = Path(download(entry.url))
        size, md5 = path.stat().st_size, _md5(path)
        if (size, md5) != (entry.bytes, entry.md5):
            raise InputError(path, f"{NANOBEIR_DATASETS[name]} {part}: md5 {md5} ({size} bytes) does not match "
                                   f"{entry.md5} ({entry.bytes} bytes) in {manifest_path}",
                             fix="delete the file (a partial download or a changed upload) and run again")
        files[part] = path
    return files


def _parquet_columns(path: Path, required: tuple[str, ...]):
    import pandas as pd

    frame = pd.read_parquet(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(path, f"parquet columns {list(frame.columns)} lack {missing}",
                         fix="NanoBEIR files have _id/text (corpus, queries) and query-id/corpus-id (qrels)")
    return frame


def load_nanobeir(name: str, manifest: str | Path | None = None,
                  download: Callable[[str], Path] | None = None) -> Dataset:
    """A NanoBEIR subset (online on first use, then from the Hugging Face cache); every listed pair is relevant (1)."""
    files = fetch_nanobeir(name, manifest, download)
    corpus = _parquet_columns(files["docs"], ("_id", "text"))
    titles = corpus["title"] if "title" in corpus.columns else [""] * len(corpus)
    docs = tuple(Doc(str(i), f"{t or ''} {x or ''}".strip()) for i, t, x in zip(corpus["_id"], titles, corpus["text"]))
    queries = _parquet_columns(files["queries"], ("_id", "text"))
    qrels_frame = _parquet_columns(files["qrels"], ("query-id", "corpus-id"))
    scores = qrels_frame["score"] if "score" in qrels_frame.columns else [1] * len(qrels_frame)
    pairs = zip(qrels_frame["query-id"], qrels_frame["corpus-id"], scores)
    qrels, first_line = _collect_qrels(files["qrels"], ((i + 1, str(q), str(d), str(r)) for i, (q, d, r) in enumerate(pairs)))
    topics = {str(q): str(t).strip() for q, t in zip(queries["_id"], queries["text"])}
    return Dataset(name=f"nanobeir/{name}", queries=_judged(topics, qrels, first_line, files["qrels"], files["queries"]),
                   qrels=qrels, docs=lambda: iter(docs), num_docs=len(docs), source=NANOBEIR_DATASETS[name],
                   corpus_key="file:" + file_sha256(files["docs"]))


# ---- ir_datasets (online) --------------------------------------------------------------------------------------------

def _ir_dataset(dataset_id: str):
    import ir_datasets

    try:
        return ir_datasets.load(dataset_id)
    except KeyError:
        raise ValueError(f"unknown ir_datasets id {dataset_id!r}; see https://ir-datasets.com "
                         "(e.g. beir/scifact/test, msmarco-passage/dev/small)") from None


def _record_text(rec) -> str:
    """``(title + " " + text).strip()`` for records with a ``text`` field, else ir_datasets' ``default_text()``."""
    if hasattr(rec, "text"):
        return f"{getattr(rec, 'title', '') or ''} {rec.text or ''}".strip()
    return rec.default_text().strip()


def _ir_docs(ds, dataset_id: str) -> tuple[Callable[[], Iterator[Doc]], int | None]:
    if not ds.has_docs():
        raise ValueError(f"ir_datasets id {dataset_id!r} has no documents")

    def docs() -> Iterator[Doc]:
        for doc in ds.docs_iter():
            yield Doc(str(doc.doc_id), _record_text(doc))

    try:
        count = ds.docs_count()
    except Exception:  # noqa: BLE001 - the count is optional metadata; some datasets need a download to know it
        count = None
    return docs, count


def _ir_corpus_key(dataset_id: str) -> str:
    """An ir_datasets corpus is identified by its id and the ir_datasets release (which pins and md5-checks its
    downloads): hashing a multi-GB stream on every run would cost minutes."""
    import ir_datasets

    return f"ir_datasets:{dataset_id}@{ir_datasets.__version__}"


def load_ir_datasets(dataset_id: str) -> Dataset:
    """Any ``ir_datasets`` id with documents, queries and qrels (downloads on first use; needs a network).

    Queries are restricted to those with judgments (BEIR's convention); the corpus streams through ``docs_iter()``.
    """
    ds = _ir_dataset(dataset_id)
    for what in ("queries", "qrels"):
        if not getattr(ds, f"has_{what}")():
            raise ValueError(f"ir_datasets id {dataset_id!r} has no {what}; pick a split such as {dataset_id}/test")
    qrels: Qrels = {}
    for qrel in ds.qrels_iter():
        qrels.setdefault(str(qrel.query_id), {})[str(qrel.doc_id)] = int(qrel.relevance)
    queries = {str(q.query_id): _record_text(q) for q in ds.queries_iter()}
    docs, count = _ir_docs(ds, dataset_id)
    return Dataset(name=dataset_id, queries={q: t for q, t in queries.items() if q in qrels}, qrels=qrels,
                   docs=docs, num_docs=count, source=f"ir_datasets:{dataset_id}", corpus_key=_ir_corpus_key(dataset_id))


def _beir_online(name: str) -> Dataset:
    """A Table 1 BEIR dataset: Anserini's official topics/qrels from ``shared_dir()`` when present, corpus online."""
    dataset_id = BEIR_DATASETS[name]
    folder = shared_dir() / "data" / "beir-topics-qrels"
    topics = folder / f"topics.beir-v1.0.0-{name}.test.tsv.gz"
    qrels_path = folder / f"qrels.beir-v1.0.0-{name}.test.txt.gz"
    if not (topics.is_file() and qrels_path.is_file()):
        dataset = load_ir_datasets(dataset_id)
        dataset.name = name
        return dataset
    qrels, first_line = _trec_qrels(qrels_path)
    queries = _judged(read_topics_tsv(topics), qrels, first_line, qrels_path, topics)
    docs, count = _ir_docs(_ir_dataset(dataset_id), dataset_id)
    return Dataset(name=name, queries=queries, qrels=qrels, docs=docs, num_docs=count,
                   source=f"topics {topics}; qrels {qrels_path}; corpus ir_datasets:{dataset_id}",
                   corpus_key=_ir_corpus_key(dataset_id))


def load_dataset(name: str, split: str = "test") -> Dataset:
    """Resolve a dataset name the way the kit's recipes and CLIs spell it.

    - ``scifact``: the offline BEIR copy in ``shared_dir()/data/beir/scifact`` (``split`` picks ``qrels/<split>.tsv``);
    - ``vaswani``, ``cacm``: the offline classic collections (test split only);
    - the other Table 1 names (``nq``, ``fiqa``, ...; see :data:`BEIR_DATASETS`) and their ir_datasets ids: corpus from
      ir_datasets (online), topics and qrels from Anserini's files in ``shared_dir()/data/beir-topics-qrels``;
      another ``split`` loads ``beir/<name>/<split>`` from ir_datasets;
    - ``nanobeir/<name>``: a NanoBEIR subset (:data:`NANOBEIR_DATASETS`), online, md5-checked (:func:`load_nanobeir`);
    - a directory in BEIR layout;
    - any other ir_datasets id (e.g. ``msmarco-passage/dev/small``).
    """
    data = shared_dir() / "data"
    if name == "scifact":
        dataset = load_beir_local(data / "beir" / "scifact", split)
        dataset.name = name if split == "test" else f"{name}/{split}"
        return dataset
    if name in ("vaswani", "cacm"):
        if split != "test":
            raise ValueError(f"{name} has only a test split, not {split!r}")
        return (read_vaswani if name == "vaswani" else read_cacm)(data / "classic" / name)
    if name.startswith("nanobeir/"):
        if split != "test":
            raise ValueError(f"NanoBEIR subsets have one evaluation split, not {split!r}")
        return load_nanobeir(name.split("/", 1)[1])
    short = {v: k for k, v in BEIR_DATASETS.items()}.get(name, name)
    if short in BEIR_DATASETS:
        if split == "test":
            return _beir_online(short)
        dataset_id = f"beir/{short}/{split}"
        import ir_datasets

        if dataset_id not in ir_datasets.registry:
            splits = sorted(i.rsplit("/", 1)[1] for i in ir_datasets.registry if i.startswith(f"beir/{short}/"))
            raise ValueError(f"{short} has no {split!r} split in ir_datasets; "
                             f"choose from {', '.join(splits) or 'test'}")
        return load_ir_datasets(dataset_id)
    if Path(name).is_dir():
        return load_beir_local(name, split)
    import ir_datasets

    if name in ir_datasets.registry:
        if split != "test":
            raise ValueError(f"an ir_datasets id names its split itself; "
                             f"pass {name}/{split} instead of split={split!r}")
        return load_ir_datasets(name)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(LOCAL_DATASETS)} (offline), "
                     f"{', '.join(n for n in BEIR_DATASETS if n != 'scifact')} (BEIR, online), "
                     "nanobeir/<name> (NanoBEIR, online), a directory in BEIR layout, "
                     "or an ir_datasets id such as msmarco-passage/dev/small")
