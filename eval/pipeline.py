"""The pipeline engine: one dataset's stages -- encode, index, query, search, score -- each a cached artifact.

Every runner drives it: the Table 1 runner (:mod:`eval.reproduce`), the ablation (:mod:`eval.ablation`), Li-LSR
(:mod:`eval.lilsr`), the teacher report (:mod:`eval.teachers`) and ``compare --recipe``. Its inputs are explicit:

- a :class:`kit.dataset.Dataset`;
- :class:`Settings`: what the recipe fixes (measures, hits, max length, quantization factor, retrieval backend) and
  how this machine computes (device, dtype, batch size, threads, force);
- the :class:`eval.recipe.System` s to measure.

Each artifact is a :class:`kit.manifest.Artifact` keyed by everything it depends on, under ``work/<dataset>/``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from encode.query import compute_idf, encode_queries, load_idf_json, save_idf_json
from encode.registry import query_encoder
from encode.writer import check_complete, check_inputs, read_vectors, write_vectors
from eval.metrics import document_lengths, evaluate, sparsity_stats, token_document_frequencies
from eval.recipe import CORPUS_IDF_TABLE, DenseSpec, DocSpec, IndexSpec, Recipe, System
from index.anserini import build_flat_index, flat_index_inputs, read_query_vectors, search_bm25
from index.dense import encode_corpus, load_encoder, search
from kit.data import load_dataset
from kit.dataset import Dataset
from kit.errors import InputError
from kit.fingerprint import file_sha256, mapping_sha256, model_fingerprint, tokenizer_fingerprint
from kit.hub import find_model_idf, local_model_dir
from kit.io import atomic_write, load_json, write_json
from kit.lazy import lazy_import
from kit.manifest import Artifact
from kit.paths import dataset_slug, slug, work_dir
from train.conditions import trained_model

doc_encoder = lazy_import("encode.doc_encoder")  # torch: loaded when a document is encoded


class Timer:
    """Wall time per stage, summed over datasets and systems (for the benchmark's end-to-end breakdown).

    A stage timed inside another counts once: its seconds are its own, not also the enclosing stage's, so the stages
    never add up to more than the wall time since the timer was made (:meth:`line` gives each stage's share of it).
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()
        self._inner: list[float] = []  # per open stage, innermost last: the seconds of the stages timed inside it

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield
        finally:
            took = time.perf_counter() - start
            self.seconds[stage] = self.seconds.get(stage, 0.0) + took - self._inner.pop()
            if self._inner:
                self._inner[-1] += took

    def _slowest_first(self) -> list[tuple[str, float]]:
        return sorted(self.seconds.items(), key=lambda kv: -kv[1])

    def rounded(self) -> dict[str, float]:
        """Seconds per stage to 0.1 s, slowest first (what result files store as ``stage_seconds``)."""
        return {k: round(v, 1) for k, v in self._slowest_first()}

    def line(self) -> str:
        """One printed line saying where the run's time went: each stage's seconds and its share of the wall time
        since the timer was made (the rest went to untimed work: loading models, writing results)."""
        wall = max(time.perf_counter() - self.started, sum(self.seconds.values()))
        shares = ", ".join(f"{k} {v:.1f} ({v / wall:.0%})" for k, v in self._slowest_first())
        return f"stage wall time (s): {shares or 'none timed'}; {wall:.1f} s in all"


def model_label(model: str) -> str:
    """A short, file-name-safe name of a model for artifact names (the key beside it identifies the content)."""
    path = Path(model)
    if path.is_absolute() or model.startswith("."):
        parts = [p for p in path.parts if p not in ("/", "model")]
        return slug("-".join(parts[-2:]))[:60] or "model"
    return slug(model)[:60]


@dataclass(frozen=True)
class Settings:
    """How a table is computed: what the recipe fixes, then how this machine runs it.

    ``device`` None: CUDA when available; ``dtype`` None: fp16 autocast on CUDA, fp32 elsewhere
    (:func:`encode.doc_encoder.resolve_precision`). ``force`` recomputes every stage instead of reusing it.
    """

    measures: tuple[str, ...] = ("nDCG@10",)
    hits: int = 1000
    max_length: int = 512
    factor: float = 100.0
    index: IndexSpec = IndexSpec()
    device: str | None = None
    dtype: str | None = None
    batch_size: int = 32
    threads: int = 2
    force: bool = False

    @classmethod
    def of(cls, recipe: Recipe, **machine) -> "Settings":
        """A recipe's settings (``machine``: device, dtype, batch_size, threads, force, and ``backend`` to override
        the recipe's index backend)."""
        backend = machine.pop("backend", None)
        index = recipe.index or IndexSpec()
        if backend is not None and backend != index.backend:
            index = IndexSpec(backend)
        return cls(measures=tuple(recipe.measures), hits=recipe.hits, max_length=recipe.max_length,
                   factor=recipe.factor, index=index, **{k: v for k, v in machine.items() if v is not None})


class DatasetRun:
    """All stages for one dataset; artifacts under ``work/<dataset>/``, each keyed by everything it depends on.

    Every cached artifact (document vectors, IDF table, index, query vectors, run) is a :class:`kit.manifest.Artifact`:
    its name carries the key of a description of its inputs -- the corpus and query fingerprints, the model's files,
    the recipe fields the stage uses, the precision and device -- and it is reused only when the manifest written at
    its completion holds exactly that description and its files still have the SHA-256 recorded there
    (:meth:`kit.manifest.Artifact.reusable`; a changed one is recomputed, with a note naming the file).
    """

    def __init__(self, ds: Dataset, settings: Settings, timer: Timer | None = None, root: Path | None = None,
                 name: str | None = None, query_terms: System | None = None):
        """``ds``: the collection; ``settings``: how to compute; ``root`` (default ``work/<dataset>``) holds the
        artifacts; ``name`` is how tables and expected scores call the dataset (default: its slug).

        ``query_terms``: a sparse system whose document vectors are computed only over the vocabulary entries its
        query vectors on this dataset hold. A document's score sums exactly those entries, so runs and every
        retrieval measure are the same as with whole vectors, at a fraction of the MLM decoder's work; the vectors
        are not whole (FLOPS and Doc_Len are not measured from them). Their cache key says so, and names the query
        vectors they were cut to."""
        self.ds, self.settings = ds, settings
        if query_terms is not None and query_terms.doc is None:
            raise ValueError(f"query_terms needs a sparse system with a document encoder, not {query_terms.id!r}")
        self.query_terms = query_terms
        self.timer = timer if timer is not None else Timer()
        self.name = name or ds.name
        self.key = dataset_slug(self.name)  # how the dataset is named in tables, expected scores and the work dir
        self.root = root if root is not None else work_dir() / self.key
        self.device, self.dtype = doc_encoder.resolve_precision(settings.device, settings.dtype)
        self._encoders: dict = {}
        self._idf: dict = {}
        self._memo: dict = {}

    @classmethod
    def load(cls, name: str, settings: Settings, timer: Timer | None = None, root: Path | None = None) -> "DatasetRun":
        """The run of a dataset named as recipes and ``--datasets`` name it (:func:`kit.data.load_dataset`)."""
        timer = timer if timer is not None else Timer()
        with timer("load data"):
            try:
                ds = load_dataset(name)
            except ValueError as exc:  # an unknown dataset name is a usage error, not a crash
                raise InputError(None, f"--datasets: {exc}") from None
        return cls(ds, settings, timer, root, name=name)

    # ---- fingerprints ----------------------------------------------------------------------------------------------
    def _cached(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def corpus(self) -> str:
        return self._cached("corpus", self.ds.corpus_fingerprint)

    def model_files(self, model: str) -> str:
        """Fingerprint of a model's files (weights, config, tokenizer)."""
        return self._cached(("model", model), lambda: model_fingerprint(local_model_dir(model)))

    def tokenizer_files(self, model: str) -> str:
        return self._cached(("tokenizer", model), lambda: tokenizer_fingerprint(local_model_dir(model)))

    def _precision(self) -> dict:
        return {"device": self.device, "dtype": self.dtype}

    # ---- documents -------------------------------------------------------------------------------------------------
    def vectors(self, doc: DocSpec) -> Artifact:
        """The quantized document vectors of ``doc``'s model and activation (a ``python -m encode`` folder)."""
        inputs = {"stage": "doc-vectors", "corpus": self.corpus(), "model": self.model_files(doc.model),
                  "encoding": doc_encoder.ENCODING, "activation": doc.activation, "max_length": self.settings.max_length, "factor": self.settings.factor,
                  **self._precision()}
        label = f"{model_label(doc.model)}.{doc.activation}.len{self.settings.max_length}.q{self.settings.factor:g}"
        if self._cut(doc):
            inputs["only_terms_of_queries"] = self.queries(self.query_terms).key
            label += ".query-terms"
        return Artifact.named(self.root / "vectors", label, inputs, is_dir=True)

    def _cut(self, doc: DocSpec) -> bool:
        """Whether ``doc``'s vectors here hold only the entries of :attr:`query_terms`'s queries."""
        return self.query_terms is not None and self.query_terms.doc == doc

    def query_term_ids(self) -> list[int]:
        """Vocabulary ids of every token :attr:`query_terms`'s query vectors hold on this dataset."""
        system = self.query_terms
        vocab = self.tokenizer(system.doc.model).get_vocab()
        # a token outside the model's vocabulary is in no document vector, so it needs no entry
        return sorted({vocab[t] for vec in self.query_vectors(system).values() for t in vec if t in vocab})

    def _require_whole(self, doc: DocSpec) -> None:
        """FLOPS and Doc_Len need every entry of a document: never take them from vectors cut to the query terms."""
        if self._cut(doc):
            raise ValueError(f"{self.key}: the vectors of {doc.model} hold only the query terms; their sparsity is "
                             "not the documents'")

    def vectors_dir(self, doc: DocSpec) -> Path:
        return self.vectors(doc).path

    def encode_docs(self, docs: list[DocSpec]) -> None:
        """One forward pass per model for all activations the recipe needs (activation is applied after pooling)."""
        by_model: dict[str, list[str]] = {}
        for d in docs:
            art = self.vectors(d)
            if not art.reusable(self.settings.force) and (self._cut(d) or not self.adopt_vectors(art)):
                acts = by_model.setdefault(d.model, [])
                if d.activation not in acts:
                    acts.append(d.activation)
        for model, acts in by_model.items():
            cut = any(self._cut(DocSpec(model, a)) for a in acts)
            if cut and len(acts) > 1:  # one forward pass serves several activations only over the same vocabulary
                raise ValueError(f"{model}: cut to the query terms of one system, encode its activation alone")
            vocabulary = self.query_term_ids() if cut else None
            encoder = doc_encoder.SpladeDocEncoder(model, activation=acts[0], max_length=self.settings.max_length,
                                                   device=self.settings.device, batch_size=self.settings.batch_size,
                                                   vocabulary=vocabulary)
            arts = {a: self.vectors(DocSpec(model, a)) for a in acts}
            only = f", only the {len(vocabulary)} query terms" if vocabulary is not None else ""
            print(f"[{self.key}] encoding {self.ds.num_docs or ''} docs with {model} ({', '.join(acts)}{only})",
                  flush=True)
            with self.timer("encode docs"):
                write_vectors(self.ds.docs(), encoder, {a: art.path for a, art in arts.items()},
                              factor=self.settings.factor, activations=acts, show_progress=True,
                              total=self.ds.num_docs)
            for art in arts.values():
                done = check_complete(art.path)
                art.complete(documents=done["documents"], empty_documents=done["empty_documents"],
                             vectors=done["fingerprint"])

    def _verified_vectors(self, doc: DocSpec) -> None:
        """Before anything is computed from ``doc``'s vectors: encode them when they are missing or changed since
        they were made (vectors this process just encoded are ready, so ``force`` does not encode them twice)."""
        if not self.vectors(doc).ready():
            self.encode_docs([doc])

    def adopt_vectors(self, art: Artifact) -> bool:
        """Take a complete encoding found in ``art``'s folder but not yet recorded there -- the shards of ``python -m
        encode --shard I/N`` run on several machines and copied in (``--dry-run`` prints those commands) -- once it
        is verified: every shard and part present and unchanged, encoded with this model, activation, length,
        factor, precision and device, from this corpus's documents."""
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
        if self._cut(doc):
            raise ValueError("vectors cut to the query terms are written by the pipeline, not by python -m encode")
        art = self.vectors(doc)
        parts = ["python", "-m", "encode", "--corpus", self.name, "--model", doc.model, "--activation", doc.activation,
                 "--max-length", str(self.settings.max_length), "--factor", f"{self.settings.factor:g}",
                 "--device", self.device, "--dtype", self.dtype, "--output", str(art.path)]
        if shard is not None:
            parts += ["--shard", f"{shard[0]}/{shard[1]}"]
        return shlex.join(parts)

    @property
    def index_spec(self) -> IndexSpec:
        """The sparse systems' retrieval backend and its parameters."""
        return self.settings.index

    def index(self, doc: DocSpec) -> Artifact:
        spec = self.index_spec
        vectors = self.vectors(doc)
        inputs = {"stage": "impact-index", "vectors": vectors.key, "backend": spec.backend,
                  "params": [list(p) for p in spec.params]}
        return Artifact.named(self.root / "indexes", vectors.path.name.rsplit(".", 1)[0] + f".{spec.backend}",
                              inputs, is_dir=True)

    def impact_index(self, doc: DocSpec) -> Path:
        art = self.index(doc)
        if not art.reusable(self.settings.force):
            self._verified_vectors(doc)
            with self.timer("index"):
                info = self.index_spec.get().build(self.vectors(doc).path, art.path, threads=self.settings.threads,
                                                   overwrite=True)
            art.complete(documents=info.get("documents"))
        return art.path

    # ---- queries ---------------------------------------------------------------------------------------------------
    def doc_encoder(self, model: str):
        if model not in self._encoders:
            self._encoders[model] = doc_encoder.SpladeDocEncoder(
                model, activation="relu", max_length=self.settings.max_length, device=self.settings.device,
                batch_size=self.settings.batch_size)
        return self._encoders[model]

    def tokenizer(self, model: str):
        if model in self._encoders:
            return self._encoders[model].tokenizer
        from transformers import AutoTokenizer

        return self._cached(("tok", model), lambda: AutoTokenizer.from_pretrained(local_model_dir(model)))

    def idf(self, doc: DocSpec, source: str) -> dict[str, float]:
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
            if art.reusable(self.settings.force):
                self._idf[tokenizer_fp] = load_idf_json(art.path)
            else:
                with self.timer("idf"):
                    self._idf[tokenizer_fp] = compute_idf((d.text for d in self.ds.docs()), self.tokenizer(doc.model))
                save_idf_json(self._idf[tokenizer_fp], art.path)
                art.complete(tokens=len(self._idf[tokenizer_fp]))
        return self._idf[tokenizer_fp]

    def _lookup_table(self, system: System) -> str:
        """A Li-LSR system's lookup table: the recipe's file, the model's own, or the corpus IDF as a table."""
        table = system.query.table
        if table == CORPUS_IDF_TABLE:
            art = Artifact.named(self.root / "tables", "corpus-idf", {
                "stage": "idf-lookup-table", "corpus": self.corpus(), "tokenizer": self.tokenizer_files(system.doc.model)},
                suffix=".json")
            if not art.reusable(self.settings.force):
                save_idf_json(self.idf(system.doc, "corpus"), art.path)
                art.complete()
            return str(art.path)
        return table or str(local_model_dir(system.doc.model))

    def query_weights(self, system: System) -> dict:
        """The fingerprint of what ``system``'s query encoder weighs tokens with (IDF table, lookup table, model), and
        how it reads a query (truncation, the weight of a token the table lacks)."""
        def compute() -> dict:
            truncation = {"max_length": self.settings.max_length}
            if system.query.encoder == "bow-idf":
                return {"idf": mapping_sha256(self.idf(system.doc, system.query.idf)),
                        "missing_token_weight": self.missing_token_weight(system), **truncation}
            if system.query.encoder == "lilsr":
                table = self._lookup_table(system)
                return {"table": model_fingerprint(table) if Path(table).is_dir() else file_sha256(table),
                        **truncation}
            return {"model": self.model_files(system.doc.model), "encoding": doc_encoder.ENCODING, **truncation,
                    **self._precision()}

        return self._cached(("query-weights", system.doc, system.query), compute)

    @staticmethod
    def missing_token_weight(system: System) -> float:
        """Weight of a query token the IDF table lacks: 1.0 for a model's own ``idf.json``, as the authors'
        evaluation code sets it (``idf_vector = [1.0] * vocab_size``, then the listed tokens); a corpus IDF lists
        every token, so there it never applies (0)."""
        return 1.0 if system.query.idf == "model" else 0.0

    def query_encoder(self, system: System):
        """The query encoder of ``system`` (:func:`encode.registry.query_encoder`). Queries are truncated at the
        recipe's ``max_length`` tokens, special tokens included, then the special tokens are dropped: the authors'
        evaluation (``tokenizer(..., truncation=True, max_length=512)``, ``out[:, special_token_ids] = 0``)."""
        kind = system.query.encoder
        if kind == "splade":
            return query_encoder(kind, doc_encoder=self.doc_encoder(system.doc.model))
        return query_encoder(
            kind, self.tokenizer(system.doc.model), max_length=self.settings.max_length,
            idf=self.idf(system.doc, system.query.idf) if kind == "bow-idf" else None,
            missing_weight=self.missing_token_weight(system), table=self._lookup_table(system) if kind == "lilsr" else None)

    def queries(self, system: System) -> Artifact:
        inputs = {"stage": "query-vectors", "queries": self.ds.queries_fingerprint(),
                  "encoder": system.query.encoder, "tokenizer": self.tokenizer_files(system.doc.model),
                  "weights": self.query_weights(system), "factor": self.settings.factor}
        return Artifact.named(self.root / "queries", system.id, inputs, suffix=".jsonl")

    def query_vectors(self, system: System) -> dict[str, dict[str, int]]:
        art = self.queries(system)
        if art.reusable(self.settings.force):
            return read_query_vectors(art.path)
        encoder = self.query_encoder(system)
        with self.timer("encode queries"):
            vectors = encode_queries(encoder, self.ds.queries, factor=self.settings.factor)
        with atomic_write(art.path) as fh:
            for qid, vec in vectors.items():
                fh.write(json.dumps({"id": qid, "vector": vec}) + "\n")
        art.complete(queries=len(vectors))
        return vectors

    # ---- systems ---------------------------------------------------------------------------------------------------
    def flat_index(self) -> Artifact:
        return Artifact.named(self.root / "indexes", "flat", flat_index_inputs(self.corpus()), is_dir=True)

    def dense_corpus(self, spec: DenseSpec) -> Artifact:
        inputs = {"stage": "dense-corpus", "corpus": self.corpus(), "model": self.model_files(spec.model),
                  "max_length": spec.max_length, **self._precision()}
        return Artifact.named(self.root / "dense", f"{model_label(spec.model)}.len{spec.max_length or 'model'}",
                              inputs, is_dir=True)

    def run(self, system: System) -> Artifact:
        """The TREC run of ``system``: keyed by its index and queries (and the search settings)."""
        search = {"hits": self.settings.hits, "remove_query": True}
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
        run = self.run(system)
        extra: dict[str, float] = {}
        if system.type == "bm25":
            index = self.flat_index()
            if not index.reusable(self.settings.force):
                with self.timer("index"):
                    info = build_flat_index(self.ds.docs(), index.path, threads=self.settings.threads, overwrite=True,
                                            inputs=index.inputs)
                index.complete(documents=info.get("documents"))
            if not run.reusable(self.settings.force):
                with self.timer("search"):
                    search_bm25(index.path, self.ds.queries, run.path, hits=self.settings.hits, threads=self.settings.threads)
                run.complete()
        elif system.type == "dense":
            if not run.reusable(self.settings.force):
                self.dense_search(system.dense, run.path)
                run.complete()
        else:
            index = self.impact_index(system.doc)
            queries = self.query_vectors(system)
            if not run.reusable(self.settings.force):
                with self.timer("search"):
                    self.index_spec.get().search(index, queries, run.path, hits=self.settings.hits,
                                                 threads=self.settings.threads)
                run.complete()
            if not self._cut(system.doc):  # vectors cut to the query terms have no length of their own
                with self.timer("sparsity stats"):
                    extra = sparsity_stats(self.doc_frequencies(system.doc), queries.values())
        with self.timer("score"):
            scores, per_query = evaluate(run.path, self.ds.qrels, list(self.settings.measures))
        per_query.insert(0, "system", system.id)
        per_query.insert(0, "dataset", self.key)
        return {**scores, **extra, "_per_query": per_query}

    def dense_search(self, spec: DenseSpec, run_path: Path) -> None:
        """Exact inner-product search (:mod:`index.dense`); the encoded corpus is cached per model and max length."""
        encoder = load_encoder(spec.model, device=self.settings.device, max_length=spec.max_length)
        art = self.dense_corpus(spec)
        if not art.reusable(self.settings.force):
            print(f"[{self.key}] dense-encoding {self.ds.num_docs or ''} docs with {spec.model}", flush=True)
            with self.timer("encode docs (dense)"):
                meta = encode_corpus(self.ds.docs(), encoder, art.path, model=spec.model,
                                     batch_size=self.settings.batch_size, total=self.ds.num_docs)
            art.complete(documents=meta["count"])
        with self.timer("search (dense)"):
            search(art.path, self.ds.queries, encoder, run_path, hits=self.settings.hits,
                   batch_size=self.settings.batch_size)

    def doc_vectors(self, doc: DocSpec):
        return (vec for _, vec in read_vectors(self.vectors(doc).path))

    def doc_lengths(self, doc: DocSpec) -> dict[str, int]:
        """Each document's number of non-zero tokens in ``doc``'s (quantized, indexed) vectors, counted once per
        encoding and cached beside its document frequencies (apart from them: Table 1 never needs one per document)."""
        self._require_whole(doc)
        vectors = self.vectors(doc)
        art = Artifact.named(self.root / "stats", vectors.path.name.rsplit(".", 1)[0] + ".doc-len",
                             {"stage": "doc-lengths", "vectors": vectors.key}, suffix=".json")
        if art.reusable(self.settings.force):
            return load_json(art.path)["lengths"]
        self._verified_vectors(doc)
        # in the order the cached file gives them back (its keys are sorted), so a fresh count and a cached one
        # make the same per-document rows, in the same order, in a results file's per-query values
        lengths = dict(sorted(document_lengths(read_vectors(vectors.path)).items()))
        write_json(art.path, {"documents": len(lengths), "lengths": lengths})
        art.complete(documents=len(lengths))
        return lengths

    def doc_frequencies(self, doc: DocSpec) -> tuple[dict[str, int], int]:
        """``(documents per token, documents)`` of ``doc``'s vectors: FLOPS and Doc_Len need nothing else of them,
        so they are counted once per encoding and cached beside it."""
        self._require_whole(doc)
        vectors = self.vectors(doc)
        art = Artifact.named(self.root / "stats", vectors.path.name.rsplit(".", 1)[0] + ".doc-df",
                             {"stage": "doc-frequencies", "vectors": vectors.key}, suffix=".json")
        if art.reusable(self.settings.force):
            data = load_json(art.path)
            return data["df"], data["documents"]
        self._verified_vectors(doc)
        df, n = token_document_frequencies(self.doc_vectors(doc))
        write_json(art.path, {"documents": n, "df": dict(df)})
        art.complete(documents=n)
        return dict(df), n


def resolve_trained(system: System, seed: int | None = None) -> System:
    """``system`` with a ``doc: {trained: <condition>}`` replaced by the directory of that condition's model at
    ``seed`` (None: the condition's own; trained now when it is not cached yet; :func:`train.conditions.trained_model`)."""
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
