"""Test collections by name: the dataset registries and the loaders behind :func:`load_dataset`.

The paper ("Exploring l0 Sparsification for Inference-free Sparse Retrievers", SIGIR 2025, Section 5.1) evaluates
zero-shot on 13 BEIR datasets (Table 1) with nDCG@10. Every loader here returns one :class:`~kit.dataset.Dataset`
shape, reading the files with :mod:`kit.formats`:

- BEIR layout (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``), e.g. the offline SciFact copy;
- Anserini's official BEIR topics (``qid<TAB>text``) and TREC qrels (``qid iter docid rel``);
- the classic Vaswani (TREC SGML) and CACM (SMART) collections used for quick offline checks;
- any ``ir_datasets`` id (online; the corpus is streamed through ``docs_iter()``);
- the 13 NanoBEIR subsets (online, :mod:`kit.nanobeir`).

A document's text follows Pyserini's BEIR "flat" convention: ``(title + " " + text).strip()``. Every reader validates as
it goes and raises :class:`~kit.errors.InputError` naming the file and line of the first bad record.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path
from typing import Callable, Iterator

from kit.dataset import Dataset, Doc, Qrels
from kit.errors import InputError
from kit.fingerprint import file_sha256, text_file_sha256
from kit.formats import (_beir_qrels, _judged, _trec_qrels, read_beir_corpus, read_beir_queries, read_smart_docs,
                         read_smart_qrels, read_smart_queries, read_topics_tsv, read_trec_docs, read_trec_qrels,
                         read_trec_topics)
from kit.nanobeir import NANOBEIR_DATASETS, load_nanobeir
from kit.paths import shared_dir

#: The 13 BEIR datasets of the paper's Table 1 (in its row order) -> the ir_datasets id of their test split.
BEIR_DATASETS: dict[str, str] = {
    "trec-covid": "beir/trec-covid",
    "nfcorpus": "beir/nfcorpus/test",
    "nq": "beir/nq",
    "hotpotqa": "beir/hotpotqa/test",
    "fiqa": "beir/fiqa/test",
    "arguana": "beir/arguana",
    "webis-touche2020": "beir/webis-touche2020/v2",
    "dbpedia-entity": "beir/dbpedia-entity/test",
    "scidocs": "beir/scidocs",
    "fever": "beir/fever/test",
    "climate-fever": "beir/climate-fever",
    "scifact": "beir/scifact/test",
    "quora": "beir/quora/test",
}

#: Collections read from ``shared_dir()/data`` without a network.
LOCAL_DATASETS = ("scifact", "vaswani", "cacm")


# ---- BEIR layout -----------------------------------------------------------------------------------------------------

DERIVED_SPLITS = {"dev": "train", "fit": "train"}
"""Splits the kit derives from a collection's own split where the collection has no such qrels file: ``dev`` is a
fixed one in :data:`DEV_SHARE` of the train split's judged queries (chosen by the sha256 of the query id: never by
file order, machine or seed), held out from training; ``fit`` is the rest, what a recipe selected on ``dev`` trains
on. Every choice of a recipe is made on ``dev``; the test split only reports."""
DEV_SHARE = 5


def in_dev(query_id: str) -> bool:
    """Whether a train query belongs to the ``dev`` split (:data:`DERIVED_SPLITS`)."""
    return int(hashlib.sha256(f"dev:{query_id}".encode()).hexdigest(), 16) % DEV_SHARE == 0


def is_split(name: str) -> bool:
    """Whether ``name`` is a split of an offline collection, ``<name>/<split>`` (``scifact/train``), rather than a
    collection (:func:`kit.validate.dataset_or_split`)."""
    base, _, split = name.partition("/")
    return bool(split) and base in LOCAL_DATASETS


def _existing(root: Path, *names: str) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise InputError(root, f"{' or '.join(names)} not found",
                     fix="a BEIR directory holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv")


def _count_records(path: Path) -> int:
    """Number of non-blank lines (one binary pass; no JSON parsing)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def load_beir_local(root: str | Path, split: str = "test") -> Dataset:
    """A directory in BEIR layout; queries are restricted to those judged in ``qrels/<split>.tsv`` (as BEIR does), or,
    for a split the directory lacks, to those of :data:`DERIVED_SPLITS` (``dev``, ``fit``: parts of ``train``)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "not a directory", fix="pass a directory holding corpus.jsonl, queries.jsonl, qrels/")
    splits = sorted(p.name.split(".")[0] for p in (root / "qrels").glob("*.tsv*"))
    if split not in splits and DERIVED_SPLITS.get(split) in splits:  # dev / fit: a fixed part of train (in_dev)
        whole = load_beir_local(root, DERIVED_SPLITS[split])
        keep = [q for q in whole.queries if in_dev(q) == (split == "dev")]
        return Dataset(name=f"{root.name}/{split}", queries={q: whole.queries[q] for q in keep},
                       qrels={q: whole.qrels[q] for q in keep}, docs=whole.docs, num_docs=whole.num_docs,
                       source=whole.source, corpus_key=whole.corpus_key)
    if split not in splits:
        splits += [d for d, source in DERIVED_SPLITS.items() if source in splits]
        raise ValueError(f"split {split!r} not found in {root / 'qrels'}; choose from {', '.join(splits) or '(none)'}")
    corpus = _existing(root, "corpus.jsonl", "corpus.jsonl.gz")
    queries_path = _existing(root, "queries.jsonl", "queries.jsonl.gz")
    qrels_path = _existing(root / "qrels", f"{split}.tsv", f"{split}.tsv.gz")
    num_docs = _count_records(corpus)
    if not num_docs:
        raise InputError(corpus, "no documents", fix="a corpus needs at least one {\"_id\", \"text\"} record")
    qrels, first_line = _beir_qrels(qrels_path)
    if not qrels:
        raise InputError(qrels_path, "no judgments", fix="each line must be 'query-id<TAB>corpus-id<TAB>score'")
    queries = _judged(read_beir_queries(queries_path), qrels, first_line, qrels_path, queries_path)
    return Dataset(name=root.name if split == "test" else f"{root.name}/{split}", queries=queries, qrels=qrels,
                   docs=functools.partial(read_beir_corpus, corpus), num_docs=num_docs,
                   source=str(root.resolve()), corpus_key="file:" + text_file_sha256(corpus))


# ---- classic collections ---------------------------------------------------------------------------------------------

def _classic(name: str, root: Path, docs: tuple[Doc, ...], queries: dict[str, str], qrels: Qrels,
             qrels_path: Path, queries_path: Path, docs_path: Path) -> Dataset:
    missing = sorted(set(qrels) - set(queries), key=lambda q: (len(q), q))
    if missing:
        raise InputError(qrels_path, f"{len(missing)} judged queries are not in {queries_path} (e.g. {missing[0]!r})",
                         fix="the qrels and the queries must come from the same collection")
    return Dataset(name=name, queries=queries, qrels=qrels, docs=lambda: iter(docs), num_docs=len(docs),
                   source=str(root.resolve()), corpus_key="file:" + file_sha256(docs_path))


def read_vaswani(root: str | Path) -> Dataset:
    """The Vaswani (NPL) collection as Terrier ships it: ``corpus/doc-text.trec``, ``query-text.trec``, ``qrels``."""
    root = Path(root)
    qrels_path, queries_path, docs_path = root / "qrels", root / "query-text.trec", root / "corpus" / "doc-text.trec"
    return _classic("vaswani", root, tuple(read_trec_docs(docs_path)),
                    read_trec_topics(queries_path), read_trec_qrels(qrels_path), qrels_path, queries_path, docs_path)


def read_cacm(root: str | Path) -> Dataset:
    """The CACM collection (SMART distribution): ``cacm.all``, ``query.text``, ``qrels.text``; all 64 queries kept."""
    root = Path(root)
    qrels_path, queries_path, docs_path = root / "qrels.text", root / "query.text", root / "cacm.all"
    return _classic("cacm", root, tuple(read_smart_docs(docs_path)),
                    read_smart_queries(queries_path), read_smart_qrels(qrels_path), qrels_path, queries_path, docs_path)


# ---- ir_datasets (online) --------------------------------------------------------------------------------------------

def _ir_dataset(dataset_id: str):
    import ir_datasets

    try:
        return ir_datasets.load(dataset_id)
    except KeyError:
        raise ValueError(f"unknown ir_datasets id {dataset_id!r}; see https://ir-datasets.com "
                         "(e.g. beir/scifact/test, msmarco-passage/dev/small)") from None


def _record_text(rec) -> str:
    """``(title + " " + text).strip()`` for records with a ``text`` field, else ir_datasets' ``default_text()``."""
    if hasattr(rec, "text"):
        return f"{getattr(rec, 'title', '') or ''} {rec.text or ''}".strip()
    return rec.default_text().strip()


