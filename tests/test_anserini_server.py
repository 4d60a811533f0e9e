"""kit/java.py's Anserini server (KIT_ANSERINI_SERVER): many Anserini calls in one JVM, the same results as a JVM each.

The server must change how many JVMs start, never what they compute: the same index statistics, the same run files
byte for byte and the same logs (the kit reads Anserini's counters and errors from them) as a JVM per call.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import kit.java as java
from index.__main__ import main
from index.anserini import build_flat_index, build_impact_index, index_stats, search_bm25, search_impact
from tests.test_index import DOC_VECTORS, QUERY_VECTORS, write_vectors

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """`python -m index server` (what make setup runs) into a temporary folder, once for this module."""
    if shutil.which("javac") is None:
        pytest.skip("no javac on PATH: the server cannot be compiled here (a JVM per call is used)")
    folder = tmp_path_factory.mktemp("share") / "server"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KIT_SERVER_CLASSES", str(folder))
        assert main(["server"]) == 0 and (folder / "AnseriniServer.class").is_file()
        assert [p.name for p in folder.parent.iterdir()] == ["server"]  # no partial folder left
    return folder


@pytest.fixture
def server_env(compiled, monkeypatch):
    monkeypatch.setenv("KIT_SERVER_CLASSES", str(compiled))
    java.close_servers()
    yield monkeypatch
    java.close_servers()


def _everything(root: Path) -> dict:
    """Build, read and search an impact and a flat index: what a condition-seed asks of Anserini."""
    vectors = write_vectors(root / "vectors", DOC_VECTORS)
    impact = build_impact_index(vectors, root / "impact", threads=1, require_complete=False)
    search_impact(root / "impact", QUERY_VECTORS, root / "impact.trec", hits=10, threads=1)
    flat = build_flat_index([("d1", "sparse retrieval"), ("d2", "lucene impact scores"), ("d3", "sparse lucene")],
                            root / "flat", threads=1)
    search_bm25(root / "flat", {"q1": "sparse retrieval", "q2": "lucene"}, root / "flat.trec", hits=10, threads=1)
    keep = ("documents", "non_empty_documents", "unique_terms", "total_terms", "empty_documents", "input_documents")
    return {"impact": {k: impact[k] for k in keep}, "flat": {k: flat[k] for k in keep},
            "stats": index_stats(root / "impact"),
            "runs": [(root / "impact.trec").read_bytes(), (root / "flat.trec").read_bytes()],
            "log": (root / "impact" / "kit-build.log").read_text()}


def test_one_jvm_runs_every_call_with_the_same_results_as_a_jvm_each(server_env, tmp_path):
    starts = []
    real_run, real_popen = subprocess.run, subprocess.Popen
    server_env.setattr(java.subprocess, "run", lambda cmd, **kw: starts.append(("run", cmd)) or real_run(cmd, **kw))

    server_env.setenv("KIT_ANSERINI_SERVER", "0")
    each = _everything(tmp_path / "each")
    assert len(starts) == 7 and all(kind == "run" for kind, _ in starts)  # 2 builds, each with its stats, 2 searches, 1 stats
    starts.clear()

    server_env.setattr(java.subprocess, "Popen", lambda cmd, **kw: starts.append(("popen", cmd)) or real_popen(cmd, **kw))
    server_env.setenv("KIT_ANSERINI_SERVER", "1")
    one = _everything(tmp_path / "one")
    assert [kind for kind, _ in starts] == ["popen"] and starts[0][1][-1] == "AnseriniServer"
    assert one["impact"] == each["impact"] and one["flat"] == each["flat"] and one["stats"] == each["stats"]
    assert one["runs"] == each["runs"] and all(one["runs"])
    # the log the kit parses: Anserini's own lines, its final counters among them, captured per call
    for line in ("indexed:", "Total 3 documents indexed"):
        assert line in one["log"] and one["log"].count(line) == each["log"].count(line) == 1


def test_a_failed_call_is_reported_and_the_next_one_runs_in_the_same_jvm(server_env, tmp_path):
    server_env.setenv("KIT_ANSERINI_SERVER", "1")
    vectors = write_vectors(tmp_path / "vectors", DOC_VECTORS)
    build_impact_index(vectors, tmp_path / "impact", threads=1, require_complete=False)
    (server,) = java._servers.values()
    bad = write_vectors(tmp_path / "bad", DOC_VECTORS, extra_line='{"id": "bad", "vector": {')
    with pytest.raises(RuntimeError, match="reported errors"):  # Anserini logs the error and returns normally
        build_impact_index(bad, tmp_path / "bad-index", validate=False, require_complete=False)
    with pytest.raises(RuntimeError, match=r"exit 1"):  # main throws: its stack trace is the log
        java.run_anserini("index.IndexReaderUtils", ["-index", str(tmp_path / "missing"), "-stats"])
    search_impact(tmp_path / "impact", QUERY_VECTORS, tmp_path / "run.trec", hits=10, threads=1)
    assert (tmp_path / "run.trec").read_text() and list(java._servers.values()) == [server] and server.alive()


def test_a_server_that_died_is_replaced(server_env, tmp_path):
    server_env.setenv("KIT_ANSERINI_SERVER", "1")
    vectors = write_vectors(tmp_path / "vectors", DOC_VECTORS)
    build_impact_index(vectors, tmp_path / "impact", threads=1, require_complete=False)
    (first,) = java._servers.values()
    first._proc.kill()
    first._proc.wait()
    assert index_stats(tmp_path / "impact")["documents"] == len(DOC_VECTORS)
    (second,) = java._servers.values()
    assert second is not first and second.alive()


def test_the_modes(compiled, tmp_path, monkeypatch, capsys):
    java.close_servers()
    monkeypatch.setattr(java, "_told", False)
    monkeypatch.setenv("KIT_SERVER_CLASSES", str(tmp_path / "not-compiled"))
    vectors = write_vectors(tmp_path / "vectors", DOC_VECTORS)
    monkeypatch.setenv("KIT_ANSERINI_SERVER", "1")
    with pytest.raises(RuntimeError, match="not compiled.*make setup"):
        build_impact_index(vectors, tmp_path / "a", threads=1, require_complete=False)
    monkeypatch.setenv("KIT_ANSERINI_SERVER", "auto")  # said once, then a JVM per call
    build_impact_index(vectors, tmp_path / "b", threads=1, require_complete=False)
    index_stats(tmp_path / "b")
    assert capsys.readouterr().err.count("no compiled Anserini server") == 1 and not java._servers
    monkeypatch.setenv("KIT_ANSERINI_SERVER", "yes")
    with pytest.raises(ValueError, match="KIT_ANSERINI_SERVER must be one of 0, 1, auto"):
        build_impact_index(vectors, tmp_path / "c", threads=1, require_complete=False)
    assert java.server_classes() != compiled and "KIT_SERVER_CLASSES" in java.server_classes.__doc__


def test_make_runs_the_long_targets_with_the_server(tmp_path):
    dry = subprocess.run(["make", "-n", "-C", str(REPO), "ablation", "figures", "regime", "lilsr", "SCALE=smoke",
                          f"VENV={tmp_path / 'venv'}", "PY=true"], capture_output=True, text=True)
    commands = [line.strip() for line in dry.stdout.splitlines() if " -m eval." in line]
    assert len(commands) == 4 and all(line.startswith("KIT_ANSERINI_SERVER=auto ") for line in commands), dry.stdout


def test_relative_paths_resolve_where_python_is(server_env, tmp_path):
    server_env.setenv("KIT_ANSERINI_SERVER", "1")
    vectors = write_vectors(tmp_path / "vectors", DOC_VECTORS)
    for name in ("a", "b"):  # a JVM started in a resolves relative paths there: b gets its own
        (tmp_path / name).mkdir()
        server_env.chdir(tmp_path / name)
        build_impact_index(vectors, "index", threads=1, require_complete=False)
        search_impact("index", QUERY_VECTORS, "run.trec", hits=10, threads=1)
        assert (tmp_path / name / "run.trec").read_text()
    assert len(java._servers) == 2


def test_the_server_dies_with_its_python_process(compiled, tmp_path):
    """A killed run (SIGKILL, no atexit) leaves no JVM behind: the server ends when its stdin closes, and the kernel
    kills it with its parent (PR_SET_PDEATHSIG, armed like a JVM per call) should it be inside a call."""
    import os
    import signal
    import sys
    import time

    vectors = write_vectors(tmp_path / "vectors", DOC_VECTORS)
    script = ("import sys, time, kit.java as java\n"
              "from index.anserini import build_impact_index\n"
              f"build_impact_index({str(vectors)!r}, {str(tmp_path / 'index')!r}, threads=1, require_complete=False)\n"
              "(server,) = java._servers.values()\n"
              "print(server._proc.pid, flush=True)\n"
              "time.sleep(600)\n")
    env = {**os.environ, "KIT_ANSERINI_SERVER": "1", "KIT_SERVER_CLASSES": str(compiled)}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        jvm = int(child.stdout.readline())
        os.kill(jvm, 0)  # alive while its Python process is
        child.send_signal(signal.SIGKILL)
        child.wait()
        for _ in range(100):
            stat = Path(f"/proc/{jvm}/stat")
            if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":  # gone, or dead unreaped
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the Anserini server JVM {jvm} outlived its killed Python process")
    finally:
        child.kill()
        child.wait()


def test_lines_the_jvm_itself_writes_to_stdout_go_to_the_log(server_env, tmp_path):
    """The JVM may print to stdout outside any call (here -XX:+PrintCommandLineFlags, at start): the answer is found
    after such lines, which land in the log of the call that read them."""
    server_env.setenv("KIT_ANSERINI_SERVER", "1")
    server_env.setattr(java, "_class_data_options", lambda: ["-XX:+PrintCommandLineFlags"])
    vectors = write_vectors(tmp_path / "vectors", DOC_VECTORS)
    build_impact_index(vectors, tmp_path / "impact", threads=1, require_complete=False)
    assert "-XX:MaxHeapSize=" in (tmp_path / "impact" / "kit-build.log").read_text()  # the flags it printed
    assert index_stats(tmp_path / "impact")["documents"] == len(DOC_VECTORS)
