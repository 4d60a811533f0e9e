"""The ablations of the paper (Tables 2 and 3, Figures 1-3), re-run at the kit's scale.

    python -m eval.ablation tables  [--scale smoke|full] [--out results]   # results/table{2,3}.{csv,md,json}
    python -m eval.ablation figures [--scale smoke|full] [--out results]   # results/figures/figure{1,2,3}.png

Section 5.3 of "Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers" (SIGIR 2025) trains one
IDF-SPLADE-doc model per condition: the FLOPS regularizer with or without the ℓ0 mask (eq. 5, threshold t), and the
ℓ0 approximation activation (eq. 6) or one of its variants (Table 3: decoupled, inverse-decoupled, two and three
extra logs). Each row of ``results/paper/table{2,3}.csv`` is mapped here (:data:`ABLATIONS`) to a training override
of ``recipes/train/tiny.yaml``: its ``variant`` (:data:`train.losses.VARIANTS`) and whether the mask is on. Every
model is trained once and cached under ``work/ablation/<row>/<hash of the effective recipe>/`` (a finished model
directory is reused, an interrupted one resumed), then evaluated like Table 1 (:class:`eval.reproduce.DatasetRun`):
documents encoded with the variant's ranking activation, BoW × IDF queries with the model's ``idf.json``, an Anserini
impact index, nDCG@10 on SciFact test with FLOPS and Doc_Len (Section 5.1.3), and zero-shot nDCG@10 on the classic
vaswani and cacm collections.

The figures sweep λ_d (Figures 1 and 2: baseline, ℓ0 mask, ℓ0 activation, both; t fixed) and t (Figure 3; λ_d
fixed). A model whose documents collapse (Doc_Len < 1, Section 5.3.2) is drawn with an ``x`` marker in Figure 2.

``--scale smoke`` trains a few steps and evaluates on a slice of SciFact test only, so each target finishes in
about two minutes (a check that the pipeline runs, not a measurement); ``--scale full`` uses the recipe's steps and
every dataset. The kit's model is a 4.4M-parameter SPLADE-tiny trained minutes on SciFact, not the paper's
MS MARCO-trained BERT-base: only the directions of the effects can be compared with the paper.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from tqdm.auto import tqdm

from eval.reproduce import DatasetRun, Timer
from kit.errors import InputError, cli
from kit.paths import REPO, repo_relative, work_dir
from train.cache import model_dir, read_seconds, recipe_hash, train_cached  # noqa: F401  (re-exported)
from kit.argtypes import ArgumentParser

if TYPE_CHECKING:
    import pandas as pd

    from kit.data import Dataset
    from train.trainer import TrainRecipe

DEFAULT_RECIPE = REPO / "recipes" / "train" / "tiny.yaml"
COLLAPSE_DOC_LEN = 1.0
"""A model whose documents keep fewer than this many non-zero tokens on average has collapsed (Figure 2's ``x``)."""

CAVEAT = ("These numbers come from a 4.4M-parameter SPLADE-tiny trained for minutes on SciFact (BoW × IDF queries, "
          "CPU), not the paper's BERT-base trained on MS MARCO and averaged over 13 BEIR datasets: only the directions "
          "of the effects (better or worse than the baseline, sparser or denser) can be compared with the paper.")


# ---- the conditions ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ablation:
    """A row of Tables 2-3: its training ``variant`` (:data:`train.losses.VARIANTS`) and whether the ℓ0 mask is on."""

    slug: str
    variant: str
    mask: bool

    def apply(self, recipe: "TrainRecipe", **changes) -> "TrainRecipe":
        """``recipe`` with this row's variant, its threshold kept (mask) or dropped (plain FLOPS), then ``changes``.

        Raises ValueError when the mask is wanted but the recipe sets no threshold.
        """
        threshold = changes.pop("threshold", recipe.threshold)
        if self.mask and threshold is None:
            raise ValueError(f"{self.slug} needs the ℓ0 mask but the recipe sets no threshold")
        return recipe.replace(variant=self.variant, threshold=threshold if self.mask else None, **changes)


ABLATIONS: Mapping[str, Ablation] = {a.slug: a for a in (
    Ablation("baseline", "baseline", False),
    Ablation("l0-mask", "baseline", True),
    Ablation("l0-act", "l0", False),
    Ablation("l0-mask-l0-act", "l0", True),
    Ablation("de-l0-act", "de-l0", False),
    Ablation("inv-de-l0-act", "inv-de-l0", False),
    Ablation("l0-act-x2", "l0x2", False),
    Ablation("l0-act-x3", "l0x3", False),
    Ablation("l0-mask-de-l0-act", "de-l0", True),
    Ablation("l0-mask-inv-de-l0-act", "inv-de-l0", True),
)}
"""Row slug of ``results/paper/table{2,3}.csv`` -> its training override."""

FIGURE_METHODS = {"baseline": "Baseline", "l0-mask": "ℓ0 mask", "l0-act": "ℓ0 activation",
                  "l0-mask-l0-act": "ℓ0 mask + ℓ0 activation"}
"""Figures 1-2: the four methods of the λ_d sweep (Figure 3 sweeps t for the two that use the mask)."""


@dataclass(frozen=True)
class Scale:
    """How much of the ablation to run.

    ``max_steps`` / ``max_length`` / ``batch_size`` ``None`` keep the recipe's values; ``queries`` / ``docs`` ``None``
    evaluate on the whole SciFact test set, otherwise on its first ``queries`` judged queries with their relevant
    documents plus the corpus's first ``docs`` documents. ``zero_shot`` are evaluated whole. ``overrides``: any other
    training-recipe fields to change (e.g. ``{"docs_per_query": 2}``).
    """

    name: str
    max_steps: int | None = None
    max_length: int | None = None
    batch_size: int | None = None
    eval_max_length: int = 512
    queries: int | None = None
    docs: int | None = None
    zero_shot: tuple[str, ...] = ("vaswani", "cacm")
    lambdas: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)  # the recipe's 0.01 among them: shared with Table 2
    thresholds: tuple[float, ...] = (50.0, 150.0, 300.0)  # the recipe's t=150 among them
    overrides: dict = field(default_factory=dict)

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
                   zero_shot=(), lambdas=(0.01, 0.1), thresholds=(50.0, 150.0)),
    "full": Scale("full"),
}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}; choose one of {', '.join(SCALES)}")
    return SCALES[name]


