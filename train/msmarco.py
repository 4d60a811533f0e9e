"""Online distillation data: the authors' released MS MARCO training data, ``opensearch-project/msmarco-hard-
negatives`` on the Hugging Face hub, with passage and query texts from ``ir_datasets`` (:func:`build_msmarco`).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from kit.errors import InputError
from train.examples import FORMAT_VERSION, TrainExample, _reusable, _write_examples, write_meta
from train.teachers import POSITIVE_RULES, _choice, _count, _final_scores, _is_number, _positive_number, lift_positive

SAMPLINGS = ("top", "spread")
HF_HARD_NEGATIVES = "opensearch-project/msmarco-hard-negatives"
HF_HARD_NEGATIVES_FILES = "data/train-*.parquet"
MSMARCO_IR_DATASET = "msmarco-passage/train"


class HardNegativeRow(NamedTuple):
    """One row of ``opensearch-project/msmarco-hard-negatives``: a query id, candidate passage ids, teacher scores."""

    query_id: str
    doc_ids: list[str]
    scores: list[float]


def read_hard_negatives(paths: Iterable[str | Path], batch_rows: int = 4096) -> Iterator[HardNegativeRow]:
    """Stream the rows of the hub dataset's Parquet shards, validating each one.

    Format, as published (evidence, since nothing can be downloaded here):

    - the dataset card (huggingface.co/datasets/opensearch-project/msmarco-hard-negatives, README.md at e93a363)
      declares one config with ``data_files: data/train-*``, format parquet, 502,939 train examples and the
      features ``query: string``, ``docs: sequence<string>``, ``scores: sequence<float64>``; for each MS MARCO train
      query, the top-100 passages retrieved by opensearch-neural-sparse-encoding-doc-v1, with re-ranking scores from
      the cross-encoders ms-marco-MiniLM-L12-v2 and monot5-3b-msmarco;
    - the authors' ``prepare_msmarco_hard_negatives.py`` (opensearch-sparse-model-tuning-sample) maps ``query`` and
      each of ``docs`` through the ``_id`` of BeIR/msmarco's queries and corpus, i.e. they are MS MARCO ids, the ids
      ``ir_datasets`` uses for ``msmarco-passage``; their KD training (``configs/config_l0.yaml``: ``data_type: kd``,
      ``loss_types: [kldiv]``, default ``score_scale: 1.0``) feeds ``scores`` to the KL loss unchanged;
    - a third-party audit of the same revision reports two Parquet shards (917,108,315 bytes) and notes that rows carry
      no positive label: the judged positive must come from the MS MARCO qrels.

    Integer ids are accepted and turned into strings. A row whose lists differ in length, hold fewer than two
    passages or a non-finite score raises InputError naming the file and the row (counted from 1, as ``line``).
    """
    import pyarrow.parquet as pq

    for path in paths:
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, ValueError) as err:
            raise InputError(path, f"not a readable Parquet file ({err})", fix="download the shard again") from None
        missing = {"query", "docs", "scores"} - set(parquet.schema_arrow.names)
        if missing:
            raise InputError(path, f"no column(s) {', '.join(sorted(missing))}",
                             fix=f"expected the columns query, docs, scores of {HF_HARD_NEGATIVES}")
        row = 0
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=["query", "docs", "scores"]):
            for query, docs, scores in zip(*(batch.column(c).to_pylist() for c in ("query", "docs", "scores"))):
                row += 1
                yield _check_hard_negative(path, row, query, docs, scores)


def _check_hard_negative(path, row: int, query, docs, scores) -> HardNegativeRow:
    fix = "each row is query: str, docs: [str], scores: [float] of equal length >= 2"
    if query is None or docs is None or scores is None:
        raise InputError(path, f"row {row}: null value", row, fix=fix)
    if len(docs) != len(scores) or len(docs) < 2:
        raise InputError(path, f"row {row}: {len(docs)} docs and {len(scores)} scores", row, fix=fix)
    if not all(_is_number(s) for s in scores):
        raise InputError(path, f"row {row}: non-finite or missing score", row, fix=fix)
    return HardNegativeRow(str(query), [str(d) for d in docs], [float(s) for s in scores])


def select_candidates(row: HardNegativeRow, positives: Iterable[str], negatives: int,
                      sampling: str = "top") -> tuple[list[str], list[float]] | None:
    """``([positive, negatives...], their scores)`` for one row, or None when no judged positive is a candidate.

    The positive is the judged positive with the highest stored score. Negatives are the other candidates that are
    not judged positive, ordered by stored score (best first): ``top`` keeps the ``negatives`` best (the hardest),
    ``spread`` keeps ``negatives`` evenly spaced ranks from the best to the worst (the teacher's whole score range).
    """
    _choice("sampling", sampling, SAMPLINGS)
    judged = set(positives)
    order = sorted(range(len(row.doc_ids)), key=lambda i: -row.scores[i])
    pos = [i for i in order if row.doc_ids[i] in judged]
    if not pos:
        return None
    rest = [i for i in order if row.doc_ids[i] not in judged]
    if not rest:
        return None
    if sampling == "spread" and len(rest) > negatives:
        picks = np.unique(np.round(np.linspace(0, len(rest) - 1, negatives)).astype(int))
        rest = [rest[i] for i in picks]
    chosen = [pos[0], *rest[:negatives]]
    return [row.doc_ids[i] for i in chosen], [row.scores[i] for i in chosen]


def msmarco_examples(rows: Iterable[HardNegativeRow], queries: Mapping[str, str],
                     qrels: Mapping[str, Iterable[str]], doc_texts: Callable[[list[str]], Mapping[str, str]],
                     negatives: int = 7, sampling: str = "top", scale: float = 1.0, positive_rule: str = "keep",
                     margin: float = 1.0, counts: Counter | None = None, chunk: int = 1000) -> Iterator[TrainExample]:
    """Turn hub rows into :class:`TrainExample` s: texts by id, positive from ``qrels``, scores ``x scale``.

    ``doc_texts(ids)`` returns ``{id: text}`` for a batch of passage ids (``ir_datasets``' docstore in
    :func:`build_msmarco`); rows are processed ``chunk`` at a time. Rows that cannot be used are skipped and counted
    in ``counts`` (``unknown_query``, ``no_positive_in_candidates``).
    """
    counts = counts if counts is not None else Counter()
    negatives = _count("negatives", negatives)
    scale = _positive_number("scale", scale)
    _choice("positive rule", positive_rule, POSITIVE_RULES)
    rows = iter(rows)
    while batch := [row for _, row in zip(range(chunk), rows)]:
        picked = []
        for row in batch:
            counts["rows"] += 1
            if row.query_id not in queries:
                counts["unknown_query"] += 1
                continue
            chosen = select_candidates(row, qrels.get(row.query_id, ()), negatives, sampling)
            if chosen is None:
                counts["no_positive_in_candidates"] += 1
                continue
            picked.append((row.query_id, *chosen))
        texts = doc_texts(sorted({d for _, ids, _ in picked for d in ids})) if picked else {}
        for qid, ids, scores in picked:
            missing = [d for d in ids if d not in texts]
            if missing:
                raise InputError(None, f"passage {missing[0]!r} (query {qid!r}) is not in the MS MARCO collection",
                                 fix="the hard negatives and the passages must both be MS MARCO passage v1")
            final = _final_scores(np.asarray(scores) * scale, positive_rule, margin)
            yield TrainExample(qid, queries[qid], ids, [texts[d] for d in ids], [round(float(x), 6) for x in final])


def download_hard_negatives(revision: str | None = None) -> list[Path]:
    """Download (or find in the Hugging Face cache) the Parquet shards ``data/train-*.parquet``; needs a network."""
    from huggingface_hub import snapshot_download

    root = Path(snapshot_download(HF_HARD_NEGATIVES, repo_type="dataset", revision=revision,
                                  allow_patterns=[HF_HARD_NEGATIVES_FILES]))
    files = sorted(root.glob(HF_HARD_NEGATIVES_FILES))
    if not files:
        raise RuntimeError(f"{HF_HARD_NEGATIVES} has no {HF_HARD_NEGATIVES_FILES} at revision {revision or 'main'}")
    return files


def build_msmarco(out: str | Path, negatives: int = 7, sampling: str = "top", scale: float = 1.0,
                  positive_rule: str = "keep", margin: float = 1.0, *, limit: int | None = None,
                  hard_negatives: Sequence[str | Path] | None = None, revision: str | None = None,
                  overwrite: bool = False, command: str | None = None) -> Path:
    """The paper's training data: MS MARCO train queries with the authors' hard negatives and teacher scores.

    Rows come from ``hard_negatives`` (local Parquet shards) or are downloaded from :data:`HF_HARD_NEGATIVES`;
    query and passage texts, and the qrels that name each query's positive, come from ``ir_datasets``
    (``msmarco-passage/train``, whose passages ``ir_datasets`` already repairs for the collection's mixed encoding).
    One example per row whose candidates include a judged positive: that positive, then ``negatives`` candidates
    chosen by ``sampling`` (:func:`select_candidates`). Teacher scores are the stored cross-encoder scores times
    ``scale`` (1, as the authors' KD configuration uses them); ``positive_rule="keep"`` leaves the positive's score
    as stored, ``"lift"`` applies :func:`lift_positive`. ``limit`` stops after that many rows.
    """
    import ir_datasets

    negatives = _count("negatives", negatives)
    sampling = _choice("sampling", sampling, SAMPLINGS)
    scale = _positive_number("scale", scale)
    positive_rule = _choice("positive rule", positive_rule, POSITIVE_RULES)
    lift_positive([1.0, 0.0], margin)
    if limit is not None:
        _count("limit", limit)
    out = Path(out)
    params = {"dataset": "msmarco-passage", "split": "train", "negatives": negatives, "sampling": sampling,
              "scale": scale, "positive_rule": positive_rule, "margin": margin if positive_rule == "lift" else None,
              "limit": limit, "source": HF_HARD_NEGATIVES, "revision": revision}
    if _reusable(out, params, overwrite):
        return out

    start = time.perf_counter()
    files = [Path(p) for p in hard_negatives] if hard_negatives else download_hard_negatives(revision)
    ds = ir_datasets.load(MSMARCO_IR_DATASET)
    queries = {q.query_id: q.text for q in ds.queries_iter()}
    qrels: dict[str, set[str]] = {}
    for qrel in ds.qrels_iter():
        if qrel.relevance > 0:
            qrels.setdefault(qrel.query_id, set()).add(qrel.doc_id)
    store = ds.docs_store()

    def doc_texts(ids: list[str]) -> dict[str, str]:
        return {doc_id: doc.text for doc_id, doc in store.get_many(ids).items()}

    rows = read_hard_negatives(files)
    if limit is not None:
        rows = (row for _, row in zip(range(limit), rows))
    counts: Counter = Counter()
    stats = _write_examples(out, msmarco_examples(rows, queries, qrels, doc_texts, negatives, sampling, scale,
                                                  positive_rule, margin, counts), total=limit)
    meta = {
        "format": FORMAT_VERSION, "params": params, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command or (f"train.data.build_msmarco({str(out)!r}, negatives={negatives}, "
                               f"sampling={sampling!r}, scale={scale}, positive_rule={positive_rule!r})"),
        "dataset": "msmarco-passage", "split": "train",
        "source": {"hard_negatives": HF_HARD_NEGATIVES, "revision": revision or "main",
                   "files": [str(f) for f in files], "texts_and_qrels": f"ir_datasets:{MSMARCO_IR_DATASET}"},
        "examples_per": "hub row (query) whose candidates include a judged positive; positive first",
        "negatives": {"source": "top-100 of opensearch-neural-sparse-encoding-doc-v1 (stored in the dataset)",
                      "per_example": negatives, "sampling": sampling, "excluded": "judged positives"},
        "teachers": [{"name": "cross-encoder/ms-marco-MiniLM-L12-v2 + castorini/monot5-3b-msmarco",
                      "kind": "stored re-ranking scores of the dataset"}],
        "normalization": "none (stored scores)", "scale": scale,
        "positive_rule": ({"rule": "lift", "margin": margin,
                           "definition": "score[0] = max(score[0], max(score[1:]) + margin) after scaling"}
                          if positive_rule == "lift" else {"rule": "keep"}),
        "counts": dict(counts), "stats": stats, "seconds": {"total": round(time.perf_counter() - start, 3)},
    }
    write_meta(out, meta)
    return out
