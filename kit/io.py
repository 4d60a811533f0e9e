"""Safe file I/O: atomic outputs, exclusive output folders, strict UTF-8 input, one-line environment faults.

- :func:`atomic_write` / :func:`atomic_dir` build an output under a hidden temporary name and rename it into place
  only when it is complete: a killed or failing writer never leaves a partial file under the final name, and an
  existing file is replaced only by a complete one. Temporaries carry their writer's host and pid, so the next
  writer in the same folder removes those whose process is gone (:func:`clean_stale`).
- :func:`exclusive` holds an advisory lock on an output: a second process writing the same output stops at once
  with one line saying who holds it (the lock dies with its holder, so a killed run never blocks the next one).
- :func:`open_text` and :func:`read_yaml` decode strictly as UTF-8 and name the file and line of a bad byte
  (:mod:`kit.reading`, re-exported here).
- a storage failure while writing (disk full, read-only folder, no permission) becomes an
  :class:`~kit.errors.InputError` naming the path and the fix (:func:`~kit.errors.os_fault`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import secrets
import shutil
import socket
import time
import zlib
from pathlib import Path
from typing import Iterator

from kit.errors import WRITE_FAULTS, InputError, os_fault
from kit.reading import (TextReader, load_json, open_text, read_jsonl, read_text, read_yaml,  # noqa: F401
                         strict_json_constant)

_HOST = format(zlib.crc32(socket.gethostname().encode()), "08x")
_TEMP = re.compile(r"^\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[0-9a-f]+\.tmp$")
_cleaned: set[str] = set()
_held: dict[str, int] = {}


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_fault(path, exc) from None


# ---- temporaries --------------------------------------------------------------------------------------------------

def temp_name(target: Path, label: str = "") -> Path:
    """A hidden temporary path beside ``target`` that :func:`clean_stale` can attribute to this process."""
    label = f".{label}" if label else ""
    return target.parent / f".{target.name}{label}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: str | Path) -> list[Path]:
    """Remove the temporaries in ``folder`` left by dead processes of this host (once per folder and process)."""
    folder = Path(folder)
    key = str(folder.resolve()) if folder.exists() else str(folder)
    if key in _cleaned or not folder.is_dir():
        return []
    _cleaned.add(key)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            shutil.rmtree(path) if entry.is_dir(follow_symlinks=False) else path.unlink()
            removed.append(path)
    return removed


# ---- atomic outputs -----------------------------------------------------------------------------------------------

def _is_write_fault(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in WRITE_FAULTS


class OutputGroup:
    """Outputs written under temporary names and renamed into place together, only once every one is complete
    (:func:`atomic_outputs`): a table's CSV, Markdown and JSON never come from two different runs."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    @contextlib.contextmanager
    def open(self, path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
        """A file handle on a temporary file beside ``path`` (``*.gz``: gzip, no timestamp); renamed at commit."""
        path = Path(path)
        _mkdir(path.parent)
        clean_stale(path.parent)
        tmp = temp_name(path)
        binary = path.suffix == ".gz" or "b" in mode
        try:
            with contextlib.ExitStack() as stack:
                try:
                    base = stack.enter_context(open(tmp, "wb" if binary else mode, encoding=None if binary else encoding))
                except OSError as exc:
                    raise os_fault(path, exc) from None
                if path.suffix == ".gz":
                    raw = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=base, mtime=0))
                    fh = raw if "b" in mode else stack.enter_context(io.TextIOWrapper(raw, encoding=encoding))
                else:
                    fh = base
                yield fh
            os.chmod(tmp, 0o666 & ~_umask())  # a plain open() would give the file this mode
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if _is_write_fault(exc):
                raise os_fault(path, exc) from None
            raise
        self._pending.append((tmp, path))

    def commit(self) -> None:
        for tmp, path in self._pending:
            os.replace(tmp, path)
        self._pending = []

    def discard(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._pending = []


@contextlib.contextmanager
def atomic_outputs():
    """A group of outputs (:class:`OutputGroup`) that all appear, or none does."""
    group = OutputGroup()
    try:
        yield group
        group.commit()
    except BaseException:
        group.discard()
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    A killed or failing writer leaves no file under the final name, and an existing file is only ever replaced by
    a complete new one. ``*.gz`` targets are gzip-compressed (no timestamp: same content, same bytes). A storage
    failure (disk full, read-only, no permission) becomes an :class:`InputError` naming ``path``.
    """
    with atomic_outputs() as group, group.open(path, mode, encoding) as fh:
        yield fh


def check_writable(folder: str | Path) -> Path:
    """Create ``folder`` if needed and make sure files can be written in it (InputError naming it otherwise): a run
    finds an unwritable output before it spends minutes computing."""
    folder = Path(folder)
    _mkdir(folder)
    probe = temp_name(folder / "write-check")
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise os_fault(folder, exc) from None
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_dir(path: str | Path) -> "contextlib.AbstractContextManager[Path]":
    """Build a directory under a temporary name and rename it into place on success (an old one is replaced only
    then)."""
    return _atomic_dir(Path(path))


@contextlib.contextmanager
def _atomic_dir(path: Path):
    _mkdir(path.parent)
    clean_stale(path.parent)
    tmp = temp_name(path)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise os_fault(path, exc) from None
    try:
        yield tmp
        if path.exists():  # keep the old one until the new one is in place
            old = temp_name(path, "old")
            os.rename(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if _is_write_fault(exc):
            raise os_fault(path, exc) from None
        raise


@contextlib.contextmanager
def scratch_dir(beside: str | Path, label: str) -> Iterator[Path]:
    """A hidden temporary folder beside ``beside`` (same file system), removed afterwards (or by :func:`clean_stale`
    after a kill)."""
    beside = Path(beside)
    _mkdir(beside.parent)
    clean_stale(beside.parent)
    path = temp_name(beside, label)
    try:
        path.mkdir()
    except OSError as exc:
        raise os_fault(path, exc) from None
    try:
        yield path
    except BaseException as exc:
        if _is_write_fault(exc):
            raise os_fault(beside, exc) from None
        raise
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_json(path: str | Path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically; NaN and infinity are refused (they are not JSON)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    with atomic_write(path) as fh:
        fh.write(text + "\n")


# ---- exclusive outputs --------------------------------------------------------------------------------------------

def lock_path(output: str | Path) -> Path:
    """The lock file of an output (a hidden file beside it)."""
    output = Path(output)
    return output.parent / f".{output.name}.lock"


@contextlib.contextmanager
def exclusive(output: str | Path, what: str = "run"):
    """Hold an advisory lock on ``output`` (a file or folder) for the duration; InputError if another process holds
    it. The lock is released when the holder exits or is killed, and its file removed on a normal exit; nested
    calls on the same output are no-ops."""
    output = Path(output)
    path = lock_path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_fault(output, exc) from None
    key = str(path.parent.resolve() / path.name)
    if key in _held:
        yield
        return
    fd = _acquire(path, output, what)
    _held[key] = fd
    try:
        yield
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding it: a process that opened the old file re-checks (see _acquire)
        os.close(fd)


def _acquire(path: Path, output: Path, what: str) -> int:
    import fcntl
    import sys

    for _ in range(5):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise os_fault(output, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 500).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise InputError(output, f"is being written by another {what}: {holder}",
                             fix="wait for it to finish or stop it (a stopped or killed process releases the "
                                 "lock)") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file its previous holder removed while we opened it
            os.ftruncate(fd, 0)
            command = " ".join(sys.argv[:3])
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%H:%M:%S')} "
                         f"({command})".encode())
            return fd
        os.close(fd)
    raise InputError(output, f"could not lock it for this {what} (its lock file keeps changing)",
                     fix="make sure no other process writes here")
