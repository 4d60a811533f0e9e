"""Query encoders: inference-free bag of words × IDF, and the siamese SPLADE baseline.

The inference-free query vector (paper, Section 3) sets ``w_j = IDF_j`` if token ``j`` occurs in the query and 0
otherwise: the query is tokenized, special tokens are dropped and each token counts once. The IDF is either
computed from a corpus with :func:`compute_idf` (BM25's ``ln(1 + (N - df + 0.5) / (df + 0.5))`` over tokenizer
tokens, as the authors' ``get_idf.py`` does) or loaded from an OpenSearch-style ``idf.json`` ``{token: idf}``, as
shipped with ``opensearch-project/opensearch-neural-sparse-encoding-doc-v2-distill`` and ``-v3-distill`` (IDF from
MS MARCO, as in the paper's experiments).

A token missing from the IDF table weighs ``default``, 0 unless told otherwise, i.e. it leaves the query: this is
sentence-transformers' ``SparseStaticEmbedding.from_json`` (a weight vector of zeros with the listed tokens set), so
models the kit exports score the same there, and the kit's trainer (``train.model.BowIdfQueries``) does the same.
OpenSearch's sparse tokenizer (``idf.getOrDefault(token, 1.0f)`` in ml-commons) and the authors' training code (an
IDF vector initialised to ones) use 1.0 instead: ``default=1.0`` reproduces them. With :func:`compute_idf`'s default
every vocabulary token is listed and the choice does not matter; it only does for the released ``idf.json`` files,
which list the tokens seen in MS MARCO.
"""

from __future__ import annotations

import itertools
import json
import re
import math
from pathlib import Path
from typing import Iterable, Mapping, Protocol

import numpy as np

from encode.quantize import MAX_EMPTY_SHARE, check_query_total, quantize
from kit.errors import InputError
from kit.io import load_json, write_json

_TOKENIZE_BATCH = 1000


class QueryEncoder(Protocol):
    def encode(self, text: str) -> dict[str, float]: ...


def compute_idf(docs_texts: Iterable[str], tokenizer, include_unseen: bool = True) -> dict[str, float]:
    """``{token: ln(1 + (N - df + 0.5) / (df + 0.5))}`` over the tokenizer's vocabulary.

    ``df`` is the number of texts whose full tokenization (no truncation, special tokens excluded) contains the
    token, ``N`` the number of texts with at least one such token (as in the authors' ``get_idf.py``). With
    ``include_unseen`` every vocabulary token gets an IDF (``df = 0`` for those never seen, special tokens included);
    without it only seen tokens are listed, like the released ``idf.json`` files (unlisted tokens then weigh the
    query encoder's ``default``).
    """
    vocab: dict[str, int] = tokenizer.get_vocab()
    df = np.zeros(max(vocab.values()) + 1, dtype=np.int64)
    special = np.zeros_like(df, dtype=bool)
    special[list(tokenizer.all_special_ids)] = True
    num_docs = 0
    texts = iter(docs_texts)
    while batch := list(itertools.islice(texts, _TOKENIZE_BATCH)):
        for ids in tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]:
            ids = np.unique(np.asarray(ids, dtype=np.int64))
            ids = ids[~special[ids]]
            df[ids] += 1
            num_docs += len(ids) > 0
    if num_docs == 0:
        raise ValueError("compute_idf needs at least one document with a non-special token")
    idf = np.log1p((num_docs - df + 0.5) / (df + 0.5))
    return {token: float(idf[i]) for token, i in vocab.items() if include_unseen or df[i] > 0}


def load_idf_json(path: str | Path) -> dict[str, float]:
    """Read an ``idf.json`` ``{token: idf}``; anything else raises InputError naming the file."""
    idf = load_json(path, fix='write {"token": idf, ...}')
    if not isinstance(idf, dict):
        raise InputError(path, "not a JSON object", fix='write {"token": idf, ...}')
    for token, value in idf.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InputError(path, f"IDF of {token!r} is {value!r}, not a finite non-negative number",
                             fix="every value must be a number >= 0")
    return {token: float(value) for token, value in idf.items()}


def save_idf_json(idf: Mapping[str, float], path: str | Path) -> None:
    """Write ``idf`` as an OpenSearch-style ``idf.json`` (atomically, keys sorted)."""
    write_json(path, dict(idf))


class _AsciiBertWords:
    """Exact BERT-uncased tokenization of ASCII text with a per-word WordPiece cache (the query hot path).

    For ASCII input, BertNormalizer (clean_text, lowercase; accents and CJK need non-ASCII) and BertPreTokenizer
    reduce to: delete control characters, lowercase, split into runs of ``[a-z0-9]`` and single punctuation marks.
    Each word's WordPiece ids come from the real tokenizer once and are then looked up, which makes a query a few
    dict look-ups instead of a full tokenizer call. Non-ASCII text, or text containing an added token such as ``[SEP]``, returns None (the caller uses the
    tokenizer);
    tests check equality with the tokenizer on every SciFact query and a corpus sample.
    """

    _WORD = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")
    _CONTROL = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]}

    def __init__(self, backend):
        self._backend = backend
        self._cache: dict[str, list[int]] = {}
        # added tokens ([SEP], [MASK], ...) are matched in the raw text before normalization: leave those to the tokenizer
        self._added = tuple(t.content for t in backend.get_added_tokens_decoder().values())

    @classmethod
    def for_tokenizer(cls, tokenizer) -> "_AsciiBertWords | None":
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        spec = json.loads(backend.to_str())
        norm, pre, model = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec.get("model") or {}
        if (norm.get("type") == "BertNormalizer" and norm.get("clean_text") and norm.get("lowercase")
                and pre.get("type") == "BertPreTokenizer" and model.get("type") == "WordPiece"):
            return cls(backend)
        return None

    def ids(self, text: str) -> list[int] | None:
        if not text.isascii() or any(t in text for t in self._added):
            return None
        out: list[int] = []
        cache = self._cache
        for word in self._WORD.findall(text.translate(self._CONTROL).lower()):
            piece = cache.get(word)
            if piece is None:
                piece = cache[word] = self._backend.encode(word, add_special_tokens=False).ids
            out.extend(piece)
        return out


