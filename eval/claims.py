"""Which claims the kit's measurements back, decided by tests whose unit of replication is the training run.

A claim is a direction (higher, lower, no difference) of one system against another on one measure and dataset, as a
study file declares it (``comparisons``, :mod:`eval.study.spec`). :func:`judge_family` tests each claim of one family
with :mod:`eval.stats` and corrects the family with Holm's method:

- nDCG@10, R@k and FLOPS (a query's cost ``Σ_{j ∈ q} p_d(j)``, whose mean is FLOPS): seeds × queries, each side a
  matrix of per-query values with one row per training seed (:func:`eval.stats.seeds_by_queries`);
- Doc_Len and Query_Len: over the seeds' values (:func:`eval.stats.between_seeds`); documents are not replicates.

Every claim carries its effect, the 95% CI, the seed-aware p-value, the equivalence test against its margin and the
smallest effect the test could detect (:func:`eval.stats.mde`). The per-query paired t-test and Wilcoxon test over
seed means stay beside them, as a description of the query level: "what a per-query test would have said".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from eval.stats import (ALPHA, BETWEEN_SEEDS, CORRECTION, MOST_SEEDS, POWER, RELATIVE, SEED_TESTS, between_seeds,
                        holm, margin, mde, paired_summary, seeds_by_queries, tost, verdict)

DATASET_LABELS = {"scifact": "SciFact", "vaswani": "Vaswani", "cacm": "CACM"}
VERSUS_LABELS = {"baseline": "Baseline", "bm25-flat": "BM25", "bow-idf": "BoW×IDF"}
COLUMNS = ["family", "system", "label", "versus", "label_versus", "measure", "dataset", "claim", "paper_delta", "test", "items",
           "seeds", "seeds_versus", "mean", "mean_versus", "delta", "ci_low", "ci_high", "se", "df", "p", "p_holm",
           "margin", "p_tost", "p_tost_holm", "mde", "seeds_needed", "t", "p_t", "p_wilcoxon", "wins", "ties", "losses",
           "verdict"]
CROSSED, RUNS, QUERIES_ONLY = "seeds × queries", "seeds", "queries only (one seed)"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: per-item values, one row per training seed (index: seed; columns: query ids), or for a
    measure of :data:`eval.stats.BETWEEN_SEEDS` one column of the seeds' values; ``seeded``: False for a reference,
    whose single row is deterministic."""

    values: pd.DataFrame
    seeded: bool


Sides = Callable[[str, str, str], Side]
"""``(system, dataset, measure) -> Side``: where a family's values come from (:func:`eval.study.derive.sides`)."""


def _claim(sign: int) -> str:
    return {1: "higher", -1: "lower", 0: "no difference"}[sign]


def test_one(new: Side, old: Side, measure: str) -> dict:
    """One comparison of ``new`` against ``old`` on ``measure``: the seed-aware test, its equivalence test and power,
    and the per-query description (None for a measure tested over the seeds)."""
    if measure in BETWEEN_SEEDS:
        a, b = new.values.iloc[:, 0].to_numpy(float), old.values.iloc[:, 0].to_numpy(float)
        test = between_seeds(a, b, new.seeded, old.seeded)
        described = dict.fromkeys(("t", "p_t", "p_wilcoxon", "wins", "ties", "losses"))
        items = None
    else:
        if set(new.values.columns) != set(old.values.columns):
            raise ValueError("the two sides are not measured on the same queries")
        b_values = old.values[new.values.columns]
        test = seeds_by_queries(new.values.to_numpy(float), b_values.to_numpy(float), new.seeded, old.seeded)
        described = paired_summary(new.values.mean(axis=0).tolist(), b_values.mean(axis=0).tolist())
        described.pop("delta")
        items = new.values.shape[1]
        a, b = new.values.to_numpy(float), b_values.to_numpy(float)
    bound, known = margin(measure, float(np.mean(b))), test["seeds_known"]
    return {"test": (RUNS if measure in BETWEEN_SEEDS else CROSSED) if known else QUERIES_ONLY,
            "items": items, "seeds": len(new.values) if new.seeded else 0,
            "seeds_versus": len(old.values) if old.seeded else 0,
            "mean": float(np.mean(a)), "mean_versus": float(np.mean(b)), "delta": test["delta"],
            "ci_low": test["ci_low"], "ci_high": test["ci_high"], "se": test["se"], "df": test["df"],
            "p": test["p"] if known else None, "margin": bound,
            "p_tost": tost(test["delta"], test["se"], test["df"], bound) if known else None,
            "mde": mde(test["se"], test["df"]) if known else None, **described,
            "_plan": test.get("plan") if known else None}


