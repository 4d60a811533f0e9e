"""Build Anserini (Lucene) indexes and search them: BM25 over text, impact scores over learned sparse vectors.

The paper (Section 5.1.4) indexes documents in OpenSearch's Lucene inverted index through its neural-sparse
feature, where a document's score is the dot product of the (inference-free) query weights and the document's
term weights. The kit uses the same Lucene machinery through Anserini 1.7.1 (run in a subprocess by
:func:`kit.java.run_anserini`):

* **impact index** -- ``IndexCollection -collection JsonVectorCollection -impact -pretokenized``. Each input line
  is Anserini's sparse document record ``{"id", "contents", "vector": {token: int}}``; a token's integer weight
  is stored as its term frequency and ``SearchCollection -impact`` scores ``sum_t q_t * d_t`` exactly.
* **flat index** -- ``IndexCollection -collection JsonCollection`` over ``{"id", "contents"}`` (BM25 baseline,
  Anserini's "flat" BEIR condition: :data:`BM25_K1`, :data:`BM25_B`).

Behaviour of this jar checked by ``tests/test_index.py`` (and worth knowing before changing anything here):

* ``-topicReader JsonIntVector``/``JsonStringVector`` do **not** feed sparse query weights to ``-impact``
  search (the JSON is analysed as text and nothing matches). Weighted queries are therefore written the way
  Anserini's own SPLADE regressions do: a ``TsvString`` topic whose text repeats each token ``q_t`` times;
  the bag-of-words query generator turns the repetition count into the term's boost.
* ``-pretokenized`` analyses both sides with Lucene's whitespace tokenizer (case kept, no stemming), so
  wordpieces (``##ing``), ``[unused0]`` and punctuation (``don't``, ``u.s.``, ``(a``) survive unchanged, but a
  token containing whitespace is split and a token longer than 255 UTF-16 units is cut into pieces; weights
  are floored to integers and zero weights dropped. Such tokens and weights are rejected, loudly
  (:mod:`index.vectors`).
* Anserini exits with status 0 after many errors (unreadable index, malformed JSON, a file that is not JSON in
  the input folder, a blank topic line); every call's log is therefore checked (:mod:`index.lucene`), and only
  ``*.jsonl`` / ``*.jsonl.gz`` files of a vectors folder are handed to the indexer (so its ``metadata.json`` is
  not indexed).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Iterable, Mapping

from encode.writer import check_complete
from index.lucene import _anserini, _heap_mb, _positive, _require_index, index_stats, java_heap
from index.vectors import _check_vector_file, _count_records, check_id, check_vector, impact_query_text, vector_files
from kit.errors import InputError
from kit.fingerprint import files_sha256
from kit.io import atomic_dir, exclusive, read_jsonl, scratch_dir
from kit.java import ANSERINI_VERSION, class_archive, dump_class_archive, recording_classes

#: Written last into a finished index; a folder with it is complete and may be reused.
BUILD_INFO = "kit-build.json"
BUILD_LOG = "kit-build.log"

_COUNTERS = ("indexed", "unindexable", "empty", "skipped", "errors")
_SEARCH_RE = re.compile(r"([\d,]+) queries processed in (\d+):(\d\d):(\d\d) = ~([\d,.]+|Infinity|NaN) q/s")


# ---- building -----------------------------------------------------------------------------------------------------

def _build(kind: str, index_dir, collection: str, flags: list[str], prepare, threads: int, heap: str | None,
           optimize: bool, overwrite: bool, inputs: dict | None = None) -> dict:
    """Shared build path: reuse or build under a temporary name, check counts, record the build, rename.

    ``inputs`` describes what the index is built from (e.g. the vectors' fingerprint); an existing index is reused
    only when it was built from the same ``inputs``.
    """
    index_dir = Path(index_dir)
    threads = _positive("threads", threads)
    heap = java_heap(heap)
    with exclusive(index_dir, "index build"):
        info = _reusable_index(index_dir, kind, inputs) if index_dir.exists() and not overwrite else None
        if info is not None:
            return {**info, "reused": True}
        return _build_locked(kind, index_dir, collection, flags, prepare, threads, heap, optimize, inputs)


def _reusable_index(index_dir: Path, kind: str, inputs: dict | None) -> dict:
    info_path = index_dir / BUILD_INFO
    if not info_path.exists():
        raise InputError(index_dir, "exists but is not a complete index built by the kit",
                         fix="remove it or pass overwrite=True (--overwrite)")
    info = json.loads(info_path.read_text())
    if info.get("kind") != kind:
        raise InputError(index_dir, f"is a {info.get('kind')!r} index, not a {kind!r} one",
                         fix="choose another path or pass overwrite=True (--overwrite)")
    if inputs is not None and info.get("inputs") != json.loads(json.dumps(inputs)):
        raise InputError(index_dir, "was built from other inputs than these (a different corpus, vectors or settings)",
                         fix="choose another --index path or pass --overwrite to rebuild it")
    return info


def _build_locked(kind, index_dir: Path, collection, flags, prepare, threads, heap, optimize, inputs) -> dict:
    start = time.perf_counter()
    with scratch_dir(index_dir, "input") as input_dir, atomic_dir(index_dir) as tmp:
        documents = prepare(input_dir)
        buffer_mb = max(16, min(4096, _heap_mb(heap) // 2))
        args = ["-collection", collection, "-input", input_dir, "-index", tmp,
                "-generator", "DefaultLuceneDocumentGenerator", "-threads", threads,
                "-memoryBuffer", buffer_mb, *flags, *(["-optimize"] if optimize else [])]
        index_start = time.perf_counter()
        log = _anserini("index.IndexCollection", args, tmp / BUILD_LOG, heap)
        index_seconds = time.perf_counter() - index_start
        counters = _parse_counters(log)
        if counters["indexed"] + counters["empty"] != documents or counters["unindexable"] or counters["skipped"]:
            raise RuntimeError(f"Anserini indexed {counters} of {documents} input documents (log: {tmp / BUILD_LOG})")
        if not counters["indexed"]:
            raise InputError(index_dir, f"none of the {documents} input documents has a term to index (every one "
                                        "is empty)", fix="check the corpus texts, or the document vectors")
        stats = index_stats(tmp, heap)
        info = {"kind": kind, **stats, "input_documents": documents, "empty_documents": counters["empty"],
                "seconds": round(time.perf_counter() - start, 3), "index_seconds": round(index_seconds, 3),
                "threads": threads, "heap": heap, "optimize": optimize, "anserini": ANSERINI_VERSION,
                "flags": ["-collection", collection, *flags], "inputs": inputs}
        (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return {**info, "reused": False}


def _parse_counters(log: str) -> dict[str, int]:
    """IndexCollection's final counters ("indexed:  5,183", ...; numbers have thousands separators)."""
    counters = {}
    for name in _COUNTERS:
        found = re.findall(rf" - {name}:\s+([\d,]+)\s*$", log, flags=re.MULTILINE)
        if not found:
            raise RuntimeError(f"Anserini's indexing log has no {name!r} counter; did IndexCollection finish?")
        counters[name] = int(found[-1].replace(",", ""))
    return counters


def build_impact_index(vectors_dir, index_dir, threads: int = 2, *, overwrite: bool = False, validate: bool = True,
                       optimize: bool = False, heap: str | None = None, require_complete: bool = True) -> dict:
    """Index a folder of sparse document vectors for impact (dot-product) search.

    ``vectors_dir`` holds ``*.jsonl(.gz)`` files of ``{"id", "contents", "vector": {token: int}}`` records
    (other files, e.g. ``metadata.json``, are ignored). It must be one complete ``python -m encode`` output (every
    shard and part, unchanged: :func:`encode.writer.check_complete`) unless ``require_complete`` is False (the
    ``--no-manifest`` flag, for vectors made elsewhere). With ``validate`` every record is checked first
    (ids, tokens, integer weights and their bounds, duplicates) so that bad input fails with its file and line
    instead of being silently altered by Lucene. An existing complete index is reused only when it was built from
    the same vectors (else InputError), and rebuilt with ``overwrite``.
    Returns the build record: ``documents``, ``non_empty_documents``, ``unique_terms``, ``total_terms``,
    ``seconds`` (wall, validation included), ``index_seconds``, ``reused``, ...
    """
    if require_complete:
        complete = check_complete(vectors_dir)
        inputs = {"vectors": complete["fingerprint"], "documents": complete["documents"]}
    else:
        files = vector_files(vectors_dir)
        inputs = {"vectors_files": files_sha256(files, vectors_dir)}

    def prepare(input_dir: Path) -> int:
        files = vector_files(vectors_dir)
        seen: set[str] = set()
        tokens: set[str] = set()
        total = 0
        for path in files:
            total += _check_vector_file(path, seen, tokens) if validate else _count_records(path)
            (input_dir / path.name).symlink_to(path.resolve())
        return total

    return _build("impact", index_dir, "JsonVectorCollection", ["-impact", "-pretokenized"], prepare,
                  threads, heap, optimize, overwrite, inputs)


def flat_index_inputs(corpus_fingerprint: str) -> dict:
    """What a BM25 flat index depends on: the corpus and the Anserini release (its analyzer)."""
    return {"stage": "flat-index", "corpus": corpus_fingerprint, "anserini": ANSERINI_VERSION,
            "collection": "JsonCollection", "analyzer": "default (English, Porter, stopwords)"}


def build_flat_index(docs: Iterable[tuple[str, str]], index_dir, threads: int = 2, *, overwrite: bool = False,
                     optimize: bool = False, heap: str | None = None, inputs: dict | None = None) -> dict:
    """Index ``(doc_id, text)`` pairs (e.g. ``Doc`` named tuples) as Anserini's ``{"id", "contents"}`` JsonCollection
    with its default English analyzer (Porter stemming, stopwords removed), for BM25.

    The collection is written to a temporary folder in ``threads`` shards (Anserini indexes one file per thread).
    ``inputs`` describes the corpus (e.g. ``{"corpus": <fingerprint>}``): an existing complete index is reused only
    when it was built from the same ``inputs`` (else InputError), and rebuilt with ``overwrite``; returns the build
    record as :func:`build_impact_index` does.
    """
    threads = _positive("threads", threads)

    def prepare(input_dir: Path) -> int:
        shards = [open(input_dir / f"docs-{i:02d}.jsonl", "w", encoding="utf-8") for i in range(threads)]
        seen: set[str] = set()
        try:
            for n, (doc_id, text) in enumerate(docs):
                check_id("document", doc_id)
                if doc_id in seen:
                    raise ValueError(f"duplicate document id {doc_id!r}")
                seen.add(doc_id)
                if not isinstance(text, str):
                    raise ValueError(f"text of document {doc_id!r} is {type(text).__name__}, not str")
                shards[n % threads].write(json.dumps({"id": doc_id, "contents": text}, ensure_ascii=False) + "\n")
        finally:
            for fh in shards:
                fh.close()
        return len(seen)

    return _build("flat", index_dir, "JsonCollection", [], prepare, threads, heap, optimize, overwrite, inputs)


# ---- searching ----------------------------------------------------------------------------------------------------

def read_query_vectors(path) -> dict[str, dict[str, int]]:
    """``{"id", "vector": {token: int}}`` lines as a dict, each vector checked like :func:`search_impact` does."""
    vectors: dict[str, dict[str, int]] = {}
    for lineno, rec in read_jsonl(path, required=("id", "vector")):
        try:
            qid = check_id("query", str(rec["id"]))
            check_vector(rec["vector"], query=True)
        except ValueError as err:
            raise InputError(path, str(err), lineno, fix="write whitespace-free tokens with integer weights") from None
        if qid in vectors:
            raise InputError(path, f"duplicate query id {qid!r}", lineno, fix="keep one line per query")
        vectors[qid] = rec["vector"]
    return vectors


def sanitize_query(text: str) -> str:
    """Query text fit for one ``TsvString`` line: tabs and line breaks become spaces."""
    return re.sub(r"[\t\r\n]", " ", text)


def _blank(text: str) -> bool:
    # Java's String.trim() removes every char <= ' '; a topic with nothing left makes TsvString fail.
    return all(c <= " " for c in text)


def _search_seconds(log: str) -> float | None:
    """Search time from SearchCollection's "N queries processed in HH:MM:SS = ~X q/s" line(s)."""
    total = None
    for n, hh, mm, ss, qps in _SEARCH_RE.findall(log):
        n, rate = int(n.replace(",", "")), float(qps.replace(",", ""))
        seconds = n / rate if math.isfinite(rate) and rate > 0 else int(hh) * 3600 + int(mm) * 60 + int(ss)
        total = (total or 0.0) + seconds
    return None if total is None else round(total, 4)


def _search(index_dir, topics: dict[str, str], empty: int, run_path, flags: list[str], hits: int, threads: int,
            remove_query: bool, heap: str | None, log_path) -> dict:
    """Write ``topics`` as a TsvString file, run SearchCollection into a temporary run file, rename it."""
    index_dir = _require_index(index_dir)
    hits = _positive("hits", hits)
    threads = _positive("threads", threads)
    run_path = Path(run_path)
    start = time.perf_counter()
    with scratch_dir(run_path, "search") as tmp:
        topics_path = tmp / "topics.tsv"
        with open(topics_path, "w", encoding="utf-8") as fh:
            for qid, text in topics.items():
                fh.write(f"{qid}\t{text}\n")
        tmp_run = tmp / "run.txt"
        if topics:
            args = ["-index", index_dir, "-topics", topics_path, "-topicReader", "TsvString", "-output", tmp_run,
                    *flags, "-hits", hits, "-threads", threads, *(["-removeQuery"] if remove_query else [])]
            log = _anserini("search.SearchCollection", args, Path(log_path) if log_path else tmp / "search.log", heap)
            if not tmp_run.exists():
                raise RuntimeError(f"Anserini SearchCollection wrote no run file for {len(topics)} queries")
        else:  # nothing to search: an empty run, as Anserini would give for queries that match nothing
            log = ""
            tmp_run.write_text("")
        run_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_run, run_path)
    return {"seconds": round(time.perf_counter() - start, 3), "search_seconds": _search_seconds(log),
            "queries": len(topics), "empty_queries": empty, "run": str(run_path)}


