"""Query encoding latency: inference-free BoW×IDF vs Siamese SPLADE-tiny, on the 300 SciFact test queries, one run.

    python -m bench.query_encoding

Each query is encoded alone (as a search service would), timed individually; the table gives the median and p95 in µs.
"""

from __future__ import annotations

import statistics
import time

import torch

from bench.common import report
from encode.doc_encoder import SpladeDocEncoder
from encode.query import BowIdfQueryEncoder, SpladeQueryEncoder, compute_idf
from kit.data import load_dataset


def per_query_us(encode, queries: list[str], repeat: int = 3) -> list[float]:
    for q in queries[:10]:
        encode(q)  # warm-up
    times = []
    for _ in range(repeat):
        for q in queries:
            start = time.perf_counter()
            encode(q)
            times.append((time.perf_counter() - start) * 1e6)
    return times


def main(argv=None) -> int:
    ds = load_dataset("scifact")
    queries = list(ds.queries.values())
    splade = SpladeDocEncoder("splade-tiny", activation="relu", max_length=512, device="cpu")
    idf = compute_idf((d.text for d in ds.docs()), splade.tokenizer)
    bow = BowIdfQueryEncoder(splade.tokenizer, idf)
    siamese = SpladeQueryEncoder(splade)

    t_bow = per_query_us(bow.encode, queries)
    t_sia = per_query_us(siamese.encode, queries, repeat=1)
    med_bow, med_sia = statistics.median(t_bow), statistics.median(t_sia)
    p95 = lambda t: statistics.quantiles(t, n=20)[-1]
    rows = [
        {"query encoder": "BoW×IDF (inference-free)", "median µs": med_bow, "p95 µs": p95(t_bow), "speed-up": med_sia / med_bow},
        {"query encoder": "SPLADE-tiny Siamese", "median µs": med_sia, "p95 µs": p95(t_sia), "speed-up": 1.0},
    ]
    targets = [
        {"target": "BoW×IDF median <= 50 µs/query", "measured": f"{med_bow:.1f} µs", "met": med_bow <= 50},
        {"target": "BoW×IDF >= 100x faster than Siamese SPLADE-tiny", "measured": f"{med_sia / med_bow:.0f}x",
         "met": med_sia / med_bow >= 100},
    ]
    print(f"{len(queries)} SciFact test queries, torch threads {torch.get_num_threads()}")
    report("query_encoding", rows, targets, queries=len(queries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
