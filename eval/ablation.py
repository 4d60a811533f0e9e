"""The ablations of the paper (Tables 2 and 3, Figures 1-3), re-run at the kit's scale, conditions as data.

    python -m eval.ablation tables  [--scale smoke|full] [--seeds 42,43,44] [--update]   # Tables 2-3
    python -m eval.ablation figures [--scale smoke|full] [--update]                      # Figures 1-3
    python -m eval.ablation measure l0-mask-l0-act [--seed 43] [--set lambda_d=0.1]      # one condition
    python -m eval.ablation tables --list-conditions | --dry-run
    python -m eval.ablation measure l0-mask --dry-run                                    # that one model's plan

Section 5.3 of "Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers" (SIGIR 2025) trains one
IDF-SPLADE-doc model per condition: the FLOPS regularizer with or without the ℓ0 mask (eq. 5, threshold t), and the
ℓ0 approximation activation (eq. 6) or one of its variants (Table 3). Each row is a file ``recipes/conditions/<row>.yaml``
(:mod:`train.conditions`): a training recipe, the fields it changes, its seeds, the datasets it is evaluated on and the
scores it is expected to reach; each figure point is a line of ``recipes/figures.yaml`` (a condition with one field
changed). Every model is trained once per seed and cached (:mod:`train.cache`; an interrupted training resumes), then
evaluated by the pipeline (:mod:`pipeline`): documents with the variant's ranking activation, BoW × IDF queries
with the model's ``idf.json``, an Anserini impact index; nDCG@10 on SciFact test with FLOPS and Doc_Len (Section
5.1.3), zero-shot on Vaswani and CACM, BM25 and the dense MiniLM measured beside them on each dataset. Only nDCG@10 is
reported zero-shot, so there the documents are encoded over the vocabulary of the dataset's query vectors alone
(``DatasetRun(query_terms=...)``): the same runs, bit for bit, at a sixth of the encoding time.

Results go to ``work/results/`` (``--update``: the stored reference ``results/``); a condition whose mean over its
seeds is outside its expected score's tolerance prints ``FAIL`` and the command exits 1. ``--scale smoke`` trains a
few steps on a slice (a pipeline check, about two minutes; no expectations). The kit's model is a 4.4M-parameter
SPLADE-tiny trained minutes on SciFact, not the paper's BERT-base on MS MARCO: only directions can be compared.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import yaml
from tqdm.auto import tqdm

from eval.ablator import (CAVEAT, REFERENCES, SCALES, SPARSITY_DATASET, Ablator, Measured, Scale, get_scale, seed_label,
                          seed_system)
from eval.figures import figure_points, run_figures
from eval.claims import against_baseline, against_reference, counts, markdown as claims_markdown, summary
from eval.stats import ALPHA, NOT_DISTINGUISHABLE, mean_std
from eval.paper import load_paper_table
from eval.provenance import machine_line, provenance
from eval.results import (check_expected, fmt, json_records, markdown_table, output_folder, points_over, report_checks, signed,
                          where_written, write_results)
from kit.argtypes import ArgumentParser, add_runner_options
from kit.errors import InputError, cli
from kit.paths import repo_relative
from train.cache import read_seconds, training_key
from train.conditions import Condition, condition_ids, load_condition
from train.recipe import TRAIN_FIELDS



# ---- the tables ------------------------------------------------------------------------------------------------------

RAW_COLUMNS = ("train_s", "eval_s")
"""The table columns measured outside the record (wall times), sealed by their digest (:func:`eval.results.seal_record`)."""


def wall_seconds(runs: Sequence[Measured]) -> dict[str, float]:
    """``train_s`` and ``eval_s``: the wall time of a condition's models, all seeds, from their ``timing.json``."""
    seconds = [read_seconds(m.model) for m in runs]
    return {"train_s": round(sum(s.get("train", 0.0) for s in seconds), 1),
            "eval_s": round(sum(v for s in seconds for k, v in s.items() if k.startswith("eval_")), 1)}


def seed_means(measured: Sequence[Measured]) -> pd.DataFrame:
    """Per-query values of each condition averaged over its seeds, named by the condition (what is compared)."""
    return seed_means_frame(pd.concat([m.per_query for m in measured], ignore_index=True))


