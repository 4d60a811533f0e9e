"""Offline distillation data (no network): BEIR SciFact's train split, BM25 hard negatives from the kit's Anserini
flat index and the dense + sparse teacher ensemble of :mod:`train.teachers` (:func:`mine_offline`).

:func:`label_examples` is the part that needs no judgments of its own: any queries with one positive each (SciFact's
judged pairs, or :mod:`train.adapt`'s pseudo-queries and the documents they were cut from), BM25 candidates and the
teachers' labels.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from index.anserini import build_flat_index, flat_index_inputs, search_bm25
from kit.data import load_dataset
from kit.errors import InputError
from kit.fingerprint import model_fingerprint
from kit.hub import local_model_dir
from kit.manifest import Artifact
from kit.paths import dataset_slug, work_dir
from train.examples import FORMAT_VERSION, TrainExample, _reusable, _write_examples, write_meta
from train.teachers import (_TEACHER_MODELS, _TEACHER_NAMES, DEFAULT_TEACHERS, MINMAX_EPS, OFFLINE_MARGIN,
                            OFFLINE_SCALE, POSITIVE_RULES, TEACHERS, _choice, _count, _final_scores, _positive_number,
                            dense_teacher_scores, ensemble_scores, entropy_by_scale, lift_positive, positive_at_top,
                            sparse_teacher_scores)


def default_offline_path(dataset: str = "scifact", split: str = "train", negatives: int = 7,
                         teachers: Sequence[str] = DEFAULT_TEACHERS) -> Path:
    """``work_dir()/train/<dataset>-<split>.bm25-neg<k>.<teacher>+<teacher>....jsonl``."""
    return work_dir() / "train" / f"{dataset_slug(dataset)}-{split}.bm25-neg{negatives}.{'+'.join(teachers)}.jsonl"


def offline_options(path: str | Path) -> dict | None:
    """The :func:`mine_offline` options whose default output is ``path`` (SciFact), or None for any other path."""
    import re

    path = Path(path)
    match = re.fullmatch(r"scifact-(\w+)\.bm25-neg(\d+)\.([\w+-]+)\.jsonl", path.name)
    if not match or path.parent.resolve() != (work_dir() / "train").resolve():
        return None
    teachers = tuple(match.group(3).split("+"))
    if not set(teachers) <= set(TEACHERS):
        return None
    return {"dataset": "scifact", "split": match.group(1), "negatives": int(match.group(2)), "teachers": teachers}


def default_flat_index(dataset: str, corpus_fingerprint: str):
    """The BM25 index the table runner uses too: the :class:`kit.manifest.Artifact`
    ``work_dir()/<dataset>/indexes/flat.<key of the corpus>``."""
    return Artifact.named(work_dir() / dataset_slug(dataset) / "indexes", "flat",
                          flat_index_inputs(corpus_fingerprint), is_dir=True)


def read_run_scores(run_path: str | Path) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}`` from a TREC run."""
    scores: dict[str, dict[str, float]] = {}
    with open(run_path, encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) == 6:
                scores.setdefault(fields[0], {})[fields[2]] = float(fields[4])
    return scores


