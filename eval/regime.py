"""A regime where the FLOPS term sets document length: does the ℓ0 mask or activation make documents sparser there?

    python -m eval.regime [--seeds 42,43,44] [--update]      # recipes/regime.yaml -> work/results/regime/
    python -m eval.regime --list-conditions | --dry-run

The paper's sparsity claim (its ℓ0 rows have shorter documents than the baseline, Table 2) comes from 100k training
steps, where the FLOPS regularizer, not the ranking loss, decides how long documents are. The kit's Tables 2-3 train
60 steps at λ_d 0.01, where the ranking loss dominates. ``recipes/regime.yaml`` declares a setting where the FLOPS
term dominates instead: Table 2's four conditions with the fields it changes (λ_d), each trained with every declared
seed (cached and resumable per condition-seed, like the ablation) and measured on SciFact test. For each model the
table reports the loss terms of the last logging window (``λ·FLOPS`` and the ranking loss: what shows the
regime), and each condition's nDCG@10, FLOPS and Doc_Len as mean ± std over the seeds, with BM25 and MiniLM beside
them. The verdicts come from the same paired tests as Tables 2-3 (:mod:`eval.claims`: nDCG@10 and FLOPS over
queries, Doc_Len over documents, each model averaged over its seeds first, Holm within the family), and the table
also counts the seeds in which each row's Doc_Len is below the baseline's.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd
from tqdm.auto import tqdm

from eval.ablation import RAW_COLUMNS, measure_command, seed_means, wall_seconds
from eval.ablator import CAVEAT, REFERENCES, SCALES, Ablator, Measured, get_scale, seed_system
from eval.claims import against_baseline, against_reference, counts, markdown as claims_markdown, summary
from eval.paper import load_paper_table
from eval.provenance import provenance
from eval.results import (check_expected, fmt, json_records, markdown_table, output_folder, points_over, report_checks,
                          signed, where_written, write_results)
from eval.stats import ALPHA, NOT_DISTINGUISHABLE, mean_std
from kit.argtypes import ArgumentParser, add_runner_options
from kit.errors import InputError, cli
from kit.paths import repo_relative
from train.conditions import REGIME, Regime, load_condition, load_regime


def loss_terms(model: Path) -> dict[str, float]:
    """The loss terms of a model's last logging window (``log_history.json``; each term is the mean over the window's
    steps): the regularizer's weighted term ``λ·FLOPS`` (λ after its warm-up), the ranking loss, and their ratio
    (> 1: the FLOPS term dominates)."""
    path = model / "log_history.json"
    try:
        logged = [e for e in json.loads(path.read_text(encoding="utf-8")) if "ranking" in e and "flops" in e]
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read the training log ({exc})", fix="retrain the model (delete its folder)")
    if not logged:
        raise InputError(path, "no logged loss terms", fix="train with logging_steps below max_steps")
    last = logged[-1]
    flops_term = float(last["lambda"]) * float(last["flops"])
    return {"step": int(last["step"]), "flops_term": flops_term, "ranking": float(last["ranking"]),
            "flops_over_ranking": flops_term / float(last["ranking"]) if last["ranking"] else float("inf")}


def build_table(regime: Regime, measured: Mapping[str, list[Measured]], references: Mapping[tuple[str, str], float],
                terms: Mapping[str, Mapping[str, float]], checked: bool,
                seconds: Callable[[Sequence[Measured]], dict[str, float]] = wall_seconds) -> pd.DataFrame:
    """One row per condition: seed means ± std of nDCG@10, FLOPS and Doc_Len, Δ BM25, the loss terms of the last
    logging window (seed means; ``terms``: :func:`loss_terms` by ``condition@seed``), how many seeds have shorter
    documents than the baseline's seed mean, the check, and the wall times (``seconds``: :func:`wall_seconds`)."""
    d = regime.dataset
    labels = dict(zip(*[load_paper_table(2)[c] for c in ("system", "label")]))
    base_len = statistics.fmean(m.scores[d]["Doc_Len"] for m in measured["baseline"]) if "baseline" in measured else None
    rows = []
    for cid, runs in measured.items():
        row = {"dataset": d, "system": cid, "label": labels.get(cid, cid), "seeds": " ".join(str(m.seed) for m in runs)}
        for k in ("nDCG@10", "FLOPS", "Doc_Len"):
            mean, std = mean_std([m.scores[d][k] for m in runs])
            row[k], row[f"{k}_std"] = mean, std
        row["Δ_bm25"] = points_over(row["nDCG@10"], references[(d, "bm25-flat")])
        logged = [terms[seed_system(cid, m.seed)] for m in runs]
        for k in ("flops_term", "ranking", "flops_over_ranking"):
            row[k] = statistics.fmean(t[k] for t in logged)
        row["seeds_flops_dominant"] = sum(t["flops_over_ranking"] > 1 for t in logged)
        row["seeds_shorter_than_baseline"] = (None if base_len is None or cid == "baseline"
                                              else sum(m.scores[d]["Doc_Len"] < base_len for m in runs))
        status, detail = (check_expected(regime.expected.get(cid), regime.tolerance, {"nDCG@10": row["nDCG@10"]})
                          if checked else ("", ""))
        row["check"], row["check_detail"] = status, detail
        row.update(seconds(runs))
        rows.append(row)
    return pd.DataFrame(rows)