def seed_means_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-query values named ``<system>@seed<n>`` averaged over the seeds, named ``<system>``."""
    frame = frame.copy()
    frame["system"] = frame["system"].str.rsplit("@", n=1).str[0]
    return frame.groupby(["dataset", "system", "query_id", "measure"], as_index=False, sort=False)["value"].mean()


def build_table(n: int, conditions: Mapping[str, Condition], measured: Mapping[str, list[Measured]],
                datasets: Sequence[str], references: Mapping[tuple[str, str], float], checked: bool,
                seconds: Callable[[Sequence[Measured]], dict[str, float]] = wall_seconds) -> pd.DataFrame:
    """Table ``n`` (2 or 3): each paper row with the measured means ± std over seeds (nDCG@10 ×100, as printed),
    the paper's values, the deltas to the baseline and to BM25, and the check against the condition's expectation;
    ``seconds``: a condition's wall times (:func:`wall_seconds`; ``eval.check`` gives the stored ones)."""
    if n not in (2, 3):
        raise ValueError(f"the ablation tables are 2 and 3, not {n!r}")
    rows = []
    for p in load_paper_table(n).to_dict("records"):
        runs, condition = measured[p["system"]], conditions[p["system"]]
        row: dict[str, Any] = {"system": p["system"], "label": p["label"],
                               "seeds": " ".join(str(m.seed) for m in runs)}
        means = {}
        for name in datasets:
            mean, std = mean_std([m.scores[name]["nDCG@10"] for m in runs])
            means[name] = {"nDCG@10": mean}
            prefix = "" if name == "scifact" else f"{name}_"
            row[f"{prefix}nDCG@10"], row[f"{prefix}nDCG@10_std"] = round(100 * mean, 2), _round(std, 100)
            row[f"{prefix}Δ_bm25"] = points_over(mean, references[(name, "bm25-flat")])
        for k in ("FLOPS", "Doc_Len"):
            mean, std = mean_std([m.scores["scifact"][k] for m in runs])
            row[k], row[f"{k}_std"] = round(mean, 3), _round(std)
        row.update({f"paper_{k}": p[k] for k in ("nDCG@10", "FLOPS", "Doc_Len")})
        status, detail = ("", "")
        if checked:
            bad = [check_expected(condition.expected.get(d), condition.tolerance, means[d]) for d in datasets]
            status = "FAIL" if any(s == "FAIL" for s, _ in bad) else ("OK" if any(s for s, _ in bad) else "")
            detail = "; ".join(f"{d}: {x}" for d, (s, x) in zip(datasets, bad) if s == "FAIL")
        row["check"], row["check_detail"] = status, detail
        row.update(seconds(runs))
        rows.append(row)
    table = pd.DataFrame(rows)
    base = table.set_index("system").loc["baseline"]
    table["Δ_baseline"] = (table["nDCG@10"] - base["nDCG@10"]).round(2)
    table["paper_Δ_baseline"] = (table["paper_nDCG@10"] - base["paper_nDCG@10"]).round(2)
    return table


def table_claims(n: int, table: pd.DataFrame, per_query: pd.DataFrame, datasets: Sequence[str]) -> pd.DataFrame:
    """The tests behind Table ``n``'s verdicts (:mod:`eval.claims`): every row's paper direction against the Baseline
    row (nDCG@10 on each dataset, FLOPS and Doc_Len on SciFact) as one Holm family, and every row against BM25 on each
    dataset (the paper's learned models lead BM25) as another; ``per_query`` holds the seed means and the references."""
    paper = load_paper_table(n)
    return pd.concat([against_baseline(paper, per_query, datasets, f"table{n} vs baseline",
                                       sparsity_dataset=SPARSITY_DATASET),
                      against_reference(dict(zip(table["system"], table["label"])), per_query, datasets,
                                        f"table{n} vs BM25")], ignore_index=True)


def _round(value: float | None, scale: float = 1.0) -> float | None:
    return None if value is None else round(scale * value, 3)


