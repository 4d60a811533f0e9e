"""The training-file format: one JSONL line per training example, a ``.meta.json`` sidecar saying how it was made.

Every builder (:mod:`train.mining`, :mod:`train.msmarco`) writes the same record, which the trainer reads with
:func:`load_training_file`::

    {"query_id": "0", "query": "...", "doc_ids": ["pos", "neg1", ...], "docs": ["...", ...],
     "teacher_scores": [12.3, 4.5, ...]}

``docs[0]`` is a judged positive, the rest are hard negatives; the three lists align and hold at least two documents.
Outputs are written atomically with their statistics (:func:`_write_examples`); the sidecar, written last
(:func:`write_meta`), records the file's SHA-256, and a complete earlier output made with the same options is reused
only while its bytes still have that hash (:func:`_reusable`).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from kit.errors import InputError
from kit.fingerprint import file_sha256
from kit.io import atomic_write, read_jsonl, write_json
from kit.manifest import shown
from train.teachers import _is_number, softmax_entropy

FIELDS = ("query_id", "query", "doc_ids", "docs", "teacher_scores")
FORMAT_VERSION = 1


# ---- the file format ----------------------------------------------------------------------------------------------

class TrainExample(NamedTuple):
    """One training example: a query, its candidate documents (positive first) and the teacher's score of each."""

    query_id: str
    query: str
    doc_ids: list[str]
    docs: list[str]
    teacher_scores: list[float]


