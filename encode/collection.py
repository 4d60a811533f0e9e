"""A folder of document vectors (Anserini ``JsonVectorCollection``) as :mod:`encode.writer` writes it: its file
names, its sidecars, reading its vectors and verifying that it holds one complete, unchanged encoding.

- :func:`part_name`, :func:`metadata_path`: ``part-00000.jsonl``; ``metadata.json`` (``metadata.shard-I-of-N.json``
  per shard), the sidecar written last, so its presence means "complete";
- :func:`read_vectors`: ``(doc_id, {token: weight})`` of every part, each record validated;
- :func:`read_metadata`, :func:`check_complete`, :func:`check_inputs`: a finished encoding's sidecar; every shard and
  part present with the bytes recorded when it was written; and the documents of this corpus at each position.

The layout and the resume rules are :mod:`encode.writer`'s docstring.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

from encode.quantize import MAX_IMPACT, impact_problem
from kit.errors import InputError
from kit.fingerprint import digest, file_sha256, stream_sha256
from kit.io import load_json, read_jsonl


PathLike = str | os.PathLike


class DocLike(Protocol):
    doc_id: str
    text: str


def part_name(k: int) -> str:
    """File name of part ``k``."""
    return f"part-{k:05d}.jsonl"


def metadata_path(out_dir: PathLike, shard: tuple[int, int] = (0, 1)) -> Path:
    """The sidecar of a finished encoding of ``out_dir`` (by ``shard`` when the corpus was split)."""
    index, count = _check_shard(shard)
    return Path(out_dir) / ("metadata.json" if count == 1 else f"metadata.shard-{index}-of-{count}.json")


def _progress_path(out_dir: PathLike, shard: tuple[int, int]) -> Path:
    """The settings of a run under way (replaced by :func:`metadata_path` when it finishes)."""
    path = metadata_path(out_dir, shard)
    return path.with_name(path.stem + ".in-progress.json")


def part_inputs(part: Sequence[DocLike]) -> str:
    """Fingerprint of the documents of one part (ids and texts, in order)."""
    return stream_sha256((doc.doc_id, doc.text) for doc in part)


def read_vectors(path: PathLike) -> Iterator[tuple[str, dict[str, int]]]:
    """Yield ``(doc_id, {token: int weight})`` from a vectors directory (its ``*.jsonl`` parts) or one JSONL file.

    Every record is validated: a missing field, a non-integer or negative weight or a repeated id raises
    :class:`~kit.errors.InputError` naming the file and line.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl")) + sorted(path.glob("*.jsonl.gz"))
        if not files:
            raise InputError(path, "no *.jsonl vector files in this directory",
                             fix="point to a directory written by `python -m encode`")
    elif path.exists():
        files = [path]
    else:
        raise InputError(path, "not found", fix="check the path")
    seen: set[str] = set()
    for file in files:
        for lineno, record in read_jsonl(file, required=("id", "vector")):
            doc_id, vector = record["id"], record["vector"]
            if not isinstance(doc_id, str):
                raise InputError(file, f"id {doc_id!r} is not a string", lineno, fix='write ids as JSON strings ("7")')
            if not isinstance(vector, dict):
                raise InputError(file, "'vector' is not an object", lineno, fix='write {"token": weight, ...}')
            for token, weight in vector.items():
                if type(weight) is not int or not 0 <= weight <= MAX_IMPACT:  # the fast test; then say why
                    raise InputError(file, f"{impact_problem(weight)} (token {token!r})", lineno,
                                     fix="quantize the weights (encode.quantize)")
            if doc_id in seen:
                raise InputError(file, f"document id {doc_id!r} appears twice", lineno,
                                 fix="each document must be written once; check the shards")
            seen.add(doc_id)
            yield doc_id, vector


def read_metadata(out_dir: PathLike, shard: tuple[int, int] = (0, 1)) -> dict:
    """The sidecar of a finished encoding; InputError if the encoding is missing or unfinished, or it is malformed."""
    path = metadata_path(out_dir, shard)
    meta = _load_sidecar(path)
    if meta is None:
        if _progress_path(out_dir, shard).exists():
            raise InputError(path, "not written: the encoding did not finish",
                             fix="re-run the same command; it resumes")
        raise InputError(path, "not found", fix=f"encode the corpus first (python -m encode ... --output {out_dir})")
    return meta


