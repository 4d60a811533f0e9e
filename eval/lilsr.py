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
from tqdm.auto import tqdm

from eval.ablation import seed_means_frame
from eval.ablator import flops_items, seed_label, seed_system
from eval.claims import counts, markdown as claims_markdown, summary as summary_lines, test_family
from eval.provenance import provenance
from eval.recipe import IndexSpec, Recipe, System, load_recipe
from eval.results import (check_expected, fmt, json_records, markdown_table, output_folder, report_checks,
                          where_written, write_results)
from eval.stats import ALPHA, CORRECTION, TESTS, mean_std
from index.seismic import SeismicParams
from kit.argtypes import ArgumentParser, add_runner_options
from kit.errors import cli
from kit.paths import REPO, repo_relative
from pipeline.dataset import DatasetRun
from pipeline.metrics import evaluate
from pipeline.plan import print_plans, resolve_trained
from pipeline.settings import Settings, Timer

RECIPE = REPO / "recipes" / "lilsr.yaml"
SEISMIC_GOAL_NDCG, SEISMIC_GOAL_SPEEDUP = 0.99, 5.0
ANSERINI_REPEAT = 3  # each Anserini search is a JVM start (excluded from its timing) of a few seconds
VERSUS = "bow-idf"  # the BoW x IDF system every learned table is tested against


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


SCORES = ("FLOPS", "Doc_Len", "Query_Len", "query_us")
DIGITS = {"FLOPS": 3, "Doc_Len": 1, "Query_Len": 2, "query_us": 2}
RAW_COLUMNS = ("query_us", "queries", "q/s", "build_s", "index_MB")
"""The table columns measured outside the record (encoding and search times, index sizes), sealed by their digest."""


def measure_queries(run: DatasetRun, systems: list[System], repeat: int, seed: int | None
                    ) -> tuple[list[dict], list[pd.DataFrame]]:
    """Each system's scores, sparsity and query-encoding time on one dataset with the documents of one training seed;
    the per-query values (nDCG@10, R@100 and each query's FLOPS) are named ``<system>@seed<seed>``."""
    rows, frames = [], []
    texts = list(run.ds.queries.values())
    for system in systems:
        scores = run.run_system(system)
        name = system.id if seed is None else seed_system(system.id, seed)
        frames.append(scores.pop("_per_query").assign(system=name))
        frames.append(flops_items(run, system).assign(system=name))
        rows.append({"part": "seed", "dataset": run.key, "system": system.id, "seed": seed, "label": system.label,
                     **{m: scores[m] for m in run.settings.measures}, **{k: scores[k] for k in SCORES[:3]},
                     "query_us": encoding_microseconds(run.query_encoder(system), texts, repeat)})
    return rows, frames


def seed_summary(recipe: Recipe, seed_rows: list[dict], checked: bool) -> list[dict]:
    """One row per dataset and system: the mean (and sample std) over the seeds of every score, checked against
    the system's expectation (the seed means) when ``checked``."""
    by_id = {s.id: s for s in recipe.systems}
    out = []
    frame = pd.DataFrame(seed_rows)
    for (dataset, system), group in frame.groupby(["dataset", "system"], sort=False):
        row = {"part": "queries", "dataset": dataset, "system": system, "label": group["label"].iloc[0],
               "seeds": " ".join(str(s) for s in group["seed"] if s is not None and not pd.isna(s))}
        for k in (*recipe.measures, *SCORES):
            row[k], row[f"{k}_std"] = mean_std(group[k].tolist())
        status, detail = (check_expected(by_id[system].expected.get(dataset), by_id[system].tolerance,
                                         {m: row[m] for m in (*recipe.measures, *SCORES[:3])}) if checked else ("", ""))
        row["check"], row["check_detail"] = status, detail
        out.append(row)
    return out


