"""Training batches: each query with its positive and sampled negatives, their teacher scores, and the IDF of its
BoW query vector.

- :class:`DistillDataset` / :class:`DistillCollator`: each query with its positive and ``D - 1`` negatives sampled
  from its candidates; the sampling depends only on (seed, epoch, example), so a resumed run sees the same batches;
- :class:`EpochSampler`: the per-epoch permutation that also tells the dataset its epoch;
- :func:`training_idf` / :func:`resolve_idf`: the IDF of the queries' BoW vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from encode.query import compute_idf, load_idf_json
from train.recipe import TrainRecipe


class DistillDataset(torch.utils.data.Dataset):
    """Training examples as ``{query_token_ids, docs, teacher_scores}`` with ``docs_per_query`` documents each.

    Document 0 is the positive; the ``D - 1`` negatives are drawn without replacement from the example's candidates
    by a generator seeded with ``(seed, epoch, index)`` — no global random state is touched, so an interrupted and
    resumed run draws exactly what an uninterrupted one does. With exactly ``D`` candidates all of them are used.

    Args:
        examples: :class:`train.examples.TrainExample` s (anything with ``docs`` and ``teacher_scores``), each with at
            least ``docs_per_query`` documents.
        query_token_ids: each example's query as :meth:`BowIdfQueries.token_ids` gives it.
        teacher_scale: factor on every teacher score (the recipe's ``teacher_scale``): KL distillation matches
            softmax distributions, so the scale sets how peaked the target is relative to the student's dot products.
    """

    def __init__(self, examples: Sequence, query_token_ids: Sequence[Sequence[int]], docs_per_query: int,
                 seed: int = 0, teacher_scale: float = 1.0) -> None:
        if len(examples) != len(query_token_ids):
            raise ValueError(f"{len(examples)} examples but {len(query_token_ids)} tokenized queries")
        if docs_per_query < 2:
            raise ValueError(f"docs_per_query must be >= 2 (a positive and a negative), got {docs_per_query}")
        short = [ex for ex in examples if len(ex.docs) < docs_per_query]
        if short:
            raise ValueError(f"{len(short)} example(s) have fewer than docs_per_query={docs_per_query} documents, "
                             f"e.g. query {short[0].query_id!r} with {len(short[0].docs)}")
        self.examples = list(examples)
        self.query_token_ids = [list(ids) for ids in query_token_ids]
        self.docs_per_query = docs_per_query
        self.seed = seed
        self.teacher_scale = float(teacher_scale)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.examples)

    def doc_indices(self, index: int) -> list[int]:
        """Candidate positions used for example ``index`` in the current epoch: ``[0, sorted negatives...]``."""
        available = len(self.examples[index].docs) - 1
        wanted = self.docs_per_query - 1
        if available == wanted:
            return list(range(self.docs_per_query))
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return [0, *sorted(int(i) + 1 for i in rng.choice(available, size=wanted, replace=False))]

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.examples[index]
        chosen = self.doc_indices(index)
        return {"query_token_ids": self.query_token_ids[index],
                "docs": [example.docs[i] for i in chosen],
                "teacher_scores": [self.teacher_scale * float(example.teacher_scores[i]) for i in chosen]}


class EpochSampler(torch.utils.data.Sampler[int]):
    """A random permutation seeded with ``seed + epoch`` that also tells the dataset its epoch.

    ``Trainer`` (through accelerate) calls :meth:`set_epoch` before every epoch, resumed ones included, and every
    process draws the same permutation, which accelerate then splits into per-process batches.
    """

    def __init__(self, dataset: DistillDataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(len(self.dataset), generator=generator).tolist())


@dataclass
class DistillCollator:
    """Batch of ``Q`` examples -> document tokens ``[Q*D, L]``, query vectors ``[Q, V]``, teacher scores ``[Q, D]``.

    Documents are truncated to ``max_length`` tokens and padded to the longest in the batch; query ``q``'s documents
    are rows ``q*D .. q*D + D - 1``, positive first (the layout :mod:`train.losses` expects).
    """

    tokenizer: Any
    queries: Any  # BowIdfQueries (adds query_vectors) or train.lilsr.LiLsrQueries (adds query_counts)
    max_length: int

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        docs = [doc for feature in features for doc in feature["docs"]]
        batch = dict(self.tokenizer(docs, max_length=self.max_length, truncation=True, padding=True,
                                    return_tensors="pt"))
        batch.update(self.queries.batch([feature["query_token_ids"] for feature in features]))
        batch["teacher_scores"] = torch.tensor([feature["teacher_scores"] for feature in features],
                                               dtype=torch.float32)
        return batch


def training_idf(examples: Sequence, tokenizer) -> dict[str, float]:
    """IDF (:func:`encode.query.compute_idf`) of the distinct documents of a training file, by document id."""
    texts: dict[str, str] = {}
    for example in examples:
        for doc_id, text in zip(example.doc_ids, example.docs):
            texts.setdefault(doc_id, text)
    return compute_idf(texts.values(), tokenizer)


def resolve_idf(recipe: TrainRecipe, examples: Sequence, tokenizer) -> dict[str, float]:
    """The recipe's IDF table: computed from the training documents (``idf: train``) or read from an idf.json."""
    if recipe.idf == "train":
        return training_idf(examples, tokenizer)
    return load_idf_json(recipe.idf)