def render_markdown(n: int, table: pd.DataFrame, datasets: Sequence[str], references: Mapping[tuple[str, str], float],
                    command: str, scale: Scale, claims: pd.DataFrame | None = None, machine: dict | None = None) -> str:
    """The table as Markdown: measured means ± std beside the paper's, BM25 and MiniLM on every dataset."""
    def pm(r, col):
        std = r.get(f"{col}_std")
        return f"{r[col]:.2f}" + ("" if std is None or pd.isna(std) else f" ± {std:.2f}")

    zero = [d for d in datasets if d != "scifact"]
    cols = ["label", "seeds", "nDCG@10", "Δ BM25", "FLOPS", "Doc_Len", *(f"{d} nDCG@10" for d in zero),
            *(f"{d} Δ BM25" for d in zero), "paper nDCG@10", "paper FLOPS", "paper Doc_Len", "Δ baseline",
            "paper Δ baseline", "check"]
    body = [[r["label"], r["seeds"], pm(r, "nDCG@10"), signed(r["Δ_bm25"], 2), pm(r, "FLOPS"), pm(r, "Doc_Len"),
             *(pm(r, f"{d}_nDCG@10") for d in zero), *(signed(r[f"{d}_Δ_bm25"], 2) for d in zero),
             fmt(r["paper_nDCG@10"], 2), fmt(r["paper_FLOPS"], 2), fmt(r["paper_Doc_Len"], 2),
             signed(r["Δ_baseline"], 2), signed(r["paper_Δ_baseline"], 2), r["check"] or "–"]
            for r in table.to_dict("records")]
    refs = "; ".join(f"{d}: BM25 {100 * references[(d, 'bm25-flat')]:.2f}, MiniLM "
                     f"{100 * references[(d, 'minilm-l6.dense')]:.2f}" for d in datasets)
    lines = [f"<!-- generated by `{command}`; do not edit -->", f"# Table {n}: ablation, measured beside the paper", "",
             CAVEAT, "",
             f"Scale `{scale.name}`: nDCG@10 ×100 on SciFact test" + (f" (slice: {scale.queries} queries)" if scale.queries
                                                                     else "")
             + " and zero-shot, mean ± standard deviation over the training seeds; FLOPS and Doc_Len from the indexed "
               "document vectors (Section 5.1.3); `paper` columns are the paper's BEIR averages; Δ baseline = row − "
               "Baseline row; Δ BM25 = row − BM25 on the same dataset. References (nDCG@10 ×100): " + refs + ".", "",
             *markdown_table(cols, body)]
    if claims is not None and not claims.empty:
        lines += ["", "## What the tests say", "",
                  "Generated from paired tests over the per-item seed means (`claims` in the JSON); a direction counts "
                  "as reproduced only when it is significant, after Holm's correction within its family, at α = "
                  f"{ALPHA}, and is otherwise \"{NOT_DISTINGUISHABLE}\".", "", *summary(claims), ""]
        for family, group in claims.groupby("family", sort=False):
            lines += claims_markdown(group, family.replace("table", "Table ").replace("vs ", "against "))
    timed = table[table["train_s"] > 0]
    if len(timed):
        lines += ["", f"Wall time per condition ({machine_line(machine)}; all seeds, first run; `train_s`, `eval_s` in "
                      "the CSV): "
                      f"training {timed['train_s'].min():.0f}–{timed['train_s'].max():.0f} s, evaluation "
                      f"{timed['eval_s'].min():.0f}–{timed['eval_s'].max():.0f} s."]
    return "\n".join(lines) + "\n"


def schema_rows(table: pd.DataFrame, conditions: Mapping[str, Condition], measured: Mapping[str, list[Measured]],
                datasets: Sequence[str], references: Mapping[tuple[str, str], float], checked: bool) -> list[dict]:
    """kit-results/1 rows: each condition's seed mean per dataset (with its expectation), each seed, each reference."""
    rows = []
    for r in table.to_dict("records"):
        cid, runs = r["system"], measured[r["system"]]
        for d in datasets:
            metrics = {"nDCG@10": statistics.fmean(m.scores[d]["nDCG@10"] for m in runs)}
            if d == "scifact":
                metrics.update({k: statistics.fmean(m.scores[d][k] for m in runs) for k in ("FLOPS", "Doc_Len")})
            row = {"dataset": d, "system": cid, "label": r["label"], "metrics": metrics}
            if checked and conditions[cid].expected.get(d):
                row.update(expected=dict(conditions[cid].expected[d]), tolerance=conditions[cid].tolerance)
            rows.append(row)
            rows += [{"dataset": d, "system": seed_system(cid, m.seed), "label": seed_label(r["label"], m.seed),
                      "metrics": {k: float(v) for k, v in m.scores[d].items() if d == "scifact" or k == "nDCG@10"}}
                     for m in runs]
    rows += [{"dataset": d, "system": s.id, "label": s.label, "metrics": {"nDCG@10": references[(d, s.id)]}}
             for d in datasets for s in REFERENCES]
    return rows


