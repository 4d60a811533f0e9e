"""Seismic vs Anserini on the same vectors and queries: SciFact test, Li-LSR SPLADE-tiny, 1 and 2 threads, one run.

    python -m bench.seismic        # reuses (or trains and encodes) eval.lilsr's cached models and vectors

q/s is search time alone: Anserini's own timing from its log (no JVM start), Seismic's ``batch_search`` (no index load,
median of 5). The targets are the issue's: Seismic keeps >= 99% of Anserini's nDCG@10 and is >= 5x faster.
"""

from __future__ import annotations

from bench.common import report
from eval.lilsr import RECIPE, SEISMIC_GOAL_NDCG, SEISMIC_GOAL_SPEEDUP, measure_backends
from eval.recipe import load_recipe
from pipeline.dataset import DatasetRun
from pipeline.plan import resolve_trained
from pipeline.settings import Settings

DATASET = "scifact"


def main(argv=None) -> int:
    recipe = load_recipe(RECIPE)
    lilsr = resolve_trained(next(s for s in recipe.systems if s.id == "lilsr"))
    run = DatasetRun.load(DATASET, Settings.of(recipe, device="cpu"))
    run.encode_docs([lilsr.doc])
    rows, _ = measure_backends(run, lilsr, (1, 2), {}, repeat=5)
    by = {(r["backend"], r["threads"]): r for r in rows}
    out = []
    for r in rows:
        base = by[("anserini", r["threads"])]
        out.append({"backend": r["backend"], "threads": r["threads"], "queries": r["queries"],
                    "nDCG@10": r["nDCG@10"], "q/s": r["q/s"], "q/s vs anserini": r["q/s"] / base["q/s"],
                    "build s": r["build_s"], "index MB": r["index_MB"]})
    ndcg = min(by[("seismic", n)]["nDCG@10"] / by[("anserini", n)]["nDCG@10"] for n in (1, 2))
    speed = min(by[("seismic", n)]["q/s"] / by[("anserini", n)]["q/s"] for n in (1, 2))
    targets = [
        {"target": f"Seismic nDCG@10 >= {SEISMIC_GOAL_NDCG:.0%} of Anserini's", "measured": f"{ndcg:.2%}",
         "met": ndcg >= SEISMIC_GOAL_NDCG},
        {"target": f"Seismic q/s >= {SEISMIC_GOAL_SPEEDUP:g}x Anserini's (1 and 2 threads)", "measured": f"{speed:.1f}x",
         "met": speed >= SEISMIC_GOAL_SPEEDUP},
    ]
    print(f"Seismic vs Anserini, Li-LSR SPLADE-tiny vectors and queries, {DATASET} test, 1000 hits")
    print(f"q/s ratio Seismic / Anserini: {speed:.1f}x")
    report("seismic", out, targets, dataset=DATASET)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
