"""Regenerate Table 1 from a recipe: data → encode → index → search → score → table, checked against the recipe.

    python -m eval.reproduce --recipe recipes/table1.yaml                   # offline default (SciFact, SPLADE-tiny, CPU)
    python -m eval.reproduce --list-conditions                               # the recipe's systems, with commands
    python -m eval.reproduce --dry-run --shards 4                            # every stage's artifact, the encode commands
    python -m eval.reproduce --datasets all \\
        --model opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill --device cuda

The stages are :mod:`pipeline`'s (cached by content under ``work/``, resumed after a kill; ``--force`` redoes
them). The table goes to ``work/results/table<N>.{csv,md,json}`` (:mod:`eval.results`), or with ``--update`` to the
stored reference in ``results/``; a system outside its expected score's tolerance prints ``FAIL`` and exits 1.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import pandas as pd

from eval.paper import SYSTEMS, load_errata, load_paper_table
from eval.provenance import provenance
from eval.recipe import DocSpec, QuerySpec, Recipe, System, check_datasets, load_recipe
from eval.results import (check_expected, fmt, markdown_table, output_folder, report_checks, signed, where_written,
                          write_results)
from eval.schema import table_rows
from kit.argtypes import ArgumentParser, positive_int
from kit.data import BEIR_DATASETS
from kit.errors import InputError, cli
from kit.hub import detect_activation
from kit.io import check_writable
from kit.nanobeir import NANOBEIR_DATASETS
from kit.paths import REPO, repo_relative, slug, work_dir
from pipeline.dataset import DatasetRun
from pipeline.plan import print_plans, resolve_trained
from pipeline.settings import Settings, Timer


def resolve_datasets(names: list[str]) -> list[str]:
    """``all``: the paper's 13 BEIR datasets; ``nanobeir``: the 13 NanoBEIR subsets (online); else the names as given."""
    if names == ["all"]:
        return list(BEIR_DATASETS)
    if names == ["nanobeir"]:
        return [f"nanobeir/{name}" for name in NANOBEIR_DATASETS]
    return names


RELEASED = REPO / "recipes" / "released.yaml"
"""Released models with their published numbers: what ``--model`` checks a run against."""


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
    system = System(id=f"{slug(model)}.bow-idf.{act}", label=f"{model} + BoW×IDF ({act})", type="sparse",
                    doc=DocSpec(model=model, activation=act), query=QuerySpec(encoder="bow-idf", idf=idf or "model"))
    return baselines + [system]


def check(system: System, dataset: str, scores: dict) -> tuple[str, str]:
    """The system's verdict on ``dataset``: its expected scores there, within its tolerance
    (:func:`eval.results.check_expected`)."""
    return check_expected(system.expected.get(dataset), system.tolerance, scores)


def build_table(recipe: Recipe, datasets: list[str], systems: list[System], results: dict) -> pd.DataFrame:
    paper = load_paper_table(recipe.table, corrected=True).set_index("dataset")  # errata applied
    rows = []
    for ds in datasets:
        for s in systems:
            scores = results[(ds, s.id)]
            reported = {k: round(scores[k], 2) for k in ("FLOPS", "Doc_Len") if k in scores}
            status, detail = check(s, ds, {**scores, **reported})  # FLOPS and Doc_Len as the table reports them
            row = {"dataset": ds, "system": s.id, "label": s.label}
            row.update({m: round(scores[m], 4) for m in recipe.measures})
            for k in ("FLOPS", "Doc_Len"):
                row[k] = reported.get(k)
            exp = s.expected.get(ds, {})
            row["expected_nDCG@10"] = exp.get("nDCG@10")
            row["delta_expected"] = round(scores["nDCG@10"] - exp["nDCG@10"], 4) if "nDCG@10" in exp else None
            row["check"] = status
            row["check_detail"] = detail
            ref = paper.at[ds, s.paper] if s.paper and ds in paper.index and s.paper in paper.columns else None
            row["paper_column"] = s.paper or ""
            row["paper_nDCG@10"] = None if ref is None or pd.isna(ref) else float(ref) / 100
            row["delta_paper"] = None if row["paper_nDCG@10"] is None else round(scores["nDCG@10"] - row["paper_nDCG@10"], 4)
            rows.append(row)
    return pd.DataFrame(rows)


