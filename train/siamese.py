"""A Siamese student (``query_encoder: splade``): the document model encodes the queries too.

The paper's student is inference-free: a query is its tokens weighted by IDF (:class:`train.model.BowIdfQueries`). To
measure what that costs, the same recipe can train the same document model as a Siamese SPLADE instead: each query
goes through the masked LM and is max-pooled with the recipe's activation, exactly as a document is, and the ranking
loss sees those query vectors. Only the documents are regularized (FLOPS and the ℓ0 mask act on the documents, as in
the inference-free recipe), so the two students differ in their query side alone. At evaluation the query side is
:class:`encode.query.SpladeQueryEncoder` over the trained model (a study condition's ``query: {encoder: splade}``).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from train.losses.variants import variant_vectors
from train.model import SpladeDocModel, WithQuerySide

#: Query tokens the Siamese query side reads, special tokens included (SPLADE's usual query length).
QUERY_MAX_LENGTH = 64


class SiameseQueries:
    """The query side of a Siamese batch: each query's token ids (special tokens kept), padded per batch.
    ``idf_queries`` (the recipe's :class:`~train.model.BowIdfQueries`) is kept for the exported ``idf.json``."""

    def __init__(self, tokenizer, idf_queries=None, max_length: int = QUERY_MAX_LENGTH) -> None:
        self.tokenizer = tokenizer
        self.idf_queries = idf_queries
        self.max_length = max_length

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length, verbose=False)["input_ids"]

    def batch(self, token_ids: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """What :class:`train.batches.DistillCollator` adds: ``query_input_ids`` and ``query_attention_mask``."""
        padded = self.tokenizer.pad({"input_ids": [list(ids) for ids in token_ids]}, padding=True, return_tensors="pt")
        return {"query_input_ids": padded["input_ids"], "query_attention_mask": padded["attention_mask"]}


class SiameseModel(WithQuerySide):
    """One :class:`~train.model.SpladeDocModel` for documents and queries; ``forward`` returns ``(doc logits,
    query vectors, None)``, the query vectors being the ranking vectors of ``variant``."""

    def __init__(self, doc: SpladeDocModel, variant: str) -> None:
        super().__init__(doc)
        self.variant = variant

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None,
                query_input_ids: Tensor | None = None, query_attention_mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None, None]:
        logits = self.doc(input_ids, attention_mask, token_type_ids)
        if query_input_ids is None:
            return logits, None, None
        queries, _ = variant_vectors(self.doc(query_input_ids, query_attention_mask).float(), self.variant)
        return logits, queries, None
