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
evaluated by the pipeline (:mod:`eval.pipeline`): documents with the variant's ranking activation, BoW × IDF queries
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
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import yaml
from tqdm.auto import tqdm

from eval.claims import against_baseline, against_reference, counts, markdown as claims_markdown, summary
from eval.metrics import query_flops
from eval.stats import ALPHA, NOT_DISTINGUISHABLE
from eval.paper import load_paper_table
from eval.pipeline import DatasetRun, Settings, Timer
from eval.provenance import machine_line, provenance
from eval.recipe import DenseSpec, DocSpec, QuerySpec, System
from eval.results import (check_expected, fmt, markdown_table, output_folder, points_over, report_checks, seal,
                          signed, where_written, write_results)
from kit.argtypes import ArgumentParser, add_runner_options
from kit.data import load_dataset
from kit.dataset import Dataset
from kit.errors import InputError, cli
from kit.io import atomic_write
from kit.paths import repo_relative, work_dir
from train.cache import model_dir, read_seconds, record_seconds, training_key, train_cached
from train.conditions import FIGURES, Condition, Point, condition_ids, load_condition, load_points
from train.recipe import TRAIN_FIELDS, TrainRecipe

COLLAPSE_DOC_LEN = 1.0
"""A model whose documents keep fewer than this many non-zero tokens on average has collapsed (Figure 2's ``x``)."""

CAVEAT = ("These numbers come from a 4.4M-parameter SPLADE-tiny trained for minutes on SciFact (BoW × IDF queries, "
          "CPU), not the paper's BERT-base trained on MS MARCO and averaged over 13 BEIR datasets: only the directions "
          "of the effects (better or worse than the baseline, sparser or denser) can be compared with the paper.")

REFERENCES = (System(id="bm25-flat", label="BM25 (flat)", type="bm25"),
              System(id="minilm-l6.dense", label="all-MiniLM-L6-v2 (dense)", type="dense",
                     dense=DenseSpec("all-MiniLM-L6-v2", 128)))
"""Measured beside every learned model, on every dataset (the same systems as Table 1's reference rows)."""

FIGURE_LABELS = {"baseline": "Baseline", "l0-mask": "ℓ0 mask", "l0-act": "ℓ0 activation",
                 "l0-mask-l0-act": "ℓ0 mask + ℓ0 activation"}


# ---- scales ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scale:
    """How much of the ablation to run.

    ``max_steps`` / ``max_length`` / ``batch_size`` ``None`` keep the recipe's values; ``queries`` / ``docs`` ``None``
    evaluate on the whole SciFact test set, otherwise on its first ``queries`` judged queries with their relevant
    documents plus the corpus's first ``docs`` documents. ``zero_shot``: the other datasets a condition is evaluated on
    (None: the condition's own). ``lambdas`` / ``thresholds``: the figure points run (None: all). ``checked``: whether
    the conditions' expected scores apply (they were measured at full scale).
    """

    name: str
    max_steps: int | None = None
    max_length: int | None = None
    batch_size: int | None = None
    eval_max_length: int = 512
    queries: int | None = None
    docs: int | None = None
    zero_shot: tuple[str, ...] | None = None
    lambdas: tuple[float, ...] | None = None
    thresholds: tuple[float, ...] | None = None
    checked: bool = True
    overrides: dict = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None  # None: each condition's own seeds (SEEDS= overrides either)

    def recipe_changes(self) -> dict:
        """The training-recipe fields this scale overrides."""
        changes = {k: v for k, v in (("max_steps", self.max_steps), ("max_length", self.max_length),
                                     ("batch_size", self.batch_size)) if v is not None}
        if self.max_steps is not None:
            changes["warmup_steps"] = min(self.max_steps - 1, 1)
            changes["warmup_T"] = min(self.max_steps, 1)
            changes["save_steps"] = self.max_steps
        return {**changes, **self.overrides}


SCALES: Mapping[str, Scale] = {
    "smoke": Scale("smoke", max_steps=3, max_length=64, batch_size=8, eval_max_length=64, queries=8, docs=100,
                   zero_shot=(), lambdas=(0.01, 0.1), thresholds=(50.0, 150.0), checked=False, seeds=(42,)),
    "full": Scale("full"),
}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; choose one of {', '.join(SCALES)}")
    return SCALES[name]


# ---- measuring -------------------------------------------------------------------------------------------------------