def _ir_docs(ds, dataset_id: str) -> tuple[Callable[[], Iterator[Doc]], int | None]:
    if not ds.has_docs():
        raise ValueError(f"ir_datasets id {dataset_id!r} has no documents")

    def docs() -> Iterator[Doc]:
        for doc in ds.docs_iter():
            yield Doc(str(doc.doc_id), _record_text(doc))

    try:
        count = ds.docs_count()
    except Exception:  # noqa: BLE001 - the count is optional metadata; some datasets need a download to know it
        count = None
    return docs, count


def _ir_corpus_key(dataset_id: str) -> str:
    """An ir_datasets corpus is identified by its id and the ir_datasets release (which pins and md5-checks its
    downloads): hashing a multi-GB stream on every run would cost minutes."""
    import ir_datasets

    return f"ir_datasets:{dataset_id}@{ir_datasets.__version__}"


def load_ir_datasets(dataset_id: str) -> Dataset:
    """Any ``ir_datasets`` id with documents, queries and qrels (downloads on first use; needs a network).

    Queries are restricted to those with judgments (BEIR's convention); the corpus streams through ``docs_iter()``.
    """
    ds = _ir_dataset(dataset_id)
    for what in ("queries", "qrels"):
        if not getattr(ds, f"has_{what}")():
            raise ValueError(f"ir_datasets id {dataset_id!r} has no {what}; pick a split such as {dataset_id}/test")
    qrels: Qrels = {}
    for qrel in ds.qrels_iter():
        qrels.setdefault(str(qrel.query_id), {})[str(qrel.doc_id)] = int(qrel.relevance)
    queries = {str(q.query_id): _record_text(q) for q in ds.queries_iter()}
    docs, count = _ir_docs(ds, dataset_id)
    return Dataset(name=dataset_id, queries={q: t for q, t in queries.items() if q in qrels}, qrels=qrels,
                   docs=docs, num_docs=count, source=f"ir_datasets:{dataset_id}", corpus_key=_ir_corpus_key(dataset_id))