def planned(measure: str, claim: str, paper_delta: float | None) -> bool:
    """Whether a comparison gets a seed plan (``seeds_needed``): a direction the paper measured on an effectiveness
    measure (a claim of no difference has no effect to detect; FLOPS and lengths are on the paper's other scale)."""
    return (paper_delta is not None and not pd.isna(paper_delta) and claim != "no difference"
            and measure not in (*RELATIVE, *BETWEEN_SEEDS))


def judge_family(rows: list[dict], sides: Sides, family: str) -> pd.DataFrame:
    """Test each claim (``system``, ``versus``, ``measure``, ``dataset``, ``sign`` and annotations) with
    :func:`test_one` and Holm-correct the family (difference and equivalence tests each); one row per claim with
    :data:`COLUMNS`."""
    out = []
    for r in rows:
        new, old = (sides(r[k], r["dataset"], r["measure"]) for k in ("system", "versus"))
        try:
            tested = test_one(new, old, r["measure"])
        except ValueError as e:
            raise ValueError(f"{r['dataset']} {r['measure']}: {r['system']} against {r['versus']}: {e}") from None
        plan, paper = tested.pop("_plan"), r.get("paper_delta")
        needed = (plan.seeds_needed(paper / 100)  # effectiveness: the paper's points ×100
                  if plan is not None and planned(r["measure"], _claim(r["sign"]), paper) else None)
        out.append({"family": family, **{k: v for k, v in r.items() if k != "sign"}, "claim": _claim(r["sign"]),
                    **tested, "seeds_needed": needed, "_sign": r["sign"]})
    for r, p, p_eq in zip(out, holm([r["p"] for r in out]), holm([r["p_tost"] for r in out])):
        r["p_holm"], r["p_tost_holm"] = p, p_eq
        r["verdict"] = verdict(r.pop("_sign"), r["delta"], p, p_eq)
    return pd.DataFrame(out, columns=COLUMNS)


def _value(measure: str, x: float | None) -> str:
    if x is None or pd.isna(x):
        return "–"
    return f"{100 * x:+.2f}" if measure not in ("FLOPS", *BETWEEN_SEEDS) else (
        f"{x:+.3f}" if measure == "FLOPS" else f"{x:+.1f}")


def p_text(p: float | None) -> str:
    """A p-value as printed: two significant digits, "–" when there is none."""
    return "–" if p is None or pd.isna(p) else f"{p:.2g}"


def effect(r: dict) -> str:
    """A claim's effect and 95% CI as printed: ``+1.23 [−0.40, +2.86]`` (nDCG ×100)."""
    ci = ("" if r["ci_low"] is None or pd.isna(r["ci_low"])
          else f" [{_value(r['measure'], r['ci_low'])}, {_value(r['measure'], r['ci_high'])}]")
    return _value(r["measure"], r["delta"]) + ci


def power_lines(claims: pd.DataFrame) -> list[str]:
    """Per family and measure, the range of the smallest effects its tests detect at :data:`POWER` (α before Holm)."""
    parts = []
    for measure, g in claims.groupby("measure", sort=False):
        values = g["mde"].dropna()
        if len(values):
            lo, hi = _value(measure, values.min()).lstrip("+"), _value(measure, values.max()).lstrip("+")
            unit = "" if measure in ("FLOPS", *BETWEEN_SEEDS) else " (×100)"  # as _value prints it
            parts.append(f"{measure} {lo}" + ("" if lo == hi else f"–{hi}") + unit)
    lines = ([f"Smallest effect detectable at {POWER:.0%} power (α = {ALPHA}, before Holm): " + "; ".join(parts)
              + "."] if parts else [])
    eligible = pd.Series([planned(m, c, d) for m, c, d in zip(claims["measure"], claims["claim"],
                                                               claims["paper_delta"])], index=claims.index, dtype=bool)
    chosen = claims[claims["test"].eq(CROSSED) & eligible]
    if len(chosen):
        needed = chosen["seeds_needed"]
        reach = needed.dropna().astype(int)
        lines.append("Seeds per condition to detect the paper's own effect at that power: "
                     + (f"{reach.min()}–{reach.max()} for {len(reach)} of {len(chosen)} comparisons" if len(reach)
                        else "none of the comparisons reachable")
                     + (f"; more than {MOST_SEEDS} (the query sample is the limit) for {needed.isna().sum()}"
                        if needed.isna().any() else "") + ".")
    return lines


