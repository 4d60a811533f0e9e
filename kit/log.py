"""A command's log file: what a ``python -m`` command prints, also appended to ``work/logs/<module>-<UTC time>.log``.

:func:`kit.errors.cli` opens it for every command run as ``python -m`` (:func:`command_log`): stdout and stderr go
on to the terminal as before and, line by line, into the file (its one-line error included). A progress bar redraws
its line with carriage returns; the file keeps only the last state of each line, so a bar leaves one line, not
thousands. The file's path is printed once at the start on a terminal (``log: work/logs/eval.reproduce-...log``),
never into a captured or piped stream, whose readers expect the command's own output only.

The folder is ``$KIT_WORK/logs`` (:func:`kit.paths.work_dir`); the newest :data:`KEEP` logs of each command are
kept. ``KIT_LOG=0`` writes none. A log that cannot be written (a read-only or full disk) is given up without a word:
it never fails the command. Output that child processes write straight to the terminal (Anserini's Java) is not in
it; in a ``torchrun`` job only the first process writes one.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Iterator, TextIO

from kit.paths import work_dir

#: How many logs of one command are kept (older ones are removed when a new one starts).
KEEP = 50


class LogFile:
    """The log a command appends to; lines written after :meth:`close` or a failed write are dropped."""

    def __init__(self, path: Path, fh: TextIO) -> None:
        self.path, self._fh = path, fh
        self._lock = threading.Lock()

    def write_line(self, line: str) -> None:
        with self._lock:
            if self._fh is None:
                return
            try:
                self._fh.write(line + "\n")
                self._fh.flush()
            except (OSError, ValueError):  # a full or read-only disk: the command goes on without its log
                self._drop()

    def _drop(self) -> None:
        fh, self._fh = self._fh, None
        with contextlib.suppress(OSError, ValueError):
            fh.close()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._drop()


class Tee(io.TextIOBase):
    """A text stream writing to ``stream`` as is and, by whole lines, to a :class:`LogFile`.

    A carriage return starts the line over (a progress bar's redraw), so only its last text is logged; blank lines
    are not logged. Everything else (``isatty``, ``fileno``, ``encoding``) is ``stream``'s.
    """

    def __init__(self, stream: TextIO, log: LogFile) -> None:
        self.stream, self.log = stream, log
        self._line = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        with self._lock:
            *lines, self._line = (self._line + text).split("\n")
        for line in lines:
            self._log(line)
        return written

    def _log(self, line: str) -> None:
        line = line.rsplit("\r", 1)[-1].rstrip()
        if line:
            self.log.write_line(line)

    def flush(self) -> None:
        self.stream.flush()

    def finish(self) -> None:
        """Log an unterminated last line."""
        with self._lock:
            line, self._line = self._line, ""
        self._log(line)

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return self.stream.encoding

    @property
    def errors(self) -> str | None:
        return getattr(self.stream, "errors", None)

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def command_name() -> str:
    """The module a ``python -m`` command runs (``eval.reproduce``; ``train`` for ``python -m train``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = spec.name if spec is not None else Path(sys.argv[0]).stem
    return name.removesuffix(".__main__")


def shown(path: Path) -> str:
    """``path`` relative to the current folder when it lies inside it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def open_log(module: str, folder: Path | None = None) -> LogFile | None:
    """A new ``<folder>/<module>-<UTC time>.log`` (folder: ``work_dir()/logs``), or None when it cannot be made."""
    folder = folder if folder is not None else work_dir() / "logs"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for suffix in ("", *(f"-{i}" for i in range(2, 100))):  # two runs in the same second get two files
            path = folder / f"{module}-{stamp}{suffix}.log"
            try:
                fh = open(path, "x", encoding="utf-8", errors="replace")
            except FileExistsError:
                continue
            _prune(folder, module, path)
            return LogFile(path, fh)
    except OSError:
        pass
    return None


def _prune(folder: Path, module: str, current: Path) -> None:
    """Remove all but the newest :data:`KEEP` logs of ``module`` (names sort by time)."""
    logs = sorted(p for p in folder.glob(f"{module}-*.log") if p.name[len(module) + 1:][:1].isdigit())
    for old in logs[:-KEEP]:
        if old != current:
            with contextlib.suppress(OSError):
                old.unlink()


@contextlib.contextmanager
def command_log(module: str | None = None) -> Iterator[LogFile | None]:
    """Copy ``sys.stdout`` and ``sys.stderr`` into a new log while the block runs (see the module's docstring)."""
    if os.environ.get("KIT_LOG", "1") == "0" or os.environ.get("RANK", "0") != "0":
        yield None
        return
    log = open_log(module or command_name())
    if log is None:
        yield None
        return
    out, err = sys.stdout, sys.stderr
    if err.isatty():
        print(f"log: {shown(log.path)}", file=err, flush=True)
    tees = [Tee(out, log), Tee(err, log)]
    sys.stdout, sys.stderr = tees
    try:
        yield log
    except Exception:  # a crash: its traceback, which Python prints once the streams are restored, goes in too
        for line in traceback.format_exc().splitlines():
            log.write_line(line)
        raise
    finally:
        for tee in tees:
            with contextlib.suppress(Exception):
                tee.flush()
            tee.finish()
        sys.stdout, sys.stderr = out, err
        log.close()