def _beir_online(name: str) -> Dataset:
    """A Table 1 BEIR dataset: Anserini's official topics/qrels from ``shared_dir()`` when present, corpus online."""
    dataset_id = BEIR_DATASETS[name]
    folder = shared_dir() / "data" / "beir-topics-qrels"
    topics = folder / f"topics.beir-v1.0.0-{name}.test.tsv.gz"
    qrels_path = folder / f"qrels.beir-v1.0.0-{name}.test.txt.gz"
    if not (topics.is_file() and qrels_path.is_file()):
        dataset = load_ir_datasets(dataset_id)
        dataset.name = name
        return dataset
    qrels, first_line = _trec_qrels(qrels_path)
    queries = _judged(read_topics_tsv(topics), qrels, first_line, qrels_path, topics)
    docs, count = _ir_docs(_ir_dataset(dataset_id), dataset_id)
    return Dataset(name=name, queries=queries, qrels=qrels, docs=docs, num_docs=count,
                   source=f"topics {topics}; qrels {qrels_path}; corpus ir_datasets:{dataset_id}",
                   corpus_key=_ir_corpus_key(dataset_id))


def download_source(name: str, split: str = "test") -> str | None:
    """Where :func:`load_dataset` would fetch ``name``'s corpus from the network (``ir-datasets beir/nfcorpus/test``,
    ``NanoBEIR zeta-alpha-ai/NanoNFCorpus``), or None for a collection read from disk. Decided from the name alone:
    nothing is imported, read or fetched (what a ``--dry-run`` prints instead of loading it). An online corpus
    already in the ir_datasets or Hugging Face cache is still named: the name cannot tell."""
    if name in LOCAL_DATASETS or Path(name).is_dir():
        return None
    if name.startswith("nanobeir/"):
        subset = NANOBEIR_DATASETS.get(name.split("/", 1)[1])
        return f"NanoBEIR {subset} (Hugging Face)" if subset else None
    short = {v: k for k, v in BEIR_DATASETS.items()}.get(name, name)
    if short in BEIR_DATASETS:
        return f"ir-datasets {BEIR_DATASETS[short] if split == 'test' else f'beir/{short}/{split}'}"
    return f"ir-datasets {name}"