def markdown(claims: pd.DataFrame, title: str, describe: bool = True) -> list[str]:
    """The claims as Markdown lines: what is tested (unless ``describe`` is False: the caller says it), the family's
    power, then one table row per claim."""
    if claims.empty:
        return []
    lines = [f"### {title}", ""]
    if describe:
        lines += [f"{len(claims)} comparisons ({SEED_TESTS}); p (Holm): {CORRECTION}; equivalence: two one-sided tests "
                  "against the margin.", ""]
    power = power_lines(claims)
    lines += [*power, ""] if power else []
    lines += ["| row | measure | dataset | versus | paper Δ | kit Δ [95% CI] | seeds | test | p (Holm) | margin | "
              "p equivalent (Holm) | p per-query t | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in claims.to_dict("records"):
        paper = "–" if r["paper_delta"] is None or pd.isna(r["paper_delta"]) else f"{r['paper_delta']:+.2f}"
        seeds = f"{r['seeds'] or '–'} v {r['seeds_versus'] or '–'}"
        lines.append(f"| {r['label']} | {r['measure']} | {dataset_label(r['dataset'])} | "
                     f"{versus_label(r)} | {paper} | {effect(r)} | {seeds} | {r['test']} | "
                     f"{p_text(r['p_holm'])} | ±{_value(r['measure'], r['margin']).lstrip('+')} | {p_text(r['p_tost_holm'])} | "
                     f"{p_text(r['p_t'])} | {r['verdict']} |")
    return lines + [""]


def versus_label(r) -> str:
    """How the compared side of a claim is named: its label (``label_versus``), else a short name of its id."""
    label = r.get("label_versus")
    return label if isinstance(label, str) and label else VERSUS_LABELS.get(r["versus"], r["versus"])


def dataset_label(dataset: str) -> str:
    """How a dataset is named in a verdict line: ``SciFact``; a split after it, ``SciFact train``."""
    name, _, split = dataset.partition("/")
    return f"{DATASET_LABELS.get(name, name)} {split}".strip()


def summary(claims: pd.DataFrame) -> list[str]:
    """One line per (row, measure): its effect, CI, p and verdict on each dataset, for the README and the report."""
    lines = []
    for (label, _, measure), group in claims.groupby(["label", "versus", "measure"], sort=False):
        parts = [f"{dataset_label(r['dataset'])} {effect(r)} (p_Holm {p_text(r['p_holm'])}): {r['verdict']}"
                 for r in group.to_dict("records")]
        first = group.iloc[0]
        # a study's comparison names its source: the paper's claims say "paper", the kit's own ("ours") "claimed"
        who = "paper" if str(first.get("source", "paper")).startswith("paper") else "claimed"
        lines.append(f"- **{label}** vs {versus_label(first)}, {measure} ({who}: {first['claim']}): "
                     + "; ".join(parts))
    return lines


def paper_claims(records: dict[str, dict]) -> list[str]:
    """The Markdown table "what the kit reproduces": every stored comparison whose source is the paper
    (``source`` starting with "paper"), one line per comparison and dataset, from ``{record stem: record}``."""
    lines = ["| source | study | comparison | dataset | paper Δ | kit Δ [95% CI] | seeds | p (Holm) | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for stem, record in sorted(records.items()):
        for c in record.get("claims") or []:
            if not str(c.get("source", "")).startswith("paper"):
                continue
            paper = "–" if c["paper_delta"] is None else f"{c['paper_delta']:+.2f}"
            lines.append(f"| {c['source']} | {stem} | {c['label']} vs {versus_label(c)}, {c['measure']} "
                         f"({c['claim']}) | {dataset_label(c['dataset'])} | {paper} | {effect(c)} | "
                         f"{c['seeds'] or '–'} v {c['seeds_versus'] or '–'} | {p_text(c['p_holm'])} | {c['verdict']} |")
    return lines


def counts(claims: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict."""
    return {str(k): int(v) for k, v in claims["verdict"].value_counts().items()}
