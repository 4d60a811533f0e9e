"""One clear line for bad input, never a traceback.

Readers raise :class:`InputError` naming the file, the line and the fix; every command-line entry point
wraps its ``main`` with :func:`cli`, which prints the error on one line and exits with status 2. An operating-system
failure that reaches it (disk full, no permission) is reported the same way, naming its path
(:func:`os_fault`). Ctrl-C (SIGINT) of a command stops it within moments, on one line, as interrupted
(:func:`interrupted`). What a command prints also goes to a log file under ``work/logs`` (:mod:`kit.log`).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import os
import signal
import sys
import threading
from pathlib import Path

from kit.log import command_log

EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141
"""The status of a command whose output pipe closed (128 + SIGPIPE, what a shell reports for one killed by it)."""

#: Write failures caused by the storage rather than by the data.
WRITE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


class InputError(Exception):
    """Bad input at a known place. ``str()`` is the single line shown to the user."""

    def __init__(self, path: str | Path | None, message: str, line: int | None = None, fix: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        self.fix = fix
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"error: {where}{self.message}{fix}"


def os_fault(path: str | Path | None, exc: OSError) -> InputError:
    """An :class:`InputError` for an operating-system failure on ``path`` (its own ``filename`` when it has one)."""
    where = path if path is not None else exc.filename
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return InputError(where, "no space left on the device", fix="free disk space, or point --out / KIT_WORK "
                                 "to a larger disk and run again (what was already written is intact)")
    if code == errno.EFBIG:
        return InputError(where, "file too large for this file system or the process's file-size limit",
                          fix="raise the limit (ulimit -f) or write to another disk")
    if code == errno.EROFS:
        return InputError(where, "read-only file system", fix="write to a writable folder (--out or KIT_WORK)")
    if code in (errno.EACCES, errno.EPERM):
        return InputError(where, "permission denied", fix="make it writable, or choose another folder (--out or KIT_WORK)")
    if code == errno.ENOENT:
        return InputError(where, "not found", fix="check the path")
    if code == errno.EISDIR:
        return InputError(where, "is a directory, not a file", fix="give a file path")
    if code == errno.ENOTDIR:
        return InputError(where, "a parent of this path is a file, not a directory", fix="check the path")
    return InputError(where, exc.strerror or str(exc), fix="check the path and the disk")


INTERRUPTED = ("interrupted (Ctrl-C): what was complete is kept (fix: run the same command again; it resumes from "
               "there)")
GRACE_SECONDS = 2.0
"""After Ctrl-C, how long a command may spend in its ``finally`` blocks and exit handlers before it ends anyway: what
a killed run leaves resumes too (README, "What the kit guarantees")."""
_told = threading.Lock()  # held once INTERRUPTED is printed


def _on_sigint(signum, frame) -> None:
    """A command's SIGINT handler: start the grace period, then raise KeyboardInterrupt as Python's own does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C ends it at once
    deadline = threading.Timer(GRACE_SECONDS, _end)
    deadline.daemon = True
    deadline.start()
    raise KeyboardInterrupt


def _tell() -> None:
    """Print :data:`INTERRUPTED` on stderr, once (a closed stderr is no reason to stay)."""
    if _told.acquire(blocking=False):
        with contextlib.suppress(Exception):
            print(INTERRUPTED, file=sys.stderr, flush=True)


def _end() -> None:
    """Die of SIGINT, as a shell expects of an interrupted program (status 130; a loop in a script stops too), having
    said so. The interpreter's teardown is skipped: freeing torch and its neighbours took seconds, and nothing of it
    is needed to resume."""
    _tell()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.kill(os.getpid(), signal.SIGINT)
    os._exit(128 + signal.SIGINT)  # were SIGINT blocked


def interrupted() -> None:
    """End a command that Ctrl-C interrupted, its ``finally`` blocks run (outputs whole or absent, locks released):
    one line on stderr, the exit handlers (Anserini servers end), then :func:`_end`."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _tell()
    atexit._run_exitfuncs()
    _end()


def cli(main):
    """Decorate a ``main(argv=None) -> int | None``: InputError becomes one line on stderr and exit code 2; Ctrl-C of
    a command run as ``python -m`` ends it at once (:func:`interrupted`) and what it prints is also logged
    (:func:`kit.log.command_log`); called from Python, it raises as usual and logs nothing."""

    command = main.__module__ == "__main__"  # run as python -m, not called from Python (a test, another command)

    @functools.wraps(main)
    def wrapper(argv=None):
        if command and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
        with command_log() if command else contextlib.nullcontext():
            return _run(main, argv, command)

    return wrapper


def _run(main, argv, command: bool):
    """``main(argv)``, its InputError or OSError one line on stderr (exit 2), Ctrl-C of a command ended at once."""
    try:
        return main(argv) or 0
    except KeyboardInterrupt:
        if not command:
            raise
        interrupted()
    except InputError as err:
        print(err.format(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as a shell tool does on SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot raise again
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # the environment (disk full, permissions) rather than a kit bug: one line too
        print(os_fault(None, exc).format(), file=sys.stderr)
        return EXIT_BAD_INPUT
