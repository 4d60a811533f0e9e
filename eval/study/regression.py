"""Table 1's regression options on the study runner: which systems a study of references measures, where and how.

    python -m eval.study table1                                               # the study file's systems, on SciFact
    python -m eval.study table1 --datasets all \\
        --model opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill --device cuda
    python -m eval.study table1 --recipe recipes/my-table.yaml               # another table recipe's systems
    python -m eval.study table1 --dry-run --shards 4                          # every stage, the encode commands

``--model`` measures one doc encoder with BM25 beside it, checked against its published numbers in ``--released``
(:func:`model_systems`); ``--recipe`` measures a table recipe's systems with the expectations it gives them. Either
replaces the study's references (:func:`with_systems`), and the record names the recipe (``recipe``), so
``compare --check`` rebuilds the same study from it (:func:`recorded_study`). ``--datasets`` replaces the study's
datasets (its table repeated per dataset); ``--backend``, ``--batch-size``, ``--threads`` and ``--force`` set how the
engine runs (:func:`engine_settings`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

from eval.recipe import DocSpec, QuerySpec, Recipe, System, check_datasets, load_recipe
from eval.study.model import SPARSITY, Reference, Study, Table
from eval.study.spec import REFERENCE_RECIPE
from kit.argtypes import positive_int
from kit.data import BEIR_DATASETS
from kit.errors import InputError
from kit.hub import detect_activation
from kit.nanobeir import NANOBEIR_DATASETS
from kit.paths import REPO, dataset_slug, repo_relative, slug
from pipeline.settings import Settings

RELEASED = REPO / "recipes" / "released.yaml"
"""Released models with their published numbers: what ``--model`` checks a run against."""


def add_options(p: argparse.ArgumentParser) -> None:
    """The regression options (a study of references only; the engine options apply to any study)."""
    p.add_argument("--datasets", default=None,
                   help="comma-separated dataset names, 'all' for the paper's 13, 'nanobeir' for NanoBEIR's 13 "
                        "(default: the study's; with --recipe, the recipe's)")
    p.add_argument("--recipe", default=None,
                   help="a table recipe (recipes/table1.yaml's format): measure its systems, with its expected scores, "
                        "instead of the study's references")
    p.add_argument("--model", default=None,
                   help="hub id or directory: measure this doc encoder (with BM25 beside it) instead of the study's "
                        "references, checked against its published numbers in --released")
    p.add_argument("--released", default=str(RELEASED),
                   help="--model: the recipe of released models and their published numbers (default: %(default)s)")
    p.add_argument("--activation", default=None, choices=["relu", "l0", "l0x2", "l0x3"],
                   help="--model: the document activation (default: the one the model declares)")
    p.add_argument("--idf", default=None, choices=["model", "corpus"],
                   help="--model: query IDF from the model's idf.json (default) or computed from the corpus")
    p.add_argument("--backend", choices=["anserini", "seismic"], default=None,
                   help="sparse retrieval backend (default: the recipe's index.backend, else anserini)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--threads", type=positive_int, default=2, help="indexing/search threads")
    p.add_argument("--force", action="store_true", help="redo every stage instead of resuming")
    p.add_argument("--shards", type=positive_int, default=1,
                   help="--dry-run: print the encode commands split into this many shards (one per machine)")


def resolve_datasets(names: list[str]) -> list[str]:
    """``all``: the paper's 13 BEIR datasets; ``nanobeir``: the 13 NanoBEIR subsets (online); else the names as given."""
    if names == ["all"]:
        return list(BEIR_DATASETS)
    if names == ["nanobeir"]:
        return [f"nanobeir/{name}" for name in NANOBEIR_DATASETS]
    return names


def model_systems(released: Recipe, model: str, activation: str | None = None, idf: str | None = None) -> list[System]:
    """``--model``: the released recipe's BM25 row and one inference-free system for ``model``.

    A model ``released`` lists keeps its expected scores, tolerance and paper column; its declared activation (its
    sentence-transformers SpladePooling) must be the listed one. Any other model gets no expected scores and no paper
    column (said on stdout), and must declare its activation or be given ``activation``. ``activation`` or ``idf``
    that change a listed model make it another system: measured, not checked. Nothing falls back silently: a model
    that cannot be read is an InputError (:func:`kit.hub.local_model_dir`).
    """
    declared = detect_activation(model)
    listed = {s.doc.model: s for s in released.systems if s.doc is not None}
    baselines = [s for s in released.systems if s.type == "bm25"]
    if model in listed:
        system = listed[model]
        if declared is not None and declared != system.doc.activation:
            raise InputError(released.path, f"{model} declares the {declared} activation, this file lists "
                                            f"{system.doc.activation}", fix="correct the file's doc.activation")
        changed = {k: v for k, v in (("activation", activation), ("idf", idf)) if v is not None
                   and v != (system.doc.activation if k == "activation" else system.query.idf)}
        if not changed:
            return baselines + [system]
        print(f"note: {model} with {', '.join(f'{k} {v}' for k, v in changed.items())} is not the released system: "
              "its published numbers do not apply; measured, not checked", flush=True)
        act = changed.get("activation", system.doc.activation)
        return baselines + [dataclasses.replace(
            system, id=f"{system.id}.{'.'.join(f'{k}-{v}' for k, v in changed.items())}", paper=None, expected={},
            label=f"{system.label} ({', '.join(f'{k} {v}' for k, v in changed.items())})",
            doc=DocSpec(model, act), query=QuerySpec("bow-idf", idf=changed.get("idf", system.query.idf)))]
    act = activation or declared
    if act is None:
        raise InputError(None, f"--model {model}: the model declares no document activation (no sentence-transformers "
                               "SpladePooling config)", fix="pass --activation relu or l0 (ACTIVATION=...)")
    print(f"note: {model} is not listed in {repo_relative(released.path)}: no published numbers to check it against "
          "and no paper column; its rows are measured, not checked", flush=True)
    return baselines + [System(id=f"{slug(model)}.bow-idf.{act}", label=f"{model} + BoW×IDF ({act})", type="sparse",
                               doc=DocSpec(model=model, activation=act),
                               query=QuerySpec(encoder="bow-idf", idf=idf or "model"))]