class TokenTableEncoder:
    """Base of the inference-free query encoders: tokenize, then look every token id up in a static table.

    ``self._table`` maps token id -> ``(token, weight)`` for the tokens that weigh something (special tokens never do);
    subclasses fill it and define :meth:`encode`. ``max_length`` truncates the query as the authors' evaluation does
    (special tokens included in the count, then dropped); None keeps every token.
    """

    def __init__(self, tokenizer, max_length: int | None = None):
        if max_length is not None and max_length < 3:
            raise ValueError(f"max_length must leave room for a token besides [CLS] and [SEP], not {max_length}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._table: dict[int, tuple[str, float]] = {}
        self._words = _AsciiBertWords.for_tokenizer(tokenizer)
        self._room = max_length - tokenizer.num_special_tokens_to_add() if max_length is not None else None

    def _ids(self, text: str) -> list[int]:
        ids = self._words.ids(text) if self._words is not None else None
        if ids is None:
            ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return ids if self._room is None else ids[: self._room]

    def encode(self, text: str) -> dict[str, float]:
        raise NotImplementedError

    def encode_batch(self, texts: list[str]) -> list[dict[str, float]]:
        return [self.encode(text) for text in texts]


class BowIdfQueryEncoder(TokenTableEncoder):
    """Inference-free query encoder: ``{token: IDF[token]}`` for each distinct non-special token of the query.

    ``default`` weighs tokens missing from ``idf`` (see the module docstring); tokens weighing 0 are left out.
    ``max_length``: see :class:`TokenTableEncoder`.
    """

    def __init__(self, tokenizer, idf: Mapping[str, float], default: float = 0.0, max_length: int | None = None):
        if not (math.isfinite(default) and default >= 0):
            raise ValueError(f"default must be a finite non-negative weight, not {default}")
        super().__init__(tokenizer, max_length)
        self.idf = dict(idf)
        self.default = default
        special = set(tokenizer.all_special_ids)
        for token, i in tokenizer.get_vocab().items():
            weight = self.idf.get(token, default)
            if i not in special and weight > 0:
                self._table[i] = (token, weight)

    def encode(self, text: str) -> dict[str, float]:
        table = self._table
        return dict(table[i] for i in sorted(set(self._ids(text))) if i in table)


class SpladeQueryEncoder:
    """Siamese SPLADE baseline: the document encoder applied to the query text (query-side inference)."""

    def __init__(self, doc_encoder):
        self.doc_encoder = doc_encoder

    def encode(self, text: str) -> dict[str, float]:
        return self.doc_encoder.encode([text])[0]

    def encode_batch(self, texts: list[str]) -> list[dict[str, float]]:
        return self.doc_encoder.encode(texts)


def encode_queries(encoder: QueryEncoder, queries: Mapping[str, str], factor: float = 100, *,
                   allow_empty: bool = False, where: str | Path | None = None) -> dict[str, dict[str, int]]:
    """``{qid: quantized vector}``, ready for Anserini's ``JsonIntVector`` topics (same ``factor`` as the docs).

    More than :data:`MAX_EMPTY_SHARE` of the queries with an empty vector (they retrieve nothing: an IDF table of
    zeros, a lookup table or a model that weighs nothing) is an InputError (naming ``where``) unless ``allow_empty``.
    """
    qids = list(queries)
    texts = [queries[qid] for qid in qids]
    batch = getattr(encoder, "encode_batch", None)
    vectors = batch(texts) if batch is not None else [encoder.encode(text) for text in texts]
    out = {}
    for qid, vector in zip(qids, vectors):
        try:
            out[qid] = quantize(vector, factor)
            check_query_total(out[qid])
        except ValueError as err:  # a weight Anserini cannot take at this factor, or a non-finite one
            raise InputError(None, f"query {qid!r}: {err}", fix="lower the factor (recipe: factor, --factor), or "
                                                                 "check the query weights (IDF / lookup table)") from None
    empty = sum(not vector for vector in out.values())
    if not allow_empty and empty > MAX_EMPTY_SHARE * len(out):
        raise InputError(where, f"{empty} of {len(out)} queries have an empty vector ({type(encoder).__name__}; more "
                                f"than {MAX_EMPTY_SHARE:.0%} is refused)",
                         fix="check the query encoder's weights (IDF table, lookup table or model) and the factor; if "
                             "the queries really are empty, python -m encode --queries ... --allow-empty accepts them")
    return out
