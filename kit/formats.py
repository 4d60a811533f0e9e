"""Readers of the collection file formats, each validating as it goes.

- BEIR: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (plain or ``.gz``);
- Anserini's official BEIR topics (``qid<TAB>text``) and TREC qrels (``qid iter docid rel``);
- TREC SGML documents and topics (Vaswani), SMART documents, queries and qrels (CACM).

A document's text follows Pyserini's BEIR "flat" convention: ``(title + " " + text).strip()``. Every reader raises
:class:`~kit.errors.InputError` naming the file and line of the first bad record. :mod:`kit.data` assembles these
into :class:`~kit.dataset.Dataset` s.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator

from kit.dataset import Doc, Qrels
from kit.errors import InputError
from kit.io import open_text, read_jsonl

_BEIR_QRELS_HEADER = ["query-id", "corpus-id", "score"]
# A character no id may hold: a TREC run or qrels line separates its columns by whitespace.
_ID_SPACE = re.compile(r"[\x00-\x20\s]")
# A lone UTF-16 surrogate (a JSON escape such as "\ud800" without its pair): not a Unicode character, not UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


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
            qid, docid = fields[0].strip(), fields[1].strip()
            _check_id(path, lineno, qid, "query-id")
            _check_id(path, lineno, docid, "corpus-id")
            yield lineno, qid, docid, fields[2].strip()

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
        qid = _check_id(path, lineno, qid.strip(), "query id")
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
    if field == "_id":
        if not value.strip():
            raise InputError(path, "empty '_id'", lineno, fix="every record needs a non-empty id")
        _check_id(path, lineno, value, "'_id'")
    if not value.isascii() and (surrogate := _SURROGATE.search(value)):
        raise InputError(path, f"field {field!r} holds a lone surrogate ({ascii(surrogate.group())}), not a Unicode "
                               "character", lineno,
                         fix="the text must be valid Unicode: write the whole character, or drop the escape")
    return value


def _check_id(path: str | Path, lineno: int, value: str, what: str) -> str:
    """An id as TREC runs and qrels need it: no whitespace or control character."""
    if _ID_SPACE.search(value):
        raise InputError(path, f"{what} {value!r} contains whitespace", lineno,
                         fix="ids must not contain spaces, tabs or control characters (TREC runs separate columns "
                             "by whitespace); replace them, e.g. by '_'")
    return value


def read_beir_corpus(path: str | Path) -> Iterator[Doc]:
    """Stream a BEIR ``corpus.jsonl(.gz)`` (``{"_id", "title", "text"}``, title optional) as ``title + " " + text``.

    Empty documents are kept (text ``""``), but a corpus without documents, or whose documents are all blank, is an
    InputError once the stream ends. Ids must be unique (checked with a set of ids; the first line of a duplicate is
    found by re-reading the file only when one occurs) and free of whitespace; texts must be valid Unicode.
    """
    seen: set[str] = set()
    blank = True
    for lineno, rec in read_jsonl(path, required=("_id", "text")):
        doc_id = _string(path, lineno, rec, "_id")
        text = _string(path, lineno, rec, "text")
        title = _string(path, lineno, rec, "title", optional=True)
        if doc_id in seen:
            first = next(n for n, r in read_jsonl(path) if _string(path, n, r, "_id") == doc_id)
            raise InputError(path, f"duplicate _id {doc_id!r} (first on line {first})", lineno,
                             fix="document ids must be unique")
        seen.add(doc_id)
        doc = Doc(doc_id, f"{title} {text}".strip())
        blank = blank and not doc.text
        yield doc
    if not seen:
        raise InputError(path, "no documents", fix="a corpus needs at least one {\"_id\", \"text\"} record")
    if blank:
        raise InputError(path, f"all {len(seen)} documents have a blank title and text",
                         fix="give the documents their text")


def read_beir_queries(path: str | Path) -> dict[str, str]:
    """BEIR ``queries.jsonl(.gz)``: ``{"_id", "text"}`` -> ``{qid: text}``; duplicate ids are an InputError."""
    queries: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, rec in read_jsonl(path, required=("_id", "text")):
        qid = _string(path, lineno, rec, "_id")
        _check_unique(path, lineno, qid, lines, "query _id")
        queries[qid] = _string(path, lineno, rec, "text").strip()
    return queries


def _judged(queries: dict[str, str], qrels: Qrels, first_line: dict[str, int], qrels_path: str | Path,
            queries_path: str | Path) -> dict[str, str]:
    """BEIR's convention: keep the queries that have judgments; a judged query missing from the topics, or judged
    queries whose texts are all blank, are an error."""
    for qid, lineno in first_line.items():
        if qid not in queries:
            raise InputError(qrels_path, f"query {qid!r} is not in {queries_path}", lineno,
                             fix="the qrels and the queries must come from the same dataset")
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    if judged and not any(judged.values()):
        raise InputError(queries_path, f"every one of the {len(judged)} judged queries has a blank text",
                         fix="give the queries their text")
    return judged


# ---- TREC SGML and SMART ---------------------------------------------------------------------------------------------

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