def slice_dataset(ds: Dataset, queries: int | None, docs: int | None) -> Dataset:
    """The first ``queries`` judged queries (by id) with their relevant documents plus the first ``docs`` documents.

    The slice is named ``<name>-q<queries>-d<docs>``, so differently sized slices never share cached artifacts.
    """
    if queries is None and docs is None:
        return ds
    qids = sorted(q for q in ds.queries if any(r > 0 for r in ds.qrels.get(q, {}).values()))[:queries]
    qrels = {q: dict(ds.qrels[q]) for q in qids}
    wanted = {d for judged in qrels.values() for d, r in judged.items() if r > 0}
    kept = [d for i, d in enumerate(ds.docs()) if (docs is not None and i < docs) or d.doc_id in wanted]
    return Dataset(name=f"{ds.name}-q{queries or 'all'}-d{docs or 0}", queries={q: ds.queries[q] for q in qids},
                   qrels=qrels, docs=lambda: iter(kept), num_docs=len(kept), source=ds.source)


def seed_system(condition: str, seed: int) -> str:
    """How one seed's model is named in tables and per-query files (the condition's own id holds the seed mean)."""
    return f"{condition}@seed{seed}"


def seed_label(label: str, seed: int) -> str:
    """How one seed's row is labelled beside the seed mean's (:func:`seed_system` names it)."""
    return f"{label} (seed {seed})"


SPARSITY_DATASET = "scifact"
"""Where FLOPS and Doc_Len are reported (Tables 2-3's sparsity columns) and tested item by item."""


def flops_items(run: DatasetRun, system: System) -> pd.DataFrame:
    """FLOPS per query (``Σ_{j ∈ q} p_d(j)``; their mean is FLOPS) of one sparse system, as per-query rows."""
    flops = query_flops(run.doc_frequencies(system.doc), run.query_vectors(system))
    return pd.DataFrame([{"query_id": q, "measure": "FLOPS", "value": float(v)} for q, v in flops.items()])


def sparsity_items(run: DatasetRun, system: System) -> pd.DataFrame:
    """FLOPS per query (:func:`flops_items`) and Doc_Len per document (``query_id`` = the document id, mean = Doc_Len)
    of one sparse system, as per-query rows: what a paired test of sparsity compares."""
    lengths = run.doc_lengths(system.doc)
    return pd.concat([flops_items(run, system),
                      pd.DataFrame([{"query_id": d, "measure": "Doc_Len", "value": float(v)} for d, v in lengths.items()])],
                     ignore_index=True)


def query_side(recipe: TrainRecipe) -> QuerySpec:
    """How a trained model's queries are encoded: with the query side it was trained with. BoW × IDF with the model's
    own ``idf.json`` (the paper's setting), or, for a Li-LSR model (``query_encoder: lilsr``), its exported lookup
    table (not BoW × IDF, which would measure its documents but not what it learned for queries)."""
    return QuerySpec(encoder="lilsr") if recipe.query_encoder == "lilsr" else QuerySpec(encoder="bow-idf", idf="model")


@dataclass
class Measured:
    """One trained model (a condition at one seed, maybe with changes) and its scores per dataset."""

    condition: str
    seed: int
    recipe: TrainRecipe
    model: Path
    scores: dict[str, dict[str, float]]  # dataset -> nDCG@10 (and FLOPS, Doc_Len)
    per_query: pd.DataFrame  # dataset, system (= condition@seed), query_id, measure, value


