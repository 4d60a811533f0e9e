"""Anserini's Java tools as the index calls them: the JVM's heap, a call whose log is checked for the failures
Anserini exits with status 0 after, and a Lucene index's statistics.

Each call runs the jar through :func:`kit.java.run_anserini` (a fresh JVM, or the kit's Anserini server).
"""

from __future__ import annotations

import numbers
import os
import re
import tempfile
from pathlib import Path

from kit.errors import InputError
from kit.java import run_anserini

DEFAULT_HEAP = "4g"

_HEAP_RE = re.compile(r"^([1-9][0-9]*)([kKmMgG]?)$")
_STATS_KEYS = {"documents": "documents", "documents (non-empty)": "non_empty_documents",
               "unique terms": "unique_terms", "total terms": "total_terms"}


# ---- options ------------------------------------------------------------------------------------------------------

def java_heap(heap: str | None = None) -> str:
    """The JVM's maximum heap (``-Xmx``): ``heap``, else ``$KIT_JAVA_HEAP``, else 4g; e.g. ``512m``, ``8g``."""
    value = heap or os.environ.get("KIT_JAVA_HEAP") or DEFAULT_HEAP
    if not _HEAP_RE.match(value):
        raise ValueError(f"Java heap must look like 512m or 8g, got {value!r}")
    return value


def _heap_mb(heap: str) -> int:
    number, unit = _HEAP_RE.match(heap).groups()
    scale = {"": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024}[unit.lower()]
    return int(int(number) * scale)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ---- running Anserini ---------------------------------------------------------------------------------------------

def _log_problems(log: str) -> list[str]:
    """Lines of an Anserini log that signal a failure Anserini did not turn into a non-zero exit: its own
    ``Error:`` messages, ``ERROR`` log records, and the head line of every Java stack trace."""
    lines = log.splitlines()
    problems = []
    for i, line in enumerate(lines):
        if re.match(r"(Error: |Exception in thread )", line) or " ERROR " in line:
            problems.append(line.strip())
        elif re.match(r"\s+at [\w.$<>/]+\(", line) and i and not re.match(r"\s+(at |\.\.\. \d+ more)", lines[i - 1]):
            problems.append(lines[i - 1].strip())  # e.g. "org.apache.lucene...$TooManyClauses: maxClauseCount ..."
    return list(dict.fromkeys(problems))


def _anserini(main_class: str, args: list, log_path: Path, heap: str | None) -> str:
    """Run Anserini, return its log; raise RuntimeError when it failed, even with exit status 0."""
    run_anserini(main_class, [str(a) for a in args], log_path, heap=java_heap(heap))
    log = Path(log_path).read_text()
    problems = _log_problems(log)
    if problems:
        shown = "\n".join(problems[:10])
        raise RuntimeError(f"Anserini {main_class} reported errors (log: {log_path}):\n{shown}")
    return log


def _is_lucene_index(path: Path) -> bool:
    return path.is_dir() and any(path.glob("segments_*"))


def _require_index(index_dir) -> Path:
    index_dir = Path(index_dir)
    if not _is_lucene_index(index_dir):
        raise InputError(index_dir, "not a Lucene index", fix="build it first with `python -m index build-...`")
    return index_dir


# ---- index statistics ---------------------------------------------------------------------------------------------

def index_stats(index_dir, heap: str | None = None) -> dict:
    """Anserini's ``IndexReaderUtils -stats``: documents, non-empty documents, unique terms, total terms.

    For an impact index ``total_terms`` is the sum of all document weights, so equal statistics mean the same
    postings were indexed -- the exact check Anserini's regressions make before scoring. Lucene knows
    ``unique_terms`` only for a single-segment index (build with ``optimize=True``); otherwise it is ``None``.
    """
    index_dir = _require_index(index_dir)
    with tempfile.TemporaryDirectory(prefix="kit-stats.") as tmp:
        log = _anserini("index.IndexReaderUtils", ["-index", index_dir, "-stats"], Path(tmp, "stats.log"), heap)
    stats = {}
    for line in log.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in _STATS_KEYS:
            value = value.strip().replace(",", "")
            number = -1 if value == "null" else int(value)  # an index without terms knows no term count
            stats[_STATS_KEYS[key.strip()]] = None if number < 0 else number  # Lucene: -1 = not known
    if set(stats) != set(_STATS_KEYS.values()):
        raise RuntimeError(f"could not read index statistics of {index_dir} from IndexReaderUtils output")
    return stats
