"""Li-LSR against BoW × IDF queries, and Seismic against Anserini, side by side on SciFact test, Vaswani and CACM.

    python -m eval.lilsr                       # make lilsr: recipes/lilsr.yaml, trains (cached), measures, checks
    python -m eval.lilsr --datasets scifact --list-conditions | --dry-run

The systems are ``recipes/lilsr.yaml``'s: two SPLADE-tiny document encoders trained from the same document recipe,
the ablation's ℓ0 model (``recipes/conditions/l0-mask-l0-act.yaml``, BoW × IDF queries) and the Li-LSR one
(``recipes/conditions/lilsr.yaml``: learned static query weights, Nardini et al., SIGIR 2025), each measured with its
own query side (nDCG@10, R@100, FLOPS, query-encoding µs); the Li-LSR documents also with BoW × IDF queries and with
the corpus IDF as a lookup table, which separates what the learned weights bring from what joint training did.

Then the recipe's ``backends:`` system is searched by both backends (:mod:`index.backends`): nDCG@10, queries per
second with 1 and 2 threads (search alone: Anserini's own timing without the JVM start, Seismic's without loading the
index; the fastest of ``repeat`` searches, since on a shared machine other processes only add time), build time and
index size on disk. Results: ``work/results/lilsr.{csv,md,json}`` (``--update``: ``results/``), checked against the
recipe's expected scores (``FAIL``, exit 1).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import pandas as pd

from eval.metrics import evaluate
from eval.pipeline import DatasetRun, Settings, Timer, print_plan, resolve_trained
from eval.provenance import provenance
from eval.recipe import IndexSpec, Recipe, System, load_recipe
from eval.results import check_expected, failures, markdown_table, output_folder, where_written, write_results
from index.seismic import SeismicParams
from kit.argtypes import ArgumentParser
from kit.errors import cli
from kit.paths import REPO, repo_relative

RECIPE = REPO / "recipes" / "lilsr.yaml"
SEISMIC_GOAL_NDCG, SEISMIC_GOAL_SPEEDUP = 0.99, 5.0
ANSERINI_REPEAT = 3  # each Anserini search is a JVM start (excluded from its timing) of a few seconds


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


def measure_queries(run: DatasetRun, systems: list[System], repeat: int) -> tuple[list[dict], list[pd.DataFrame]]:
    """Each system's scores, sparsity and query-encoding time on one dataset, checked against its expectation."""
    rows, frames = [], []
    texts = list(run.ds.queries.values())
    for system in systems:
        scores = run.run_system(system)
        frames.append(scores.pop("_per_query"))
        status, detail = check_expected(system.expected.get(run.key), system.tolerance, scores)
        rows.append({"part": "queries", "dataset": run.key, "system": system.id, "label": system.label,
                     **{m: round(scores[m], 4) for m in run.settings.measures}, "FLOPS": round(scores["FLOPS"], 3),
                     "Doc_Len": round(scores["Doc_Len"], 1), "Query_Len": round(scores["Query_Len"], 2),
                     "query_us": round(encoding_microseconds(run.query_encoder(system), texts, repeat), 2),
                     "check": status, "check_detail": detail})
    return rows, frames


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
            rows.append({"part": "backends", "dataset": run.key, "system": backend_id, "backend": name, "threads": n,
                         **{m: round(scores[m], 4) for m in run.settings.measures}, "queries": timings[0]["queries"],
                         "q/s": round(timings[0]["queries"] / seconds, 1), "build_s": info.get("index_seconds"),
                         "index_MB": round(backend.index_bytes(index) / 2**20, 2)})
    return rows, frames


def checks(rows: list[dict]) -> dict:
    """The Li-LSR issue's two comparisons, from the measured rows."""
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


def render_markdown(recipe: Recipe, rows: list[dict], summary: dict, command: str) -> str:
    measures = list(recipe.measures)
    q_rows = [r for r in rows if r["part"] == "queries"]
    b_rows = [r for r in rows if r["part"] == "backends"]

    def cells(r: dict, cols: list[str]) -> list:
        return ["–" if r.get(c) in (None, "") else r.get(c) for c in cols]

    q_cols = ["dataset", "label", *measures, "FLOPS", "Doc_Len", "Query_Len", "query_us", "check"]
    b_cols = ["dataset", "backend", "threads", *measures, "queries", "q/s", "build_s", "index_MB"]
    lines = [f"<!-- generated by `{command}`; do not edit -->", "# Li-LSR queries and the Seismic backend", "",
             f"Measured with `{command}` ({repo_relative(recipe.path)}). SPLADE-tiny doc encoders trained offline "
             "(recipes/conditions/l0-mask-l0-act.yaml and lilsr.yaml, same document recipe); l0 activation, 512-token "
             "documents, weights ×100; one training seed. query_us: mean µs to encode one query (warm tokenizer "
             "cache, fastest of 20 passes). FLOPS as in Table 1.", "", "## Query side", "",
             *markdown_table(q_cols, (cells(r, q_cols) for r in q_rows)), "",
             "## Backends (Li-LSR vectors and queries)", "",
             "q/s: search alone (Anserini: its own timing, JVM start excluded; Seismic: index load excluded). "
             "build_s: indexing time (Anserini's includes its JVM start).", "",
             *markdown_table(b_cols, (cells(r, b_cols) for r in b_rows)), "", "## Checks", "",
             *(f"- {k}: {v}" for k, v in summary.items())]
    return "\n".join(lines) + "\n"


