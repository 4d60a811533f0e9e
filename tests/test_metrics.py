"""Hand-computed FLOPS / Doc_Len and ir-measures scoring."""

import math

import pytest

from pipeline.metrics import (document_lengths, evaluate, parse_measures, query_flops, sparsity_stats,
                          token_document_frequencies)


def test_sparsity_stats_hand_computed():
    docs = [{"a": 3, "b": 1}, {"a": 2}, {"c": 5, "b": 0}]  # explicit zero is not a non-zero token
    queries = [{"a": 1}, {"a": 2, "c": 1}]
    # p_d: a 2/3, b 1/3, c 1/3 ; p_q: a 2/2, c 1/2
    stats = sparsity_stats(docs, queries)
    assert stats["FLOPS"] == pytest.approx(1.0 * 2 / 3 + 0.5 * 1 / 3)
    assert stats["Doc_Len"] == pytest.approx(4 / 3)
    assert stats["Query_Len"] == pytest.approx(1.5)


def test_per_item_flops_and_doc_len_average_to_the_corpus_numbers():
    docs = {"d1": {"a": 3, "b": 1}, "d2": {"a": 2}, "d3": {"c": 5, "b": 0}}
    queries = {"q1": {"a": 1}, "q2": {"a": 2, "c": 1}, "q3": {"z": 4, "a": 0}}
    # p_d: a 2/3, b 1/3, c 1/3: q1 = 2/3, q2 = 2/3 + 1/3, q3 = 0 (z in no document; an explicit zero is no token)
    flops = query_flops(token_document_frequencies(docs.values()), queries)
    assert flops == pytest.approx({"q1": 2 / 3, "q2": 1.0, "q3": 0.0})
    lengths = document_lengths(docs.items())
    assert lengths == {"d1": 2, "d2": 1, "d3": 1}
    stats = sparsity_stats(docs.values(), queries.values())
    assert sum(flops.values()) / len(flops) == pytest.approx(stats["FLOPS"])
    assert sum(lengths.values()) / len(lengths) == pytest.approx(stats["Doc_Len"])


def test_sparsity_stats_needs_vectors():
    with pytest.raises(ValueError):
        sparsity_stats([], [{"a": 1}])


def test_evaluate_hand_computed_ndcg_and_missing_query_counts_zero():
    qrels = {"q1": {"d1": 1, "d2": 1}, "q2": {"d9": 1}, "q3": {"dx": 0}}  # q3 has no relevant doc: not scored
    run = {"q1": {"d2": 3.0, "d5": 2.0, "d1": 1.0}}  # q2 missing from the run -> 0
    scores, per_query = evaluate(run, qrels, ["nDCG@10", "R@100"])
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert scores["nDCG@10"] == pytest.approx((dcg / idcg + 0.0) / 2)
    assert scores["R@100"] == pytest.approx(0.5)
    assert set(per_query["query_id"]) == {"q1", "q2"}
    assert set(per_query["measure"]) == {"nDCG@10", "R@100"}


def test_unknown_measure_is_a_value_error():
    with pytest.raises(ValueError, match="unknown measure"):
        parse_measures(["nDCG@@10"])


def test_atomic_gz_output_is_byte_reproducible(tmp_path):
    import gzip

    from kit.io import atomic_write

    blobs = []
    for _ in range(2):
        with atomic_write(tmp_path / "t.csv.gz") as fh:
            fh.write("a,b\n1,2\n")
        blobs.append((tmp_path / "t.csv.gz").read_bytes())
    assert blobs[0] == blobs[1]
    assert gzip.decompress(blobs[0]) == b"a,b\n1,2\n"
    assert not list(tmp_path.glob(".*.tmp"))
