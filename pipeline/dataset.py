"""The engine: one dataset's stages -- encode, index, query, search, score -- each a cached artifact.

Every runner drives it: the Table 1 runner (:mod:`eval.reproduce`), the ablation (:mod:`eval.ablation`), the
study runner (:mod:`eval.study`) and ``compare --recipe``. Its inputs are explicit:

- a :class:`kit.dataset.Dataset`;
- :class:`pipeline.settings.Settings`: what the recipe fixes (measures, hits, max length, quantization factor,
  retrieval backend) and how this machine computes (device, dtype, batch size, threads, force);
- the :class:`pipeline.specs.System` s to measure, each made by its kind (:mod:`pipeline.systems`).

Each artifact is a :class:`kit.manifest.Artifact` under ``work/<dataset>/``, described in :mod:`pipeline.artifacts`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from encode.query import compute_idf, encode_queries, load_idf_json, save_idf_json
from encode.registry import query_encoder
from encode.writer import check_complete, check_inputs, read_vectors, write_vectors
from index.anserini import read_query_vectors
from kit.data import load_dataset
from kit.dataset import Dataset
from kit.errors import InputError
from kit.fingerprint import file_sha256, mapping_sha256, model_fingerprint, tokenizer_fingerprint
from kit.hub import find_model_idf, local_model_dir
from kit.io import atomic_write, load_json, write_json
from kit.lazy import lazy_import
from kit.manifest import Artifact
from kit.paths import dataset_slug, work_dir
from pipeline import artifacts
from pipeline.metrics import document_lengths, evaluate, token_document_frequencies
from pipeline.settings import Settings, Timer
from pipeline.specs import CORPUS_IDF_TABLE, DocSpec, IndexSpec, System
from pipeline.systems import kind_of

doc_encoder = lazy_import("encode.doc_encoder")  # torch: loaded when a document is encoded


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

    def precision(self) -> dict:
        """How vectors and embeddings are computed here (in the key of every artifact a model computes)."""
        return {"device": self.device, "dtype": self.dtype}

    # ---- documents -------------------------------------------------------------------------------------------------
    def vectors(self, doc: DocSpec) -> Artifact:
        """The quantized document vectors of ``doc``'s model and activation (a ``python -m encode`` folder)."""
        return artifacts.doc_vectors(self.root, self.corpus(), self.model_files(doc.model), doc, doc_encoder.ENCODING,
                                     self.settings.max_length, self.settings.factor, self.precision(),
                                     self.queries(self.query_terms).key if self.cut(doc) else None)

    def cut(self, doc: DocSpec) -> bool:
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
        if self.cut(doc):
            raise ValueError(f"{self.key}: the vectors of {doc.model} hold only the query terms; their sparsity is "
                             "not the documents'")

    def vectors_dir(self, doc: DocSpec) -> Path:
        return self.vectors(doc).path

    def encode_docs(self, docs: list[DocSpec]) -> None:
        """One forward pass per model for all activations the recipe needs (activation is applied after pooling)."""
        by_model: dict[str, list[str]] = {}
        for d in docs:
            art = self.vectors(d)
            if not art.reusable(self.settings.force) and (self.cut(d) or not self.adopt_vectors(art)):
                acts = by_model.setdefault(d.model, [])
                if d.activation not in acts:
                    acts.append(d.activation)
        for model, acts in by_model.items():
            cut = any(self.cut(DocSpec(model, a)) for a in acts)
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
        if self.cut(doc):
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
        return artifacts.impact_index(self.root, self.vectors(doc), self.index_spec)

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
            art = artifacts.corpus_idf(self.root, self.corpus(), tokenizer_fp)
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
            art = artifacts.idf_lookup_table(self.root, self.corpus(), self.tokenizer_files(system.doc.model))
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
                    **self.precision()}

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
            missing_weight=self.missing_token_weight(system),
            table=self._lookup_table(system) if kind == "lilsr" else None)

    def queries(self, system: System) -> Artifact:
        return artifacts.query_vectors(self.root, system.id, self.ds.queries_fingerprint(), system.query.encoder,
                                       self.tokenizer_files(system.doc.model), self.query_weights(system),
                                       self.settings.factor)

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


    # ---- runs ------------------------------------------------------------------------------------------------------
    def run(self, system: System) -> Artifact:
        """The TREC run of ``system``: keyed by what its kind says it depends on (:mod:`pipeline.systems`)."""
        return kind_of(system).run_artifact(self, system)

    def signature(self, system: System) -> str:
        """``<system id>.<key>``: the name of the system's run (changes whenever anything the run depends on does)."""
        return self.run(system).path.name.removesuffix(".trec")

    def make_run(self, system: System) -> tuple[Artifact, dict[str, float]]:
        """Make ``system``'s run (reused when cached) by its kind; the run and the measures the kind adds."""
        art = self.run(system)
        return art, kind_of(system).make(self, system, art)

    def run_system(self, system: System) -> dict:
        """``system``'s scores on the recipe's measures (and its kind's own), with ``_per_query`` values."""
        run, extra = self.make_run(system)
        with self.timer("score"):
            scores, per_query = evaluate(run.path, self.ds.qrels, list(self.settings.measures))
        per_query.insert(0, "system", system.id)
        per_query.insert(0, "dataset", self.key)
        return {**scores, **extra, "_per_query": per_query}

    # ---- document statistics ---------------------------------------------------------------------------------------
    def doc_vectors(self, doc: DocSpec):
        return (vec for _, vec in read_vectors(self.vectors(doc).path))

    def doc_lengths(self, doc: DocSpec) -> dict[str, int]:
        """Each document's number of non-zero tokens in ``doc``'s (quantized, indexed) vectors, counted once per
        encoding and cached beside its document frequencies (apart from them: Table 1 never needs one per document)."""
        self._require_whole(doc)
        vectors = self.vectors(doc)
        art = artifacts.doc_stats(self.root, vectors, "doc-lengths")
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
        art = artifacts.doc_stats(self.root, vectors, "doc-frequencies")
        if art.reusable(self.settings.force):
            data = load_json(art.path)
            return data["df"], data["documents"]
        self._verified_vectors(doc)
        df, n = token_document_frequencies(self.doc_vectors(doc))
        write_json(art.path, {"documents": n, "df": dict(df)})
        art.complete(documents=n)
        return dict(df), n

