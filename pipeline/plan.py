"""Before a dataset's stages run: trained documents resolved to their model, and the ``--dry-run`` plan."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kit.data import download_source
from kit.errors import InputError
from kit.manifest import Artifact
from pipeline.dataset import DatasetRun
from pipeline.settings import Settings, Timer
from pipeline.specs import DocSpec, System
from pipeline.systems import kind_of
from train.conditions import trained_model


def resolve_trained(system: System, seed: int | None = None) -> System:
    """``system`` with a ``doc: {trained: <condition>}`` replaced by the directory of that condition's model at
    ``seed`` (None: the condition's own; trained now when it is not cached yet;
    :func:`train.conditions.trained_model`)."""
    if system.doc is None or system.doc.trained is None:
        return system
    model, activation = trained_model(system.doc.trained, seed)
    if activation != system.doc.activation:
        raise InputError(None, f"system {system.id}: the {system.doc.trained} model ranks with the {activation} "
                               f"activation, not {system.doc.activation}", fix=f"set doc.activation: {activation}")
    return dataclasses.replace(system, doc=DocSpec(model=str(model), activation=activation))


def print_plan(run: DatasetRun, systems: list[System], shards: int = 1) -> None:
    """``--dry-run``: each stage's artifact and whether it is cached, and the commands that encode the documents
    (split into ``shards`` for several machines: run each, copy every output file into the folder printed, and the
    next run verifies and uses them)."""
    def state(art: Artifact) -> str:
        """cached or to do."""
        return "cached" if art.ready() else "to do"

    print(f"# {run.key}: {run.ds.num_docs or '?'} documents, {len(run.ds.queries)} queries ({run.ds.source})")
    printed: set[Path] = set()
    for system in systems:
        if system.doc is not None and system.doc.trained is not None:
            print(f"{system.id}: documents from the kit's trained model {system.doc.trained!r} (trained on demand, "
                  f"cached: python -m eval.ablation measure {system.doc.trained})")
            continue
        kind = kind_of(system)
        stages = "; ".join(f"{what} {art.path} [{state(art)}]" for what, art in kind.plan(run, system))
        print(f"{system.id}: {stages}")
        doc = kind.documents(system)
        vectors = run.vectors(doc) if doc is not None else None
        if vectors is not None and not vectors.ready() and vectors.path not in printed:
            printed.add(vectors.path)
            for i in range(shards):
                print("    " + run.encode_command(doc, (i, shards) if shards > 1 else None))
        print(f"    run {run.run(system).path} [{state(run.run(system))}]")


def print_plans(names: list[str], settings: Settings, timer: Timer, systems: list[System], shards: int = 1) -> None:
    """:func:`print_plan` of each dataset; one whose corpus would be fetched is named with its source instead (a dry
    run fetches nothing, and the stages' keys need the corpus)."""
    for name in names:
        source = download_source(name)
        if source is not None:
            print(f"# {name}: would download {name} via {source}; its stages are planned once it is there")
            continue
        print_plan(DatasetRun.load(name, settings, timer), systems, shards)
