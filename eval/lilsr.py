"""Li-LSR against BoW × IDF queries, and Seismic against Anserini, side by side on SciFact test, Vaswani and CACM.

    python -m eval.lilsr                                    # make lilsr: trains (cached), measures, writes results/lilsr.*
    python -m eval.lilsr --datasets scifact --heap-factor 0.8 --force

Two SPLADE-tiny document encoders come from the *same* document recipe: ``recipes/train/tiny.yaml`` (the ℓ0 paper's
BoW × IDF queries; the model of Table 2's mask + activation row and Table 1's kit row, trained once and shared through
:func:`eval.ablation.trained_model`) and ``recipes/train/lilsr-tiny.yaml`` (that recipe plus
``query_encoder: lilsr``: learned static query weights, Nardini et al., SIGIR 2025). Each is measured with its own query
side (nDCG@10, R@100, FLOPS, query-encoding µs); the Li-LSR document encoder is also measured with BoW × IDF queries,
which separates what the learned query weights bring from what joint training did to the documents.

Then the Li-LSR system's vectors and queries are searched by both backends (:mod:`index.backends`): nDCG@10, queries
per second with 1 and 2 threads (search alone: Anserini's own timing without the JVM start, Seismic's without loading
the index; the fastest of 3 Anserini and ``--repeat`` Seismic searches, since on a shared machine other processes only
add time), build time and index size on disk.

Writes ``results/lilsr.csv`` (one row per dataset × system or backend), ``results/lilsr.md`` and ``results/lilsr.json``
(provenance, the rows, and the issue's two checks).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import pandas as pd

from eval.provenance import provenance
from eval.recipe import DocSpec, QuerySpec, Recipe, System
from kit.errors import InputError, cli
from kit.io import atomic_write, write_json
from kit.paths import REPO, work_dir
from kit.argtypes import ArgumentParser

DATASETS = ("scifact", "vaswani", "cacm")
BOW_RECIPE = REPO / "recipes" / "train" / "tiny.yaml"
LILSR_RECIPE = REPO / "recipes" / "train" / "lilsr-tiny.yaml"
MEASURES = ["nDCG@10", "R@100"]
ACTIVATION = "l0"  # the tiny recipes' variant
SEISMIC_GOAL_NDCG, SEISMIC_GOAL_SPEEDUP = 0.99, 5.0
ANSERINI_REPEAT = 3  # each Anserini search is a JVM start (excluded from its timing) of a few seconds


def trained_model(recipe_path: Path, force: bool = False) -> Path:
    """The model a training recipe exports (:func:`train.cache.train_cached`: cached under
    ``work/lilsr/models/<recipe stem>/<recipe hash>/model``, resumed after a kill; ``force`` retrains)."""
    import shutil

    from train.cache import model_dir, train_cached
    from train.trainer import load_train_recipe

    recipe = load_train_recipe(recipe_path)
    root = work_dir() / "lilsr" / "models"
    if force:
        shutil.rmtree(model_dir(recipe_path.stem, recipe, root).parent, ignore_errors=True)
    return train_cached(recipe_path.stem, recipe, root)


def query_systems(bow_model: Path, lilsr_model: Path) -> list[System]:
    """BoW × IDF with its doc encoder, Li-LSR with its doc encoder, and the Li-LSR doc encoder with BoW × IDF."""
    bow_doc, lilsr_doc = DocSpec(str(bow_model), ACTIVATION), DocSpec(str(lilsr_model), ACTIVATION)
    return [
        System(id="bow-idf", label="BoW×IDF queries, tiny.yaml docs", type="sparse", doc=bow_doc,
               query=QuerySpec("bow-idf", idf="corpus")),
        System(id="lilsr", label="Li-LSR queries, lilsr-tiny.yaml docs", type="sparse", doc=lilsr_doc,
               query=QuerySpec("lilsr")),
        System(id="lilsr-docs.bow-idf", label="BoW×IDF queries, lilsr-tiny.yaml docs", type="sparse", doc=lilsr_doc,
               query=QuerySpec("bow-idf", idf="corpus")),
    ]


def dataset_runs(datasets: list[str], threads: int = 2, force: bool = False):
    """Yield ``(DatasetRun, systems)`` per dataset, the models trained and the documents encoded (all cached under
    ``work/lilsr/``; the BoW × IDF model under ``work/ablation/``)."""
    from eval.reproduce import DatasetRun, Timer

    from eval.ablation import trained_model as ablation_model

    bow_model, _ = ablation_model("l0-mask-l0-act", BOW_RECIPE)  # tiny.yaml is that row's recipe, unchanged
    systems = query_systems(bow_model, trained_model(LILSR_RECIPE, force))
    recipe = Recipe(path=LILSR_RECIPE, table=0, datasets=datasets, measures=MEASURES, hits=1000, max_length=512,
                    factor=100, systems=systems)
    run_args = argparse.Namespace(force=force, device="cpu", batch_size=32, threads=threads)
    for name in datasets:
        run = DatasetRun(name, recipe, run_args, Timer(), root=work_dir() / "lilsr" / name)
        run.encode_docs([s.doc for s in systems])
        yield run, systems


def encoding_microseconds(encoder, texts: list[str], repeat: int = 5) -> float:
    """Mean µs to encode one text: the fastest of ``4 × repeat`` passes over ``texts`` after one warm-up pass.

    The minimum, not the median: on a shared machine other processes only ever add time (``timeit``'s advice).
    """
    encoder.encode_batch(texts)
    times = []
    for _ in range(4 * repeat):
        start = time.perf_counter()
        for text in texts:
            encoder.encode(text)
        times.append(time.perf_counter() - start)
    return min(times) / len(texts) * 1e6


def query_encoder(run, system: System):
    """The encoder :meth:`eval.reproduce.DatasetRun.query_vectors` uses for ``system`` (for timing it alone)."""
    return run.query_encoder(system)


def idf_table_system(run, doc: DocSpec) -> System:
    """The corpus IDF used as a lookup table (repeated tokens summed): Li-LSR's query encoding without the learning.

    Beside ``bow-idf`` (same weights, each token once) and ``lilsr`` (learned weights, summed) it splits the
    difference between the two into what summing repeats does and what the learned weights do.
    """
    from encode.query import save_idf_json
    from kit.manifest import Artifact

    table = Artifact.named(run.root / "tables", "corpus-idf", {"stage": "idf-lookup-table", "corpus": run.corpus(),
                                                              "tokenizer": run.tokenizer_files(doc.model)},
                           suffix=".json")
    if not table.ready() or run.args.force:
        save_idf_json(run.idf(doc, "corpus"), table.path)
        table.complete()
    return System(id="lilsr-docs.idf-table", label="IDF as lookup table (summed), lilsr-tiny.yaml docs",
                  type="sparse", doc=doc, query=QuerySpec("lilsr", table=str(table.path)))


def measure_queries(run, systems: list[System], repeat: int) -> list[dict]:
    rows = []
    texts = list(run.ds.queries.values())
    lilsr_doc = next(s.doc for s in systems if s.id == "lilsr")
    for system in [*systems, idf_table_system(run, lilsr_doc)]:
        scores = run.run_system(system)
        scores.pop("_per_query")
        rows.append({"part": "queries", "dataset": run.key, "system": system.id, "label": system.label,
                     **{m: round(scores[m], 4) for m in MEASURES}, "FLOPS": round(scores["FLOPS"], 3),
                     "Doc_Len": round(scores["Doc_Len"], 1), "Query_Len": round(scores["Query_Len"], 2),
                     "query_us": round(encoding_microseconds(query_encoder(run, system), texts, repeat), 2)})
    return rows


def measure_backends(run, system: System, threads: list[int], seismic_params: dict, repeat: int) -> list[dict]:
    """Anserini and Seismic on ``system``'s vectors and queries: effectiveness, q/s per thread count, size, build."""
    from eval.metrics import evaluate
    from index.anserini import BUILD_INFO
    from index.backends import get_backend
    from index.seismic import SeismicParams

    vectors = run.vectors_dir(system.doc)
    queries = run.query_vectors(system)
    backends = {"anserini": get_backend("anserini"), "seismic": get_backend("seismic", seismic_params)}
    rows = []
    for name, backend in backends.items():
        if name == "anserini":  # DatasetRun builds (or reuses) it; its build record sits inside
            index = run.impact_index(system.doc)
            info = json.loads((index / BUILD_INFO).read_text())
        else:
            options = backend.params.build_options()
            tag = "" if options == SeismicParams().build_options() else "." + hashlib.sha1(
                json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
            index = run.root / "indexes" / f"{vectors.name}.seismic{tag}"
            info = backend.build(vectors, index, threads=max(threads), overwrite=run.args.force)
        for n in threads:
            run_path = run.root / "runs" / f"{run.signature(system)}.{name}.t{n}.trec"
            timings = [backend.search(index, queries, run_path, hits=run.recipe.hits, threads=n)
                       for _ in range(min(repeat, ANSERINI_REPEAT) if name == "anserini" else repeat)]
            seconds = min(t["search_seconds"] or float("nan") for t in timings)
            scores, _ = evaluate(run_path, run.ds.qrels, MEASURES)
            rows.append({"part": "backends", "dataset": run.key, "system": system.id, "backend": name, "threads": n,
                         **{m: round(scores[m], 4) for m in MEASURES}, "queries": timings[0]["queries"],
                         "q/s": round(timings[0]["queries"] / seconds, 1),
                         "build_s": info.get("index_seconds"), "index_MB": round(backend.index_bytes(index) / 2**20, 2)})
    return rows


def checks(rows: list[dict]) -> dict:
    """The issue's done-when checks, from the measured rows."""
    frame = pd.DataFrame(rows)
    queries = frame[frame.part == "queries"].set_index(["dataset", "system"])
    out: dict = {}
    if ("scifact", "lilsr") in queries.index and ("scifact", "bow-idf") in queries.index:
        delta = queries.at[("scifact", "lilsr"), "nDCG@10"] - queries.at[("scifact", "bow-idf"), "nDCG@10"]
        out["lilsr_minus_bow_idf_ndcg10_scifact"] = round(float(delta), 4)
        out["lilsr_beats_bow_idf_on_scifact"] = bool(delta > 0)
    backends = frame[frame.part == "backends"]
    if len(backends):
        pivot = backends.pivot_table(index=["dataset", "threads"], columns="backend", values=["nDCG@10", "q/s"])
        ratio = pivot[("nDCG@10", "seismic")] / pivot[("nDCG@10", "anserini")]
        speed = pivot[("q/s", "seismic")] / pivot[("q/s", "anserini")]
        out["seismic_ndcg10_ratio_min"] = round(float(ratio.min()), 4)
        out["seismic_reaches_99pct_ndcg10"] = bool(ratio.min() >= SEISMIC_GOAL_NDCG)
        out["seismic_qps_ratio"] = {f"{d}/t{int(t)}": round(float(v), 1) for (d, t), v in speed.items()}
        out["seismic_qps_ratio_min"] = round(float(speed.min()), 1)
        out["seismic_qps_goal_5x_met"] = bool(speed.min() >= SEISMIC_GOAL_SPEEDUP)
    return out


def _table(rows: list[dict], cols: list[str]) -> list[str]:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("–" if r.get(c) is None else str(r.get(c)) for c in cols) + " |")
    return lines


def render_markdown(rows: list[dict], summary: dict, command: str) -> str:
    q_rows = [r for r in rows if r["part"] == "queries"]
    b_rows = [r for r in rows if r["part"] == "backends"]
    lines = [f"<!-- generated by `{command}`; do not edit -->", "# Li-LSR queries and the Seismic backend", "",
             f"Measured with `{command}`. SPLADE-tiny doc encoders trained offline from recipes/train/tiny.yaml and "
             "recipes/train/lilsr-tiny.yaml (same document recipe); l0 activation, 512-token documents, weights ×100. "
             "query_us: mean µs to encode one query (warm tokenizer cache, fastest of 20 passes). FLOPS as in Table 1.", "",
             "## Query side", ""]
    lines += _table(q_rows, ["dataset", "label", *MEASURES, "FLOPS", "Doc_Len", "Query_Len", "query_us"])
    lines += ["", "## Backends (Li-LSR vectors and queries)", "",
              "q/s: search alone (Anserini: its own timing, JVM start excluded; Seismic: index load excluded). "
              "build_s: indexing time (Anserini's includes its JVM start).", ""]
    lines += _table(b_rows, ["dataset", "backend", "threads", *MEASURES, "queries", "q/s", "build_s", "index_MB"])
    lines += ["", "## Checks", ""] + [f"- {k}: {v}" for k, v in summary.items()]
    return "\n".join(lines) + "\n"


def _threads(value: str) -> list[int]:
    try:
        out = [int(x) for x in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of integers") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: thread counts must be >= 1")
    return out


def parser() -> argparse.ArgumentParser:
    from index.seismic import add_arguments

    p = ArgumentParser(prog="python -m eval.lilsr", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated (default: %(default)s)")
    p.add_argument("--threads", type=_threads, default=[1, 2], help="search thread counts (default: 1,2)")
    p.add_argument("--repeat", type=int, default=5, help="timing repetitions (default: %(default)s)")
    p.add_argument("--out", default=str(REPO / "results"))
    p.add_argument("--force", action="store_true", help="retrain the Li-LSR model and redo every stage")
    add_arguments(p)
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    from index.seismic import SeismicParams, options_from_args

    args = parser().parse_args(argv)
    try:
        seismic_params = {k: v for k, v in options_from_args(args).items() if v is not None}
        SeismicParams.from_options(seismic_params)
    except ValueError as err:
        raise InputError(None, str(err)) from None
    command = " ".join(["python -m eval.lilsr", *(argv if argv is not None else sys.argv[1:])])
    prov = provenance(command=command.split())
    started = time.perf_counter()
    rows: list[dict] = []
    for run, systems in dataset_runs(args.datasets.split(","), max(args.threads), args.force):
        rows += measure_queries(run, systems, args.repeat)
        lilsr = next(s for s in systems if s.id == "lilsr")
        rows += measure_backends(run, lilsr, args.threads, seismic_params, args.repeat)
        print(f"[{run.key}] done", flush=True)
    summary = checks(rows)
    out = Path(args.out)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_write(out / "lilsr.csv") as fh:
        pd.DataFrame(rows, columns=cols).to_csv(fh, index=False)
    md = render_markdown(rows, summary, command)
    with atomic_write(out / "lilsr.md") as fh:
        fh.write(md)
    write_json(out / "lilsr.json", {**prov, "rows": rows, "checks": summary,
                                    "seismic_params": dataclasses.asdict(SeismicParams.from_options(seismic_params)),
                                    "total_seconds": round(time.perf_counter() - started, 1)})
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
