"""Small faults: the stage-time line the runners print (its shares, on a timer driven by a fake
clock), and Ctrl-C (SIGINT) of a running command, through the real command line -- it stops within moments, says so
on one line, and the same command run again resumes to the result an uninterrupted run gives."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import write_beir_slice
from test_faults import _PROGRESS

from pipeline import settings as pipeline
from kit.paths import REPO

pytestmark = pytest.mark.integration


# ---- the stage-time line ---------------------------------------------------------------------------------------------

def test_stage_shares_are_of_the_run_wall_time_and_never_above_100_percent(monkeypatch):
    """``score 0.1 (127%)`` was a 0.0787 s stage rounded to 0.1 s, then divided by the unrounded total; a stage timed
    inside another was counted twice. Shares are of the run's wall time, each stage's own seconds counted once."""
    now = [1000.0]
    monkeypatch.setattr(pipeline, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    timer = pipeline.Timer()
    with timer("score"):
        now[0] += 0.0787
    assert timer.line() == "stage wall time (s): score 0.1 (100%); 0.1 s in all"
    with timer("train"):
        now[0] += 1.0
        with timer("encode docs"):  # nested: its 2 s are not also the train stage's
            now[0] += 2.0
    now[0] += 0.9213  # untimed work (loading, writing results): part of the wall time, no stage's
    assert timer.seconds == pytest.approx({"score": 0.0787, "train": 1.0, "encode docs": 2.0})
    assert timer.rounded() == {"encode docs": 2.0, "train": 1.0, "score": 0.1}
    line = timer.line()
    assert line == "stage wall time (s): encode docs 2.0 (50%), train 1.0 (25%), score 0.1 (2%); 4.0 s in all"
    shares = [int(s) for s in re.findall(r"\((\d+)%\)", line)]
    assert max(shares) <= 100 and sum(shares) <= 100


# ---- Ctrl-C ----------------------------------------------------------------------------------------------------------

def _parts(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("part-*.jsonl"))}


def _as_from_a_terminal() -> None:
    """The child's SIGINT as a terminal gives it. A runner that starts the suite in the background (``cmd &`` without
    job control) hands every child an ignored SIGINT, and Python then installs no handler: Ctrl-C could not be
    tested. Seen in a clean-clone CI started that way."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_an_encoding_at_once_and_the_rerun_resumes_to_the_same_vectors(tmp_path, scifact_dir):
    """SIGINT to ``python -m encode`` once its first part is written: it exits within 3 s (it took over 6 s under load:
    the interpreter's teardown of torch, after a traceback), killed by SIGINT as a shell expects (status 130), with one
    line saying it was interrupted and no traceback. The same command again keeps the parts already written and
    ends with the vectors of an uninterrupted run, byte for byte."""
    corpus = write_beir_slice(tmp_path / "slice", scifact_dir, n_queries=5, n_other=200, seed=4)
    args = ["--corpus", corpus, "--activation", "l0", "--max-length", "32", "--device", "cpu", "--part-size", "10",
            "--no-progress"]
    out = tmp_path / "interrupted"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "encode", *map(str, args), "--output", str(out)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal)
    deadline = time.monotonic() + 300
    while not (out / "part-00000.jsonl").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.01)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    took = time.monotonic() - sent
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip() and not _PROGRESS.search(line)]
    assert len(lines) == 1 and lines[0].startswith("interrupted") and "run the same command again" in lines[0], err
    assert proc.returncode == -signal.SIGINT, proc.returncode  # a shell sees 130
    assert took < 3, f"{took:.1f} s from SIGINT to exit"
    assert not (out / "metadata.json").exists()  # it stopped mid-way
    kept = _parts(out)
    assert kept
    stamps = {name: (out / name).stat().st_mtime_ns for name in kept}

    fresh = tmp_path / "fresh"
    runs = [subprocess.Popen([sys.executable, "-m", "encode", *map(str, args), "--output", str(folder)], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for folder in (out, fresh)]  # the same command again, and an uninterrupted run beside it
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == stamps  # kept, not encoded again
    assert _parts(out) == _parts(fresh) and len(_parts(fresh)) > len(kept)
    assert (out / "metadata.json").is_file() and not list(out.glob("*.in-progress.json"))
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_an_anserini_server_whose_call_was_cut_short_is_ended_at_once(monkeypatch):
    """Ctrl-C during a call to the Anserini server (``KIT_ANSERINI_SERVER``): the exit handler closed the JVM's input
    and waited up to 10 s for the abandoned call to finish. A server whose call was cut short is killed at once (here
    a stand-in for the JVM whose call takes a minute)."""
    from kit import java

    monkeypatch.setattr(java, "anserini_jar", lambda: Path("unused.jar"))
    server = java.AnseriniServer([sys.executable, "-c", "import sys, time\nfor line in sys.stdin:\n    time.sleep(60)"])

    def ctrl_c(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, ctrl_c)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            server.call("IndexCollection", ["-input", "unused"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    started = time.monotonic()
    server.close()
    assert not server.alive() and time.monotonic() - started < 2


def test_ctrl_c_ends_a_command_whose_cleanup_hangs_within_the_grace_period():
    """A ``finally`` block that would take 30 s (a busy JVM, a thread pool finishing its batches): Ctrl-C still ends
    the command within the grace period, with the same line and status. What it leaves resumes, as after a kill."""
    code = ("import time\nfrom kit.errors import cli\n\n@cli\ndef main(argv=None):\n    try:\n"
            "        print('ready', flush=True)\n        time.sleep(60)\n    finally:\n        time.sleep(30)\n\nmain()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_from_a_terminal)
    try:
        assert proc.stdout.readline() == "ready\n"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGINT and took < 3, (proc.returncode, took, err[-2000:])
    assert err.splitlines()[-1].startswith("interrupted") and "Traceback" not in err, err[-2000:]