def check_complete(out_dir: PathLike) -> dict:
    """Verify that a vectors directory holds one complete encoding (all its shards) and nothing else.

    The directory's sidecars (``metadata.json``, or ``metadata.shard-I-of-N.json`` for every ``I < N``) must exist
    and agree on their settings; the parts they list must be exactly the ``part-*.jsonl`` files present, each with
    the bytes recorded when it was written. Returns ``{"documents", "empty_documents", "parts", "shards",
    "fingerprint", "settings"}``; raises InputError saying what is missing and the command that completes it.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(out_dir, "vectors folder not found", fix="encode the corpus first (python -m encode)")
    progress = sorted(out_dir.glob("metadata*.in-progress.json"))
    sidecars = sorted(p for p in out_dir.glob("metadata*.json") if p not in progress)
    if progress:
        raise InputError(progress[0], "the encoding did not finish",
                         fix="re-run the same python -m encode command; it resumes where it stopped")
    if not sidecars:
        raise InputError(out_dir, "has no completion sidecar (metadata.json): not written by python -m encode, or "
                                  "its encoding did not finish",
                         fix="re-run the encode command (it resumes), or pass --no-manifest to index the files as "
                             "they are")
    metas = {p: _load_sidecar(p) for p in sidecars}
    counts = {tuple(m.get("shard") or (0, 1))[1] for m in metas.values()}
    if len(counts) != 1:
        raise InputError(out_dir, f"holds sidecars of different shardings ({', '.join(p.name for p in sidecars)})",
                         fix="keep the files of one encoding only")
    count = counts.pop()
    by_shard = {tuple(m.get("shard") or (0, 1))[0]: (p, m) for p, m in metas.items()}
    missing = [i for i in range(count) if i not in by_shard]
    if missing:
        i = missing[0]
        raise InputError(out_dir, f"shard {i}/{count} is missing ({len(missing)} of {count} shards missing: no "
                                  f"metadata.shard-{i}-of-{count}.json)",
                         fix=f"run python -m encode ... --shard {i}/{count} --output <dir> on its machine and copy "
                             f"that directory's files here")
    first_path, first = by_shard[0]
    listed: dict[str, dict] = {}
    for i, (path, meta) in sorted(by_shard.items()):
        if "part_records" not in meta:
            raise InputError(path, "written by an older kit (no part records)", fix="encode the corpus again")
        for key in _SHARED_KEYS:
            if meta.get(key) != first.get(key):
                raise InputError(path, f"{key}={meta.get(key)!r} differs from {first_path.name}'s {first.get(key)!r}",
                                 fix="every shard must be encoded with the same model and settings")
        for part in meta["parts"]:
            if part in listed:
                raise InputError(path, f"{part} is listed by two shards", fix="keep the files of one encoding only")
            listed[part] = meta["part_records"][part]
    present = {p.name for p in out_dir.iterdir() if p.is_file() and p.name.endswith((".jsonl", ".jsonl.gz"))}
    absent, extra = sorted(set(listed) - present), sorted(present - set(listed))
    if absent:
        raise InputError(out_dir / absent[0], f"missing ({len(absent)} listed part(s) absent)",
                         fix="copy every part of every shard into this folder, or re-run the encode command")
    if extra:
        raise InputError(out_dir / extra[0], "is not a part of this encoding (no sidecar lists it)",
                         fix="remove it, or encode into an empty folder")
    for part, record in listed.items():
        if file_sha256(out_dir / part) != record.get("sha256"):
            raise InputError(out_dir / part, "differs from the part its encoding wrote (changed after encoding)",
                             fix="delete it and re-run the encode command, which rewrites it")
    settings = {k: first.get(k) for k in _SHARED_KEYS}
    return {"documents": sum(r["docs"] for r in listed.values()),
            "empty_documents": sum(r["empty"] for r in listed.values()), "parts": len(listed), "shards": count,
            "settings": settings,
            "fingerprint": digest({"settings": settings, "parts": sorted((p, r["sha256"]) for p, r in listed.items())})}


def check_inputs(out_dir: PathLike, docs: Iterable[DocLike]) -> dict:
    """:func:`check_complete`, and every part holds the documents of ``docs`` at its position (ids and texts): an
    encoding made elsewhere (shards copied from other machines) is the encoding of *this* corpus. Returns what
    :func:`check_complete` returns."""
    done = check_complete(out_dir)
    records: dict[str, dict] = {}
    for path in sorted(Path(out_dir).glob("metadata*.json")):
        records.update(_load_sidecar(path).get("part_records") or {})
    seen = set()
    for k, part in enumerate(_chunks(docs, done["settings"]["part_size"])):
        name = part_name(k)
        if name not in records:
            raise InputError(Path(out_dir), f"no {name}: the corpus has more documents than this encoding",
                             fix="encode this corpus (python -m encode ... --output <this folder>)")
        if records[name]["inputs"] != part_inputs(part):
            raise InputError(Path(out_dir) / name, "holds other documents than this corpus at its position",
                             fix="encode this corpus into the folder (its parts are re-encoded as needed)")
        seen.add(name)
    extra = sorted(set(records) - seen)
    if extra:
        raise InputError(Path(out_dir) / extra[0], "is beyond the end of this corpus", fix="encode this corpus")
    return done


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and count >= 1 and 0 <= index < count):
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, not {shard!r}")
    return index, count


_RESUME_KEYS = ("model", "model_fingerprint", "encoding", "activation", "max_length", "dtype", "device", "factor",
                "part_size", "shard")
#: Settings that every shard of one encoding shares (all of :data:`_RESUME_KEYS` but the shard itself).
_SHARED_KEYS = tuple(k for k in _RESUME_KEYS if k != "shard")


def _load_sidecar(path: Path) -> dict | None:
    if not path.exists():
        return None
    meta = load_json(path, fix="delete this sidecar and the vectors beside it, or write elsewhere")
    if not isinstance(meta, dict):
        raise InputError(path, "not a JSON object", fix="delete this sidecar and the vectors beside it")
    return meta


def _chunks(docs: Iterable[DocLike], size: int) -> Iterator[list[DocLike]]:
    it = iter(docs)
    while part := list(itertools.islice(it, size)):
        yield part