def read_ranking(run_path: str | Path) -> dict[str, list[str]]:
    """``{qid: [docid, ...]}`` from a TREC run, best first (by score, ties in file order)."""
    hits: dict[str, list[tuple[float, int, str]]] = {}
    with open(run_path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise InputError(run_path, f"expected 6 columns, found {len(fields)}", lineno,
                                 fix="a TREC run line is 'qid Q0 docid rank score tag'")
            hits.setdefault(fields[0], []).append((-float(fields[4]), lineno, fields[2]))
    return {qid: [doc for *_, doc in sorted(rows)] for qid, rows in hits.items()}


def candidate_groups(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
                     ranking: Mapping[str, Sequence[str]], negatives: int) -> tuple[list[tuple[str, list[str]]], dict]:
    """One ``(qid, [positive, neg, ...])`` per judged (query, positive) pair, negatives the best-ranked non-positives.

    A negative is any retrieved document the query does not judge relevant (relevance > 0); every positive of the
    query is excluded, not only the example's own. Pairs whose query retrieved no negative are left out and counted.
    """
    groups: list[tuple[str, list[str]]] = []
    counts = Counter()
    for qid in queries:
        positives = [doc for doc, rel in qrels.get(qid, {}).items() if rel > 0]
        if not positives:
            continue
        negs = [doc for doc in ranking.get(qid, ()) if qrels[qid].get(doc, 0) <= 0][:negatives]
        if not negs:
            counts["pairs_without_negatives"] += len(positives)
            continue
        counts["queries_with_fewer_negatives"] += len(negs) < negatives
        groups.extend((qid, [pos, *negs]) for pos in positives)
    return groups, dict(counts)


def _doc_texts(docs: Iterable[tuple[str, str]], wanted: set[str], source: str) -> dict[str, str]:
    texts = {doc_id: text for doc_id, text in docs if doc_id in wanted}
    missing = sorted(wanted - texts.keys())
    if missing:
        raise InputError(source, f"{len(missing)} judged or retrieved documents are not in the corpus "
                                 f"(e.g. {missing[0]!r})",
                         fix="the qrels and the corpus must come from the same dataset")
    return texts


def mine_offline(dataset: str = "scifact", split: str = "train", negatives: int = 7, depth: int = 100,
                 out: str | Path | None = None, scale: float = OFFLINE_SCALE, positive_rule: str = "lift",
                 margin: float = OFFLINE_MARGIN, *, device: str | None = None, batch_size: int = 32, threads: int = 2,
                 index_dir: str | Path | None = None, overwrite: bool = False, command: str | None = None,
                 teachers: Sequence[str] = DEFAULT_TEACHERS) -> Path:
    """Mine distillation data offline: BM25 hard negatives, dense + sparse teacher ensemble, positive first.

    1. ``kit.data.load_dataset(dataset, split)`` (SciFact train: 809 queries, 919 judged pairs);
    2. BM25 (Anserini defaults k1=0.9, b=0.4) over the flat index ``default_flat_index(dataset)`` -- the one the table
       runner uses; built if missing, reused otherwise -- retrieving ``depth`` documents per query;
    3. one example per judged (query, positive) pair, as the authors' SciFact demo does
       (``demo_train_data.py`` of opensearch-sparse-model-tuning-sample): ``[positive, k best-ranked non-relevant]``;
       a query with two positives gives two examples with the same negatives, so every judgment is used;
    4. teacher scores: :func:`ensemble_scores` of the ``teachers`` (:data:`TEACHERS`): all-MiniLM-L6-v2 cosine and
       SPLADE-tiny siamese dot products by default, ``bm25`` adds the mining run's own BM25 scores (a candidate
       BM25 did not retrieve, i.e. a judged positive below ``depth``, scores 0);
    5. ``positive_rule="lift"`` (default) applies :func:`lift_positive` with ``margin``; ``"keep"`` keeps the
       ensemble's score. On SciFact train (7 negatives) the ensemble ranks the judged positive first in only 57% of
       the examples (MiniLM alone 55%, SPLADE-tiny 54%; the meta records the rates), so keeping its scores would
       teach the student to put a non-relevant document above the judged one in 43% of them: the default trusts the
       judgments over two small teachers and keeps the teachers' ordering of the negatives.

    ``scale`` (default 5) puts the teacher scores in the student's range (BoW x IDF dot products, roughly 0-30 for
    the tiny model) and was chosen by the mean softmax entropy it leaves over 8 candidates (recorded for several
    scales in the meta as ``entropy_by_scale``; lifted, margin 1): 1.89 nats at scale 1 (nearly uniform; the
    maximum is ln 8 = 2.08), 1.11 at 5, 0.59 at 10 and 0.33 at Geng et al.'s 30 (nearly one-hot).
    Returns the output path; an existing complete output made with the same options is reused.
    """
    opts = MiningOptions(negatives, depth, scale, positive_rule, margin, tuple(teachers))
    out = Path(out) if out is not None else default_offline_path(dataset, split, opts.negatives, opts.teachers)
    ds = load_dataset(dataset, split)
    index = default_flat_index(dataset, ds.corpus_fingerprint()) if index_dir is None else None
    params = {"dataset": dataset, "split": split, **opts.params(),
              # what the examples are made of: a changed corpus, split or teacher model is never served stale
              "fingerprints": {"corpus": ds.corpus_fingerprint(), "queries": ds.queries_fingerprint(),
                               "qrels": ds.qrels_fingerprint(), "teachers": teacher_fingerprints(opts.teachers)}}
    if _reusable(out, params, overwrite):
        return out
    pairs = sum(1 for qid in ds.queries for rel in ds.qrels.get(qid, {}).values() if rel > 0)
    return label_examples(
        ds, out, opts, params, index=index, index_dir=index_dir, device=device, batch_size=batch_size,
        threads=threads, command=command or (f"train.data.mine_offline(dataset={dataset!r}, split={split!r}, "
                                             f"negatives={opts.negatives}, depth={opts.depth}, scale={opts.scale}, "
                                             f"positive_rule={opts.positive_rule!r}, margin={margin})"),
        describe={"split": split,
                  "examples_per": "judged (query, positive) pair; positive first, then the best-ranked non-relevant "
                                  "documents",
                  "counts": {"queries": len(ds.queries), "judged_pairs": pairs}})


@dataclass(frozen=True)
class MiningOptions:
    """How candidates are mined and labelled (validated on construction; ValueError names the bad option):
    ``negatives`` per example from BM25's top ``depth``, the ``teachers`` ensemble times ``scale``, the positive
    ``lift``-ed by ``margin`` or its score kept (``positive_rule``)."""

    negatives: int = 7
    depth: int = 100
    scale: float = OFFLINE_SCALE
    positive_rule: str = "lift"
    margin: float = OFFLINE_MARGIN
    teachers: tuple[str, ...] = DEFAULT_TEACHERS

    def __post_init__(self) -> None:
        _count("negatives", self.negatives)
        _count("depth", self.depth)
        if self.depth < self.negatives:
            raise ValueError(f"depth ({self.depth}) must be at least negatives ({self.negatives})")
        object.__setattr__(self, "scale", _positive_number("scale", self.scale))
        _choice("positive rule", self.positive_rule, POSITIVE_RULES)
        lift_positive([1.0, 0.0], self.margin)  # validates the margin
        teachers = tuple(self.teachers)
        if not teachers or len(set(teachers)) != len(teachers) or not set(teachers) <= set(TEACHERS):
            raise ValueError(f"teachers must be distinct names among {', '.join(TEACHERS)}, got {list(teachers)}")
        object.__setattr__(self, "teachers", teachers)

    def params(self) -> dict:
        """The options as a training file's sidecar records them (its ``params``)."""
        return {"negatives": self.negatives, "depth": self.depth, "scale": self.scale,
                "positive_rule": self.positive_rule, "margin": self.margin if self.positive_rule == "lift" else None,
                "teachers": [_TEACHER_NAMES[t] for t in self.teachers]}


def teacher_fingerprints(teachers: Sequence[str]) -> list[str]:
    """The model files of each neural teacher (BM25 has none): a changed teacher model is a new training file."""
    return [model_fingerprint(local_model_dir(_TEACHER_MODELS[t])) for t in teachers if t in _TEACHER_MODELS]


def label_examples(ds, out: Path, opts: MiningOptions, params: dict, *, index: Artifact | None = None,
                   index_dir: str | Path | None = None, device: str | None = None, batch_size: int = 32,
                   threads: int = 2, command: str, describe: Mapping) -> Path:
    """Write ``out`` and its sidecar: one example per judged (query, positive) pair of ``ds`` (its ``queries`` and
    ``qrels``), the positive first, then the best-ranked non-relevant documents of a BM25 search of ``ds``'s corpus,
    scored by the ``opts.teachers`` ensemble (steps 2-5 of :func:`mine_offline`).

    The BM25 index is ``index`` (an artifact, built when not reusable) or the folder ``index_dir``. ``params`` is what
    the sidecar records (what :func:`~train.examples._reusable` compares); ``describe`` adds ``split``,
    ``examples_per`` and ``counts`` to it. Returns ``out``.
    """
    index_dir = Path(index_dir) if index is None else index.path
    seconds: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    rebuild = index is not None and not index.reusable()  # the table runner's index, reused only once verified
    groups, counts, bm25_scores = _bm25_groups(ds, index_dir, opts.depth, opts.negatives, threads, lap, rebuild)
    if rebuild:
        index.complete()
    if not groups:
        raise InputError(ds.source or ds.name, f"BM25 retrieved no document besides the positives for any of the "
                                               f"{len(ds.queries)} queries, so no example has a negative",
                         fix="a corpus needs more than one document that shares words with the queries")
    wanted = {d for _, ids in groups for d in ids}
    texts = _doc_texts(ds.docs(), wanted, ds.source or ds.name)
    lap("read texts")
    scored: dict[str, list[np.ndarray]] = {}
    infos = []
    for teacher in opts.teachers:
        if teacher == "bm25":
            scored[teacher] = [np.array([bm25_scores.get(qid, {}).get(d, 0.0) for d in ids]) for qid, ids in groups]
            infos.append({"name": "bm25", "kind": "BM25 of the mining run (Anserini, k1 0.9, b 0.4); a candidate it "
                                                  f"did not retrieve in its top {opts.depth} scores 0"})
        else:
            score = dense_teacher_scores if teacher == "minilm" else sparse_teacher_scores
            scored[teacher], info = score(groups, ds.queries, texts, model=_TEACHER_MODELS[teacher], device=device,
                                          batch_size=batch_size)
            infos.append(info)
        lap(f"teacher {teacher}")

    rule, margin = opts.positive_rule, opts.margin
    normalized = [ensemble_scores(per_teacher, 1.0) for per_teacher in zip(*(scored[t] for t in opts.teachers))]
    examples = (TrainExample(qid, ds.queries[qid], ids, [texts[d] for d in ids],
                             [round(float(x), 6) for x in _final_scores(n * opts.scale, rule, margin)])
                for (qid, ids), n in zip(groups, normalized))
    stats = _write_examples(out, examples, total=len(groups))
    lap("write")
    meta = {
        "format": FORMAT_VERSION, "params": params, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command, "dataset": ds.name, "split": describe.get("split"), "source": ds.source,
        "examples_per": describe.get("examples_per"),
        "negatives": {"source": "bm25", "index": str(index_dir), "k1": 0.9, "b": 0.4, "depth": opts.depth,
                      "per_example": opts.negatives, "excluded": "every document the query judges relevant"},
        "teachers": infos,
        "normalization": "per example, each teacher min-max over the example's candidates "
                         f"((s - min) / (max - min + {MINMAX_EPS:g})), then the mean over teachers (Geng et al., 2024)",
        "scale": opts.scale,
        "positive_rule": ({"rule": "lift", "margin": margin,
                           "definition": "score[0] = max(score[0], max(score[1:]) + margin) after scaling"}
                          if rule == "lift" else {"rule": "keep"}),
        "counts": {**describe.get("counts", {}), **counts},
        "stats": {**stats,
                  "ensemble_positive_at_top": positive_at_top(normalized),
                  **{f"{t}_positive_at_top": positive_at_top(scored[t]) for t in opts.teachers},
                  "entropy_by_scale": entropy_by_scale(normalized, (1, 2, 5, 10, 20, 30), rule, margin)},
        "seconds": {**seconds, "total": round(time.perf_counter() - start, 3)},
    }
    write_meta(out, meta)
    return out


def _bm25_groups(ds, index_dir: Path, depth: int, negatives: int, threads: int, lap: Callable[[str], None],
                 overwrite: bool = False) -> tuple[list[tuple[str, list[str]]], dict, dict]:
    """Build (``overwrite``: anew) or reuse the flat index, run BM25 to ``depth`` and form the candidate groups
    (with the BM25 scores)."""
    info = build_flat_index(ds.docs(), index_dir, threads=threads, inputs=flat_index_inputs(ds.corpus_fingerprint()),
                            overwrite=overwrite)
    lap("index (reused)" if info.get("reused") else "index")
    with tempfile.TemporaryDirectory(prefix="kit-mine.") as tmp:
        search_bm25(index_dir, ds.queries, Path(tmp) / "bm25.trec", hits=depth, threads=threads, remove_query=False)
        ranking = read_ranking(Path(tmp) / "bm25.trec")
        scores = read_run_scores(Path(tmp) / "bm25.trec")
    lap("bm25 search")
    return (*candidate_groups(ds.queries, ds.qrels, ranking, negatives), scores)
