"""Shared benchmark plumbing: machine facts, a printed table, and results/bench/<name>.json."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from eval.provenance import provenance
from eval.results import seal
from kit.io import write_json
from kit.paths import REPO

BENCH_DIR = REPO / "results" / "bench"


def median_seconds(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_gemm_flops(n: int = 1024, repeat: int = 5) -> float:
    """Measured float32 GEMM throughput of this machine (FLOP/s) with torch's current thread count."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_seconds(lambda: a @ b, repeat=repeat, warmup=2)


def report(name: str, rows: list[dict], targets: list[dict] | None = None, out_dir: Path | None = None, **extra) -> dict:
    """Print ``rows`` as a table (and each target beside its measured value) and store everything as JSON."""
    if rows:
        cols = list(dict.fromkeys(k for r in rows for k in r))  # insertion order, kept in the record as "columns"
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    for t in targets or []:
        mark = "MET" if t["met"] else "MISSED"
        print(f"target: {t['target']}: measured {t['measured']} -> {mark}")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    record = provenance(command=["python", "-m", f"bench.{name}", *sys.argv[1:]], benchmark=name, rows=rows,
                        columns=columns, targets=targets or [], **extra)
    path = (out_dir or BENCH_DIR) / f"{name}.json"
    write_json(path, record)
    seal([path])  # a raw measurement: results/SHA256SUMS pins it for the check (report.check)
    return record


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)