def schema_rows(recipe: Recipe, rows: list[dict]) -> list[dict]:
    """kit-results/1 rows: every system and backend run per dataset, the systems with their expectations."""
    by_id = {s.id: s for s in recipe.systems}
    out = []
    for r in rows:
        metrics = {m: float(r[m]) for m in (*recipe.measures, "FLOPS", "Doc_Len", "Query_Len") if r.get(m) is not None}
        row = {"dataset": r["dataset"], "system": r["system"], "label": r.get("label") or r["system"], "metrics": metrics}
        system = by_id.get(r["system"])
        if system is not None and system.expected.get(r["dataset"]):
            row.update(expected=dict(system.expected[r["dataset"]]), tolerance=system.tolerance)
        out.append(row)
    return out


def list_conditions(recipe: Recipe, datasets: list[str]) -> None:
    """``--list-conditions``: each system, what it is, its expected scores, and the command."""
    for s in recipe.systems:
        expected = "; ".join(f"{d} " + ", ".join(f"{m} {v:.4f}" for m, v in e.items()) for d, e in s.expected.items())
        print(f"{s.id}: documents of condition {s.doc.trained} ({s.doc.activation}), {s.query.encoder} queries"
              f"{' (table ' + s.query.table + ')' if s.query.table else ''}; expected {expected} (± {s.tolerance:g})")
    if recipe.backends:
        print(f"backends: {recipe.backends.system} on anserini and seismic, threads {recipe.backends.threads}")
    print(f"run: python -m eval.lilsr --datasets {','.join(datasets)}")


@cli
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.lilsr", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(RECIPE))
    p.add_argument("--datasets", default=None, help="comma-separated (default: the recipe's)")
    p.add_argument("--out", default=None, help="results folder (default: work/results; --update: results/)")
    p.add_argument("--update", action="store_true", help="write the stored reference in results/")
    p.add_argument("--force", action="store_true", help="redo every stage")
    p.add_argument("--list-conditions", action="store_true", help="print the systems and their expectations")
    p.add_argument("--dry-run", action="store_true", help="print every stage's artifact, run nothing")
    args = p.parse_args(argv)
    recipe = load_recipe(args.recipe)
    datasets = args.datasets.split(",") if args.datasets else recipe.datasets
    if args.list_conditions:
        list_conditions(recipe, datasets)
        return 0
    settings = Settings.of(recipe, device="cpu", force=args.force)
    timer = Timer()
    if args.dry_run:
        for name in datasets:
            print_plan(DatasetRun.load(name, settings, timer), recipe.systems)
        return 0
    out = output_folder(args.out, args.update)
    command = " ".join(["python -m eval.lilsr", *(argv if argv is not None else sys.argv[1:])])
    prov = provenance(command=command.split())
    started = time.perf_counter()
    systems = [resolve_trained(s) for s in recipe.systems]
    comparison = recipe.backends
    seismic = dict(comparison.seismic) if comparison else {}
    rows, frames = [], []
    for name in datasets:
        run = DatasetRun.load(name, settings, timer)
        run.encode_docs([s.doc for s in systems])
        q_rows, q_frames = measure_queries(run, systems, comparison.repeat if comparison else 5)
        rows += q_rows
        frames += [f.assign(dataset=run.key) for f in q_frames]
        if comparison:
            target = next(s for s in systems if s.id == comparison.system)
            b_rows, b_frames = measure_backends(run, target, comparison.threads, seismic, comparison.repeat)
            rows += b_rows
            frames += b_frames
        print(f"[{run.key}] done", flush=True)
    summary = checks(rows)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = pd.DataFrame(rows, columns=columns)
    write_results(out, "lilsr", table, render_markdown(recipe, rows, summary, command),
                  pd.concat(frames, ignore_index=True), {
                      "measures": list(recipe.measures), **prov, "recipe": repo_relative(recipe.path),
                      "rows": schema_rows(recipe, rows), "checks": summary, "datasets": datasets,
                      "seismic_params": dataclasses.asdict(SeismicParams.from_options(seismic)),
                      "total_seconds": round(time.perf_counter() - started, 1)})
    print(render_markdown(recipe, rows, summary, command))
    print(where_written(out, "lilsr"))
    problems = failures(table[table["part"] == "queries"])
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