BM25_K1, BM25_B = 0.9, 0.4
"""BM25's k1 and b in Anserini's BEIR "flat" condition; every BM25 run of the kit searches with these unless told
otherwise (:class:`pipeline.systems.BM25` passes them explicitly and keys its runs by them)."""


def search_bm25(index_dir, queries: Mapping[str, str], run_path, hits: int = 1000, threads: int = 2,
                remove_query: bool = True, k1: float = BM25_K1, b: float = BM25_B, *, heap: str | None = None,
                log_path=None) -> dict:
    """BM25 search of a flat index; writes a TREC run (atomically) and returns timings.

    Query text is sanitised for the TSV topic file; queries with no text left are not searched (they would
    retrieve nothing) and counted in ``empty_queries``. ``remove_query`` drops a hit whose id equals the
    query id (Anserini's ``-removeQuery``, used for BEIR). Returns ``seconds`` (wall, JVM start included),
    ``search_seconds`` (from Anserini's log), ``queries`` (searched), ``empty_queries``, ``run``.
    """
    if not (isinstance(k1, numbers.Real) and k1 > 0):
        raise ValueError(f"k1 must be a positive number, got {k1!r}")
    if not (isinstance(b, numbers.Real) and 0 <= b <= 1):
        raise ValueError(f"b must be in [0, 1], got {b!r}")
    topics = {}
    for qid, text in queries.items():
        check_id("query", qid)
        if not isinstance(text, str):
            raise ValueError(f"query {qid!r} text is {type(text).__name__}, not str")
        text = sanitize_query(text)
        if not _blank(text):
            topics[qid] = text
    return _search(index_dir, topics, len(queries) - len(topics), run_path,
                   ["-bm25", "-bm25.k1", k1, "-bm25.b", b], hits, threads, remove_query, heap, log_path)


