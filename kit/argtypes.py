"""argparse ``type=`` validators: a bad number is an argparse usage error (one line, exit 2), never a traceback."""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``error: <prog>: <message> (fix: ...)``, exit 2), like every other
    error of the kit; ``--help`` still prints the full usage."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (fix: see {self.prog} --help)\n")
