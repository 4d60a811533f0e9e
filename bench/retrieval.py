"""Anserini impact search throughput on SciFact (SPLADE-tiny l0 docs, BoW×IDF queries), 1 and 2 threads, one run.

    python -m bench.retrieval          # uses work/scifact from `make reproduce-table1` (built first if missing)

"JVM excluded" is Anserini's own search time from its log; "JVM included" is the wall time of the whole Java process.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.common import report
from kit.paths import REPO, work_dir

SYSTEM = "splade-tiny.bow-idf.l0"


def main(argv=None) -> int:
    from eval.reproduce import main as reproduce
    from index.anserini import search_impact

    root = work_dir() / "scifact"
    index = root / "indexes" / "splade-tiny.l0.len512.q100"
    if not (list((root / "queries").glob(f"{SYSTEM}.*.jsonl")) and index.exists()):
        reproduce(["--recipe", str(REPO / "recipes" / "table1.yaml")])
    queries_file = max((root / "queries").glob(f"{SYSTEM}.*.jsonl"), key=lambda p: p.stat().st_mtime)
    queries = {r["id"]: r["vector"] for r in map(json.loads, queries_file.read_text().splitlines())}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (1, 2):
            res = search_impact(index, queries, Path(tmp) / f"run.{threads}.trec", hits=1000, threads=threads)
            n = res["queries"]
            rows.append({"threads": threads, "queries": n,
                         "q/s JVM excluded": n / res["search_seconds"] if res.get("search_seconds") else None,
                         "q/s JVM included": n / res["seconds"], "wall s": res["seconds"]})
    base = rows[0]["q/s JVM excluded"]
    for r in rows:
        r["speed-up vs 1 thread"] = (r["q/s JVM excluded"] / base) if base and r["q/s JVM excluded"] else None
    print(f"Anserini impact search, {SYSTEM}, SciFact test, 1000 hits")
    report("retrieval", rows, index=str(index.relative_to(work_dir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
