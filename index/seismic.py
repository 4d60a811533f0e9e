"""Seismic approximate retrieval over the same learned sparse vectors the Anserini impact index holds.

Seismic (Bruch, Nardini, Rulli, Venturini, SIGIR 2024; ``pyseismic-lsr`` on PyPI) is the inverted index the Li-LSR
paper (Nardini et al., SIGIR 2025, Section 3.2) measures against: each posting list is cut to its largest entries,
split into blocks of similar documents, and each block gets a *summary* vector; at query time a block is scored
only if its summary's dot product with the query can still beat the current top-k (scaled by ``heap_factor``).
Scores of the documents it does evaluate are exact dot products of the query and document vectors.

The kit feeds it the quantized integer vectors of a ``python -m encode`` directory (read by
:func:`encode.writer.read_vectors`) and the quantized query vectors Anserini searches with, so the two backends
rank the same dot products; :mod:`index.backends` puts both behind one interface. With the default parameters on
corpora of up to ~10⁵ documents no posting list is cut, and only the block skipping approximates.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterator, Mapping

from encode.writer import check_complete, read_vectors
from index.anserini import vector_files
from kit.errors import InputError
from kit.fingerprint import file_sha256, files_sha256
from kit.io import atomic_dir, atomic_write, exclusive

#: Files of a finished Seismic index folder (the index itself, the kit's record of the build, the library's output).
INDEX_STEM = "index"
INDEX_FILE = INDEX_STEM + ".index.seismic"
BUILD_INFO = "kit-build.json"
BUILD_LOG = "seismic-build.log"
KIND = "seismic"


@dataclass(frozen=True)
class SeismicParams:
    """Seismic's build and search parameters (names as in ``SeismicIndex.build_from_dataset`` / ``batch_search``).

    Build: ``n_postings`` (posting-list cut: postings kept per token on average, ``n_postings × max_fraction`` at
    most in one list), ``centroid_fraction`` (blocks per list as a fraction of its length), ``min_cluster_size``,
    ``summary_energy`` (fraction of a block's ℓ1 mass its summary keeps), ``doc_cut`` (document components used to
    cluster). Search: ``query_cut`` (only the query's ``query_cut`` heaviest tokens walk their lists; None = all)
    and ``heap_factor`` (a block is evaluated if its summary score exceeds ``heap_factor ×`` the k-th best score so
    far; 1.0 = only blocks that can still enter the top-k by their summary). Defaults: Seismic's own MS MARCO
    build settings, no query cut, and ``heap_factor`` 0.9, which on SciFact, Vaswani and CACM returns exactly
    Anserini's runs at 27-55x its speed (``python -m bench.seismic``, results/bench/seismic.json).
    """

    n_postings: int = 3500
    centroid_fraction: float = 0.1
    min_cluster_size: int = 2
    summary_energy: float = 0.4
    max_fraction: float = 1.5
    doc_cut: int = 15
    query_cut: int | None = None
    heap_factor: float = 0.9

    BUILD = ("n_postings", "centroid_fraction", "min_cluster_size", "summary_energy", "max_fraction", "doc_cut")
    SEARCH = ("query_cut", "heap_factor")

    def __post_init__(self) -> None:
        for name in ("n_postings", "min_cluster_size", "doc_cut", "query_cut"):
            value = getattr(self, name)
            if value is None and name == "query_cut":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"seismic {name} must be an integer >= 1, got {value!r}")
        for name, low, high in (("centroid_fraction", 0.0, 1.0), ("summary_energy", 0.0, 1.0),
                                ("max_fraction", 1.0, None), ("heap_factor", 0.0, None)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
            ok = ok and (value > low if low < 1 else value >= low) and (high is None or value <= high)
            if not ok:
                bounds = f"in (0, {high:g}]" if high is not None else (f">= {low:g}" if low >= 1 else "> 0")
                raise ValueError(f"seismic {name} must be a number {bounds}, got {value!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_options(cls, options: Mapping[str, object] | None = None, **overrides: object) -> "SeismicParams":
        """Parameters from a mapping (e.g. a recipe's ``seismic:`` block) and keyword overrides (None = not given).

        Raises:
            ValueError: an unknown name (listing the known ones) or an invalid value.
        """
        values = {**(options or {}), **{k: v for k, v in overrides.items() if v is not None}}
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise ValueError(f"unknown seismic parameter(s) {', '.join(unknown)}; known: {', '.join(cls.names())}")
        return cls(**values)

    def build_options(self) -> dict:
        return {name: getattr(self, name) for name in self.BUILD}


def add_arguments(parser, names: tuple[str, ...] | None = None) -> None:
    """Add ``--n-postings``, ``--heap-factor``, ... (default None = :class:`SeismicParams`' default) to ``parser``."""
    for name in names or SeismicParams.names():
        default = getattr(SeismicParams, name)
        kind = float if isinstance(default, float) else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                            help=f"seismic {name} (default: {default if default is not None else 'all'})")


def options_from_args(args) -> dict:
    """The Seismic parameters given on a command line built with :func:`add_arguments` (None = not given)."""
    return {name: getattr(args, name, None) for name in SeismicParams.names()}


# ---- helpers ------------------------------------------------------------------------------------------------------

def _seismic():
    try:
        import seismic
    except ImportError:
        raise InputError(None, "the Seismic backend needs pyseismic-lsr",
                         fix="run `make setup` (requirements.txt pins pyseismic-lsr)") from None
    return seismic


def _max_token_length(seismic) -> int:
    match = re.fullmatch(r"[<|=]?U(\d+)", str(seismic.get_seismic_string()))
    return int(match.group(1)) if match else 100


@contextlib.contextmanager
def _library_output(log_path: Path) -> Iterator[None]:
    """Send what the Rust library prints on file descriptor 1 to ``log_path`` instead of the terminal."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(log_path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _arrays(vector: Mapping[str, int | float], string_type, max_len: int, where: str):
    import numpy as np

    for token in vector:
        if not isinstance(token, str) or not token or len(token) > max_len:
            raise ValueError(f"{where}: token {token!r} is not a string of 1 to {max_len} characters (Seismic's limit)")
    return np.array(list(vector), dtype=string_type), np.array(list(vector.values()), dtype=np.float32)


def _require_index(index_dir) -> tuple[Path, dict]:
    index_dir = Path(index_dir)
    info_path = index_dir / BUILD_INFO
    if not (index_dir / INDEX_FILE).exists() or not info_path.exists():
        raise InputError(index_dir, "not a Seismic index built by the kit",
                         fix="build it first with `python -m index build-impact --backend seismic`")
    info = json.loads(info_path.read_text())
    if info.get("kind") != KIND:
        raise InputError(index_dir, f"is a {info.get('kind')!r} index, not a Seismic one")
    return index_dir, info


def directory_bytes(path) -> int:
    """Total size of the files under ``path`` (an index's size on disk)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# ---- build and search -----------------------------------------------------------------------------------------------

def build_seismic_index(vectors_dir, index_dir, threads: int = 2, *, overwrite: bool = False,
                        params: SeismicParams | None = None, require_complete: bool = True) -> dict:
    """Index a vectors directory (or one JSONL file) of ``{id, vector: {token: int}}`` records with Seismic.

    A directory must be one complete ``python -m encode`` output (:func:`encode.writer.check_complete`) unless
    ``require_complete`` is False. The index is built under a temporary name and renamed into place; ``index_dir``
    then holds :data:`INDEX_FILE`, :data:`BUILD_LOG` and :data:`BUILD_INFO`. An existing kit Seismic index is reused
    when it was built from the same vectors and parameters, and rebuilt with ``overwrite``. Documents without any
    weight cannot be retrieved and are not indexed (``empty_documents``).

    Returns:
        the build record: ``documents``, ``empty_documents``, ``postings`` (non-zeros), ``dim``, ``params``,
        ``seconds`` (all), ``index_seconds`` (Seismic's build alone), ``bytes`` (on disk), ``threads``, ``reused``.

    Raises:
        InputError: unreadable vectors (file and line named), or ``index_dir`` holding something else.
        ValueError: invalid ``threads`` or parameters.
    """
    params = params or SeismicParams()
    threads = _positive("threads", threads)
    index_dir = Path(index_dir)
    vectors_path = Path(vectors_dir)
    if vectors_path.is_dir() and require_complete:
        inputs = {"vectors": check_complete(vectors_path)["fingerprint"]}
    elif vectors_path.is_file():
        inputs = {"vectors_file": file_sha256(vectors_path)}
    else:
        inputs = {"vectors_files": files_sha256(vector_files(vectors_path), vectors_path)}
    with exclusive(index_dir, "index build"):
        if index_dir.exists() and not overwrite:
            if not (index_dir / BUILD_INFO).exists():
                raise InputError(index_dir, "exists but is not a complete index built by the kit",
                                 fix="remove it or pass overwrite=True (--overwrite)")
            _, info = _require_index(index_dir)
            if info.get("params") != params.build_options():
                raise InputError(index_dir, f"was built with {info.get('params')}, not {params.build_options()}",
                                 fix="choose another path or pass overwrite=True (--overwrite)")
            if info.get("inputs") != inputs:
                raise InputError(index_dir, "was built from other vectors than these",
                                 fix="choose another --index path or pass --overwrite to rebuild it")
            return {**info, "reused": True}
        return _build_seismic(read_vectors(vectors_dir), vectors_dir, index_dir, threads, params, inputs)


def _build_seismic(records, vectors_dir, index_dir: Path, threads: int, params: SeismicParams, inputs: dict) -> dict:
    seismic = _seismic()
    string_type, max_len = seismic.get_seismic_string(), _max_token_length(seismic)
    start = time.perf_counter()
    dataset = seismic.SeismicDataset()
    documents = empty = 0
    for doc_id, vector in records:
        documents += 1
        vector = {token: weight for token, weight in vector.items() if weight > 0}
        if not vector:
            empty += 1
            continue
        tokens, values = _arrays(vector, string_type, max_len, f"document {doc_id!r}")
        dataset.add_document(doc_id, tokens, values)
    if documents == empty:
        raise InputError(vectors_dir, "no document has a positive weight; nothing to index")
    with atomic_dir(index_dir) as tmp:
        index_start = time.perf_counter()
        with _library_output(tmp / BUILD_LOG):
            index = seismic.SeismicIndex.build_from_dataset(dataset, num_threads=threads, **params.build_options())
            index.save(str(tmp / INDEX_STEM))
        index_seconds = time.perf_counter() - index_start
        info = {"kind": KIND, "documents": documents, "empty_documents": empty, "postings": int(index.nnz),
                "dim": int(index.dim), "params": params.build_options(), "threads": threads,
                "seconds": round(time.perf_counter() - start, 3), "index_seconds": round(index_seconds, 3),
                "pyseismic_lsr": _version(), "inputs": inputs}
        info["bytes"] = directory_bytes(tmp)
        (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return {**info, "reused": False}


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyseismic-lsr")
    except PackageNotFoundError:
        return None


def search_seismic(index_dir, query_vectors: Mapping[str, Mapping[str, int | float]], run_path, hits: int = 1000,
                   threads: int = 2, remove_query: bool = True, *, params: SeismicParams | None = None) -> dict:
    """Top-``hits`` documents of each query by dot product (Seismic's approximation); writes a TREC run atomically.

    Queries without a positive weight are not searched (``empty_queries``), as in :func:`index.anserini.search_impact`;
    ``remove_query`` drops a hit whose id equals the query id (BEIR). Loading the index is timed apart from searching.

    Returns:
        ``seconds`` (load + search + writing), ``search_seconds`` (``batch_search`` alone), ``load_seconds``,
        ``queries`` (searched), ``empty_queries``, ``run``.
    """
    import numpy as np

    params = params or SeismicParams()
    hits = _positive("hits", hits)
    threads = _positive("threads", threads)
    index_dir, _ = _require_index(index_dir)
    seismic = _seismic()
    string_type, max_len = seismic.get_seismic_string(), _max_token_length(seismic)
    ids, components, values = [], [], []
    for qid, vector in query_vectors.items():
        for token, weight in vector.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
                raise ValueError(f"query {qid!r}: weight {weight!r} of {token!r} is not a non-negative number")
        vector = {token: weight for token, weight in vector.items() if weight > 0}
        if vector:
            tokens, weights = _arrays(vector, string_type, max_len, f"query {qid!r}")
            ids.append(str(qid))
            components.append(tokens)
            values.append(weights)
    start = time.perf_counter()
    with _library_output(index_dir / BUILD_LOG):
        index = seismic.SeismicIndex.load(str(index_dir / INDEX_FILE))
    load_seconds = time.perf_counter() - start
    results: list = []
    search_start = time.perf_counter()
    if ids:
        query_cut = params.query_cut or max(len(c) for c in components)
        results = index.batch_search(np.array(ids, dtype=string_type), components, values, k=hits + remove_query,
                                     query_cut=query_cut, heap_factor=params.heap_factor, num_threads=threads)
    search_seconds = time.perf_counter() - search_start
    by_query: dict[str, list[tuple[float, str]]] = {}
    for ranked in results:  # with several threads the result lists need not come in query order: key by query id
        for qid, score, doc in ranked:
            by_query.setdefault(qid, []).append((score, doc))
    with atomic_write(run_path) as fh:
        for qid in ids:
            ranked = sorted(by_query.get(qid, ()), key=lambda hit: -hit[0])
            kept = [(doc, score) for score, doc in ranked if not (remove_query and doc == qid)][:hits]
            for rank, (doc, score) in enumerate(kept, start=1):
                fh.write(f"{qid} Q0 {doc} {rank} {score:.6f} seismic\n")
    return {"seconds": round(time.perf_counter() - start, 3), "search_seconds": round(search_seconds, 4),
            "load_seconds": round(load_seconds, 3), "queries": len(ids),
            "empty_queries": len(query_vectors) - len(ids), "run": str(run_path), "params": asdict(params)}