class Ablator:
    """Train (cached) and evaluate conditions at one :class:`Scale`; the models live under ``root``
    (``work/ablation/<condition>/<training key>/model``)."""

    def __init__(self, scale: Scale, root: Path | None = None, device: str | None = None):
        self.scale, self.device = scale, device
        self.root = root if root is not None else work_dir() / "ablation"
        self.settings = Settings(measures=("nDCG@10",), hits=1000, max_length=scale.eval_max_length, factor=100.0,
                                 device=device)
        self.timer = Timer()  # wall time per stage over every measure() call: where a run's time goes
        self._datasets: dict[str, Dataset] = {}

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            try:
                ds = load_dataset(name)
            except ValueError as exc:
                raise InputError(None, f"evaluate: {exc}") from None
            self._datasets[name] = slice_dataset(ds, self.scale.queries, self.scale.docs) if name == "scifact" else ds
        return self._datasets[name]

    def datasets(self, condition: Condition, zero_shot: bool = True) -> list[str]:
        others = [d for d in condition.evaluate if d != "scifact"] if self.scale.zero_shot is None \
            else list(self.scale.zero_shot)
        return ["scifact", *(others if zero_shot else [])]

    def recipe(self, condition: Condition, seed: int, **changes) -> TrainRecipe:
        return condition.recipe(seed, **{**self.scale.recipe_changes(), **changes})

    def model_path(self, condition: Condition, seed: int, **changes) -> Path:
        return model_dir(condition.id, self.recipe(condition, seed, **changes), self.root)

    def model_state(self, condition: Condition, seed: int, **changes) -> tuple[str, str]:
        """Where the model of a condition-seed lives and whether it is ``cached`` or still ``to train`` (--dry-run)."""
        recipe = self.recipe(condition, seed, **changes)
        if not Path(recipe.data).is_file():  # its key covers the training file's content: known once it is mined
            return f"{self.root / condition.id}/<key of {Path(recipe.data).name}, mined first>", "to train"
        path = model_dir(condition.id, recipe, self.root)
        return str(path), "cached" if (path / "kit_model.json").exists() else "to train"

    def measure(self, condition: Condition, seed: int, datasets: Sequence[str], **changes) -> Measured:
        """Train (cached) and evaluate one condition at one seed; wall times go to the model's ``timing.json``."""
        recipe = self.recipe(condition, seed, **changes)
        with self.timer("train (mine data, train; cached)"):
            model = train_cached(condition.id, recipe, self.root)
        doc = DocSpec(model=str(model), activation=recipe.activation)
        system = System(id=f"{recipe.activation}.len{self.scale.eval_max_length}", label=str(model), type="sparse",
                        doc=doc, query=query_side(recipe))
        scores, frames = {}, []
        for name in datasets:
            ds = self.dataset(name)
            # Tables 2-3 report FLOPS and Doc_Len on SciFact only: elsewhere the documents are encoded over the
            # queries' terms alone, which gives the same runs at a fraction of the encoding time
            cut = system if name != SPARSITY_DATASET else None
            run = DatasetRun(ds, self.settings, self.timer, root=model.parent / "eval" / ds.name, query_terms=cut)
            started = time.perf_counter()
            run.encode_docs([doc])
            result = run.run_system(system)
            record_seconds(model, f"eval_{ds.name}", time.perf_counter() - started)
            frames.append(result.pop("_per_query").assign(dataset=name, system=seed_system(condition.id, seed)))
            if name == SPARSITY_DATASET:
                frames.append(sparsity_items(run, system).assign(dataset=name, system=seed_system(condition.id, seed)))
            scores[name] = {k: float(result[k]) for k in ("nDCG@10", "FLOPS", "Doc_Len") if k in result}
        return Measured(condition.id, seed, recipe, model, scores, pd.concat(frames, ignore_index=True))

    def references(self, names: Sequence[str]) -> tuple[dict[tuple[str, str], float], pd.DataFrame]:
        """BM25 and MiniLM on each dataset (Table 1's reference systems): ``{(dataset, system): nDCG@10}`` and their
        per-query values."""
        scores, frames = {}, []
        for name in names:
            run = DatasetRun(self.dataset(name), self.settings, self.timer, name=self.dataset(name).name)
            for system in REFERENCES:
                result = run.run_system(system)
                frames.append(result.pop("_per_query").assign(dataset=name, system=system.id))
                scores[(name, system.id)] = float(result["nDCG@10"])
        return scores, pd.concat(frames, ignore_index=True)


# ---- the tables ------------------------------------------------------------------------------------------------------

def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


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


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-safe rows (a non-finite number, e.g. the t of a constant difference, becomes null)."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
            for r in frame.astype(object).where(frame.notna(), None).to_dict("records")]


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
                          "claims": _records(claims), "claim_counts": counts(claims),
                          "models": {seed_system(c, m.seed): str(m.model) for c in rows for m in measured[c]},
                          "total_seconds": round(time.perf_counter() - started, 1),
                          "stage_seconds": ablator.timer.rounded()}, raw=RAW_COLUMNS)
        print(where_written(out, f"table{n}"))
        problems += report_checks(table, f"table{n}")
    print(ablator.timer.line())
    return 1 if problems else 0


# ---- the figures -----------------------------------------------------------------------------------------------------

