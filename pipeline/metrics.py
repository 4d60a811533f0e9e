"""Effectiveness through ir-measures, efficiency (FLOPS, Doc_Len) from the vectors actually indexed.

Measure names are ir-measures strings (``nDCG@10``, ``R@100``, ``RR@10``) everywhere: recipes, CSV headers, code.
FLOPS follows Paria et al. (2020) as used by the paper (Section 5.1.3): the expected number of multiplications of a
query-document dot product, ``FLOPS = Σ_j p_q(j) · p_d(j)``, with ``p_q(j)`` / ``p_d(j)`` the fraction of queries / documents whose
vector has token ``j`` non-zero. ``Doc_Len = Σ_j p_d(j)``, the mean number of non-zero tokens per document.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import ir_measures
import pandas as pd

from kit.errors import InputError
from kit.io import open_text
from kit.validate import EFFICIENCY, expected_measure

DEFAULT_MEASURES = ("nDCG@10", "R@100", "R@1000")


def parse_measures(names: Iterable[str]) -> list:
    """ir-measures objects for measure names; ValueError naming the bad one."""
    out = []
    for name in names:
        try:
            out.append(ir_measures.parse_measure(name))
        except (ValueError, NameError, SyntaxError) as exc:
            raise ValueError(f"unknown measure {name!r} ({exc}); use ir-measures names such as nDCG@10, R@100, RR@10") from None
    return out


def measure_option(text: str, option: str = "--measures") -> list[str]:
    """A command line's comma-separated measures, each in ir-measures' canonical spelling or FLOPS / Doc_Len
    (:func:`kit.validate.expected_measure`); InputError naming the option and the spelling to use."""
    names = [n.strip() for n in text.split(",")]
    try:
        if not all(names):
            raise ValueError(f"empty measure name in {text!r}")
        return list(dict.fromkeys(expected_measure(n) for n in names))
    except ValueError as exc:
        raise InputError(None, f"{option}: {exc}",
                         fix="comma-separated ir-measures names, e.g. nDCG@10,R@100") from None


def check_run_measures(run: Mapping[str, Mapping[str, float]], measures: Sequence[str], path: str | Path,
                       option: str = "--measures") -> None:
    """Each measure is one a run can give (ir-measures, not FLOPS) and needs no more documents than the run lists for
    a query: R@1000 of a 10-deep run is the recall of its 10 documents, reported as if 1000 had been retrieved."""
    efficiency = [m for m in measures if m in EFFICIENCY]
    if efficiency:
        raise InputError(path, f"{efficiency[0]} is measured from the indexed vectors, not from a run",
                         fix=f"leave it out of {option}")
    depth = max((len(docs) for docs in run.values()), default=0)
    for name, parsed in zip(measures, parse_measures(measures)):
        cutoff = parsed.params.get("cutoff")
        if cutoff is not None and cutoff > depth:
            raise InputError(path, f"{name} needs the top {cutoff} documents of each query, but the run lists at most "
                                   f"{depth}", fix=f"pass {option} with cutoffs <= {depth}, e.g. {option} nDCG@10")


def unknown_documents(run: Mapping[str, Mapping[str, float]], path: str | Path,
                      doc_ids: Iterable[str]) -> tuple[int, int, str, str] | None:
    """None when every document id of ``run`` (read from the TREC run at ``path``) is one of ``doc_ids`` (a
    corpus's ids, streamed once); else how many are not, with the line, query id and document id of the first."""
    left = {d for docs in run.values() for d in docs}
    for doc_id in doc_ids:
        left.discard(doc_id)
        if not left:
            return None
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if len(fields) == 6 and fields[2] in left:
                return len(left), lineno, fields[0], fields[2]
    raise RuntimeError(f"{path} changed while it was read")


def _read_run(run: str | Path | Mapping) -> dict[str, dict[str, float]]:
    """A run as ``{qid: {docid: score}}``; a non-finite score is an InputError (it would rank arbitrarily)."""
    if isinstance(run, Mapping):
        out = {q: dict(d) for q, d in run.items()}
    else:
        out = {}
        for sd in ir_measures.read_trec_run(str(run)):
            out.setdefault(sd.query_id, {})[sd.doc_id] = sd.score
    for qid, docs in out.items():
        for docid, score in docs.items():
            if not math.isfinite(score):
                raise InputError(run if not isinstance(run, Mapping) else None,
                                 f"score {score} of document {docid!r} for query {qid!r} is not a finite number",
                                 fix="a run's scores must be finite numbers")
    return out


def evaluate(run: str | Path | Mapping, qrels: Mapping[str, Mapping[str, int]],
             measures: Iterable[str] = DEFAULT_MEASURES) -> tuple[dict[str, float], pd.DataFrame]:
    """Score a run: ``(aggregate {measure name: value}, per-query DataFrame[query_id, measure, value])``.

    Aggregates are means over the judged queries that have at least one relevant document; a judged query missing
    from the run counts as 0 (unlike trec_eval without ``-c``), so a run cannot look better by dropping queries.
    """
    names = list(dict.fromkeys(measures))
    parsed = parse_measures(names)
    run_d = _read_run(run)
    judged = {q: dict(d) for q, d in qrels.items() if any(r > 0 for r in d.values())}
    if not judged:
        raise InputError(None, "the relevance judgments mark no document relevant for any query: nothing to score",
                         fix="check the qrels file (relevance > 0 marks a relevant document)")
    rows = [(m.query_id, str(m.measure), float(m.value)) for m in ir_measures.iter_calc(parsed, judged, run_d)
            if m.query_id in judged]
    # a judged query the run retrieved nothing for scores 0: added here only where ir-measures gave no value
    scored = {(q, m) for q, m, _ in rows}
    rows += [(q, str(m), 0.0) for q in judged for m in parsed if (q, str(m)) not in scored]
    per_query = pd.DataFrame(rows, columns=["query_id", "measure", "value"])
    if per_query.duplicated(["query_id", "measure"]).any() or len(per_query) != len(judged) * len(parsed):
        raise RuntimeError("per-query values are not one per judged query and measure")  # a kit bug, never input
    if not per_query["value"].map(math.isfinite).all():
        raise RuntimeError("ir-measures returned a non-finite per-query value")
    agg = per_query.groupby("measure")["value"].mean()
    name_of = {str(m): n for m, n in zip(parsed, names)}
    per_query["measure"] = per_query["measure"].map(name_of)
    return {name_of[str(m)]: float(agg.get(str(m), 0.0)) for m in parsed}, per_query


def token_document_frequencies(vectors: Iterable[Mapping[str, float]]) -> tuple[Counter, int]:
    """(number of vectors in which each token is non-zero, number of vectors)."""
    df: Counter = Counter()
    n = 0
    for vec in vectors:
        n += 1
        df.update(t for t, w in vec.items() if w != 0)
    return df, n


def sparsity_stats(doc_vectors: Iterable[Mapping[str, float]] | tuple[Mapping[str, int], int],
                   query_vectors: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """``{"FLOPS", "Doc_Len", "Query_Len"}`` for the given (quantized, as indexed) doc and query vectors.

    ``doc_vectors`` may also be their :func:`token_document_frequencies` ``(df, n)``, computed once per encoding.
    """
    df_d, n_d = doc_vectors if isinstance(doc_vectors, tuple) else token_document_frequencies(doc_vectors)
    df_q, n_q = token_document_frequencies(query_vectors)
    if n_d == 0 or n_q == 0:
        raise ValueError("sparsity_stats needs at least one document and one query vector")
    flops = sum((c / n_q) * (df_d.get(t, 0) / n_d) for t, c in df_q.items())
    return {"FLOPS": flops, "Doc_Len": sum(df_d.values()) / n_d, "Query_Len": sum(df_q.values()) / n_q}


def query_flops(doc_frequencies: tuple[Mapping[str, int], int],
                query_vectors: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each query's expected multiplications against one document, ``Σ_{j: q_j ≠ 0} p_d(j)``: their mean over the
    queries is :func:`sparsity_stats`' FLOPS, so FLOPS can be compared query by query (paired tests)."""
    df_d, n_d = doc_frequencies
    if n_d == 0:
        raise ValueError("query_flops needs at least one document")
    return {qid: sum(df_d.get(t, 0) for t, w in vec.items() if w != 0) / n_d for qid, vec in query_vectors.items()}


def document_lengths(vectors: Iterable[tuple[str, Mapping[str, float]]]) -> dict[str, int]:
    """Each document's number of non-zero tokens (their mean is Doc_Len), from ``(doc id, vector)`` pairs."""
    return {doc_id: sum(1 for w in vec.values() if w != 0) for doc_id, vec in vectors}
