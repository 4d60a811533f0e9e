"""What a user sees while a command runs: the training bar, the command's log file, a dry run that fetches nothing,
the benchmark summary printed."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys

import pytest
from conftest import write_training_file

from kit.log import LogFile, Tee
from kit.paths import REPO

LOG_NAME = re.compile(r"(?P<module>[\w.]+)-\d{8}T\d{6}Z\.log")


def run(module: str, *args, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, **kwargs)


# ---- training --------------------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_training_shows_one_labelled_bar_and_no_log_dict(tmp_path, scifact_dir, capsys):
    """``train <name> seed <n>``, steps done/total and the loss terms on one bar; no printed log dictionaries; the
    saved log history as it always was (one entry per logging step, every term)."""
    from train.recipe import TrainRecipe
    from train.trainer import train

    recipe = TrainRecipe(base_model="splade-tiny", data=write_training_file(tmp_path / "train.jsonl", scifact_dir),
                         variant="l0", lambda_d=0.01, threshold=60.0, warmup_T=1, max_steps=2, batch_size=2,
                         max_length=16, docs_per_query=2, save_steps=100, logging_steps=1, seed=7)
    out = train(recipe, tmp_path / "model", label="train l0-mask seed 7")
    captured = capsys.readouterr()
    states = [s for s in re.split(r"[\r\n]", captured.err) if s.startswith("train l0-mask seed 7:")]
    assert states and "2/2 [" in states[-1], captured.err[-2000:]
    assert re.search(r"loss=[\d.]+ rank=[\d.]+ flops=[\d.e+-]+ λ=[\d.e+-]+ masked=\d+%", states[-1]), states[-1]
    assert "{'loss'" not in captured.out + captured.err and "'grad_norm'" not in captured.out + captured.err
    history = json.loads((out / "log_history.json").read_text())
    assert [e["step"] for e in history if "loss" in e] == [1, 2]
    assert {"loss", "grad_norm", "learning_rate", "ranking", "flops", "lambda", "masked_fraction"} <= set(history[0])


# ---- the command's log file ------------------------------------------------------------------------------------------

def test_a_bar_leaves_its_last_state_in_the_log(tmp_path):
    fh = open(tmp_path / "x.log", "w", encoding="utf-8")
    log, screen = LogFile(tmp_path / "x.log", fh), io.StringIO()
    tee = Tee(screen, log)
    tee.write("start\n")
    for i in range(100):
        tee.write(f"\rbar {i}%")
    tee.write("\n\n")
    tee.write("error: x (fix: y)")
    tee.finish()
    log.close()
    assert screen.getvalue().count("\r") == 100  # the terminal gets every redraw
    assert (tmp_path / "x.log").read_text() == "start\nbar 99%\nerror: x (fix: y)\n"


@pytest.mark.integration
def test_a_command_logs_what_it_prints_and_its_error_under_kit_work(tmp_path):
    missing = tmp_path / "missing.yaml"
    result = run("train", "--recipe", missing, env={"KIT_WORK": str(tmp_path / "work")}, capture_output=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {missing}: ") and result.stderr.count("\n") == 1  # no "log:" line
    logs = list((tmp_path / "work" / "logs").iterdir())
    assert len(logs) == 1 and LOG_NAME.fullmatch(logs[0].name)["module"] == "train", logs
    assert logs[0].read_text() == result.stderr


@pytest.mark.integration
def test_a_command_on_a_terminal_names_its_log_first(tmp_path):
    primary, secondary = pty.openpty()
    result = run("report.compare", "--help", env={"KIT_WORK": str(tmp_path / "work")}, stdout=subprocess.PIPE,
                 stderr=secondary)
    os.close(secondary)
    try:
        shown = os.read(primary, 4096).decode()
    except OSError:  # EIO: the terminal got nothing
        shown = ""
    os.close(primary)
    assert result.returncode == 0 and "usage: " in result.stdout
    (log,) = (tmp_path / "work" / "logs").iterdir()
    assert shown.splitlines()[0] == f"log: {log}"
    assert LOG_NAME.fullmatch(log.name)["module"] == "report.compare"
    assert log.read_text().splitlines()[0].startswith("usage: ")


# ---- --dry-run -------------------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_a_dry_run_of_an_online_dataset_downloads_nothing(tmp_path):
    """No network: every download through a proxy that refuses, ir_datasets' home an empty folder; the dry run still
    exits 0, says what it would fetch, and writes nothing there."""
    home = tmp_path / "ir_datasets"
    home.mkdir()
    refused = "http://127.0.0.1:9"
    result = run("eval.reproduce", "--recipe", REPO / "recipes" / "table1.yaml", "--datasets", "nfcorpus",
                 "--dry-run", capture_output=True,
                 env={"KIT_WORK": str(tmp_path / "work"), "IR_DATASETS_HOME": str(home), "HF_HUB_OFFLINE": "1",
                      "http_proxy": refused, "https_proxy": refused, "HTTP_PROXY": refused, "HTTPS_PROXY": refused})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "would download nfcorpus via ir-datasets beir/nfcorpus/test" in result.stdout
    assert [p for p in home.rglob("*") if p.is_file()] == []


# ---- benchmarks ------------------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_bench_summary_prints_the_summary_it_writes(tmp_path):
    for record in (REPO / "results" / "bench").glob("*.json"):
        shutil.copy(record, tmp_path)
    result = run("bench.summary", "--records", tmp_path, capture_output=True, env={"KIT_WORK": str(tmp_path / "w")})
    assert result.returncode == 0, result.stderr[-3000:]
    written = (tmp_path / "summary.md").read_text()
    table = next(line for line in written.splitlines() if line.startswith("| "))
    assert table in result.stdout and "**encode_docs** — `python -m bench.encode_docs`" in result.stdout
    assert result.stdout.startswith(written.split("\n\n", 1)[1])  # the page, its generated-by comment aside


def test_a_listing_piped_into_head_stops_quietly():
    """``python -m eval.study figures --list-conditions | head -1``: the reader closes the pipe; the command stops
    without an error line (it printed "error: Broken pipe (fix: check the path and the disk)")."""
    import subprocess
    import sys

    from kit.paths import REPO

    proc = subprocess.Popen([sys.executable, "-m", "eval.study", "figures", "--list-conditions"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "KIT_LOG": "0"})
    proc.stdout.close()  # the reader is gone before the command writes its first line
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and err == "", err