def regime_claims(table: pd.DataFrame, per_query: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The paper's Table 2 directions against the baseline (nDCG@10, FLOPS, Doc_Len), tested in this regime, and every
    row against BM25: two Holm families, as for Tables 2-3."""
    paper = load_paper_table(2)
    paper = paper[paper["system"].isin(table["system"])]
    return pd.concat([against_baseline(paper, per_query, [dataset], "regime vs baseline", sparsity_dataset=dataset),
                      against_reference(dict(zip(table["system"], table["label"])), per_query, [dataset],
                                        "regime vs BM25")], ignore_index=True)


def render_markdown(regime: Regime, table: pd.DataFrame, references: Mapping[tuple[str, str], float], command: str,
                    claims: pd.DataFrame, scale_name: str) -> str:
    def pm(r, col, digits):
        std = r[f"{col}_std"]
        return fmt(r[col], digits) + ("" if std is None or pd.isna(std) else f" ± {std:.{digits}f}")

    d = regime.dataset
    n = table["seeds"].str.split().str.len()
    cols = ["row", "seeds", "nDCG@10", "Δ BM25 (points)", "FLOPS", "Doc_Len", "λ·FLOPS (last window)",
            "ranking (last window)", "FLOPS-dominant seeds", "seeds shorter than Baseline", "check"]
    body = [[r["label"], r["seeds"], pm(r, "nDCG@10", 4), signed(r["Δ_bm25"], 2), pm(r, "FLOPS", 3),
             pm(r, "Doc_Len", 1), fmt(r["flops_term"], 2), fmt(r["ranking"], 2), f"{r['seeds_flops_dominant']}/{k}",
             "–" if r["seeds_shorter_than_baseline"] is None or pd.isna(r["seeds_shorter_than_baseline"])
             else f"{int(r['seeds_shorter_than_baseline'])}/{k}", r["check"] or "–"]
            for r, k in zip(table.to_dict("records"), n)]
    changed = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in regime.changes.items())
    lines = [f"<!-- generated by `{command}`; do not edit -->", "# A FLOPS-dominated regime: are the ℓ0 rows sparser?",
             "", CAVEAT, "",
             f"Scale `{scale_name}`: Table 2's conditions with {changed} (`{repo_relative(regime.path)}`), "
             f"{d} test, mean ± standard deviation over the training seeds. The loss terms are those logged at the "
             "last logging window (`log_history.json`, the mean over its steps; seed means): the regime is "
             "FLOPS-dominated where λ·FLOPS exceeds the ranking loss; with the ℓ0 mask, λ·FLOPS counts only documents "
             "over t. \"Seeds shorter than Baseline\": seeds whose Doc_Len is below the Baseline's seed mean. "
             f"References (nDCG@10): BM25 {references[(d, 'bm25-flat')]:.4f}, MiniLM "
             f"{references[(d, 'minilm-l6.dense')]:.4f}.", "", *markdown_table(cols, body)]
    if not claims.empty:
        lines += ["", "## What the tests say", "",
                  "Paired tests over the per-item seed means (`claims` in the JSON); a direction counts as reproduced "
                  f"only when significant, after Holm's correction within its family, at α = {ALPHA}, and is otherwise "
                  f"\"{NOT_DISTINGUISHABLE}\". Doc_Len is paired over documents, so it tests the seed-mean models; the "
                  "seed columns above show whether the direction holds seed by seed.", "", *summary(claims), ""]
        for family, group in claims.groupby("family", sort=False):
            lines += claims_markdown(group, family.replace("regime vs ", "Regime against "))
    timed = table[table["train_s"] > 0]
    if len(timed):
        lines += ["", f"Wall time (this machine, all seeds of a condition, first run; `train_s`, `eval_s` in the CSV): "
                      f"training {timed['train_s'].min():.0f}–{timed['train_s'].max():.0f} s, evaluation "
                      f"{timed['eval_s'].min():.0f}–{timed['eval_s'].max():.0f} s per condition."]
    return "\n".join(lines) + "\n"


def run_regime(ablator: Ablator, out: Path, command: str, seeds: tuple[int, ...] | None = None,
               regime: Regime | None = None) -> int:
    """Measure every condition of the regime at every seed; write ``regime/regime.{csv,md,json}`` under ``out``;
    1 when a condition's seed mean misses its expectation."""
    started = time.perf_counter()
    regime = regime or load_regime()
    prov = provenance(command=command.split())
    seeds = seeds or regime.seeds
    d = regime.dataset
    conditions = {c: load_condition(c) for c in regime.conditions}
    measured: dict[str, list[Measured]] = {c: [] for c in conditions}
    jobs = [(c, s) for c in conditions for s in seeds]
    for cid, seed in tqdm(jobs, desc="regime conditions × seeds", unit="model"):
        measured[cid].append(ablator.measure(conditions[cid], seed, [d], **regime.changes))
    references, reference_pq = ablator.references([d])
    checked = ablator.scale.checked and tuple(seeds) == regime.seeds
    terms = {seed_system(c, m.seed): loss_terms(m.model) for c, runs in measured.items() for m in runs}
    table = build_table(regime, measured, references, terms, checked)
    means = seed_means([m for runs in measured.values() for m in runs])
    claims = regime_claims(table, pd.concat([means, reference_pq], ignore_index=True), d)
    seeds_pq = [m.per_query[m.per_query["measure"] != "Doc_Len"] for runs in measured.values() for m in runs]
    per_query = pd.concat([means, *seeds_pq, reference_pq], ignore_index=True)
    rows = []
    for r in table.to_dict("records"):
        row = {"dataset": d, "system": r["system"], "label": r["label"],
               "metrics": {k: float(r[k]) for k in ("nDCG@10", "FLOPS", "Doc_Len")}}
        if checked and regime.expected.get(r["system"]):
            row.update(expected=dict(regime.expected[r["system"]]), tolerance=regime.tolerance)
        rows.append(row)
        rows += [{"dataset": d, "system": seed_system(r["system"], m.seed), "label": f"{r['label']} (seed {m.seed})",
                  "metrics": {k: float(v) for k, v in m.scores[d].items()}} for m in measured[r["system"]]]
    rows += [{"dataset": d, "system": s.id, "label": s.label, "metrics": {"nDCG@10": references[(d, s.id)]}}
             for s in REFERENCES]
    folder = out / "regime"
    write_results(folder, "regime", table, render_markdown(regime, table, references, command, claims,
                                                           ablator.scale.name), per_query, {
        "kind": "regime", "measures": ["nDCG@10"], **prov,
        "recipe": repo_relative(regime.path) if checked else None,
        "rows": rows, "scale": ablator.scale.name, "caveat": CAVEAT, "datasets": [d],
        "systems": list(table["system"]), "changes": dict(regime.changes),
        "seeds": {c: [m.seed for m in runs] for c, runs in measured.items()},
        "loss_terms": terms,
        "claims": json_records(claims), "claim_counts": counts(claims),
        "models": {seed_system(c, m.seed): str(m.model) for c, runs in measured.items() for m in runs},
        "total_seconds": round(time.perf_counter() - started, 1)}, raw=RAW_COLUMNS)
    print(where_written(folder, "regime"))
    return 1 if report_checks(table, "regime") else 0


def plan(ablator: Ablator, regime: Regime, seeds: tuple[int, ...], dry: bool) -> None:
    """``--list-conditions`` (each condition, its expectation and commands) or ``--dry-run`` (each model to train or
    reuse)."""
    for cid in regime.conditions:
        condition = load_condition(cid)
        if not dry:
            expected = ", ".join(f"{m} {v:.4f}" for m, v in regime.expected.get(cid, {}).items()) or "none"
            print(f"{cid} with {dict(regime.changes)}: seeds {', '.join(map(str, seeds))}; expected {regime.dataset} "
                  f"{expected} (± {regime.tolerance:g})")
        for seed in seeds:
            if dry:
                where, state = ablator.model_state(condition, seed, **regime.changes)
                print(f"{cid} seed {seed} {dict(regime.changes)}: model {where} [{state}]; evaluated on {regime.dataset}")
            print(f"    {measure_command(cid, seed, ablator.scale, regime.changes, zero_shot=False)}")


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.regime", description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="full", choices=list(SCALES))
    p.add_argument("--regime", default=str(REGIME), help="the regime file (default: recipes/regime.yaml)")
    add_runner_options(p, seeds="the training seeds (default: the regime file's)")
    args = p.parse_args(argv)
    scale = get_scale(args.scale)
    regime = load_regime(Path(args.regime))
    seeds = args.seeds or scale.seeds or regime.seeds
    ablator = Ablator(scale, device=args.device)
    if args.list_conditions or args.dry_run:
        plan(ablator, regime, seeds, args.dry_run)
        return 0
    command = " ".join(["python -m eval.regime", *(argv if argv is not None else sys.argv[1:])])
    return run_regime(ablator, output_folder(args.out, args.update), command, seeds, regime)


if __name__ == "__main__":
    sys.exit(main())
