"""The student of the paper's training: an IDF-SPLADE-doc document encoder and inference-free BoW × IDF queries.

Documents go through a masked-language model and are max-pooled over their tokens (paper eq. 1). The trainable module
here, :class:`SpladeDocModel`, returns the *raw* max-pooled MLM logits ``x`` [N, V]; the loss's activation variant
(:mod:`train.losses.variants`) turns them into the vectors it ranks with and regularises. The pooled logits come from
:class:`encode.sparse_head.MaxPooledProjection`, which never builds the ``N × L × V`` logit tensor the Hugging Face
head would (1 GB for 32 documents of 256 tokens) and back-propagates only through each entry's arg-max token.

Queries are not encoded by the model at all (Section 3, "inference-free"): a query is the set of its non-special
tokens, each weighted by its IDF — :class:`BowIdfQueries`, the training-time twin of
:class:`encode.query.BowIdfQueryEncoder`. The student score is the dot product of query and document vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from encode.sparse_head import max_pooled_projection, mlm_hidden, output_layer
from kit.models import resolve_model


class SpladeDocModel(nn.Module):
    """A masked-LM document encoder returning raw max-pooled logits ``[N, V]`` (no activation, no IDF).

    Args:
        mlm: a Hugging Face masked-LM (``AutoModelForMaskedLM``: BERT, DistilBERT, ...).
        tokenizer: its tokenizer; saved beside the weights by :meth:`save_pretrained`.

    The whole forward pass, the early stop before the MLM decoder included, happens inside :meth:`forward`, so the
    module can be wrapped by ``DistributedDataParallel`` like any other.
    """

    HEADS = ("fused", "naive")

    def __init__(self, mlm: nn.Module, tokenizer, head: str = "fused") -> None:
        super().__init__()
        output_layer(mlm)  # fail early on a model without an MLM decoder
        if head not in self.HEADS:
            raise ValueError(f"head must be one of {self.HEADS}, not {head!r}")
        self.mlm = mlm
        self.tokenizer = tokenizer
        self.head = head  # "naive": the Hugging Face N×L×V logits, kept as the reference for tests and benchmarks

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path) -> "SpladeDocModel":
        """Load a short name of :func:`kit.models.resolve_model` (``splade-tiny``), a hub id or a local directory."""
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        path = resolve_model(str(name_or_path))
        return cls(AutoModelForMaskedLM.from_pretrained(path), AutoTokenizer.from_pretrained(path))

    @property
    def vocab_size(self) -> int:
        """V, the number of MLM outputs (the dimension of document and query vectors)."""
        return output_layer(self.mlm).weight.shape[0]

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """``max_{i: mask_i = 1} x_ij`` per document: ``[N, L]`` token ids -> ``[N, V]`` float32 logits."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if self.head == "naive":
            logits = self.mlm(**inputs).logits
            return logits.float().masked_fill(~attention_mask.bool().unsqueeze(-1), float("-inf")).amax(dim=1)
        hidden = mlm_hidden(self.mlm, **inputs)
        decoder = output_layer(self.mlm)
        return max_pooled_projection(hidden, attention_mask, decoder.weight, decoder.bias)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the masked-LM and its tokenizer in Hugging Face format (``from_pretrained`` reads them back)."""
        self.mlm.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def load_weights(self, directory: str | Path) -> None:
        """Copy the weights a :meth:`save_pretrained` wrote into this model, in place (bit-exact; ties kept)."""
        from transformers import AutoModelForMaskedLM

        saved = AutoModelForMaskedLM.from_pretrained(directory)
        self.mlm.load_state_dict(saved.state_dict())


class WithQuerySide(nn.Module):
    """A :class:`SpladeDocModel` (``doc``) with a trained query side of its own, whose ``forward`` returns
    ``(doc logits, query vectors, penalty or None)`` (the query side inside the module's forward, as DDP requires):
    :class:`train.lilsr.LiLsrModel`, :class:`train.siamese.SiameseModel`. The tokenizer and vocabulary are the
    document model's; checkpoints hold the document model (a subclass adds what its query side needs)."""

    def __init__(self, doc: SpladeDocModel) -> None:
        super().__init__()
        self.doc = doc

    @property
    def tokenizer(self):
        return self.doc.tokenizer

    @property
    def vocab_size(self) -> int:
        return self.doc.vocab_size

    def save_pretrained(self, directory: str | Path) -> None:
        self.doc.save_pretrained(directory)

    def load_weights(self, directory: str | Path) -> None:
        self.doc.load_weights(directory)


class BowIdfQueries:
    """Inference-free query vectors: ``q_j = IDF_j`` if token ``j`` occurs in the query, else 0 (paper, Section 3).

    Queries are tokenized without special tokens and without truncation, each token counts once, special tokens
    weigh 0 — exactly :class:`encode.query.BowIdfQueryEncoder`, as dense ``[Q, V]`` tensors for training.

    Args:
        tokenizer: the document model's tokenizer.
        idf: ``{token: idf}`` (from :func:`encode.query.compute_idf` or an ``idf.json``); tokens outside the
            tokenizer's vocabulary are ignored, tokens missing from ``idf`` weigh 0.
        vocab_size: V of the document model (default: the tokenizer's vocabulary size).

    Raises:
        ValueError: when no token of ``idf`` is in the tokenizer's vocabulary (an IDF table of another tokenizer).
    """

    def __init__(self, tokenizer, idf: Mapping[str, float], vocab_size: int | None = None) -> None:
        self.tokenizer = tokenizer
        vocab: dict[str, int] = tokenizer.get_vocab()
        size = vocab_size if vocab_size is not None else max(vocab.values()) + 1
        weights = torch.zeros(size, dtype=torch.float32)
        known = [(vocab[token], value) for token, value in idf.items() if token in vocab and vocab[token] < size]
        if idf and not known:
            raise ValueError("none of the IDF table's tokens is in the tokenizer's vocabulary; "
                             "was the IDF computed with another tokenizer?")
        if known:
            ids, values = zip(*known)
            weights[list(ids)] = torch.tensor(values, dtype=torch.float32)
        self._special = sorted(i for i in set(tokenizer.all_special_ids) if i < size)
        weights[self._special] = 0.0
        self.weights = weights

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Sorted distinct non-special token ids of each text (what :meth:`vectors` takes)."""
        special = set(self._special)
        encoded = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [sorted(set(ids) - special) for ids in encoded]

    def vectors(self, token_ids: Sequence[Sequence[int]]) -> Tensor:
        """Dense ``[Q, V]`` float32 query vectors from :meth:`token_ids` output."""
        out = torch.zeros(len(token_ids), self.weights.shape[0], dtype=torch.float32)
        for row, ids in zip(out, token_ids):
            index = torch.as_tensor(list(ids), dtype=torch.long)
            row[index] = self.weights[index]
        return out

    def batch(self, token_ids: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """What :class:`train.trainer.DistillCollator` adds to a batch: ``{"query_vectors": [Q, V]}``."""
        return {"query_vectors": self.vectors(token_ids)}

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Dense ``[Q, V]`` vectors of query texts."""
        return self.vectors(self.token_ids(texts))

    def idf_table(self) -> dict[str, float]:
        """``{token: idf}`` of every vocabulary token with a positive weight (what ``idf.json`` stores)."""
        ids = self.weights.nonzero().squeeze(1).tolist()
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        return {token: float(self.weights[i]) for token, i in zip(tokens, ids)}
