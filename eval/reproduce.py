"""Regenerate a paper table from a recipe: data → encode → index → search → score → table.

    python -m eval.reproduce --recipe recipes/table1.yaml                   # offline default (SciFact, SPLADE-tiny, CPU)
    python -m eval.reproduce --recipe recipes/table1.yaml --datasets all \\
        --model opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill --device cuda

Every stage writes its output atomically under ``work/<dataset>/`` and is skipped when that output already exists, so a
killed run resumes where it stopped (``--force`` redoes everything). The table goes to ``results/table<N>.{csv,md,json}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from eval.metrics import evaluate, sparsity_stats
from eval.provenance import provenance
from eval.recipe import DenseSpec, DocSpec, IndexSpec, QuerySpec, Recipe, System, load_recipe
from eval.schema import FORMAT, table_rows
from kit.errors import InputError, cli
from kit.io import atomic_write, write_json
from kit.paths import REPO, dataset_slug, repo_relative, slug, work_dir


class Timer:
    """Wall time per stage, summed over datasets and systems (for the benchmark's end-to-end breakdown)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def resolve_datasets(names: list[str]) -> list[str]:
    """``all``: the paper's 13 BEIR datasets; ``nanobeir``: the 13 NanoBEIR subsets (online); else the names as given."""
    from kit.data import BEIR_DATASETS, NANOBEIR_DATASETS

    if names == ["all"]:
        return list(BEIR_DATASETS)
    if names == ["nanobeir"]:
        return [f"nanobeir/{name}" for name in NANOBEIR_DATASETS]
    return names


def model_systems(recipe: Recipe, model: str, activation: str | None) -> list[System]:
    """The recipe's systems with the SPLADE-tiny rows replaced by ``model`` as an inference-free doc encoder."""
    from kit.hub import detect_activation

    spec = recipe.model_system
    act = activation or detect_activation(model) or spec.get("activation", "relu")
    q = spec.get("query", {})
    system = System(id=f"{slug(model)}.bow-idf.{act}", label=f"{model} + BoW×IDF ({act})", type="sparse",
                    paper=spec.get("paper"), doc=DocSpec(model=model, activation=act),
                    query=QuerySpec(encoder=q.get("encoder", "bow-idf"), idf=q.get("idf", "model")))
    return [s for s in recipe.systems if s.type == "bm25"] + [system]


def resolve_trained(system: System) -> System:
    """``system`` with a ``doc: {trained: <row>}`` replaced by the directory of that trained model (trained now when
    it is not cached yet; see :func:`eval.ablation.trained_model`)."""
    import dataclasses

    if system.doc is None or system.doc.trained is None:
        return system
    from eval.ablation import trained_model

    model, activation = trained_model(system.doc.trained)
    if activation != system.doc.activation:
        raise InputError(None, f"system {system.id}: the {system.doc.trained} model ranks with the {activation} "
                               f"activation, not {system.doc.activation}", fix=f"set doc.activation: {activation}")
    return dataclasses.replace(system, doc=DocSpec(model=str(model), activation=activation))


class DatasetRun:
    """All stages for one dataset; artifacts under ``work/<dataset>/``."""

    def __init__(self, name: str, recipe: Recipe, args, timer: Timer, ds=None, root: Path | None = None):
        """``ds`` (an already loaded :class:`kit.data.Dataset`) and ``root`` default to ``load_dataset(name)`` and
        ``work/<dataset>``."""
        from kit.data import load_dataset

        self.name, self.recipe, self.args, self.timer = name, recipe, args, timer
        self.key = dataset_slug(name)  # how the dataset is named in tables, expected scores and the work dir
        self.root = root if root is not None else work_dir() / self.key
        self.ds = ds
        if ds is None:
            with timer("load data"):
                try:
                    self.ds = load_dataset(name)
                except ValueError as exc:  # an unknown dataset name is a usage error, not a crash
                    raise InputError(None, f"--datasets: {exc}") from None
        self._encoders: dict = {}
        self._idf: dict = {}

    # ---- documents -------------------------------------------------------------------------------------------------
    def vectors_dir(self, doc: DocSpec) -> Path:
        return self.root / "vectors" / f"{slug(doc.model)}.{doc.activation}.len{self.recipe.max_length}.q{self.recipe.factor:g}"

    def encode_docs(self, docs: list[DocSpec]) -> None:
        """One forward pass per model for all activations the recipe needs (activation is applied after pooling)."""
        from encode.doc_encoder import SpladeDocEncoder
        from encode.writer import write_vectors

        by_model: dict[str, list[str]] = {}
        for d in docs:
            if not (self.vectors_dir(d) / "metadata.json").exists() or self.args.force:
                acts = by_model.setdefault(d.model, [])
                if d.activation not in acts:
                    acts.append(d.activation)
        for model, acts in by_model.items():
            encoder = SpladeDocEncoder(model, activation=acts[0], max_length=self.recipe.max_length,
                                       device=self.args.device, batch_size=self.args.batch_size)
            outs = {a: self.vectors_dir(DocSpec(model, a)) for a in acts}
            if self.args.force:
                for path in outs.values():
                    shutil.rmtree(path, ignore_errors=True)
            print(f"[{self.key}] encoding {self.ds.num_docs or ''} docs with {model} ({', '.join(acts)})", flush=True)
            with self.timer("encode docs"):
                write_vectors(self.ds.docs(), encoder, outs, factor=self.recipe.factor, activations=acts,
                              show_progress=True, total=self.ds.num_docs)

    @property
    def index_spec(self) -> IndexSpec:
        """The sparse systems' backend: ``--backend`` over the recipe's ``index:`` block over Anserini."""
        spec = self.recipe.index or IndexSpec()
        backend = getattr(self.args, "backend", None)
        return spec if backend is None or backend == spec.backend else IndexSpec(backend)

    def impact_index(self, doc: DocSpec) -> Path:
        spec = self.index_spec
        name = self.vectors_dir(doc).name
        if spec.backend != "anserini":  # Anserini keeps its index names, so existing caches stay valid
            name += f".{spec.backend}.{hashlib.sha1(repr(spec.params).encode()).hexdigest()[:8]}"
        path = self.root / "indexes" / name
        if not path.exists() or self.args.force:
            with self.timer("index"):
                spec.get().build(self.vectors_dir(doc), path, threads=self.args.threads, overwrite=True)
        return path

    # ---- queries ---------------------------------------------------------------------------------------------------
    def doc_encoder(self, model: str):
        from encode.doc_encoder import SpladeDocEncoder

        if model not in self._encoders:
            self._encoders[model] = SpladeDocEncoder(model, activation="relu", max_length=self.recipe.max_length,
                                                     device=self.args.device, batch_size=self.args.batch_size)
        return self._encoders[model]

    def idf(self, doc: DocSpec, source: str) -> dict[str, float]:
        from encode.query import compute_idf, load_idf_json, save_idf_json
        from kit.hub import find_model_idf

        tokenizer = self.doc_encoder(doc.model).tokenizer
        if source == "model":
            path = find_model_idf(doc.model)
            if path is not None:
                return load_idf_json(path)
            print(f"[{self.key}] {doc.model} ships no idf.json; computing IDF from the corpus", flush=True)
        cache = self.root / "idf" / f"{slug(doc.model)}.json"
        if doc.model not in self._idf:
            if cache.exists() and not self.args.force:
                self._idf[doc.model] = load_idf_json(cache)
            else:
                with self.timer("idf"):
                    self._idf[doc.model] = compute_idf((d.text for d in self.ds.docs()), tokenizer)
                save_idf_json(self._idf[doc.model], cache)
        return self._idf[doc.model]

    def query_vectors(self, system: System) -> dict[str, dict[str, int]]:
        from encode.query import BowIdfQueryEncoder, SpladeQueryEncoder, encode_queries

        path = self.root / "queries" / f"{self.signature(system)}.jsonl"
        if path.exists() and not self.args.force:
            return {r["id"]: r["vector"] for r in map(json.loads, path.read_text().splitlines())}
        if system.query.encoder == "bow-idf":
            encoder = BowIdfQueryEncoder(self.doc_encoder(system.doc.model).tokenizer, self.idf(system.doc, system.query.idf))
        elif system.query.encoder == "lilsr":
            from encode.lookup import LookupQueryEncoder
            from kit.models import resolve_model

            encoder = LookupQueryEncoder.from_path(system.query.table or resolve_model(system.doc.model),
                                                   self.doc_encoder(system.doc.model).tokenizer)
        else:
            encoder = SpladeQueryEncoder(self.doc_encoder(system.doc.model))
        with self.timer("encode queries"):
            vectors = encode_queries(encoder, self.ds.queries, factor=self.recipe.factor)
        with atomic_write(path) as fh:
            for qid, vec in vectors.items():
                fh.write(json.dumps({"id": qid, "vector": vec}) + "\n")
        return vectors

    # ---- systems ---------------------------------------------------------------------------------------------------
    def signature(self, system: System) -> str:
        """``<system id>.<hash of everything its queries and run depend on>``: a changed recipe never reuses a stale run."""
        spec = (system.type, system.doc, system.query, self.recipe.max_length, self.recipe.factor, self.recipe.hits)
        if system.dense is not None:  # appended, so the sparse systems keep their cached runs' names
            spec += (system.dense,)
        if system.type == "sparse" and self.index_spec.backend != "anserini":  # likewise
            spec += (self.index_spec,)
        return f"{system.id}.{hashlib.sha1(repr(spec).encode()).hexdigest()[:10]}"

    def run_system(self, system: System) -> dict:
        from index.anserini import build_flat_index, search_bm25

        run_path = self.root / "runs" / f"{self.signature(system)}.trec"
        extra: dict[str, float] = {}
        if system.type == "bm25":
            index = self.root / "indexes" / "flat"
            if not index.exists() or self.args.force:
                with self.timer("index"):
                    build_flat_index(self.ds.docs(), index, threads=self.args.threads, overwrite=True)
            if not run_path.exists() or self.args.force:
                with self.timer("search"):
                    search_bm25(index, self.ds.queries, run_path, hits=self.recipe.hits, threads=self.args.threads)
        elif system.type == "dense":
            if not run_path.exists() or self.args.force:
                self.dense_search(system.dense, run_path)
        else:
            index = self.impact_index(system.doc)
            queries = self.query_vectors(system)
            if not run_path.exists() or self.args.force:
                with self.timer("search"):
                    self.index_spec.get().search(index, queries, run_path, hits=self.recipe.hits,
                                                 threads=self.args.threads)
            with self.timer("sparsity stats"):
                extra = sparsity_stats(self.doc_vectors(system.doc), queries.values())
        with self.timer("score"):
            scores, per_query = evaluate(run_path, self.ds.qrels, self.recipe.measures)
        per_query.insert(0, "system", system.id)
        per_query.insert(0, "dataset", self.key)
        return {**scores, **extra, "_per_query": per_query}

    def dense_search(self, spec: DenseSpec, run_path: Path) -> None:
        """Exact inner-product search (:mod:`index.dense`); the encoded corpus is cached per model and max length."""
        from index.dense import encode_corpus, load_encoder, search

        encoder = load_encoder(spec.model, device=self.args.device, max_length=spec.max_length)
        folder = self.root / "dense" / f"{slug(spec.model)}.len{encoder.max_seq_length}"
        if not (folder / "metadata.json").exists() or self.args.force:
            print(f"[{self.key}] dense-encoding {self.ds.num_docs or ''} docs with {spec.model}", flush=True)
            with self.timer("encode docs (dense)"):
                encode_corpus(self.ds.docs(), encoder, folder, model=spec.model, batch_size=self.args.batch_size,
                              total=self.ds.num_docs)
        with self.timer("search (dense)"):
            search(folder, self.ds.queries, encoder, run_path, hits=self.recipe.hits, batch_size=self.args.batch_size)

    def doc_vectors(self, doc: DocSpec):
        from encode.writer import read_vectors

        return (vec for _, vec in read_vectors(self.vectors_dir(doc)))


def check(system: System, dataset: str, scores: dict) -> tuple[str, str]:
    """Anserini-style verdict against the recipe's expected scores: OK / FAIL (with the deltas) / '' when none stored."""
    expected = system.expected.get(dataset)
    if not expected:
        return "", ""
    bad = [f"{m} {scores.get(m, float('nan')):.4f}≠{v:.4f}" for m, v in expected.items()
           if not abs(scores.get(m, float("nan")) - v) <= system.tolerance]
    return ("FAIL", "; ".join(bad)) if bad else ("OK", "")


def build_table(recipe: Recipe, datasets: list[str], systems: list[System], results: dict) -> pd.DataFrame:
    from eval.paper import load_paper_table

    paper = load_paper_table(recipe.table).set_index("dataset")
    rows = []
    for ds in datasets:
        for s in systems:
            scores = results[(ds, s.id)]
            status, detail = check(s, ds, scores)
            row = {"dataset": ds, "system": s.id, "label": s.label}
            row.update({m: round(scores[m], 4) for m in recipe.measures})
            for k in ("FLOPS", "Doc_Len"):
                row[k] = round(scores[k], 2) if k in scores else None
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


def _fmt(v, digits=4) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _signed(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{round(v, 4) + 0.0:+.4f}"


def render_markdown(recipe: Recipe, table: pd.DataFrame, datasets: list[str], command: str) -> str:
    from eval.paper import SYSTEMS, load_paper_table

    lines = [f"<!-- generated by `{command}`; do not edit -->",
             f"# Table {recipe.table}: measured systems beside the paper", "",
             f"Measured with `{command}`. nDCG@10 and recalls via ir-measures; FLOPS = Σ_j p_q(j)·p_d(j) and Doc_Len = mean",
             "non-zero tokens per document, computed from the quantized vectors actually indexed. Δ paper = measured − the paper's",
             "column named beside it (a tiny offline model against full-size systems: a reference point, not a target).", ""]
    cols = ["dataset", "system", *recipe.measures, "FLOPS", "Doc_Len", "check", "Δ expected", "paper column", "paper nDCG@10",
            "Δ paper"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.to_dict("records"):
        cells = [r["dataset"], r["label"], *(_fmt(r[m]) for m in recipe.measures), _fmt(r["FLOPS"], 2), _fmt(r["Doc_Len"], 1),
                 r["check"] or "–", _signed(r["delta_expected"]),
                 r["paper_column"] if isinstance(r["paper_column"], str) and r["paper_column"] else "–", _fmt(r["paper_nDCG@10"], 3),
                 _signed(r["delta_paper"])]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    paper = load_paper_table(recipe.table).set_index("dataset")
    shown = [d for d in datasets if d in paper.index]
    if shown:
        lines += ["", f"The paper's Table {recipe.table} (nDCG@10 ×100) on the same datasets:", ""]
        names = [SYSTEMS[c]["name"] if c in SYSTEMS else c for c in paper.columns]
        lines += ["| dataset | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
        for d in shown:
            lines.append(f"| {d} | " + " | ".join(f"{v:.1f}" for v in paper.loc[d]) + " |")
    return "\n".join(lines) + "\n"


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(REPO / "recipes" / "table1.yaml"))
    p.add_argument("--datasets", default=None,
                   help="comma-separated dataset names, 'all' for the paper's 13, 'nanobeir' for NanoBEIR's 13 (default: recipe)")
    p.add_argument("--model", default=None, help="hub id or directory: measure this doc encoder instead of the bundled one")
    p.add_argument("--activation", default=None, choices=["relu", "l0", "l0x2", "l0x3"])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="indexing/search threads")
    p.add_argument("--backend", choices=["anserini", "seismic"], default=None,
                   help="sparse retrieval backend (default: the recipe's index.backend, else anserini); Seismic "
                        "parameters come from the recipe's index.seismic block")
    p.add_argument("--out", default=str(REPO / "results"))
    p.add_argument("--force", action="store_true", help="redo every stage instead of resuming")
    args = p.parse_args(argv)

    recipe = load_recipe(args.recipe)
    datasets = resolve_datasets(args.datasets.split(",") if args.datasets else recipe.datasets)
    systems = model_systems(recipe, args.model, args.activation) if args.model else recipe.systems
    timer = Timer()
    command = " ".join(["python -m eval.reproduce", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    prov = provenance(command=command.split())  # before any output is rewritten, so "-dirty" means the code

    results, per_query, keys = {}, [], []
    for name in datasets:
        run = DatasetRun(name, recipe, args, timer)
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
    out = Path(args.out)
    stem = f"table{recipe.table}"
    with atomic_write(out / f"{stem}.csv") as fh:
        table.to_csv(fh, index=False)
    with atomic_write(out / "per-query" / f"{stem}.csv.gz") as fh:
        pd.concat(per_query, ignore_index=True).to_csv(fh, index=False)
    md = render_markdown(recipe, table, keys, command)
    with atomic_write(out / f"{stem}.md") as fh:
        fh.write(md)
    write_json(out / f"{stem}.json", {  # kit-results/1, see results/SCHEMA.md
        "format": FORMAT, "table": recipe.table, "measures": recipe.measures, "per_query": f"per-query/{stem}.csv.gz",
        "rows": table_rows(table, recipe.measures, systems),
        **prov, "recipe": repo_relative(recipe.path),
        "datasets": keys, "systems": [s.id for s in systems], "total_seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": {k: round(v, 1) for k, v in timer.seconds.items()}})
    print(md)
    print("stage wall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timer.seconds.items()))
    failed = table[table["check"] == "FAIL"]
    if len(failed):
        for r in failed.to_dict("records"):
            print(f"FAIL {r['dataset']} {r['system']}: {r['check_detail']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