def render_markdown(recipe: Recipe, table: pd.DataFrame, datasets: list[str], command: str) -> str:
    lines = [f"<!-- generated by `{command}`; do not edit -->",
             f"# Table {recipe.table}: measured systems beside the paper", "",
             f"Measured with `{command}`. nDCG@10 and recalls via ir-measures; FLOPS = Σ_j p_q(j)·p_d(j) and Doc_Len = mean",
             "non-zero tokens per document, computed from the quantized vectors actually indexed. Δ paper = measured − the paper's",
             "column named beside it (a tiny offline model against full-size systems: a reference point, not a target).", ""]
    cols = ["dataset", "system", *recipe.measures, "FLOPS", "Doc_Len", "check", "Δ expected", "paper column", "paper nDCG@10",
            "Δ paper"]
    lines += markdown_table(cols, ([r["dataset"], r["label"], *(fmt(r[m]) for m in recipe.measures), fmt(r["FLOPS"], 2),
                                    fmt(r["Doc_Len"], 1), r["check"] or "–", signed(r["delta_expected"]),
                                    r["paper_column"] if isinstance(r["paper_column"], str) and r["paper_column"] else "–",
                                    fmt(r["paper_nDCG@10"], 3), signed(r["delta_paper"])]
                                   for r in table.to_dict("records")))
    paper = load_paper_table(recipe.table).set_index("dataset")
    errata = {(e["dataset"], e["column"]): e["corrected"] for e in load_errata().to_dict("records")}
    shown = [d for d in datasets if d in paper.index]
    if shown:
        lines += ["", f"The paper's Table {recipe.table} (nDCG@10 ×100) on the same datasets, as printed; a cell the paper "
                      "prints wrongly shows its correction (results/paper/table1-errata.csv), which Δ paper uses:", ""]
        names = [SYSTEMS[c]["name"] if c in SYSTEMS else c for c in paper.columns]
        lines += markdown_table(["dataset", *names], ([d, *(f"{v:.1f}" + (f" (erratum: {errata[d, c]:.1f})"
                                                                          if (d, c) in errata else "")
                                                            for c, v in paper.loc[d].items())] for d in shown))
    return "\n".join(lines) + "\n"