def load_dataset(name: str, split: str = "test") -> Dataset:
    """Resolve a dataset name the way the kit's recipes and CLIs spell it.

    - ``scifact``: the offline BEIR copy in ``shared_dir()/data/beir/scifact`` (``split`` picks ``qrels/<split>.tsv``);
    - ``vaswani``, ``cacm``: the offline classic collections (test split only);
    - the other Table 1 names (``nq``, ``fiqa``, ...; see :data:`BEIR_DATASETS`) and their ir_datasets ids: corpus from
      ir_datasets (online), topics and qrels from Anserini's files in ``shared_dir()/data/beir-topics-qrels``;
      another ``split`` loads ``beir/<name>/<split>`` from ir_datasets;
    - ``nanobeir/<name>``: a NanoBEIR subset (:data:`~kit.nanobeir.NANOBEIR_DATASETS`), online, md5-checked
      (:func:`~kit.nanobeir.load_nanobeir`);
    - a directory in BEIR layout;
    - any other ir_datasets id (e.g. ``msmarco-passage/dev/small``).
    """
    data = shared_dir() / "data"
    if name == "scifact":
        dataset = load_beir_local(data / "beir" / "scifact", split)
        dataset.name = name if split == "test" else f"{name}/{split}"
        return dataset
    if name in ("vaswani", "cacm"):
        if split != "test":
            raise ValueError(f"{name} has only a test split, not {split!r}")
        return (read_vaswani if name == "vaswani" else read_cacm)(data / "classic" / name)
    if name.startswith("nanobeir/"):
        if split != "test":
            raise ValueError(f"NanoBEIR subsets have one evaluation split, not {split!r}")
        return load_nanobeir(name.split("/", 1)[1])
    short = {v: k for k, v in BEIR_DATASETS.items()}.get(name, name)
    if short in BEIR_DATASETS:
        if split == "test":
            return _beir_online(short)
        dataset_id = f"beir/{short}/{split}"
        import ir_datasets

        if dataset_id not in ir_datasets.registry:
            splits = sorted(i.rsplit("/", 1)[1] for i in ir_datasets.registry if i.startswith(f"beir/{short}/"))
            raise ValueError(f"{short} has no {split!r} split in ir_datasets; "
                             f"choose from {', '.join(splits) or 'test'}")
        return load_ir_datasets(dataset_id)
    if Path(name).is_dir():
        return load_beir_local(name, split)
    import ir_datasets

    if name in ir_datasets.registry:
        if split != "test":
            raise ValueError(f"an ir_datasets id names its split itself; "
                             f"pass {name}/{split} instead of split={split!r}")
        return load_ir_datasets(name)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(LOCAL_DATASETS)} (offline), "
                     f"{', '.join(n for n in BEIR_DATASETS if n != 'scifact')} (BEIR, online), "
                     "nanobeir/<name> (NanoBEIR, online), a directory in BEIR layout, "
                     "or an ir_datasets id such as msmarco-passage/dev/small")
