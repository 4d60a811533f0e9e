"""The query encoders by the names recipes use: the one place a name becomes an encoder.

Table recipes (``query: {encoder: ...}``), the pipeline (:class:`pipeline.dataset.DatasetRun`), the Li-LSR runner and the
training recipes (``query_encoder:``) all read :data:`QUERY_ENCODERS` and :func:`query_encoder`.
"""

from __future__ import annotations

from typing import Mapping

from encode.lookup import LookupQueryEncoder
from encode.query import BowIdfQueryEncoder, SpladeQueryEncoder

QUERY_ENCODERS: Mapping[str, str] = {
    "bow-idf": "each distinct token of the query weighs its IDF: inference-free (the paper, Section 3)",
    "lilsr": "each token weighs its learned static weight, repeated tokens summed: inference-free (Li-LSR)",
    "splade": "the document encoder applied to the query: Siamese SPLADE, query-side inference",
}
TRAINABLE_QUERY_ENCODERS = ("bow-idf", "lilsr", "splade")
"""The query sides ``python -m train`` learns with (``splade``: the Siamese student of :mod:`train.siamese`)."""


def query_encoder(kind: str, tokenizer=None, *, idf: Mapping[str, float] | None = None, missing_weight: float = 0.0,
                  table: str | None = None, doc_encoder=None, max_length: int | None = None):
    """The encoder called ``kind`` (:data:`QUERY_ENCODERS`).

    ``bow-idf`` needs ``tokenizer`` and ``idf`` (``missing_weight`` for a token the table lacks); ``lilsr`` needs
    ``tokenizer`` and ``table`` (a lookup table file or trained model folder); ``splade`` needs ``doc_encoder``. The
    inference-free ones truncate a query at ``max_length`` tokens, special tokens counted, then drop them.
    """
    if kind == "bow-idf":
        return BowIdfQueryEncoder(tokenizer, idf, default=missing_weight, max_length=max_length)
    if kind == "lilsr":
        return LookupQueryEncoder.from_path(table, tokenizer, max_length=max_length)
    if kind == "splade":
        return SpladeQueryEncoder(doc_encoder)
    raise ValueError(f"unknown query encoder {kind!r}; choose one of {', '.join(QUERY_ENCODERS)}")
