"""Reading text inputs strictly: UTF-8 (plain or gzip), JSON without NaN or Infinity, JSON Lines, YAML.

Every reader raises :class:`~kit.errors.InputError` naming the file and, where there is one, the line: a bad byte
(:class:`TextReader`, :func:`open_text`, :func:`read_text`), malformed or non-finite JSON (:func:`load_json`,
:func:`read_jsonl`), invalid YAML (:func:`read_yaml`). :mod:`kit.io` re-exports them beside the writers.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from pathlib import Path
from typing import Iterator

from kit.errors import InputError, os_fault

class TextReader:
    """Lines of a UTF-8 text file (plain or gzip), decoded strictly: a bad byte is an InputError naming the line.

    Iterating yields lines with their line ends (``\\r\\n`` kept, as files written on Windows have them); ``read()``
    returns the whole text.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self._fh = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
        except OSError as exc:
            raise os_fault(path, exc) from None
        self.line = 0

    def _decode(self, data: bytes, first_line: int) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = first_line + data.count(b"\n", 0, exc.start)
            raise InputError(self.path, f"not UTF-8 text (byte 0x{data[exc.start]:02x})", line,
                             fix="save the file as UTF-8") from None

    def __iter__(self) -> Iterator[str]:
        try:
            for raw in self._fh:
                self.line += 1
                yield self._decode(raw, self.line)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(self.path, f"unreadable ({exc})", self.line or None,
                             fix="re-create the file (a truncated or corrupt download?)") from None

    def read(self) -> str:
        try:
            data = self._fh.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(self.path, f"unreadable ({exc})", fix="re-create the file") from None
        return self._decode(data, 1)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "TextReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_text(path: str | Path) -> TextReader:
    """Open a UTF-8 text file for reading, transparently gunzipping ``*.gz`` (see :class:`TextReader`)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found", fix="check the path")
    if path.is_dir():
        raise InputError(path, "is a directory, not a file", fix="give the file's path")
    return TextReader(path)


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file (InputError naming the file, and the line of a bad byte)."""
    with open_text(path) as fh:
        return fh.read()


def strict_json_constant(name: str):
    """``json.loads(..., parse_constant=...)``: NaN and infinities are not numbers a result may hold."""
    raise ValueError(f"{name} is not a finite number")


_NON_FINITE = re.compile(r"(?<![\w\"])-?(NaN|Infinity)(?![\w\"])")


def load_json(path: str | Path, fix: str | None = None):
    """Parse a JSON file strictly (no NaN or Infinity); InputError naming the file and line otherwise."""
    text = read_text(path)
    try:
        return json.loads(text, parse_constant=strict_json_constant)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", exc.lineno, fix=fix) from None
    except ValueError as exc:  # NaN / Infinity
        match = _NON_FINITE.search(text)
        line = text.count("\n", 0, match.start()) + 1 if match else None
        raise InputError(path, str(exc), line, fix="write finite numbers (a NaN or infinite metric is a failed "
                                                   "measurement, not a result)") from None


def read_jsonl(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)``; a malformed line, a non-finite number or a missing field raises InputError
    naming the line."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line, parse_constant=strict_json_constant)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", lineno,
                                 fix="each line must be one JSON object") from None
            except ValueError as exc:
                raise InputError(path, str(exc), lineno, fix="write finite numbers") from None
            if not isinstance(rec, dict):
                raise InputError(path, "line is not a JSON object", lineno, fix="each line must be one JSON object")
            for field in required:
                if field not in rec:
                    raise InputError(path, f"missing field {field!r}", lineno,
                                     fix=f"every record needs the fields {', '.join(required)}")
            yield lineno, rec


def read_yaml(path: str | Path, what: str = "file", fix: str | None = None):
    """``(parsed YAML, its text)``; a missing file, bad UTF-8 or a syntax error is an InputError naming the file
    (and line)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} not found", fix=fix)
    text = read_text(path)
    try:
        return yaml.safe_load(text), text
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InputError(path, f"invalid YAML: {exc.problem}", line) from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"invalid YAML: {exc}") from None