def run_tables(ablator: Ablator, out: Path, command: str, seeds: tuple[int, ...] | None,
               tables: Sequence[int] = (2, 3)) -> int:
    """Measure every row of the given tables (every seed) and write ``table<n>.{csv,md,json}`` under ``out``; 1 when a
    condition's mean misses its expectation."""
    started = time.perf_counter()
    prov = provenance(command=command.split())
    ids = list(dict.fromkeys(row for n in tables for row in load_paper_table(n)["system"]))
    conditions = {c: load_condition(c) for c in ids}
    datasets = ablator.datasets(conditions[ids[0]])
    jobs = [(c, seed) for c in ids for seed in conditions[c].run_seeds(seeds)]
    measured: dict[str, list[Measured]] = {c: [] for c in ids}
    for cid, seed in tqdm(jobs, desc="ablation conditions × seeds", unit="model"):
        measured[cid].append(ablator.measure(conditions[cid], seed, datasets))
    references, reference_pq = ablator.references(datasets)
    problems = []
    for n in tables:
        table = build_table(n, conditions, measured, datasets, references, ablator.scale.checked)
        rows = list(table["system"])
        means = seed_means([m for c in rows for m in measured[c]])
        claims = table_claims(n, table, pd.concat([means, reference_pq], ignore_index=True), datasets)
        # each seed's own values, but Doc_Len (one value per document) only as the seeds' mean
        seeds_pq = [m.per_query[m.per_query["measure"] != "Doc_Len"] for c in rows for m in measured[c]]
        per_query = pd.concat([means, *seeds_pq, reference_pq], ignore_index=True)
        markdown = render_markdown(n, table, datasets, references, command, ablator.scale, claims, prov["machine"])
        write_results(out, f"table{n}", table, markdown, per_query, {
                          "kind": "ablation", "table": n, "measures": ["nDCG@10"], **prov, "recipe": None,
                          "rows": schema_rows(table, conditions, measured, datasets, references, ablator.scale.checked),
                          # where the expectations live (only at the scale they were measured at)
                          "conditions": ({c: repo_relative(conditions[c].path) for c in rows}
                                         if ablator.scale.checked else None),
                          "scale": ablator.scale.name, "scale_queries": ablator.scale.queries, "caveat": CAVEAT,
                          "datasets": list(datasets), "systems": rows,
                          "seeds": {c: [m.seed for m in measured[c]] for c in rows},
                          "claims": json_records(claims), "claim_counts": counts(claims),
                          "models": {seed_system(c, m.seed): str(m.model) for c in rows for m in measured[c]},
                          "total_seconds": round(time.perf_counter() - started, 1),
                          "stage_seconds": ablator.timer.rounded()}, raw=RAW_COLUMNS)
        print(where_written(out, f"table{n}"))
        problems += report_checks(table, f"table{n}")
    print(ablator.timer.line())
    return 1 if problems else 0


# ---- listing and planning --------------------------------------------------------------------------------------------

def parse_changes(items: Sequence[str]) -> dict:
    """``["lambda_d=0.1", "threshold=null"]`` -> training-recipe field overrides, values read as YAML scalars."""
    fields = sorted(set(TRAIN_FIELDS) - {"base_model", "data", "variant", "seed"})  # the condition fixes these
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise InputError(None, f"--set {item!r}: expected FIELD=VALUE with FIELD a training-recipe field",
                             fix=f"fields: {', '.join(fields)}")
        try:
            changes[key] = TRAIN_FIELDS[key](yaml.safe_load(value))
        except ValueError as err:
            raise InputError(None, f"--set {item!r}: {err}") from None
    return changes


def measure_command(condition: str, seed: int, scale: Scale, changes: Mapping[str, Any] | None = None,
                    zero_shot: bool = True) -> str:
    sets = "".join(f" --set {k}={v:g}" if isinstance(v, float) else f" --set {k}={v}" for k, v in (changes or {}).items())
    return (f"python -m eval.ablation measure {condition} --seed {seed} --scale {scale.name}{sets}"
            + ("" if zero_shot else " --no-zero-shot"))


def list_conditions(target: str, scale: Scale, seeds: tuple[int, ...] | None, tables: Sequence[int] = (2, 3)) -> None:
    """``--list-conditions``: each table row or figure point, its seeds, expectations and the command."""
    if target == "figures":
        for p in figure_points(scale):
            expected = ", ".join(f"{d} {e}" for d, e in p.expected.items()) or "none"
            print(f"{p.id}: {p.condition} with {p.changes}; expected {expected} (± {p.tolerance:g})")
            print(f"    {measure_command(p.condition, load_condition(p.condition).run_seeds()[0], scale, p.changes, False)}")
        return
    for cid in dict.fromkeys(row for n in tables for row in load_paper_table(n)["system"]):
        c = load_condition(cid)
        expected = "; ".join(f"{d} {e['nDCG@10']:.4f}" for d, e in c.expected.items()) or "none"
        print(f"{cid} (Table {', '.join(map(str, c.tables))}; {repo_relative(c.path)}): seeds "
              f"{', '.join(map(str, c.run_seeds(seeds)))}; expected nDCG@10 {expected} (± {c.tolerance:g})")
        for seed in c.run_seeds(seeds):
            print(f"    {measure_command(cid, seed, scale)}")


