"""Inference-free query encoding by table lookup: Li-LSR's exported static token weights.

Li-LSR (Nardini et al., SIGIR 2025, eq. 2) learns one weight per vocabulary token, ``s_t = log(1 + ReLU(wᵀE(t) + b))``;
:mod:`train.lilsr` trains it with the document encoder and exports it once as a table. A query is then its
tokens' weights, **summed over repeated tokens**: ``q_t = count_t(query) · s_t`` — tokenize, look up, add; no model
runs. Tokens weighing 0 (special tokens, tokens the ReLU switched off) leave the query.

The table is read from a trained model directory (``query_weights.safetensors``, ``V`` float32 weights indexed by
token id), from that file directly, or from a readable ``{token: weight}`` JSON (``query_weights.json``).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

from encode.query import TokenTableEncoder
from kit.errors import InputError
from kit.io import load_json

#: File names inside an exported model directory (written by :func:`train.lilsr.save_lookup_table`).
TABLE_FILE = "query_weights.safetensors"
TABLE_JSON = "query_weights.json"


def _check_weight(path, token, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(path, f"weight of {token!r} is {value!r}, not a finite non-negative number",
                         fix="every weight must be a number >= 0")
    return float(value)


def load_lookup_table(path: str | Path) -> list[float] | dict[str, float]:
    """Weights by token id (a ``.safetensors`` file or a model directory holding one) or ``{token: weight}`` (JSON).

    Raises:
        InputError: a missing file, a model directory without a table, malformed JSON, a safetensors file without a
            1-D ``weights`` tensor, or a negative / non-finite weight.
    """
    path = Path(path)
    if path.is_dir():
        if (path / TABLE_FILE).exists():
            path = path / TABLE_FILE
        elif (path / TABLE_JSON).exists():
            path = path / TABLE_JSON
        else:
            raise InputError(path, f"no {TABLE_FILE} or {TABLE_JSON} in this directory",
                             fix="train with `query_encoder: lilsr` (python -m train) or point to the table file")
    if not path.exists():
        raise InputError(path, "not found", fix="check the path of the Li-LSR table")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise InputError(path, f"unreadable safetensors file ({exc})") from None
        weights = tensors.get("weights")
        if weights is None or weights.dim() != 1:
            raise InputError(path, "no 1-D 'weights' tensor", fix="write {'weights': float32 [V]} (train.lilsr)")
        values = weights.float().tolist()
        for i, value in enumerate(values):
            _check_weight(path, i, value)
        return values
    table = load_json(path, fix='write {"token": weight, ...}')
    if not isinstance(table, dict):
        raise InputError(path, "not a JSON object", fix='write {"token": weight, ...}')
    return {token: _check_weight(path, token, value) for token, value in table.items()}


class LookupQueryEncoder(TokenTableEncoder):
    """Query -> ``{token: count × weight}`` from a static per-token table (Li-LSR); no model at query time.

    Args:
        tokenizer: the document model's tokenizer (the table is indexed by its ids).
        table: weights by token id (``len == V``) or ``{token: weight}``; tokens not listed weigh 0.
        max_length: truncate as :class:`encode.query.BowIdfQueryEncoder` does (special tokens counted, then
            dropped); None keeps every token.

    Raises:
        ValueError: a table by id longer than the tokenizer's id range, a negative weight, or ``max_length < 3``.
    """

    def __init__(self, tokenizer, table: Sequence[float] | Mapping[str, float], max_length: int | None = None):
        super().__init__(tokenizer, max_length)
        vocab: dict[str, int] = tokenizer.get_vocab()
        by_id = {i: token for token, i in vocab.items()}
        special = set(tokenizer.all_special_ids)
        if isinstance(table, Mapping):
            items = ((vocab[token], value) for token, value in table.items() if token in vocab)
        else:
            if len(table) > len(by_id) and any(table[i] > 0 for i in range(len(by_id), len(table))):
                raise ValueError(f"the table has {len(table)} weights but the tokenizer only {len(by_id)} tokens")
            items = ((i, value) for i, value in enumerate(table) if i in by_id)
        for i, value in items:
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"weight of token {by_id[i]!r} is {value}, not a finite non-negative number")
            if value > 0 and i not in special:
                self._table[i] = (by_id[i], float(value))

    @classmethod
    def from_path(cls, path: str | Path, tokenizer=None, max_length: int | None = None) -> "LookupQueryEncoder":
        """Load a table (see :func:`load_lookup_table`); the tokenizer defaults to the one saved beside it."""
        if tokenizer is None:
            from transformers import AutoTokenizer

            path = Path(path)
            tokenizer = AutoTokenizer.from_pretrained(path if path.is_dir() else path.parent)
        return cls(tokenizer, load_lookup_table(path), max_length=max_length)

    @property
    def weights(self) -> dict[str, float]:
        """``{token: weight}`` of every token that weighs something."""
        return dict(self._table.values())

    def encode(self, text: str) -> dict[str, float]:
        table = self._table
        out: dict[str, float] = {}
        for i, count in sorted(Counter(self._ids(text)).items()):
            entry = table.get(i)
            if entry is not None:
                out[entry[0]] = count * entry[1]
        return out