def trained_model(row: str, recipe: str | Path = DEFAULT_RECIPE) -> tuple[Path, str]:
    """The full-scale model of Table 2/3 row ``row`` (what ``make ablation`` trains) and its ranking activation.

    Table 1's row of the kit's own ℓ0 model is ``trained_model("l0-mask-l0-act")``: the same cached directory as
    Table 2's "ℓ0 mask + ℓ0 activation" row, trained on demand (training file mined first when missing).
    """
    from train.trainer import load_train_recipe

    effective = Ablator(SCALES["full"], load_train_recipe(recipe)).recipe_for(row)
    return train_cached(row, effective), effective.activation


# ---- evaluation ----------------------------------------------------------------------------------------------------

def slice_dataset(ds: "Dataset", queries: int | None, docs: int | None) -> "Dataset":
    """The first ``queries`` judged queries (by id) with their relevant documents plus the first ``docs`` documents.

    The slice is named ``<name>-q<queries>-d<docs>``, so differently sized slices never share cached artifacts.
    """
    from kit.data import Dataset

    if queries is None and docs is None:
        return ds
    qids = sorted(q for q in ds.queries if any(r > 0 for r in ds.qrels.get(q, {}).values()))[:queries]
    qrels = {q: dict(ds.qrels[q]) for q in qids}
    wanted = {d for judged in qrels.values() for d, r in judged.items() if r > 0}
    kept = [d for i, d in enumerate(ds.docs()) if (docs is not None and i < docs) or d.doc_id in wanted]
    return Dataset(name=f"{ds.name}-q{queries or 'all'}-d{docs or 0}", queries={q: ds.queries[q] for q in qids},
                   qrels=qrels, docs=lambda: iter(kept), num_docs=len(kept), source=ds.source)