def dry_run(ablator: Ablator, target: str, seeds: tuple[int, ...] | None, tables: Sequence[int] = (2, 3),
            jobs: Sequence[tuple[Condition, int, dict, list[str]]] | None = None) -> None:
    """``--dry-run``: each model to train or reuse (its cache folder), and the datasets each is evaluated on; ``jobs``
    (``measure``: its one ``(condition, seed, changes, datasets)``) instead of the target's."""
    if jobs is None and target == "figures":
        jobs = [(load_condition(p.condition), load_condition(p.condition).run_seeds()[0], dict(p.changes), ["scifact"])
                for p in figure_points(ablator.scale)]
    elif jobs is None:
        ids = dict.fromkeys(row for n in tables for row in load_paper_table(n)["system"])
        jobs = [(c, s, {}, ablator.datasets(c)) for c in map(load_condition, ids) for s in c.run_seeds(seeds)]
    for condition, seed, changes, datasets in jobs:
        where, state = ablator.model_state(condition, seed, **changes)
        print(f"{condition.id} seed {seed}{' ' + str(changes) if changes else ''}: model {where} [{state}]; "
              f"evaluated on {', '.join(datasets)}")
        print(f"    {measure_command(condition.id, seed, ablator.scale, changes, len(datasets) > 1)}")


# ---- command line ----------------------------------------------------------------------------------------------------

def _tables(text: str) -> tuple[int, ...]:
    try:
        tables = tuple(dict.fromkeys(int(x) for x in text.split(",")))
    except ValueError:
        tables = ()
    if not tables or any(n not in (2, 3) for n in tables):
        raise ValueError(f"{text!r}: the ablation tables are 2, 3 or 2,3")
    return tables


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.ablation", description=__doc__.splitlines()[0])
    p.add_argument("target", choices=["tables", "figures", "measure"],
                   help="measure: one condition (ROW, with --set overrides), its scores printed as JSON")
    p.add_argument("row", nargs="?", help="measure: a condition, e.g. l0-mask-l0-act (recipes/conditions/)")
    p.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                   help="measure: override a training-recipe field (repeatable), e.g. --set lambda_d=0.1")
    p.add_argument("--seed", type=int, default=None, help="measure: the training seed (default: the condition's first)")
    p.add_argument("--tables", type=_tables, default=(2, 3), help="tables: which of them, e.g. 2 (default: 2,3)")
    p.add_argument("--no-zero-shot", action="store_true", help="measure: SciFact only")
    p.add_argument("--scale", default="full", choices=list(SCALES))
    add_runner_options(p, seeds="tables: the training seeds of every condition, e.g. 42,43,44 (default: each "
                                "condition's)")
    args = p.parse_args(argv)
    scale = get_scale(args.scale)
    args.seeds = args.seeds or scale.seeds
    if args.list_conditions:
        list_conditions(args.target, scale, args.seeds, args.tables)
        return 0
    ablator = Ablator(scale, device=args.device)
    if args.target == "measure":
        if args.row is None:
            raise InputError(None, "measure needs a condition", fix=f"one of {', '.join(condition_ids())}")
        condition = load_condition(args.row)
        changes = parse_changes(args.changes)
        seed = args.seed if args.seed is not None else condition.run_seeds()[0]
        datasets = ablator.datasets(condition, not args.no_zero_shot)
        if args.dry_run:  # the one model this command trains or reuses
            dry_run(ablator, args.target, None, jobs=[(condition, seed, changes, datasets)])
            return 0
        m = ablator.measure(condition, seed, datasets, **changes)
        print(json.dumps({"condition": m.condition, "seed": m.seed, "training_key": training_key(m.recipe),
                          "model": str(m.model), "changes": changes, "scores": m.scores,
                          "seconds": read_seconds(m.model), "stage_seconds": ablator.timer.rounded()},
                         default=str))
        return 0
    if args.dry_run:
        dry_run(ablator, args.target, args.seeds, args.tables)
        return 0
    command = " ".join(["python -m eval.ablation", *(argv if argv is not None else sys.argv[1:])])
    out = output_folder(args.out, args.update)
    return (run_tables(ablator, out, command, args.seeds, args.tables) if args.target == "tables"
            else run_figures(ablator, out, command))


if __name__ == "__main__":
    sys.exit(main())
