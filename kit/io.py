"""Atomic file output and line-numbered JSONL reading."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from kit.errors import InputError


def open_text(path: str | Path) -> IO[str]:
    """Open a text file for reading, transparently gunzipping ``*.gz``."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found", fix="check the path")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    A killed or failing writer leaves no file under the final name, so a file that exists is complete.
    ``*.gz`` targets are gzip-compressed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with contextlib.ExitStack() as stack:
            if path.suffix == ".gz":
                # mtime=0 and no file name in the header: the same content gives the same bytes (results diff cleanly)
                base = stack.enter_context(open(tmp, "wb"))
                raw = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=base, mtime=0))
                fh = raw if "b" in mode else stack.enter_context(io.TextIOWrapper(raw, encoding=encoding))
            else:
                fh = stack.enter_context(open(tmp, mode, encoding=None if "b" in mode else encoding))
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_dir(path: str | Path) -> "contextlib.AbstractContextManager[Path]":
    """Build a directory under a temporary name and rename it into place on success."""
    return _atomic_dir(Path(path))


@contextlib.contextmanager
def _atomic_dir(path: Path):
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_jsonl(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)``; a malformed line or a missing field raises InputError naming the line."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", lineno,
                                 fix="each line must be one JSON object") from None
            if not isinstance(rec, dict):
                raise InputError(path, "line is not a JSON object", lineno, fix="each line must be one JSON object")
            for field in required:
                if field not in rec:
                    raise InputError(path, f"missing field {field!r}", lineno,
                                     fix=f"every record needs the fields {', '.join(required)}")
            yield lineno, rec


def write_json(path: str | Path, obj) -> None:
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def read_yaml(path: str | Path, what: str = "file", fix: str | None = None):
    """``(parsed YAML, its text)``; a missing file or a syntax error is an InputError naming the file (and line)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, f"{what} not found", fix=fix) from None
    try:
        return yaml.safe_load(text), text
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InputError(path, f"invalid YAML: {exc.problem}", line) from None