@cli
def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m eval.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(REPO / "recipes" / "table1.yaml"))
    p.add_argument("--datasets", default=None,
                   help="comma-separated dataset names, 'all' for the paper's 13, 'nanobeir' for NanoBEIR's 13 (default: recipe)")
    p.add_argument("--model", default=None,
                   help="hub id or directory: measure this doc encoder (with BM25 beside it) instead of the recipe's "
                        "systems, checked against its published numbers in --released")
    p.add_argument("--released", default=str(RELEASED),
                   help="--model: the recipe of released models and their published numbers (default: %(default)s)")
    p.add_argument("--activation", default=None, choices=["relu", "l0", "l0x2", "l0x3"],
                   help="--model: the document activation (default: the one the model declares)")
    p.add_argument("--idf", default=None, choices=["model", "corpus"],
                   help="--model: query IDF from the model's idf.json (default) or computed from the corpus")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--threads", type=positive_int, default=2, help="indexing/search threads")
    p.add_argument("--backend", choices=["anserini", "seismic"], default=None,
                   help="sparse retrieval backend (default: the recipe's index.backend, else anserini); Seismic "
                        "parameters come from the recipe's index.seismic block")
    p.add_argument("--out", default=None,
                   help="results folder (default: work/results; with --update: results/, the stored reference)")
    p.add_argument("--update", action="store_true",
                   help="write the stored reference in results/ (only when asked: runs go to work/results)")
    p.add_argument("--force", action="store_true", help="redo every stage instead of resuming")
    p.add_argument("--list-conditions", action="store_true",
                   help="print the recipe's systems, their expected scores and the command, run nothing")
    p.add_argument("--dry-run", action="store_true",
                   help="print every stage's artifact (cached or to do) and the python -m encode commands, run nothing")
    p.add_argument("--shards", type=positive_int, default=1,
                   help="--dry-run: print the encode commands split into this many shards (one per machine)")
    args = p.parse_args(argv)

    if args.model is None and (args.activation or args.idf):
        raise InputError(None, "--activation and --idf apply to --model", fix="add --model, or set them in the recipe")
    recipe = load_recipe(args.released if args.model else args.recipe, table=1)
    own = load_recipe(args.recipe, table=1)
    datasets = resolve_datasets(args.datasets.split(",") if args.datasets else own.datasets)
    check_datasets(own, datasets, "--datasets" if args.datasets else None)  # a typo fails before any dataset loads
    if args.list_conditions:
        list_conditions(recipe, datasets)
        return 0
    out = output_folder(args.out, args.update)  # before any model loads: an unwritable output or work dir fails at once
    check_writable(work_dir())
    systems = model_systems(recipe, args.model, args.activation, args.idf) if args.model else recipe.systems
    settings = Settings.of(recipe, device=args.device, batch_size=args.batch_size, threads=args.threads,
                           force=args.force, backend=args.backend)
    timer = Timer()
    command = " ".join(["python -m eval.reproduce", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    prov = provenance(command=command.split())  # before any output is rewritten, so "-dirty" means the code

    if args.dry_run:
        print_plans(datasets, settings, timer, systems, args.shards)
        return 0

    results, per_query, keys = {}, [], []
    for name in datasets:
        run = DatasetRun.load(name, settings, timer)
        keys.append(run.key)
        with timer("train (mine data, train; cached)"):  # once a dataset has loaded: bad names fail before training
            systems = [resolve_trained(s) for s in systems]
        run.encode_docs([s.doc for s in systems if s.type == "sparse"])
        for s in systems:
            print(f"[{run.key}] {s.id}", flush=True)
            scores = run.run_system(s)
            per_query.append(scores.pop("_per_query"))
            results[(run.key, s.id)] = scores

    table = build_table(recipe, keys, systems, results)
    stem = f"table{recipe.table}"
    md = render_markdown(recipe, table, keys, command)
    write_results(out, stem, table, md, pd.concat(per_query, ignore_index=True), {
        "kind": "table1", "table": recipe.table, "measures": recipe.measures,
        "rows": table_rows(table, recipe.measures, systems),
        **prov, "recipe": repo_relative(recipe.path), "datasets": keys, "systems": [s.id for s in systems],
        "total_seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": timer.rounded()})
    print(md)
    print(timer.line())
    print(where_written(out, stem))
    return 1 if report_checks(table, stem) else 0


def list_conditions(recipe: Recipe, datasets: list[str]) -> None:
    """``--list-conditions``: each system of the recipe, what it is, its expected scores, and the command."""
    print(f"{repo_relative(recipe.path)}: {len(recipe.systems)} systems on {', '.join(datasets)}")
    for s in recipe.systems:
        what = (f"{s.doc.model} ({s.doc.activation}) + {s.query.encoder} queries" if s.type == "sparse"
                else s.dense.model if s.type == "dense" else "BM25 (Anserini, k1 0.9, b 0.4)")
        expected = "; ".join(f"{d} {', '.join(f'{m} {v:.4f}' for m, v in e.items())}" for d, e in s.expected.items())
        print(f"  {s.id}: {what}; expected {expected or 'none'} (± {s.tolerance:g})")
    print(f"  run: python -m eval.reproduce --recipe {repo_relative(recipe.path)} "
          f"--datasets {','.join(datasets)}")


if __name__ == "__main__":
    sys.exit(main())
