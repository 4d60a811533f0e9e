"""Seismic vs Anserini on the same vectors and queries: the Li-LSR SPLADE-tiny model of the study
``recipes/studies/lilsr.yaml`` (its ``lilsr`` condition at its first seed, its own learned query table), SciFact test,
1 and 2 threads, one run.

    python -m bench.seismic                               # SciFact test
    python -m bench.seismic --datasets scifact,vaswani,cacm

Reuses (or trains and encodes) the study's cached model and vectors. Per backend and thread count: nDCG@10 and R@100
of its run, q/s of search alone (Anserini's own timing from its log, no JVM start, the fastest of
:data:`ANSERINI_REPEAT` searches; Seismic's ``batch_search``, no index load, the fastest of ``repeat``: on a shared
machine other processes only add time), build time and index size on disk; Seismic's parameters are
:class:`index.seismic.SeismicParams`' defaults. The targets: Seismic keeps >= 99% of Anserini's nDCG@10 and is >= 5x
faster.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd

from bench.common import report
from eval.ablator import Ablator, get_scale
from eval.recipe import IndexSpec, System
from eval.study.references import dataset_run
from eval.study.spec import load_study
from eval.study.systems import system_of
from kit.argtypes import ArgumentParser
from kit.errors import cli
from pipeline.dataset import DatasetRun
from pipeline.metrics import evaluate

SEISMIC_GOAL_NDCG, SEISMIC_GOAL_SPEEDUP = 0.99, 5.0
ANSERINI_REPEAT = 3  # each Anserini search is a JVM start (excluded from its timing) of a few seconds
STUDY, CONDITION = "lilsr", "lilsr"


def measure_backends(run: DatasetRun, system: System, threads: tuple[int, ...], seismic: dict, repeat: int
                     ) -> tuple[list[dict], list[pd.DataFrame]]:
    """Anserini and Seismic on ``system``'s vectors and queries: effectiveness, q/s per thread count, size, build."""
    rows, frames = [], []
    queries = run.query_vectors(system)
    for name in ("anserini", "seismic"):
        spec = IndexSpec(name, tuple(sorted(seismic.items())) if name == "seismic" else ())
        on = DatasetRun(run.ds, dataclasses.replace(run.settings, index=spec), run.timer, run.root, run.name)
        index = on.impact_index(system.doc)
        backend = spec.get()
        info = json.loads((index / "kit-build.json").read_text())
        for n in threads:
            run_path = on.run(system).path.with_name(f"{on.signature(system)}.timed-{name}.t{n}.trec")
            timings = [backend.search(index, queries, run_path, hits=run.settings.hits, threads=n)
                       for _ in range(min(repeat, ANSERINI_REPEAT) if name == "anserini" else repeat)]
            seconds = min(t["search_seconds"] or float("nan") for t in timings)
            scores, per_query = evaluate(run_path, run.ds.qrels, run.settings.measures)
            backend_id = f"{system.id}@{name}.t{n}"
            frames.append(per_query.assign(dataset=run.key, system=backend_id))
            rows.append({"dataset": run.key, "system": backend_id, "backend": name, "threads": n,
                         **{m: round(scores[m], 4) for m in run.settings.measures}, "queries": timings[0]["queries"],
                         "q/s": round(timings[0]["queries"] / seconds, 1), "build_s": info.get("index_seconds"),
                         "index_MB": round(backend.index_bytes(index) / 2**20, 2)})
    return rows, frames


@cli
def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m bench.seismic", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="scifact", help="comma-separated datasets of the study (default scifact)")
    p.add_argument("--repeat", type=int, default=5, help="searches per backend and thread count; the fastest counts")
    args = p.parse_args(argv)
    study = load_study(STUDY)
    condition = study.conditions[CONDITION]
    ablator = Ablator(get_scale("full"), in_domain=study.in_domain, measures=study.measures)
    system = system_of(condition, ablator, condition.run_seeds()[0])
    rows = []
    for name in args.datasets.split(","):
        run = dataset_run(ablator, name)
        run.encode_docs([system.doc])
        rows += measure_backends(run, system, (1, 2), {}, repeat=args.repeat)[0]
    by = {(r["dataset"], r["backend"], r["threads"]): r for r in rows}
    out = [{**{k: r[k] for k in ("dataset", "backend", "threads", "queries", "nDCG@10", "q/s")},
            "q/s vs anserini": r["q/s"] / by[(r["dataset"], "anserini", r["threads"])]["q/s"],
            "build s": r["build_s"], "index MB": r["index_MB"]} for r in rows]
    pairs = [(by[(d, "seismic", n)], by[(d, "anserini", n)]) for d, b, n in by if b == "seismic"]
    ndcg = min(s["nDCG@10"] / a["nDCG@10"] for s, a in pairs)
    speed = min(s["q/s"] / a["q/s"] for s, a in pairs)
    targets = [
        {"target": f"Seismic nDCG@10 >= {SEISMIC_GOAL_NDCG:.0%} of Anserini's", "measured": f"{ndcg:.2%}",
         "met": ndcg >= SEISMIC_GOAL_NDCG},
        {"target": f"Seismic q/s >= {SEISMIC_GOAL_SPEEDUP:g}x Anserini's (1 and 2 threads)", "measured": f"{speed:.1f}x",
         "met": speed >= SEISMIC_GOAL_SPEEDUP},
    ]
    print(f"Seismic vs Anserini, Li-LSR SPLADE-tiny vectors and queries ({STUDY} study, condition {CONDITION}, seed "
          f"{condition.run_seeds()[0]}), {args.datasets}, 1000 hits")
    print(f"q/s ratio Seismic / Anserini: {speed:.1f}x")
    report("seismic", out, targets, dataset=args.datasets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
