"""Regenerate a paper table from a recipe: data → encode → index → search → score → table.

    python -m eval.reproduce --recipe recipes/table1.yaml                   # offline default (SciFact, SPLADE-tiny, CPU)
    python -m eval.reproduce --recipe recipes/table1.yaml --datasets all \\
        --model opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill --device cuda

Every stage writes its output atomically under ``work/<dataset>/`` and is skipped when that output already exists, so a
killed run resumes where it stopped (``--force`` redoes everything). The table goes to ``results/table<N>.{csv,md,json}``.
"""

from __future__ import annotations

import json
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
from kit.io import atomic_outputs, atomic_write, check_writable
from kit.manifest import Artifact
from kit.paths import REPO, dataset_slug, repo_relative, slug, work_dir
from kit.argtypes import ArgumentParser, positive_int


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
    import dataclasses

    from kit.hub import detect_activation

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


def model_label(model: str) -> str:
    """A short, file-name-safe name of a model for artifact names (the key beside it identifies the content)."""
    path = Path(model)
    if path.is_absolute() or model.startswith("."):
        parts = [p for p in path.parts if p not in ("/", "model")]
        return slug("-".join(parts[-2:]))[:60] or "model"
    return slug(model)[:60]


class DatasetRun:
    """All stages for one dataset; artifacts under ``work/<dataset>/``, each keyed by everything it depends on.

    Every cached artifact (document vectors, IDF table, index, query vectors, run) is a :class:`kit.manifest.Artifact`:
    its name carries the key of a description of its inputs -- the corpus and query fingerprints, the model's files,
    the recipe fields the stage uses, the precision and device -- and it is reused only when the manifest written at
    its completion holds exactly that description.
    """

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
        from encode.doc_encoder import resolve_precision

        self.device, self.dtype = resolve_precision(getattr(args, "device", None), getattr(args, "dtype", None))
        self._encoders: dict = {}
        self._idf: dict = {}
        self._memo: dict = {}

    # ---- fingerprints ----------------------------------------------------------------------------------------------
    def _cached(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def corpus(self) -> str:
        return self._cached("corpus", self.ds.corpus_fingerprint)

    def model_files(self, model: str) -> str:
        """Fingerprint of a model's files (weights, config, tokenizer)."""
        from kit.fingerprint import model_fingerprint
        from kit.hub import local_model_dir

        return self._cached(("model", model), lambda: model_fingerprint(local_model_dir(model)))

    def tokenizer_files(self, model: str) -> str:
        from kit.fingerprint import tokenizer_fingerprint
        from kit.hub import local_model_dir

        return self._cached(("tokenizer", model), lambda: tokenizer_fingerprint(local_model_dir(model)))

    def _precision(self) -> dict:
        return {"device": self.device, "dtype": self.dtype}

    # ---- documents -------------------------------------------------------------------------------------------------
    def vectors(self, doc: DocSpec) -> Artifact:
        """The quantized document vectors of ``doc``'s model and activation (a ``python -m encode`` folder)."""
        from encode.doc_encoder import ENCODING

        inputs = {"stage": "doc-vectors", "corpus": self.corpus(), "model": self.model_files(doc.model),
                  "encoding": ENCODING, "activation": doc.activation, "max_length": self.recipe.max_length, "factor": self.recipe.factor,
                  **self._precision()}
        label = f"{model_label(doc.model)}.{doc.activation}.len{self.recipe.max_length}.q{self.recipe.factor:g}"
        return Artifact.named(self.root / "vectors", label, inputs, is_dir=True)

    def vectors_dir(self, doc: DocSpec) -> Path:
        return self.vectors(doc).path

    def encode_docs(self, docs: list[DocSpec]) -> None:
        """One forward pass per model for all activations the recipe needs (activation is applied after pooling)."""
        from encode.doc_encoder import SpladeDocEncoder
        from encode.writer import check_complete, write_vectors

        by_model: dict[str, list[str]] = {}
        for d in docs:
            art = self.vectors(d)
            if self.args.force and art.path.exists():
                art.clear()
            if not art.ready() and not self.adopt_vectors(art):
                acts = by_model.setdefault(d.model, [])
                if d.activation not in acts:
                    acts.append(d.activation)
        for model, acts in by_model.items():
            encoder = SpladeDocEncoder(model, activation=acts[0], max_length=self.recipe.max_length,
                                       device=self.args.device, batch_size=self.args.batch_size)
            arts = {a: self.vectors(DocSpec(model, a)) for a in acts}
            print(f"[{self.key}] encoding {self.ds.num_docs or ''} docs with {model} ({', '.join(acts)})", flush=True)
            with self.timer("encode docs"):
                write_vectors(self.ds.docs(), encoder, {a: art.path for a, art in arts.items()},
                              factor=self.recipe.factor, activations=acts, show_progress=True,
                              total=self.ds.num_docs)
            for art in arts.values():
                done = check_complete(art.path)
                art.complete(documents=done["documents"], empty_documents=done["empty_documents"],
                             vectors=done["fingerprint"])

    def adopt_vectors(self, art: Artifact) -> bool:
        """Take a complete encoding found in ``art``'s folder but not yet recorded there -- the shards of ``python -m
        encode --shard I/N`` run on several machines and copied in (``--dry-run`` prints those commands) -- once it
        is verified: every shard and part present and unchanged, encoded with this model, activation, length,
        factor, precision and device, from this corpus's documents."""
        from encode.writer import check_inputs

        if not any(art.path.glob("metadata*.json")) or any(art.path.glob("metadata*.in-progress.json")):
            return False
        done = check_inputs(art.path, self.ds.docs())
        wanted = {"model_fingerprint": art.inputs["model"], "encoding": art.inputs["encoding"],
                  "activation": art.inputs["activation"], "max_length": art.inputs["max_length"],
                  "factor": art.inputs["factor"], "dtype": art.inputs["dtype"], "device": art.inputs["device"]}
        differ = {k: (done["settings"].get(k), v) for k, v in wanted.items() if done["settings"].get(k) != v}
        if differ:
            key, (found, want) = next(iter(differ.items()))
            raise InputError(art.path, f"holds an encoding with {key}={found!r}, this run needs {want!r}",
                             fix="encode with the command --dry-run prints, or delete the folder")
        print(f"[{self.key}] {art.path.name}: a complete encoding of {done['shards']} shard(s) is here; verified, used",
              flush=True)
        art.complete(documents=done["documents"], empty_documents=done["empty_documents"],
                     vectors=done["fingerprint"])
        return True

    def encode_command(self, doc: DocSpec, shard: tuple[int, int] | None = None) -> str:
        """The ``python -m encode`` command that writes ``doc``'s vectors (or one shard of them) where this run
        reads them."""
        import shlex

        art = self.vectors(doc)
        parts = ["python", "-m", "encode", "--corpus", self.name, "--model", doc.model, "--activation", doc.activation,
                 "--max-length", str(self.recipe.max_length), "--factor", f"{self.recipe.factor:g}",
                 "--device", self.device, "--dtype", self.dtype, "--output", str(art.path)]
        if shard is not None:
            parts += ["--shard", f"{shard[0]}/{shard[1]}"]
        return shlex.join(parts)

    @property
    def index_spec(self) -> IndexSpec:
        """The sparse systems' backend: ``--backend`` over the recipe's ``index:`` block over Anserini."""
        spec = self.recipe.index or IndexSpec()
        backend = getattr(self.args, "backend", None)
        return spec if backend is None or backend == spec.backend else IndexSpec(backend)

    def index(self, doc: DocSpec) -> Artifact:
        spec = self.index_spec
        vectors = self.vectors(doc)
        inputs = {"stage": "impact-index", "vectors": vectors.key, "backend": spec.backend,
                  "params": [list(p) for p in spec.params]}
        return Artifact.named(self.root / "indexes", vectors.path.name.rsplit(".", 1)[0] + f".{spec.backend}",
                              inputs, is_dir=True)

    def impact_index(self, doc: DocSpec) -> Path:
        art = self.index(doc)
        if self.args.force or not art.ready():
            with self.timer("index"):
                info = self.index_spec.get().build(self.vectors(doc).path, art.path, threads=self.args.threads,
                                                   overwrite=True)
            art.complete(documents=info.get("documents"))
        return art.path

    # ---- queries ---------------------------------------------------------------------------------------------------
    def doc_encoder(self, model: str):
        from encode.doc_encoder import SpladeDocEncoder

        if model not in self._encoders:
            self._encoders[model] = SpladeDocEncoder(model, activation="relu", max_length=self.recipe.max_length,
                                                     device=self.args.device, batch_size=self.args.batch_size)
        return self._encoders[model]

    def tokenizer(self, model: str):
        from transformers import AutoTokenizer

        from kit.hub import local_model_dir

        if model in self._encoders:
            return self._encoders[model].tokenizer
        return self._cached(("tok", model), lambda: AutoTokenizer.from_pretrained(local_model_dir(model)))

    def idf(self, doc: DocSpec, source: str) -> dict[str, float]:
        from encode.query import compute_idf, load_idf_json, save_idf_json
        from kit.hub import find_model_idf

        if source == "model":
            path = find_model_idf(doc.model)
            if path is None:
                raise InputError(doc.model, "the model ships no idf.json for its queries",
                                 fix="pass --idf corpus (IDF=corpus) to compute the IDF from the corpus instead")
            return self._cached(("idf.json", str(path)), lambda: load_idf_json(path))
        tokenizer_fp = self.tokenizer_files(doc.model)
        if tokenizer_fp not in self._idf:
            art = Artifact.named(self.root / "idf", "corpus-idf", {"stage": "corpus-idf", "corpus": self.corpus(),
                                                                  "tokenizer": tokenizer_fp}, suffix=".json")
            if art.ready() and not self.args.force:
                self._idf[tokenizer_fp] = load_idf_json(art.path)
            else:
                with self.timer("idf"):
                    self._idf[tokenizer_fp] = compute_idf((d.text for d in self.ds.docs()), self.tokenizer(doc.model))
                save_idf_json(self._idf[tokenizer_fp], art.path)
                art.complete(tokens=len(self._idf[tokenizer_fp]))
        return self._idf[tokenizer_fp]

    def _lookup_table(self, system: System) -> str:
        from kit.hub import local_model_dir

        return system.query.table or str(local_model_dir(system.doc.model))

    def query_weights(self, system: System) -> dict:
        """The fingerprint of what ``system``'s query encoder weighs tokens with (IDF table, lookup table, model), and
        how it reads a query (truncation, the weight of a token the table lacks)."""
        from encode.doc_encoder import ENCODING
        from kit.fingerprint import file_sha256, mapping_sha256, model_fingerprint

        def compute() -> dict:
            truncation = {"max_length": self.recipe.max_length}
            if system.query.encoder == "bow-idf":
                return {"idf": mapping_sha256(self.idf(system.doc, system.query.idf)),
                        "missing_token_weight": self.missing_token_weight(system), **truncation}
            if system.query.encoder == "lilsr":
                table = self._lookup_table(system)
                return {"table": model_fingerprint(table) if Path(table).is_dir() else file_sha256(table),
                        **truncation}
            return {"model": self.model_files(system.doc.model), "encoding": ENCODING, **truncation,
                    **self._precision()}

        return self._cached(("query-weights", system.doc, system.query), compute)

    @staticmethod
    def missing_token_weight(system: System) -> float:
        """Weight of a query token the IDF table lacks: 1.0 for a model's own ``idf.json``, as the authors'
        evaluation code sets it (``idf_vector = [1.0] * vocab_size``, then the listed tokens); a corpus IDF lists
        every token, so there it never applies (0)."""
        return 1.0 if system.query.idf == "model" else 0.0

    def query_encoder(self, system: System):
        """The query encoder of ``system``. Queries are truncated at the recipe's ``max_length`` tokens, special
        tokens included, then the special tokens are dropped: the authors' evaluation (``tokenizer(...,
        truncation=True, max_length=512)``, ``out[:, special_token_ids] = 0``)."""
        from encode.query import BowIdfQueryEncoder, SpladeQueryEncoder

        length = self.recipe.max_length
        if system.query.encoder == "bow-idf":
            return BowIdfQueryEncoder(self.tokenizer(system.doc.model), self.idf(system.doc, system.query.idf),
                                      default=self.missing_token_weight(system), max_length=length)
        if system.query.encoder == "lilsr":
            from encode.lookup import LookupQueryEncoder

            return LookupQueryEncoder.from_path(self._lookup_table(system), self.tokenizer(system.doc.model),
                                                max_length=length)
        return SpladeQueryEncoder(self.doc_encoder(system.doc.model))

    def queries(self, system: System) -> Artifact:
        inputs = {"stage": "query-vectors", "queries": self.ds.queries_fingerprint(),
                  "encoder": system.query.encoder, "tokenizer": self.tokenizer_files(system.doc.model),
                  "weights": self.query_weights(system), "factor": self.recipe.factor}
        return Artifact.named(self.root / "queries", system.id, inputs, suffix=".jsonl")

    def query_vectors(self, system: System) -> dict[str, dict[str, int]]:
        from encode.query import encode_queries
        from index.__main__ import read_query_vectors

        art = self.queries(system)
        if art.ready() and not self.args.force:
            return read_query_vectors(art.path)
        encoder = self.query_encoder(system)
        with self.timer("encode queries"):
            vectors = encode_queries(encoder, self.ds.queries, factor=self.recipe.factor)
        with atomic_write(art.path) as fh:
            for qid, vec in vectors.items():
                fh.write(json.dumps({"id": qid, "vector": vec}) + "\n")
        art.complete(queries=len(vectors))
        return vectors

    # ---- systems ---------------------------------------------------------------------------------------------------
    def flat_index(self) -> Artifact:
        from index.anserini import flat_index_inputs

        return Artifact.named(self.root / "indexes", "flat", flat_index_inputs(self.corpus()), is_dir=True)

    def dense_corpus(self, spec: DenseSpec) -> Artifact:
        inputs = {"stage": "dense-corpus", "corpus": self.corpus(), "model": self.model_files(spec.model),
                  "max_length": spec.max_length, **self._precision()}
        return Artifact.named(self.root / "dense", f"{model_label(spec.model)}.len{spec.max_length or 'model'}",
                              inputs, is_dir=True)

    def run(self, system: System) -> Artifact:
        """The TREC run of ``system``: keyed by its index and queries (and the search settings)."""
        search = {"hits": self.recipe.hits, "remove_query": True}
        if system.type == "bm25":
            inputs = {"stage": "bm25-run", "index": self.flat_index().key, "queries": self.ds.queries_fingerprint(),
                      "k1": 0.9, "b": 0.4, **search}
        elif system.type == "dense":
            inputs = {"stage": "dense-run", "index": self.dense_corpus(system.dense).key,
                      "queries": self.ds.queries_fingerprint(), "device": self.device, **search}
        else:
            inputs = {"stage": "sparse-run", "index": self.index(system.doc).key, "queries": self.queries(system).key,
                      **search}
        return Artifact.named(self.root / "runs", system.id, inputs, suffix=".trec")

    def signature(self, system: System) -> str:
        """``<system id>.<key>``: the name of the system's run (changes whenever anything the run depends on does)."""
        return self.run(system).path.name.removesuffix(".trec")

    def run_system(self, system: System) -> dict:
        from index.anserini import build_flat_index, search_bm25

        run = self.run(system)
        extra: dict[str, float] = {}
        if system.type == "bm25":
            index = self.flat_index()
            if self.args.force or not index.ready():
                with self.timer("index"):
                    info = build_flat_index(self.ds.docs(), index.path, threads=self.args.threads, overwrite=True,
                                            inputs=index.inputs)
                index.complete(documents=info.get("documents"))
            if self.args.force or not run.ready():
                with self.timer("search"):
                    search_bm25(index.path, self.ds.queries, run.path, hits=self.recipe.hits, threads=self.args.threads)
                run.complete()
        elif system.type == "dense":
            if self.args.force or not run.ready():
                self.dense_search(system.dense, run.path)
                run.complete()
        else:
            index = self.impact_index(system.doc)
            queries = self.query_vectors(system)
            if self.args.force or not run.ready():
                with self.timer("search"):
                    self.index_spec.get().search(index, queries, run.path, hits=self.recipe.hits,
                                                 threads=self.args.threads)
                run.complete()
            with self.timer("sparsity stats"):
                extra = sparsity_stats(self.doc_frequencies(system.doc), queries.values())
        with self.timer("score"):
            scores, per_query = evaluate(run.path, self.ds.qrels, self.recipe.measures)
        per_query.insert(0, "system", system.id)
        per_query.insert(0, "dataset", self.key)
        return {**scores, **extra, "_per_query": per_query}

    def dense_search(self, spec: DenseSpec, run_path: Path) -> None:
        """Exact inner-product search (:mod:`index.dense`); the encoded corpus is cached per model and max length."""
        from index.dense import encode_corpus, load_encoder, search

        encoder = load_encoder(spec.model, device=self.args.device, max_length=spec.max_length)
        art = self.dense_corpus(spec)
        if self.args.force or not art.ready():
            print(f"[{self.key}] dense-encoding {self.ds.num_docs or ''} docs with {spec.model}", flush=True)
            with self.timer("encode docs (dense)"):
                meta = encode_corpus(self.ds.docs(), encoder, art.path, model=spec.model,
                                     batch_size=self.args.batch_size, total=self.ds.num_docs)
            art.complete(documents=meta["count"])
        with self.timer("search (dense)"):
            search(art.path, self.ds.queries, encoder, run_path, hits=self.recipe.hits,
                   batch_size=self.args.batch_size)

    def doc_vectors(self, doc: DocSpec):
        from encode.writer import read_vectors

        return (vec for _, vec in read_vectors(self.vectors(doc).path))

    def doc_frequencies(self, doc: DocSpec) -> tuple[dict[str, int], int]:
        """``(documents per token, documents)`` of ``doc``'s vectors: FLOPS and Doc_Len need nothing else of them,
        so they are counted once per encoding and cached beside it."""
        from eval.metrics import token_document_frequencies
        from kit.io import load_json, write_json

        vectors = self.vectors(doc)
        art = Artifact.named(self.root / "stats", vectors.path.name.rsplit(".", 1)[0] + ".doc-df",
                             {"stage": "doc-frequencies", "vectors": vectors.key}, suffix=".json")
        if art.ready() and not self.args.force:
            data = load_json(art.path)
            return data["df"], data["documents"]
        df, n = token_document_frequencies(self.doc_vectors(doc))
        write_json(art.path, {"documents": n, "df": dict(df)})
        art.complete(documents=n)
        return dict(df), n


def print_plan(run: DatasetRun, systems: list[System], shards: int = 1) -> None:
    """``--dry-run``: each stage's artifact and whether it is cached, and the commands that encode the documents
    (split into ``shards`` for several machines: run each, copy every output file into the folder printed, and the
    next run verifies and uses them)."""
    def state(art: Artifact) -> str:
        return "cached" if art.ready() else "to do"

    print(f"# {run.key}: {run.ds.num_docs or '?'} documents, {len(run.ds.queries)} queries ({run.ds.source})")
    printed: set[Path] = set()
    for system in systems:
        if system.doc is not None and system.doc.trained is not None:
            print(f"{system.id}: documents from the kit's trained model {system.doc.trained!r} (trained on demand, "
                  f"cached: python -m eval.ablation measure {system.doc.trained})")
            continue
        if system.type == "bm25":
            print(f"{system.id}: flat index {run.flat_index().path} [{state(run.flat_index())}]")
        elif system.type == "dense":
            print(f"{system.id}: dense index {run.dense_corpus(system.dense).path} "
                  f"[{state(run.dense_corpus(system.dense))}]")
        else:
            vectors = run.vectors(system.doc)
            print(f"{system.id}: vectors {vectors.path} [{state(vectors)}]; index {run.index(system.doc).path} "
                  f"[{state(run.index(system.doc))}]; queries {run.queries(system).path} [{state(run.queries(system))}]")
            if not vectors.ready() and vectors.path not in printed:
                printed.add(vectors.path)
                for i in range(shards):
                    print("    " + run.encode_command(system.doc, (i, shards) if shards > 1 else None))
        print(f"    run {run.run(system).path} [{state(run.run(system))}]")


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

    paper = load_paper_table(recipe.table, corrected=True).set_index("dataset")  # errata applied
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
    from eval.paper import load_errata

    paper = load_paper_table(recipe.table).set_index("dataset")
    errata = {(e["dataset"], e["column"]): e["corrected"] for e in load_errata().to_dict("records")}
    shown = [d for d in datasets if d in paper.index]
    if shown:
        lines += ["", f"The paper's Table {recipe.table} (nDCG@10 ×100) on the same datasets, as printed; a cell the paper "
                      "prints wrongly shows its correction (results/paper/table1-errata.csv), which Δ paper uses:", ""]
        names = [SYSTEMS[c]["name"] if c in SYSTEMS else c for c in paper.columns]
        lines += ["| dataset | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
        for d in shown:
            cells = [f"{v:.1f}" + (f" (erratum: {errata[d, c]:.1f})" if (d, c) in errata else "")
                     for c, v in paper.loc[d].items()]
            lines.append(f"| {d} | " + " | ".join(cells) + " |")
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
    p.add_argument("--dry-run", action="store_true",
                   help="print every stage's artifact (cached or to do) and the python -m encode commands, run nothing")
    p.add_argument("--shards", type=positive_int, default=1,
                   help="--dry-run: print the encode commands split into this many shards (one per machine)")
    args = p.parse_args(argv)

    if args.model is None and (args.activation or args.idf):
        raise InputError(None, "--activation and --idf apply to --model", fix="add --model, or set them in the recipe")
    recipe = load_recipe(args.released if args.model else args.recipe)
    datasets = resolve_datasets(args.datasets.split(",") if args.datasets else load_recipe(args.recipe).datasets)
    out = check_writable(args.out or (REPO / "results" if args.update else work_dir() / "results"))
    check_writable(work_dir())  # before any model loads: an unwritable output or work dir fails at once
    systems = model_systems(recipe, args.model, args.activation, args.idf) if args.model else recipe.systems
    timer = Timer()
    command = " ".join(["python -m eval.reproduce", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    prov = provenance(command=command.split())  # before any output is rewritten, so "-dirty" means the code

    if args.dry_run:
        for name in datasets:
            print_plan(DatasetRun(name, recipe, args, timer), systems, args.shards)
        return 0

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
    stem = f"table{recipe.table}"
    md = render_markdown(recipe, table, keys, command)
    document = {  # kit-results/1, see results/SCHEMA.md
        "format": FORMAT, "table": recipe.table, "measures": recipe.measures, "per_query": f"per-query/{stem}.csv.gz",
        "rows": table_rows(table, recipe.measures, systems),
        **prov, "recipe": repo_relative(recipe.path),
        "datasets": keys, "systems": [s.id for s in systems], "total_seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": {k: round(v, 1) for k, v in timer.seconds.items()}}
    with atomic_outputs() as outputs:  # the four files of one run appear together, or not at all
        with outputs.open(out / f"{stem}.csv") as fh:
            table.to_csv(fh, index=False)
        with outputs.open(out / "per-query" / f"{stem}.csv.gz") as fh:
            pd.concat(per_query, ignore_index=True).to_csv(fh, index=False)
        with outputs.open(out / f"{stem}.md") as fh:
            fh.write(md)
        with outputs.open(out / f"{stem}.json") as fh:
            fh.write(json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n")
    print(md)
    print("stage wall time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timer.seconds.items()))
    print(f"wrote {out / stem}.{{csv,md,json}} and {out / 'per-query' / stem}.csv.gz"
          + ("" if out.resolve() == (REPO / "results").resolve() else
             " (the stored reference in results/ is unchanged; --update writes it)"))
    failed = table[table["check"] == "FAIL"]
    if len(failed):
        for r in failed.to_dict("records"):
            print(f"FAIL {r['dataset']} {r['system']}: {r['check_detail']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
