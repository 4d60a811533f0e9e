"""One clear line for bad input, never a traceback.

Readers raise :class:`InputError` naming the file, the line and the fix; every command-line entry point
wraps its ``main`` with :func:`cli`, which prints the error on one line and exits with status 2. An operating-system
failure that reaches it (disk full, no permission) is reported the same way, naming its path
(:func:`kit.io.os_fault`).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


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


def cli(main):
    """Decorate a ``main(argv=None) -> int | None``: InputError becomes one line on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv) or 0
        except InputError as err:
            print(err.format(), file=sys.stderr)
            return EXIT_BAD_INPUT
        except OSError as exc:  # the environment (disk full, permissions) rather than a kit bug: one line too
            from kit.io import os_fault

            print(os_fault(None, exc).format(), file=sys.stderr)
            return EXIT_BAD_INPUT

    return wrapper