class ModelEval(DatasetRun):
    """:class:`DatasetRun`'s stages (encode, index, query, search, score) over an in-memory dataset and work root."""

    def __init__(self, ds: "Dataset", root: Path, max_length: int, device: str | None = None):
        from eval.recipe import Recipe

        recipe = Recipe(path=DEFAULT_RECIPE, table=2, datasets=[ds.name], measures=["nDCG@10"], hits=1000,
                        max_length=max_length, factor=100, systems=[])
        args = SimpleNamespace(force=False, device=device, batch_size=32, threads=2)
        super().__init__(ds.name, recipe, args, Timer(), ds=ds, root=root)

    def score(self, model: Path, activation: str) -> dict[str, float]:
        """nDCG@10, FLOPS, Doc_Len and ``_per_query`` of ``model``: documents with ``activation``, BoW × IDF queries
        (its idf.json)."""
        from eval.recipe import DocSpec, QuerySpec, System

        doc = DocSpec(model=str(model), activation=activation)
        system = System(id=f"{activation}.len{self.recipe.max_length}", label=str(model), type="sparse", doc=doc,
                        query=QuerySpec(encoder="bow-idf", idf="model"))
        self.encode_docs([doc])
        return self.run_system(system)  # with "_per_query": the per-query nDCG@10 frame


@dataclass
class Measured:
    """One trained condition and its scores (SciFact nDCG@10, FLOPS, Doc_Len; ``<dataset>_nDCG@10`` zero-shot)."""

    slug: str
    recipe: "TrainRecipe"
    model: Path
    scores: dict[str, float]
    per_query: "pd.DataFrame | None" = None  # dataset, system (= slug), query_id, measure, value


class Ablator:
    """Train (cached) and evaluate ablation conditions at one :class:`Scale`."""

    def __init__(self, scale: Scale, recipe: "TrainRecipe", root: Path | None = None, device: str | None = None):
        self.scale, self.base, self.device = scale, recipe, device
        self.root = root if root is not None else work_dir() / "ablation"
        self._datasets: dict[str, "Dataset"] = {}

    def recipe_for(self, slug: str, **changes) -> "TrainRecipe":
        """The effective training recipe of a Table 2/3 row (ValueError for an unknown row)."""
        if slug not in ABLATIONS:
            raise ValueError(f"unknown ablation {slug!r}; choose one of {', '.join(ABLATIONS)}")
        return ABLATIONS[slug].apply(self.base, **{**self.scale.recipe_changes(), **changes})

    def dataset(self, name: str) -> "Dataset":
        from kit.data import load_dataset

        if name not in self._datasets:
            ds = load_dataset(name)
            self._datasets[name] = slice_dataset(ds, self.scale.queries, self.scale.docs) if name == "scifact" else ds
        return self._datasets[name]

    def measure(self, slug: str, zero_shot: bool = True, **changes) -> Measured:
        """Train (cached) and evaluate one condition on SciFact and, with ``zero_shot``, the scale's zero-shot sets.

        The wall time of training and of each dataset's first evaluation is kept in the model's ``timing.json``.
        """
        from train.cache import record_seconds

        recipe = self.recipe_for(slug, **changes)
        model = train_cached(slug, recipe, self.root)
        evals = model.parent / "eval"
        import pandas as pd

        scores, per_query = {}, []
        for name in ("scifact", *(self.scale.zero_shot if zero_shot else ())):
            ds = self.dataset(name)
            run = ModelEval(ds, evals / ds.name, self.scale.eval_max_length, self.device)
            started = time.perf_counter()
            result = run.score(model, recipe.activation)
            record_seconds(model, f"eval_{ds.name}", time.perf_counter() - started)
            frame = result.pop("_per_query")
            per_query.append(frame.assign(dataset=name, system=slug))
            if name == "scifact":
                scores.update({k: result[k] for k in ("nDCG@10", "FLOPS", "Doc_Len")})
            else:
                scores[f"{name}_nDCG@10"] = result["nDCG@10"]
        return Measured(slug, recipe, model, scores, pd.concat(per_query, ignore_index=True))


