"""Anserini impact search throughput on SciFact (SPLADE-tiny l0 docs, BoW×IDF queries), 1 and 2 threads, one run.

    python -m bench.retrieval          # uses work/scifact from `make reproduce-table1` (built first if missing)

"JVM excluded" is Anserini's own search time from its log; "JVM included" is the wall time of the whole Java process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import report
from eval.recipe import load_recipe
from eval.reproduce import main as reproduce
from index.anserini import read_query_vectors, search_impact
from kit.paths import REPO, work_dir
from pipeline.dataset import DatasetRun
from pipeline.settings import Settings

SYSTEM = "splade-tiny.bow-idf.l0"


def scifact_artifacts() -> tuple[Path, Path]:
    """The impact index and query vectors of :data:`SYSTEM` on SciFact, as Table 1 caches them (built if missing)."""
    recipe = load_recipe(REPO / "recipes" / "table1.yaml")
    system = next(s for s in recipe.systems if s.id == SYSTEM)
    run = DatasetRun.load("scifact", Settings.of(recipe, device="cpu"))
    index_art, queries_art = run.index(system.doc), run.queries(system)
    if not (index_art.ready() and queries_art.ready()):  # the cached artifacts of exactly this recipe, else build
        reproduce(["--device", "cpu"])  # make reproduce-table1, on the CPU
    return index_art.path, queries_art.path


def main(argv=None) -> int:
    index, queries_path = scifact_artifacts()
    queries = read_query_vectors(queries_path)
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