def with_systems(study: Study, systems: Sequence[System] | None, datasets: Sequence[str],
                 measures: Sequence[str] | None = None) -> Study:
    """``study`` measuring ``systems`` (each with the expectations its recipe gives it, a local folder's keyed by the
    folder's name) on ``datasets``, scored by ``measures`` (their recipe's; default: the study's): its first table's
    columns (``measures`` and the sparsity measures it shows) and paper annotation, one table per dataset when they
    are not the study's own."""
    references = study.references if systems is None else tuple(
        Reference(s.id, s.label, s, {d: s.expected[k] for d in datasets
                                     for k in {d, dataset_slug(d)} & set(s.expected)}, s.tolerance) for s in systems)
    measures = tuple(measures or study.measures)
    rows = tuple(r.id for r in references)
    tables = study.tables
    if tuple(datasets) != study.datasets or systems is not None or measures != study.measures:
        template = study.tables[0]
        shown = (*measures, *(m for m in next(iter(template.columns.values())) if m in SPARSITY))
        tables = tuple(Table(template.id if len(datasets) == 1 else f"{template.id}-{slug(d)}",
                             template.title if tuple(datasets) == study.datasets else f"{template.title}: {d}",
                             rows, {d: shown}, template.paper) for d in datasets)
    return dataclasses.replace(study, references=references, datasets=tuple(datasets), in_domain=datasets[0],
                               tables=tables, measures=measures)


def configure(study: Study, args: argparse.Namespace) -> tuple[Study, dict[str, Any]]:
    """The study the options ask for, and what its record names besides (``recipe``: where its systems are), checked
    before anything loads (a dataset typo, an option that needs another)."""
    if args.model is None and (args.activation or args.idf):
        raise InputError(None, "--activation and --idf apply to --model", fix="add --model, or set them in a recipe")
    if args.model and args.recipe:
        raise InputError(None, "--model and --recipe both name the systems to measure", fix="pass one of them")
    if (args.model or args.recipe or args.datasets) and study.conditions:
        raise InputError(study.path, "--model, --recipe and --datasets apply to a study of references only "
                                     "(Table 1's)", fix="run it without them, or on a study of references")
    if not (args.model or args.recipe or args.datasets):
        return study, {}
    recipe = load_recipe(args.recipe or REFERENCE_RECIPE, table=1)
    own = recipe.datasets if args.recipe else study.datasets  # a table recipe's own datasets, else the study's
    datasets = resolve_datasets(args.datasets.split(",")) if args.datasets else list(own)
    check_datasets(recipe, datasets, "--datasets" if args.datasets else None)
    meta = {"datasets_from": "--datasets"} if args.datasets else {}
    if args.model:
        released = load_recipe(args.released, table=1)
        return (with_systems(study, model_systems(released, args.model, args.activation, args.idf), datasets,
                             released.measures), {**meta, "recipe": repo_relative(released.path)})
    if args.recipe:
        return (with_systems(study, recipe.systems, datasets, recipe.measures),
                {**meta, "recipe": repo_relative(recipe.path)})
    return with_systems(study, None, datasets), meta


def engine_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """The engine's settings with the options' batch size, threads, ``--force`` and index backend (default: the
    systems' recipe's ``index`` block, else Anserini); ``--recipe``: that recipe's ``max_length`` too."""
    recipe = load_recipe(args.recipe or REFERENCE_RECIPE, table=1)
    base = Settings.of(recipe, backend=args.backend)
    return dataclasses.replace(settings, index=base.index, batch_size=args.batch_size, threads=args.threads,
                               force=args.force, hits=recipe.hits, factor=recipe.factor,
                               max_length=recipe.max_length if args.recipe else settings.max_length)


def recorded_study(study: Study, meta: Mapping[str, Any], root: Path, labels: Mapping[str, str]) -> Study:
    """The study a record was measured with (:func:`configure`'s): ``study`` on the record's datasets when it names
    where they came from (``datasets_from``), with the systems the record names
    from the recipe it names (``recipe``; a system that recipe lacks, e.g. an unlisted ``--model``, is measured,
    not checked: no expectations). ``labels``: each system's label as the record gives it."""
    datasets = list(meta["datasets"])
    if not meta.get("recipe"):
        return with_systems(study, None, datasets) if meta.get("datasets_from") else study
    recipe = load_recipe(root / meta["recipe"])
    known = {s.id: s for s in recipe.systems}
    systems = [known.get(sid) or System(id=sid, label=labels.get(sid, sid), type="sparse")
               for sid in meta["systems"]]
    return with_systems(study, systems, datasets, recipe.measures)