def is_collapsed(doc_len: float) -> bool:
    """True for a model whose documents average fewer than :data:`COLLAPSE_DOC_LEN` non-zero tokens."""
    return doc_len < COLLAPSE_DOC_LEN


def markers(doc_lens: Sequence[float], normal: str = "o") -> list[str]:
    """Figure 2's marker per point: ``x`` for a collapsed run, ``normal`` otherwise."""
    return ["x" if is_collapsed(v) else normal for v in doc_lens]


def figure_points(scale: Scale) -> list[Point]:
    """The points this scale runs."""
    def kept(p: Point) -> bool:
        allowed = scale.lambdas if p.sweep == "lambda" else scale.thresholds
        return allowed is None or float(next(iter(p.changes.values()))) in allowed

    return [p for p in load_points() if kept(p)]


def sweep(ablator: Ablator, points: Sequence[Point]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Measured]]:
    """Measure each point (one seed, the condition's first; SciFact only): the points' table, per-query values."""
    rows, frames, measured = [], [], {}
    for p in tqdm(points, desc="figure points", unit="model"):
        condition = load_condition(p.condition)
        m = ablator.measure(condition, condition.run_seeds()[0], ["scifact"], **p.changes)
        measured[p.id] = m
        rows.append(point_row(p, m.seed, m.recipe, m.scores["scifact"], ablator.scale.checked, read_seconds(m.model)))
        frames.append(m.per_query.assign(system=p.id))
    return pd.DataFrame(rows), pd.concat(frames, ignore_index=True), measured


def point_row(p: Point, seed: int, recipe: TrainRecipe, scores: Mapping[str, float], checked: bool,
              seconds: Mapping[str, float]) -> dict:
    """One figure point's row: what it is, its SciFact scores, its check (when ``checked``) and its wall times."""
    status, detail = check_expected(p.expected.get("scifact"), p.tolerance, scores) if checked else ("", "")
    return {"dataset": "scifact", "system": p.id, "sweep": p.sweep, "method": p.condition, "seed": seed,
            "lambda_d": recipe.lambda_d, "threshold": recipe.threshold, **scores, "check": status,
            "check_detail": detail, **seconds}


def timing_columns(columns: Sequence[str]) -> list[str]:
    """The wall-time columns of the figures' table (a model's ``timing.json``: ``train``, ``eval_<dataset>``)."""
    return [c for c in columns if c == "train" or c.startswith("eval_")]


def figures_table(rows: Sequence[dict], references: Mapping[tuple[str, str], float]) -> pd.DataFrame:
    """The points' table (:func:`point_row`) with each point's nDCG@10 over BM25's, in points."""
    table = pd.DataFrame(rows)
    bm25 = references[("scifact", "bm25-flat")]
    table["Δ_bm25"] = [points_over(v, bm25) for v in table["nDCG@10"]]
    return table


def figures_markdown(table: pd.DataFrame, references: Mapping[tuple[str, str], float], command: str,
                     scale_name: str) -> str:
    cols = ["system", "method", "seed", "lambda_d", "threshold", "nDCG@10", "Δ_bm25", "FLOPS", "Doc_Len", "check"]
    return "\n".join([f"<!-- generated by `{command}`; do not edit -->", "# Figures 1-3: the λ_d and t sweeps", "",
                      CAVEAT, "", f"Scale `{scale_name}`, SciFact test, **one training seed per point** (the "
                      f"condition's first); BM25 on the same queries: nDCG@10 {references[('scifact', 'bm25-flat')]:.4f}"
                      f", MiniLM {references[('scifact', 'minilm-l6.dense')]:.4f}. Figures: figure1.png, figure2.png, "
                      "figure3.png.",
                      "", *markdown_table([{"Δ_bm25": "Δ BM25 (points)"}.get(c, c) for c in cols],
                                          ([signed(r[c], 2) if c == "Δ_bm25" else fmt(r[c]) if r[c] != "" else "–"
                                            for c in cols] for r in table.to_dict("records")))]) + "\n"