def seed_row(row: dict) -> dict:
    """One seed's row as stored beside the seed means: named ``<system>@seed<n>`` (its per-query values' name), so
    that no stored number of one seed sits under the name of the mean."""
    return {**row, "part": "seed", "system": seed_system(row["system"], row["seed"]),
            "label": seed_label(row["label"], row["seed"])}


def learned(recipe: Recipe) -> list[System]:
    """The systems whose queries are a learned Li-LSR table (the model's own, not a table the recipe names)."""
    return [s for s in recipe.systems if s.query.encoder == "lilsr" and s.query.table is None]


def lilsr_claims(recipe: Recipe, per_query: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """The Li-LSR target as paired tests over per-query seed means: every learned table against the
    :data:`VERSUS` (BoW × IDF) system on every dataset, nDCG@10 ("higher": at least level means not significantly
    lower) and FLOPS ("lower": its advantage kept); one Holm family."""
    rows = [{"system": s.id, "label": s.label, "versus": VERSUS, "measure": measure, "dataset": d, "paper_delta": None,
             "sign": 1 if measure == "nDCG@10" else -1}
            for s in learned(recipe) for d in datasets for measure in ("nDCG@10", "FLOPS")]
    return test_family(rows, per_query, "Li-LSR vs BoW×IDF")


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


def checks(rows: list[dict], recipe: Recipe, claims: pd.DataFrame | None = None) -> dict:
    """The Li-LSR issue's two comparisons, from the measured rows (seed means): each learned table's nDCG@10 difference
    to BoW × IDF on SciFact and the paired test's verdict on it (``claims``; no verdict from the difference alone)."""
    frame = pd.DataFrame(rows)
    queries = frame[frame.part == "queries"].set_index(["dataset", "system"])
    tested = (claims.set_index(["system", "measure", "dataset"])["verdict"]
              if claims is not None and not claims.empty else pd.Series(dtype=object))
    out: dict = {}
    for system in learned(recipe):
        if ("scifact", system.id) in queries.index and ("scifact", VERSUS) in queries.index:
            delta = queries.at[("scifact", system.id), "nDCG@10"] - queries.at[("scifact", VERSUS), "nDCG@10"]
            key = system.id.replace("-", "_")
            out[f"{key}_minus_bow_idf_ndcg10_scifact"] = round(float(delta), 4)
            out[f"{key}_vs_bow_idf_ndcg10_scifact"] = tested.get((system.id, "nDCG@10", "scifact"), "not tested")
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


def render_markdown(recipe: Recipe, rows: list[dict], summary: dict, command: str, claims: pd.DataFrame,
                    seeds: tuple[int, ...], backend_seed: int | None) -> str:
    measures = list(recipe.measures)
    q_rows = [r for r in rows if r["part"] == "queries"]
    b_rows = [r for r in rows if r["part"] == "backends"]

    def cells(r: dict, cols: list[str]) -> list:
        return ["–" if r.get(c) in (None, "") else r.get(c) for c in cols]

    def pm(r: dict, col: str) -> str:
        digits = DIGITS.get(col, 4)
        std = r.get(f"{col}_std")
        return fmt(r[col], digits) + ("" if std is None or pd.isna(std) else f" ± {std:.{digits}f}")

    q_cols = ["dataset", "label", *measures, "FLOPS", "Doc_Len", "Query_Len", "query_us", "check"]
    b_cols = ["dataset", "backend", "threads", *measures, "queries", "q/s", "build_s", "index_MB"]
    spread = (f"mean ± sample standard deviation over the training seeds {', '.join(map(str, seeds))} (each seed "
              "trains both document encoders, and the Li-LSR tables, anew)" if len(seeds) > 1 else
              "one training seed (" + (str(seeds[0]) if seeds and seeds[0] is not None else "each condition's own") + ")")
    q_body = [[r["dataset"], r["label"], *(pm(r, m) for m in measures), pm(r, "FLOPS"), pm(r, "Doc_Len"),
               pm(r, "Query_Len"), fmt(r["query_us"], 2), r["check"] or "–"] for r in q_rows]
    lines = [f"<!-- generated by `{command}`; do not edit -->", "# Li-LSR queries and the Seismic backend", "",
             f"Measured with `{command}` ({repo_relative(recipe.path)}). SPLADE-tiny doc encoders trained offline "
             "(recipes/conditions/l0-mask-l0-act.yaml, lilsr.yaml and lilsr-anchor.yaml, same document recipe); l0 "
             f"activation, 512-token documents, weights ×100; {spread}. query_us: mean µs to encode one query (warm "
             "tokenizer cache, fastest of 20 passes; seed mean). FLOPS as in Table 1.", "", "## Query side", "",
             *markdown_table(q_cols, q_body), ""]
    if not claims.empty:
        lines += ["## What the tests say", "",
                  f"Each learned table against BoW×IDF queries on the ablation's ℓ0 documents, paired over queries "
                  f"(each query's value averaged over the seeds first; {TESTS}), p (Holm): {CORRECTION}. The claim "
                  "tested is the Li-LSR paper's: learned weights score higher than BoW × IDF at lower FLOPS; the kit's "
                  f"target is at least level in nDCG@10 (not \"opposite\" at α = {ALPHA}) with FLOPS significantly "
                  "lower. nDCG@10 ×100; FLOPS per query on each dataset.", "",
                  *summary_lines(claims), "", *claims_markdown(claims, "Li-LSR against BoW×IDF", describe=False)]
    lines += ["## Backends (Li-LSR vectors and queries)", "",
              "q/s: search alone (Anserini: its own timing, JVM start excluded; Seismic: index load excluded). "
              "build_s: indexing time (Anserini's includes its JVM start)"
              + (f"; the documents of seed {backend_seed}." if backend_seed is not None else "."), "",
              *markdown_table(b_cols, (cells(r, b_cols) for r in b_rows)), "", "## Checks", "",
              *(f"- {k}: {v}" for k, v in summary.items())]
    return "\n".join(lines) + "\n"


def schema_rows(recipe: Recipe, rows: list[dict], checked: bool) -> list[dict]:
    """kit-results/1 rows: every system (seed means, with their expectations) and every seed's run per dataset, and
    every backend run."""
    by_id = {s.id: s for s in recipe.systems}
    out = []
    for r in rows:
        metrics = {m: float(r[m]) for m in (*recipe.measures, "FLOPS", "Doc_Len", "Query_Len") if r.get(m) is not None}
        row = {"dataset": r["dataset"], "system": r["system"], "label": r.get("label") or r["system"],
               "metrics": metrics}
        spec = by_id.get(r["system"]) if r["part"] == "queries" else None
        if checked and spec is not None and spec.expected.get(r["dataset"]):
            row.update(expected=dict(spec.expected[r["dataset"]]), tolerance=spec.tolerance)
        out.append(row)
    return out


def list_conditions(recipe: Recipe, datasets: list[str], seeds: tuple[int | None, ...]) -> None:
    """``--list-conditions``: each system, what it is, its expected scores, and the command."""
    for s in recipe.systems:
        expected = "; ".join(f"{d} " + ", ".join(f"{m} {v:.4f}" for m, v in e.items()) for d, e in s.expected.items())
        print(f"{s.id}: documents of condition {s.doc.trained} ({s.doc.activation}), {s.query.encoder} queries"
              f"{' (table ' + s.query.table + ')' if s.query.table else ''}; expected {expected} (± {s.tolerance:g})")
    if recipe.backends:
        print(f"backends: {recipe.backends.system} on anserini and seismic, threads {recipe.backends.threads}")
    shown = ", ".join("each condition's own" if s is None else str(s) for s in seeds)
    print(f"seeds: {shown}\nrun: python -m eval.lilsr --datasets {','.join(datasets)}")


@cli
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.lilsr", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(RECIPE))
    p.add_argument("--datasets", default=None, help="comma-separated (default: the recipe's)")
    p.add_argument("--force", action="store_true", help="redo every stage")
    add_runner_options(p, seeds="the training seeds, e.g. 42,43,44 (default: the recipe's; other seeds are not checked)",
                       device=False, listed="the systems and their expectations",
                       planned="every stage's artifact, run nothing")
    args = p.parse_args(argv)
    recipe = load_recipe(args.recipe)
    datasets = args.datasets.split(",") if args.datasets else recipe.datasets
    seeds: tuple[int | None, ...] = args.seeds or recipe.seeds or (None,)
    checked = args.seeds is None or tuple(args.seeds) == recipe.seeds
    if args.list_conditions:
        list_conditions(recipe, datasets, seeds)
        return 0
    settings = Settings.of(recipe, device="cpu", force=args.force)
    timer = Timer()
    if args.dry_run:
        print_plans(datasets, settings, timer, recipe.systems)
        return 0
    out = output_folder(args.out, args.update)
    command = " ".join(["python -m eval.lilsr", *(argv if argv is not None else sys.argv[1:])])
    prov = provenance(command=command.split())
    started = time.perf_counter()
    by_seed = {seed: [resolve_trained(s, seed) for s in recipe.systems]
               for seed in tqdm(seeds, desc="Li-LSR models by seed (trained when not cached)", unit="seed")}
    comparison = recipe.backends
    seismic = dict(comparison.seismic) if comparison else {}
    seed_rows, rows, frames, backend_frames = [], [], [], []
    for name in datasets:
        run = DatasetRun.load(name, settings, timer)
        for seed, systems in by_seed.items():
            run.encode_docs([s.doc for s in systems])
            q_rows, q_frames = measure_queries(run, systems, comparison.repeat if comparison else 5, seed)
            seed_rows += q_rows
            frames += [f.assign(dataset=run.key) for f in q_frames]
        if comparison:  # the search speed of one set of vectors: the first seed's
            target = next(s for s in by_seed[seeds[0]] if s.id == comparison.system)
            b_rows, b_frames = measure_backends(run, target, comparison.threads, seismic, comparison.repeat)
            rows += b_rows
            backend_frames += b_frames
        print(f"[{run.key}] done", flush=True)
    shown = tuple(s for s in seeds if s is not None)  # empty: one run with each condition's own seed
    # several seeds: the seed means, then each seed's rows and per-query values under <system>@seed<n>
    rows = seed_summary(recipe, seed_rows, checked) + ([seed_row(r) for r in seed_rows] if shown else []) + rows
    per_seed = pd.concat(frames, ignore_index=True)
    means = seed_means_frame(per_seed) if shown else per_seed
    claims = lilsr_claims(recipe, means, datasets) if VERSUS in {s.id for s in recipe.systems} else pd.DataFrame()
    per_query = pd.concat([means, *([per_seed] if shown else []), *backend_frames], ignore_index=True)
    summary = checks(rows, recipe, claims)
    backend_seed = seeds[0] if comparison else None
    markdown = render_markdown(recipe, rows, summary, command, claims, shown or seeds, backend_seed)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = pd.DataFrame(rows, columns=columns)
    write_results(out, "lilsr", table, markdown, per_query, {
                      "kind": "lilsr", "measures": list(recipe.measures), **prov, "recipe": repo_relative(recipe.path),
                      "rows": schema_rows(recipe, rows, checked), "checks": summary, "datasets": datasets,
                      "seeds": list(shown), "claims": json_records(claims) if not claims.empty else [],
                      "claim_counts": counts(claims) if not claims.empty else {},
                      "seismic_params": dataclasses.asdict(SeismicParams.from_options(seismic)),
                      "total_seconds": round(time.perf_counter() - started, 1)},
                  raw=[c for c in RAW_COLUMNS if c in table.columns])
    print(markdown)
    print(where_written(out, "lilsr"))
    return 1 if report_checks(table[table["part"] == "queries"], "lilsr") else 0


if __name__ == "__main__":
    sys.exit(main())
