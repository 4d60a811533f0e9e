"""Content fingerprints: what a cached artifact is keyed by, so that a cache hit is provably the same inputs.

Every artifact the kit caches under ``work/`` (document vectors, indexes, query vectors, runs, IDF tables, trained
models, training files) is named by a key derived from a description of *everything it depends on*: the input
files' bytes, the model's weights, config and tokenizer, the recipe fields it uses, and the precision and device
where they change the numbers. The description itself is stored beside the artifact (:mod:`kit.manifest`) with the
SHA-256 of the artifact's own files, and a cached artifact is reused only when the stored description equals the
current one and its files still have those hashes.

Hashes are SHA-256. File digests are memoised per process only, by (path, size, mtime): a run hashes each file
once, and the next run hashes it again (an edit that keeps size and modification time is still seen).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from kit.errors import InputError

_BLOCK = 1 << 20
_file_memo: dict[tuple[str, int, int], str] = {}

#: Files of a model directory that never change its numbers (training logs, run times, model cards).
MODEL_IGNORED = frozenset({"log_history.json", "kit_model.json", "timing.json", "README.md", ".gitattributes"})
#: Sub-directories of a model directory that are not part of the model (the trainer's checkpoints).
MODEL_IGNORED_DIRS = frozenset({"checkpoints", ".cache", ".git"})


def canonical(obj: Any) -> str:
    """``obj`` as canonical JSON (sorted keys, no spaces); non-finite floats are refused, paths become strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_plain)


def _plain(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot fingerprint a {type(obj).__name__}")


def digest(obj: Any) -> str:
    """SHA-256 (hex) of ``obj``'s canonical JSON: the key of a description."""
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()


def short(key: str, n: int = 12) -> str:
    """The first ``n`` hex digits of a key, as used in artifact names."""
    return key[:n]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (memoised in this process by path, size and modification time)."""
    path = Path(path)
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _file_memo:
        sha = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(_BLOCK), b""):
                sha.update(block)
        _file_memo[memo] = sha.hexdigest()
    return _file_memo[memo]


def text_file_sha256(path: str | os.PathLike) -> str:
    """:func:`file_sha256` of a UTF-8 text file, checking the encoding on the way (one pass over the bytes): a
    non-UTF-8 input is an InputError naming its line before any model loads. ``*.gz`` files are hashed unchecked."""
    path = Path(path)
    if path.suffix == ".gz":
        return file_sha256(path)
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo in _file_memo:
        return _file_memo[memo]
    import codecs

    sha, decoder, lines = hashlib.sha256(), codecs.getincrementaldecoder("utf-8")(), 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            sha.update(block)
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                line = lines + block.count(b"\n", 0, max(exc.start, 0)) + 1
                raise InputError(path, "not UTF-8 text", line, fix="save the file as UTF-8") from None
            lines += block.count(b"\n")
    _file_memo[memo] = sha.hexdigest()
    return _file_memo[memo]


def files_sha256(paths: Iterable[str | os.PathLike], root: str | os.PathLike | None = None) -> str:
    """One digest over several files: their names (relative to ``root`` when given) and contents, in sorted order."""
    entries = []
    for path in paths:
        path = Path(path)
        name = str(path.relative_to(root)) if root is not None else path.name
        entries.append((name, file_sha256(path)))
    return digest(sorted(entries))


def directory_files(root: str | os.PathLike, ignored: frozenset[str] = frozenset(),
                    ignored_dirs: frozenset[str] = frozenset()) -> list[Path]:
    """Regular files under ``root`` (recursively, sorted), without ``ignored`` names and ``ignored_dirs``."""
    root = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ignored_dirs and not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if f not in ignored and not f.startswith(".")]
    return out


def model_fingerprint(path: str | os.PathLike) -> str:
    """Digest of a model directory: weights, config, tokenizer files, idf.json, sentence-transformers modules.

    Logs, timings, model cards and checkpoints are left out (:data:`MODEL_IGNORED`, :data:`MODEL_IGNORED_DIRS`):
    two bit-identical trainings have the same fingerprint.
    """
    root = Path(path)
    files = directory_files(root, MODEL_IGNORED, MODEL_IGNORED_DIRS)
    if not files:
        raise FileNotFoundError(f"{root}: no model files")
    return files_sha256(files, root)


#: Files that define a Hugging Face tokenizer (whichever of them a model ships).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "merges.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


def tokenizer_fingerprint(path: str | os.PathLike) -> str:
    """Digest of a model directory's tokenizer files (what tokenization-only artifacts, e.g. IDF tables, depend on)."""
    root = Path(path)
    files = [root / name for name in TOKENIZER_FILES if (root / name).is_file()]
    if not files:
        raise FileNotFoundError(f"{root}: no tokenizer files")
    return files_sha256(files, root)


def stream_sha256(records: Iterable[Iterable[str]]) -> str:
    """Digest of a stream of string tuples (e.g. ``(doc_id, text)``), each field and record delimited."""
    sha = hashlib.sha256()
    for record in records:
        for field in record:
            data = field.encode("utf-8")
            sha.update(len(data).to_bytes(8, "little"))
            sha.update(data)
        sha.update(b"\x1e")
    return sha.hexdigest()


def mapping_sha256(table: Mapping[str, float]) -> str:
    """Digest of a ``{token: weight}`` table (an IDF table); non-finite weights are refused."""
    for key, value in table.items():
        if not math.isfinite(value):
            raise ValueError(f"weight of {key!r} is {value}")
    return digest(sorted(table.items()))