def figures_rows(table: pd.DataFrame, points: Sequence[Point], references: Mapping[tuple[str, str], float],
                 checked: bool) -> list[dict]:
    """kit-results/1 rows: each point (with its expectation when ``checked``), then BM25 and MiniLM."""
    rows = [{"dataset": "scifact", "system": r["system"], "label": f"{r['method']} {r['sweep']}",
             "metrics": {k: float(r[k]) for k in ("nDCG@10", "FLOPS", "Doc_Len")},
             **({"expected": dict(p.expected["scifact"]), "tolerance": p.tolerance}
                if checked and p.expected.get("scifact") else {})}
            for r, p in zip(table.to_dict("records"), points)]
    return rows + [{"dataset": "scifact", "system": s.id, "label": s.label,
                    "metrics": {"nDCG@10": references[("scifact", s.id)]}} for s in REFERENCES]


def plot_figures(points: pd.DataFrame, out: Path, references: Mapping[str, float] | None = None) -> list[Path]:
    """Figures 1-3 as PNG under ``out``: nDCG@10 vs FLOPS (λ sweep), λ vs Doc_Len, nDCG@10 vs Doc_Len (t sweep).

    ``references``: label -> SciFact nDCG@10 of a reference system (BM25, MiniLM), drawn as a dashed horizontal line
    on the two nDCG@10 figures so every learned point is read against them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lam = points[points["sweep"] == "lambda"]
    thr = points[points["sweep"] == "threshold"]
    specs = [("figure1", lam, "FLOPS", "nDCG@10", "varying λ_d (points labelled with λ_d)", "lambda_d", "λ="),
             ("figure2", lam, "lambda_d", "Doc_Len", "Doc_Len vs λ_d (x: collapsed, Doc_Len < 1)", None, ""),
             ("figure3", thr, "Doc_Len", "nDCG@10", "varying t (points labelled with t)", "threshold", "t=")]
    paths = []
    for name, data, x, y, title, label, prefix in specs:
        fig, ax = plt.subplots(figsize=(5, 4))
        for method, group in data.groupby("method", sort=False):
            group = group.sort_values(x)
            line = ax.plot(group[x], group[y], "-", label=FIGURE_LABELS.get(method, method))[0]
            for (xv, yv, dl, value) in zip(group[x], group[y], group["Doc_Len"],
                                            group[label] if label else group[x]):
                marker = markers([dl])[0] if name == "figure2" else "o"
                ax.plot([xv], [yv], marker=marker, color=line.get_color(), markersize=7 if marker == "x" else 4)
                if label:
                    ax.annotate(f"{prefix}{value:g}", (xv, yv), textcoords="offset points", xytext=(3, 3), fontsize=6,
                                color=line.get_color())
        if y == "nDCG@10":
            for (ref, value), style in zip((references or {}).items(), ("--", ":")):
                ax.axhline(value, linestyle=style, color="0.35", linewidth=1, label=f"{ref} {value:.4f}")
        if name == "figure2":
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(title + " — one training seed per point", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{name}.png"
        with atomic_write(path, mode="wb") as fh:
            fig.savefig(fh, format="png", dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def reference_lines(references: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """The reference systems' SciFact nDCG@10 by their label (:data:`REFERENCES`): BM25 and MiniLM."""
    return {s.label: references[("scifact", s.id)] for s in REFERENCES if ("scifact", s.id) in references}


def run_figures(ablator: Ablator, out: Path, command: str) -> int:
    """Run the sweeps; write ``figures/figure{1,2,3}.png`` and ``figures/figures.{csv,md,json}``; 1 on a drift."""
    started = time.perf_counter()
    prov = provenance(command=command.split())
    points = figure_points(ablator.scale)
    points_table, per_query, _ = sweep(ablator, points)
    references, reference_pq = ablator.references(["scifact"])
    folder = out / "figures"
    seal(plot_figures(points_table, folder, reference_lines(references)))  # listed when written to results/
    table = figures_table(points_table.to_dict("records"), references)
    md = figures_markdown(table, references, command, ablator.scale.name)
    rows = figures_rows(table, points, references, ablator.scale.checked)
    write_results(folder, "figures", table, md, pd.concat([per_query, reference_pq], ignore_index=True), {
        "kind": "figures", "measures": ["nDCG@10"], **prov,
        "recipe": repo_relative(FIGURES) if ablator.scale.checked else None,
        "rows": rows, "scale": ablator.scale.name,
        "caveat": CAVEAT, "datasets": ["scifact"], "systems": list(table["system"]),
        "total_seconds": round(time.perf_counter() - started, 1)}, raw=timing_columns(table.columns))
    print(where_written(folder, "figures"))
    return 1 if report_checks(table, "figures") else 0


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