# ---- tables ----------------------------------------------------------------------------------------------------------

def build_table(n: int, measured: Mapping[str, Measured], zero_shot: Sequence[str]) -> "pd.DataFrame":
    """Table ``n`` (2 or 3): each paper row with the measured values (nDCG@10 ×100, as printed) beside the paper's."""
    import pandas as pd

    from eval.paper import load_paper_table

    if n not in (2, 3):
        raise ValueError(f"the ablation tables are 2 and 3, not {n!r}")
    paper = load_paper_table(n)
    rows = []
    for p in paper.to_dict("records"):
        m = measured[p["system"]]
        r = m.recipe
        row = {"system": p["system"], "label": p["label"], "variant": r.variant, "threshold": r.threshold,
               "lambda_d": r.lambda_d, "steps": r.max_steps,
               "nDCG@10": round(100 * m.scores["nDCG@10"], 2), "FLOPS": round(m.scores["FLOPS"], 3),
               "Doc_Len": round(m.scores["Doc_Len"], 2)}
        for name in zero_shot:
            row[f"{name}_nDCG@10"] = round(100 * m.scores[f"{name}_nDCG@10"], 2)
        row.update({f"paper_{k}": p[k] for k in ("nDCG@10", "FLOPS", "Doc_Len")})
        seconds = read_seconds(m.model)
        row["train_s"] = seconds.get("train")
        row["eval_s"] = round(sum(v for k, v in seconds.items() if k.startswith("eval_")), 1) if seconds else None
        rows.append(row)
    table = pd.DataFrame(rows)
    base = table.set_index("system").loc["baseline"]
    table["delta_baseline_nDCG@10"] = (table["nDCG@10"] - base["nDCG@10"]).round(2)
    table["paper_delta_baseline_nDCG@10"] = (table["paper_nDCG@10"] - base["paper_nDCG@10"]).round(2)
    return table


def schema_rows(measured: Mapping[str, Measured], labels: Mapping[str, str], zero_shot: Sequence[str]) -> list[dict]:
    """``kit-results/1`` rows: SciFact (nDCG@10, FLOPS, Doc_Len) and each zero-shot set (nDCG@10) per system."""
    rows = []
    for s, label in labels.items():
        m = measured[s]
        rows.append({"dataset": "scifact", "system": s, "label": label,
                     "metrics": {k: float(m.scores[k]) for k in ("nDCG@10", "FLOPS", "Doc_Len")}})
        rows += [{"dataset": name, "system": s, "label": label, "metrics": {"nDCG@10": float(m.scores[f"{name}_nDCG@10"])}}
                 for name in zero_shot]
    return rows