def search_impact(index_dir, query_vectors: Mapping[str, Mapping[str, int]], run_path, hits: int = 1000,
                  threads: int = 2, remove_query: bool = True, *, heap: str | None = None, log_path=None) -> dict:
    """Impact search of a vector index: score(q, d) = sum over shared tokens of q_t * d_t (integers).

    ``query_vectors`` maps query id -> {token: non-negative int} (quantized query weights, e.g. the IDF
    weights of an inference-free model). A query without positive weights is not searched and counted in
    ``empty_queries``. Returns the same timings as :func:`search_bm25`.
    """
    topics = {}
    for qid, vector in query_vectors.items():
        check_id("query", qid)
        try:
            text = impact_query_text(vector)
        except ValueError as err:
            raise ValueError(f"query {qid!r}: {err}") from None
        if text:
            topics[qid] = text
    return _search(index_dir, topics, len(query_vectors) - len(topics), run_path,
                   ["-impact", "-pretokenized"], hits, threads, remove_query, heap, log_path)


# ---- the JVM's class-data archive ---------------------------------------------------------------------------------

def build_class_archive(force: bool = False) -> Path:
    """Record the classes Anserini loads to index, search and read statistics (impact and BM25, on three made-up
    documents) and dump them into the JVM's class-data archive (:func:`kit.java.dump_class_archive`); ``make setup``
    runs it. Every later Anserini call then starts faster; results are unchanged. An existing archive is kept unless
    ``force``."""
    if class_archive().is_file() and not force:
        return class_archive()
    with tempfile.TemporaryDirectory(prefix="kit-classes.") as tmp:
        root = Path(tmp)
        vectors = root / "vectors"
        vectors.mkdir()
        docs = {"d1": {"sparse": 30, "retrieval": 12}, "d2": {"lucene": 25, "impact": 9}, "d3": {"sparse": 4}}
        with open(vectors / "part-0.jsonl", "w", encoding="utf-8") as fh:
            for doc_id, vector in docs.items():
                fh.write(json.dumps({"id": doc_id, "contents": "", "vector": vector}) + "\n")
        with recording_classes(root) as lists:
            build_impact_index(vectors, root / "impact", threads=1, require_complete=False)
            index_stats(root / "impact")
            search_impact(root / "impact", {"q1": {"sparse": 3}}, root / "impact.trec", hits=10, threads=1)
            build_flat_index([("d1", "sparse retrieval"), ("d2", "lucene impact scores")], root / "flat", threads=1)
            search_bm25(root / "flat", {"q1": "sparse retrieval"}, root / "flat.trec", hits=10, threads=1)
        return dump_class_archive(lists)
