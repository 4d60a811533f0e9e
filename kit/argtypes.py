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


def seed_list(text: str) -> tuple[int, ...]:
    """``42,43,44``: distinct integer seeds >= 0 (``--seeds``)."""
    try:
        seeds = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: seeds must be distinct integers >= 0")
    return seeds


def add_runner_options(parser: argparse.ArgumentParser, *, seeds: str | None = None, device: bool = True,
                       listed: str = "the conditions and their commands",
                       planned: str = "the models to train or reuse, run nothing") -> None:
    """The options every results runner (``eval.study``, ``eval.ablation``) shares: ``--seeds``
    (when ``seeds``, its help), ``--out``, ``--update``, ``--device`` (when ``device``), ``--list-conditions`` (prints
    ``listed``) and ``--dry-run`` (prints ``planned``)."""
    if seeds is not None:
        parser.add_argument("--seeds", type=seed_list, default=None, help=seeds)
    parser.add_argument("--out", default=None, help="results folder (default: work/results; --update: results/)")
    parser.add_argument("--update", action="store_true", help="write the stored reference in results/")
    if device:
        parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--list-conditions", action="store_true", help=f"print {listed}")
    parser.add_argument("--dry-run", action="store_true", help=f"print {planned}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors on one line (``error: <prog>: <message> (fix: ...)``, exit 2), like every other
    error of the kit; ``--help`` still prints the full usage."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (fix: see {self.prog} --help)\n")