def render_markdown(n: int, table: "pd.DataFrame", command: str, scale: Scale) -> str:
    """The table as markdown, measured columns beside the paper's, with the scale caveat."""
    cols = [c for c in table.columns
            if c not in ("system", "variant", "threshold", "lambda_d", "steps", "train_s", "eval_s")]
    lines = [f"<!-- generated by `{command}`; do not edit -->", f"# Table {n}: ablation, measured beside the paper", "",
             CAVEAT, "",
             f"Scale `{scale.name}`: nDCG@10 ×100 on SciFact test"
             + (f" (slice: {scale.queries} queries)" if scale.queries else "")
             + ", FLOPS and Doc_Len from the indexed document vectors (Section 5.1.3); `paper_*` are the paper's "
               "BEIR averages; Δ baseline = row − Baseline row.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.to_dict("records"):
        lines.append("| " + " | ".join(_cell(r[c]) for c in cols) + " |")
    timed = table.dropna(subset=["train_s"])
    if len(timed):
        lines += ["", f"Wall time per condition (this machine, first run; `train_s`, `eval_s` in the CSV): training "
                      f"{timed['train_s'].min():.0f}–{timed['train_s'].max():.0f} s, evaluation on every dataset "
                      f"{timed['eval_s'].min():.0f}–{timed['eval_s'].max():.0f} s; longest condition "
                      f"{(timed['train_s'] + timed['eval_s']).max() / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_tables(ablator: Ablator, out: Path, command: str, tables: Iterable[int] = (2, 3)) -> list[Path]:
    """Measure every row of the given tables and write ``table<n>.{csv,md,json}`` under ``out``."""
    import pandas as pd

    from eval.paper import load_paper_table
    from eval.provenance import provenance
    from eval.schema import FORMAT
    from kit.io import atomic_write, write_json

    started = time.perf_counter()
    written = []
    measured: dict[str, Measured] = {}
    slugs = list(dict.fromkeys(slug for n in tables for slug in load_paper_table(n)["system"]))
    for slug in tqdm(slugs, desc="ablation conditions", unit="model"):
        measured[slug] = ablator.measure(slug)
    for n in tables:
        table = build_table(n, measured, ablator.scale.zero_shot)
        with atomic_write(out / f"table{n}.csv") as fh:
            table.to_csv(fh, index=False)
        with atomic_write(out / f"table{n}.md") as fh:
            fh.write(render_markdown(n, table, command, ablator.scale))
        systems = list(table["system"])
        with atomic_write(out / "per-query" / f"table{n}.csv.gz") as fh:
            pd.concat([measured[s].per_query for s in systems], ignore_index=True).to_csv(fh, index=False)
        write_json(out / f"table{n}.json", {  # kit-results/1 (results/SCHEMA.md): raw scores, not ×100
            "format": FORMAT, "table": n, "measures": ["nDCG@10"], "per_query": f"per-query/table{n}.csv.gz",
            "rows": schema_rows(measured, dict(zip(table["system"], table["label"])), ablator.scale.zero_shot),
            **provenance(command=command.split()),
            "train_recipe": repo_relative(ablator.base.path) if ablator.base.path else None,
            "scale": ablator.scale.name, "caveat": CAVEAT, "datasets": ["scifact", *ablator.scale.zero_shot],
            "systems": systems, "models": {s: str(measured[s].model) for s in systems},
            "total_seconds": round(time.perf_counter() - started, 1)})
        written += [out / f"table{n}.{ext}" for ext in ("csv", "md", "json")] + [out / "per-query" / f"table{n}.csv.gz"]
    return written


# ---- figures ---------------------------------------------------------------------------------------------------------

def is_collapsed(doc_len: float) -> bool:
    """True for a model whose documents average fewer than :data:`COLLAPSE_DOC_LEN` non-zero tokens."""
    return doc_len < COLLAPSE_DOC_LEN


def markers(doc_lens: Sequence[float], normal: str = "o") -> list[str]:
    """Figure 2's marker per point: ``x`` for a collapsed run, ``normal`` otherwise."""
    return ["x" if is_collapsed(v) else normal for v in doc_lens]


def sweep(ablator: Ablator) -> "pd.DataFrame":
    """λ_d sweep of the four methods (t from the recipe) and t sweep of the masked ones (λ_d from the recipe)."""
    import pandas as pd

    points = [(kind, slug, key, value)
              for kind, methods, key, values in (("lambda", FIGURE_METHODS, "lambda_d", ablator.scale.lambdas),
                                                 ("threshold", ("l0-mask", "l0-mask-l0-act"), "threshold",
                                                  ablator.scale.thresholds))
              for slug in methods for value in values]
    rows = []
    for kind, slug, key, value in tqdm(points, desc="sweep conditions", unit="model"):
        m = ablator.measure(slug, zero_shot=False, **{key: value})  # the figures plot SciFact only
        rows.append({"sweep": kind, "method": slug, "lambda_d": m.recipe.lambda_d,
                     "threshold": m.recipe.threshold, **m.scores, **read_seconds(m.model)})
    return pd.DataFrame(rows)


def plot_figures(points: "pd.DataFrame", out: Path) -> list[Path]:
    """Figures 1-3 as PNG under ``out``: nDCG@10 vs FLOPS (λ sweep), λ vs Doc_Len, nDCG@10 vs Doc_Len (t sweep)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kit.io import atomic_write

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
            line = ax.plot(group[x], group[y], "-", label=FIGURE_METHODS[method])[0]
            for (xv, yv, dl, value) in zip(group[x], group[y], group["Doc_Len"],
                                            group[label] if label else group[x]):
                marker = markers([dl])[0] if name == "figure2" else "o"
                ax.plot([xv], [yv], marker=marker, color=line.get_color(), markersize=7 if marker == "x" else 4)
                if label:
                    ax.annotate(f"{prefix}{value:g}", (xv, yv), textcoords="offset points", xytext=(3, 3), fontsize=6,
                                color=line.get_color())
        if name == "figure2":
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{name}.png"
        with atomic_write(path, mode="wb") as fh:
            fig.savefig(fh, format="png", dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def write_figures(ablator: Ablator, out: Path, command: str) -> list[Path]:
    """Run both sweeps and write ``figures/figure{1,2,3}.png``, the points as ``figures/sweep.csv`` and provenance."""
    from eval.provenance import provenance
    from kit.io import atomic_write, write_json

    started = time.perf_counter()
    points = sweep(ablator)
    folder = out / "figures"
    with atomic_write(folder / "sweep.csv") as fh:
        points.to_csv(fh, index=False)
    paths = plot_figures(points, folder)
    write_json(folder / "figures.json", provenance(
        command=command.split(), scale=ablator.scale.name, caveat=CAVEAT, base_recipe=str(ablator.base.path),
        total_seconds=round(time.perf_counter() - started, 1)))
    return [*paths, folder / "sweep.csv", folder / "figures.json"]


def parse_changes(items: Sequence[str]) -> dict:
    """``["lambda_d=0.1", "threshold=null"]`` -> recipe field overrides, values read as YAML scalars."""
    import yaml

    from train.trainer import _CONVERTERS

    fields = sorted(set(_CONVERTERS) - {"base_model", "data", "variant"})  # the row fixes the variant
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise InputError(None, f"--set {item!r}: expected FIELD=VALUE with FIELD a training-recipe field",
                             fix=f"fields: {', '.join(fields)}")
        try:
            changes[key] = _CONVERTERS[key](yaml.safe_load(value))
        except ValueError as err:
            raise InputError(None, f"--set {item!r}: {err}") from None
    return changes


# ---- command line ----------------------------------------------------------------------------------------------------

@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m eval.ablation", description=__doc__.splitlines()[0])
    p.add_argument("target", choices=["tables", "figures", "measure"],
                   help="measure: one condition (ROW, with --set overrides), its scores printed as JSON")
    p.add_argument("row", nargs="?", help="measure: a Table 2/3 row, e.g. l0-mask-l0-act")
    p.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                   help="measure: override a training-recipe field (repeatable), e.g. --set lambda_d=0.1")
    p.add_argument("--no-zero-shot", action="store_true", help="measure: SciFact only")
    p.add_argument("--scale", default="full", choices=list(SCALES))
    p.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="base training recipe (default: tiny.yaml)")
    p.add_argument("--out", default=str(REPO / "results"))
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = p.parse_args(argv)
    from train.trainer import load_train_recipe

    ablator = Ablator(get_scale(args.scale), load_train_recipe(args.recipe), device=args.device)
    command = " ".join(["python -m eval.ablation", *(argv if argv is not None else sys.argv[1:])])
    if args.target == "measure":
        if args.row is None:
            raise InputError(None, "measure needs a row", fix=f"one of {', '.join(ABLATIONS)}")
        m = ablator.measure(args.row, zero_shot=not args.no_zero_shot, **parse_changes(args.changes))
        print(json.dumps({"row": m.slug, "recipe_hash": recipe_hash(m.recipe), "model": str(m.model),
                          "changes": parse_changes(args.changes), "scores": m.scores,
                          "seconds": read_seconds(m.model)}, default=str))
        return 0
    write = write_tables if args.target == "tables" else write_figures
    for path in write(ablator, Path(args.out), command):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
