"""Which of the paper's claims the kit's measurements back, decided by paired tests rather than by eye.

Each row of the paper's Tables 2-3 claims a direction against its Baseline row: nDCG@10 higher or lower, FLOPS and
Doc_Len lower (sparser) or higher. :func:`against_baseline` tests each claim on the kit's per-item values, every model
averaged over its training seeds first (the per-query file's condition rows):

- nDCG@10, on each evaluated dataset: paired over queries;
- FLOPS (SciFact): paired over queries, a query's cost being ``Σ_{j ∈ q} p_d(j)`` (their mean is FLOPS);
- Doc_Len (SciFact): paired over documents, a document's number of non-zero tokens (their mean is Doc_Len).

The p-values of one table's claims form one family, Holm-corrected together (:mod:`eval.stats`); a direction counts as
reproduced only when the measured difference has the paper's sign and is significant at :data:`eval.stats.ALPHA`, and
is otherwise "not distinguishable at this scale" (or "opposite", when significant the other way). A paper difference
smaller than :data:`NO_EFFECT` is a claim of no difference. :func:`against_reference` tests the paper's headline
relation — a learned inference-free model ahead of BM25 — for every row and dataset the same way.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from eval.stats import ALPHA, CORRECTION, TESTS, holm, paired_summary, verdict

NO_EFFECT = {"nDCG@10": 0.1, "FLOPS": 0.01, "Doc_Len": 1.0}
"""Paper differences smaller than this (nDCG@10 in points ×100, as printed) are read as the paper seeing none."""
ITEMS = {"nDCG@10": "queries", "FLOPS": "queries", "Doc_Len": "documents"}
DATASET_LABELS = {"scifact": "SciFact", "vaswani": "Vaswani", "cacm": "CACM"}
VERSUS_LABELS = {"baseline": "Baseline", "bm25-flat": "BM25", "bow-idf": "BoW×IDF"}
COLUMNS = ["family", "system", "label", "versus", "measure", "dataset", "claim", "paper_delta", "items", "mean",
           "mean_versus", "delta", "t", "p_t", "p_wilcoxon", "wins", "ties", "losses", "p_holm", "verdict"]


def values(per_query: pd.DataFrame, dataset: str, system: str, measure: str) -> pd.Series:
    """Per-item values (index: query or document id) of one system, measure and dataset of a per-query frame."""
    sel = per_query[(per_query["dataset"] == dataset) & (per_query["system"] == system)
                    & (per_query["measure"] == measure)]
    if sel.empty:
        raise ValueError(f"no per-item {measure} values of {system} on {dataset}")
    return sel.set_index("query_id")["value"]


def _claim(sign: int) -> str:
    return {1: "higher", -1: "lower", 0: "no difference"}[sign]


def test_family(rows: list[dict], per_query: pd.DataFrame, family: str) -> pd.DataFrame:
    """Test each claim (``system``, ``versus``, ``measure``, ``dataset``, ``sign``) on ``per_query`` and Holm-correct the
    family; one row per claim with means, delta, both tests, wins/ties/losses, the corrected p-value and the verdict."""
    out = []
    for r in rows:
        new = values(per_query, r["dataset"], r["system"], r["measure"])
        old = values(per_query, r["dataset"], r["versus"], r["measure"])
        if set(new.index) != set(old.index):
            raise ValueError(f"{r['dataset']} {r['measure']}: {r['system']} and {r['versus']} are not measured on the "
                             f"same {ITEMS[r['measure']]}")
        old = old.loc[new.index]
        out.append({"family": family, **{k: v for k, v in r.items() if k != "sign"}, "claim": _claim(r["sign"]),
                    "items": len(new), "mean": float(new.mean()), "mean_versus": float(old.mean()),
                    **paired_summary(new.tolist(), old.tolist()), "_sign": r["sign"]})
    for r, p in zip(out, holm([r["p_t"] for r in out])):
        r["p_holm"] = p
        r["verdict"] = verdict(r.pop("_sign"), r["delta"], p)
    return pd.DataFrame(out, columns=COLUMNS)


def against_baseline(paper: pd.DataFrame, per_query: pd.DataFrame, datasets: Sequence[str], family: str,
                     baseline: str = "baseline", sparsity_dataset: str = "scifact",
                     measures: Sequence[str] = ("nDCG@10", "FLOPS", "Doc_Len")) -> pd.DataFrame:
    """The claims of one paper table (columns ``system``, ``label``, ``nDCG@10``, ``FLOPS``, ``Doc_Len``) against its
    ``baseline`` row: nDCG@10 on every dataset, FLOPS and Doc_Len on ``sparsity_dataset`` (only ``measures``)."""
    base = paper.set_index("system").loc[baseline]
    rows = []
    for p in paper.to_dict("records"):
        if p["system"] == baseline:
            continue
        for measure in measures:
            delta = float(p[measure] - base[measure])
            sign = 0 if abs(delta) < NO_EFFECT[measure] else (1 if delta > 0 else -1)
            for dataset in (datasets if measure == "nDCG@10" else [sparsity_dataset]):
                rows.append({"system": p["system"], "label": p["label"], "versus": baseline, "measure": measure,
                             "dataset": dataset, "paper_delta": round(delta, 2), "sign": sign})
    return test_family(rows, per_query, family)


def against_reference(systems: Mapping[str, str], per_query: pd.DataFrame, datasets: Sequence[str], family: str,
                      reference: str = "bm25-flat") -> pd.DataFrame:
    """Every learned model (``{system: label}``) against ``reference`` on every dataset (nDCG@10): the paper's
    inference-free models lead BM25 on BEIR (Table 1), so the claimed direction is "higher"."""
    rows = [{"system": s, "label": label, "versus": reference, "measure": "nDCG@10", "dataset": d, "paper_delta": None,
             "sign": 1} for s, label in systems.items() for d in datasets]
    return test_family(rows, per_query, family)


def _value(measure: str, x: float) -> str:
    return f"{100 * x:+.2f}" if measure == "nDCG@10" else (f"{x:+.3f}" if measure == "FLOPS" else f"{x:+.1f}")


def markdown(claims: pd.DataFrame, title: str, describe: bool = True) -> list[str]:
    """The claims as Markdown lines: what is tested (unless ``describe`` is False: the caller says it), then one table
    row per claim."""
    if claims.empty:
        return []
    lines = [f"### {title}", ""]
    if describe:
        lines += [f"{len(claims)} comparisons, each over per-item seed means ({TESTS}); p (Holm): {CORRECTION}; a "
                  f"direction counts as reproduced only when significant at α = {ALPHA} in the paper's direction. "
                  "nDCG@10 ×100; FLOPS and Doc_Len on SciFact.", ""]
    lines += ["| row | measure | dataset | versus | paper Δ | kit Δ | W/T/L | p (t-test) | p (Holm) | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in claims.to_dict("records"):
        paper = "–" if r["paper_delta"] is None or pd.isna(r["paper_delta"]) else f"{r['paper_delta']:+.2f}"
        lines.append(f"| {r['label']} | {r['measure']} | {DATASET_LABELS.get(r['dataset'], r['dataset'])} | "
                     f"{VERSUS_LABELS.get(r['versus'], r['versus'])} | {paper} | {_value(r['measure'], r['delta'])} | {r['wins']}/{r['ties']}/"
                     f"{r['losses']} | {r['p_t']:.2g} | {r['p_holm']:.2g} | {r['verdict']} |")
    return lines + [""]


def dataset_label(dataset: str) -> str:
    """How a dataset is named in a verdict line: ``SciFact``; a split after it, ``SciFact train``."""
    name, _, split = dataset.partition("/")
    return f"{DATASET_LABELS.get(name, name)} {split}".strip()


def summary(claims: pd.DataFrame) -> list[str]:
    """One line per (row, measure): its verdict on each dataset, for the README and the report."""
    lines = []
    for (label, versus, measure), group in claims.groupby(["label", "versus", "measure"], sort=False):
        parts = [f"{dataset_label(r['dataset'])} {_value(measure, r['delta'])} "
                 f"(p_Holm {r['p_holm']:.2g}): {r['verdict']}" for r in group.to_dict("records")]
        first = group.iloc[0]
        # a study's comparison names its source: the paper's claims say "paper", the kit's own ("ours") "claimed"
        who = "paper" if str(first.get("source", "paper")).startswith("paper") else "claimed"
        lines.append(f"- **{label}** vs {VERSUS_LABELS.get(versus, versus)}, {measure} ({who}: {first['claim']}): "
                     + "; ".join(parts))
    return lines


def counts(claims: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict."""
    return {str(k): int(v) for k, v in claims["verdict"].value_counts().items()}