def meta_path(path: str | Path) -> Path:
    """The sidecar of a training file: ``<file>.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def _check_record(rec: dict) -> TrainExample:
    """A validated :class:`TrainExample` from one decoded line; ValueError says what is wrong."""
    for field in ("query_id", "query"):
        if not isinstance(rec[field], str):
            raise ValueError(f"{field!r} must be a string, found {type(rec[field]).__name__}")
    if not rec["query_id"].strip():
        raise ValueError("empty 'query_id'")
    for field in ("doc_ids", "docs", "teacher_scores"):
        if not isinstance(rec[field], list):
            raise ValueError(f"{field!r} must be a list, found {type(rec[field]).__name__}")
    doc_ids, docs, scores = rec["doc_ids"], rec["docs"], rec["teacher_scores"]
    if not len(doc_ids) == len(docs) == len(scores):
        raise ValueError(f"lists differ in length: {len(doc_ids)} doc_ids, {len(docs)} docs, "
                         f"{len(scores)} teacher_scores")
    if len(doc_ids) < 2:
        raise ValueError(f"{len(doc_ids)} document(s); an example needs a positive and at least one negative")
    for i, (doc_id, doc, score) in enumerate(zip(doc_ids, docs, scores)):
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise ValueError(f"doc_ids[{i}] is {doc_id!r}, not a non-empty string")
        if not isinstance(doc, str):
            raise ValueError(f"docs[{i}] is {type(doc).__name__}, not a string")
        if not _is_number(score):
            raise ValueError(f"teacher_scores[{i}] is {score!r}, not a finite number")
    if len(set(doc_ids)) != len(doc_ids):
        repeated = next(d for d, n in Counter(doc_ids).items() if n > 1)
        raise ValueError(f"document {repeated!r} appears twice")
    return TrainExample(rec["query_id"], rec["query"], list(doc_ids), list(docs), [float(s) for s in scores])


def iter_training_file(path: str | Path) -> Iterator[TrainExample]:
    """Stream the examples of a training file (plain or ``.gz``), validating each line.

    Raises :class:`~kit.errors.InputError` naming ``file:line`` for malformed JSON, a missing field, a field of the
    wrong type, lists of different lengths, fewer than two documents, a non-numeric or non-finite score, a repeated
    document, and for a file without any example.
    """
    count = 0
    for lineno, rec in read_jsonl(path, required=FIELDS):
        try:
            yield _check_record(rec)
        except ValueError as err:
            raise InputError(path, str(err), lineno, fix="each line is {\"query_id\": str, \"query\": str, "
                             "\"doc_ids\": [str], \"docs\": [str], \"teacher_scores\": [number]}, positive first, "
                             ">= 2 documents") from None
        count += 1
    if not count:
        raise InputError(path, "no training examples", fix="build one with `python -m train.data mine-offline`")


def load_training_file(path: str | Path) -> list[TrainExample]:
    """All examples of a training file, validated (see :func:`iter_training_file`)."""
    return list(iter_training_file(path))


# ---- output with statistics ---------------------------------------------------------------------------------------

class _Stats:
    """Running statistics of the written examples."""

    def __init__(self):
        self.examples = 0
        self.docs = 0
        self.entropy = 0.0
        self.normalized_entropy = 0.0
        self.positive_at_top = 0
        self.positive_probability = 0.0
        self.queries: set[str] = set()

    def add(self, ex: TrainExample) -> None:
        self.examples += 1
        self.docs += len(ex.doc_ids)
        self.queries.add(ex.query_id)
        h = softmax_entropy(ex.teacher_scores)
        self.entropy += h
        self.normalized_entropy += h / math.log(len(ex.doc_ids))
        self.positive_at_top += ex.teacher_scores[0] >= max(ex.teacher_scores[1:])
        s = np.asarray(ex.teacher_scores)
        self.positive_probability += float(1 / np.exp(s - s[0]).sum())

    def summary(self) -> dict:
        n = max(self.examples, 1)
        return {"examples": self.examples, "queries": len(self.queries), "mean_docs_per_example": self.docs / n,
                "mean_teacher_entropy": self.entropy / n,
                "mean_teacher_entropy_normalized": self.normalized_entropy / n,
                "positive_at_top": self.positive_at_top / n,
                "mean_positive_probability": self.positive_probability / n}


def _write_examples(out: Path, examples: Iterable[TrainExample], total: int | None = None) -> dict:
    """Write ``examples`` as JSONL (atomically) and return their statistics."""
    from tqdm.auto import tqdm

    stats = _Stats()
    with atomic_write(out) as fh:
        for ex in tqdm(examples, total=total, unit="example", desc=f"writing {out.name}"):
            fh.write(json.dumps(ex._asdict(), ensure_ascii=False) + "\n")
            stats.add(ex)
    if not stats.examples:
        out.unlink()
        raise RuntimeError(f"no training example could be built for {out}")
    return stats.summary()


def _reusable(out: Path, params: dict, overwrite: bool) -> bool:
    """True when ``out`` and its sidecar exist and were made with ``params``; InputError when the options differ."""
    meta = meta_path(out)
    if overwrite or not (out.exists() and meta.exists()):
        return False
    try:
        made_with = json.loads(meta.read_text(encoding="utf-8")).get("params", {})
    except json.JSONDecodeError:
        return False  # a damaged sidecar: rebuild
    differ = {k: (made_with.get(k), v) for k, v in params.items() if made_with.get(k) != v}
    if differ:
        detail = ", ".join(f"{k}={old!r} (asked {new!r})" for k, (old, new) in differ.items())
        raise InputError(out, f"exists but was made with {detail}",
                         fix="pass overwrite=True (--overwrite) or another output path (--out)")
    reason = content_changed(out)
    if reason is not None:
        print(f"note: {shown(out)}: {reason}; building it again", file=sys.stderr, flush=True)
        return False
    return True


def write_meta(out: Path, meta: dict) -> None:
    """Write the sidecar of the finished training file ``out`` (last): ``meta`` and the file's SHA-256."""
    write_json(meta_path(out), {**meta, "sha256": file_sha256(out)})


def content_changed(out: Path) -> str | None:
    """Why the training file ``out`` is not the one its sidecar recorded (None: the same bytes)."""
    try:
        recorded = json.loads(meta_path(out).read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return "its sidecar is missing or unreadable"
    if recorded is None:
        return "its sidecar records no content hash (made by an earlier kit), so it cannot be verified"
    if recorded != file_sha256(out):
        return f"changed since it was made ({out.name})"
    return None
