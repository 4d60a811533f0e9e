"""Trained conditions measured at a scale: each model trained once per (condition, seed, changes) and cached, then
evaluated by the pipeline on the in-domain dataset (nDCG@10 with FLOPS and Doc_Len, Section 5.1.3) and zero-shot
elsewhere (nDCG@10, the documents encoded over the queries' terms alone: the same runs at a fraction of the encoding
time). :class:`Ablator` is what every study measures with (:mod:`eval.study`, :mod:`eval.ablation`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from eval.recipe import DocSpec, QuerySpec, System
from kit.data import is_split, load_dataset
from kit.dataset import Dataset
from kit.errors import InputError
from kit.paths import dataset_slug, work_dir
from pipeline.dataset import DatasetRun
from pipeline.metrics import query_flops
from pipeline.settings import Settings, Timer
from train.cache import model_dir, record_seconds, train_cached
from train.conditions import Condition
from train.recipe import TrainRecipe

# ---- scales ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scale:
    """How much of the ablation to run.

    ``max_steps`` / ``max_length`` / ``batch_size`` ``None`` keep the recipe's values; ``queries`` / ``docs`` ``None``
    evaluate on the whole SciFact test set, otherwise on its first ``queries`` judged queries with their relevant
    documents plus the corpus's first ``docs`` documents. ``zero_shot``: the other datasets a condition is evaluated on
    (None: the condition's own). ``lambdas`` / ``thresholds``: the points of a λ_d or t sweep run (None: all). ``checked``: whether
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
    frontiers: bool = True  # whether a study's comparisons at equal FLOPS (curves) are tested at this scale
    overrides: dict = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None  # None: each condition's own seeds (SEEDS= overrides either)

    def runs_point(self, swept: tuple[str, float] | None) -> bool:
        """Whether this scale runs a sweep's point (``swept``: its field and value; None: not a sweep's point)."""
        if swept is None:
            return True
        allowed = {"lambda_d": self.lambdas, "threshold": self.thresholds}.get(swept[0])
        return allowed is None or float(swept[1]) in allowed

    def recipe_changes(self) -> dict:
        """The training-recipe fields this scale overrides."""
        changes = {k: v for k, v in (("max_steps", self.max_steps), ("max_length", self.max_length),
                                     ("batch_size", self.batch_size)) if v is not None}
        if self.max_steps is not None:
            changes["warmup_steps"] = min(self.max_steps - 1, 1)
            changes["warmup_T"] = min(self.max_steps, 1)
            changes["save_steps"] = self.max_steps
            changes["logging_steps"] = 1  # a study's training measures read the logged loss terms
        return {**changes, **self.overrides}


SCALES: Mapping[str, Scale] = {
    "smoke": Scale("smoke", max_steps=3, max_length=64, batch_size=8, eval_max_length=64, queries=8, docs=100,
                   zero_shot=(), lambdas=(0.01, 0.1), thresholds=(50.0, 150.0), checked=False, seeds=(42,),
                   frontiers=False),  # curves of a few training steps are noise
    "full": Scale("full"),
}


NO_FRONTIERS = frozenset(s.name for s in SCALES.values() if not s.frontiers)
"""The scales whose records leave comparisons at equal FLOPS untested (a re-derivation knows a record's scale by name)."""


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


def collection(name: str) -> str:
    """The collection a dataset name is of: ``scifact`` for ``scifact/dev`` and for ``scifact``."""
    return name.split("/", 1)[0] if is_split(name) else name


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

    def __init__(self, scale: Scale, root: Path | None = None, device: str | None = None,
                 in_domain: str = SPARSITY_DATASET, measures: Sequence[str] = ("nDCG@10",)):
        """``in_domain``: the dataset the models are trained for, where the scale's slice applies and FLOPS and
        Doc_Len are measured; ``measures``: the effectiveness measures taken on every dataset."""
        self.scale, self.device, self.in_domain = scale, device, in_domain
        self.root = root if root is not None else work_dir() / "ablation"
        self.settings = Settings(measures=tuple(measures), hits=1000, max_length=scale.eval_max_length, factor=100.0,
                                 device=device)
        self.timer = Timer()  # wall time per stage over every measure() call: where a run's time goes
        self._datasets: dict[str, Dataset] = {}

    def dataset(self, name: str) -> Dataset:
        """A dataset as studies name it: a collection, or a split of one (``scifact/dev``, :func:`kit.data.is_split`);
        the in-domain collection and its splits sliced at a scale that slices."""
        if name not in self._datasets:
            try:
                ds = load_dataset(*name.split("/", 1)) if is_split(name) else load_dataset(name)
            except ValueError as exc:
                raise InputError(None, f"evaluate: {exc}") from None
            self._datasets[name] = (slice_dataset(ds, self.scale.queries, self.scale.docs)
                                    if collection(name) == collection(self.in_domain) else ds)
        return self._datasets[name]

    def datasets(self, condition: Condition, zero_shot: bool = True) -> list[str]:
        others = [d for d in condition.evaluate if d != self.in_domain] if self.scale.zero_shot is None \
            else list(self.scale.zero_shot)
        return [self.in_domain, *(others if zero_shot else [])]

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
            # FLOPS and Doc_Len are reported on the in-domain collection only: elsewhere the documents are encoded over
            # the queries' terms alone, which gives the same runs at a fraction of the encoding time. A split of the
            # in-domain collection (scifact/dev) shares its folder and whole document vectors; its runs are its own.
            same = collection(name) == collection(self.in_domain)
            folder = self.dataset(self.in_domain).name if same and is_split(name) else ds.name
            run = DatasetRun(ds, self.settings, self.timer, root=model.parent / "eval" / folder,
                             name=dataset_slug(ds.name) if is_split(name) else None,
                             query_terms=None if same else system)
            started = time.perf_counter()
            run.encode_docs([doc])
            result = run.run_system(system)
            record_seconds(model, f"eval_{ds.name}", time.perf_counter() - started)
            frames.append(result.pop("_per_query").assign(dataset=name, system=seed_system(condition.id, seed)))
            if name == self.in_domain:
                frames.append(sparsity_items(run, system).assign(dataset=name, system=seed_system(condition.id, seed)))
            scores[name] = {k: float(result[k]) for k in (*self.settings.measures, "FLOPS", "Doc_Len") if k in result}
        return Measured(condition.id, seed, recipe, model, scores, pd.concat(frames, ignore_index=True))
