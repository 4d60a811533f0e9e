"""Li-LSR: learned inference-free query weights, trained jointly with the document encoder.

Nardini et al., "Effective Inference-Free Retrieval for Learned Sparse Representations" (SIGIR 2025, eq. 2) give
every vocabulary token a *static* query weight computed from the backbone's input word embedding ``E(t)`` (no
position or token-type embeddings, no context):

    s_t = log(1 + ReLU(wᵀ E(t) + b))

Only ``w``, ``b`` (and, by default, the embeddings ``E``) are learned; since nothing depends on the query's other
tokens, the trained module is exported **once** as a ``V``-entry lookup table (:func:`save_lookup_table`) and a
query is encoded by tokenizing, looking up and summing repeated tokens (:class:`encode.lookup.LookupQueryEncoder`)
— the same cost as BoW × IDF, no model at query time. The ℓ0 paper's BoW × IDF queries are the special case
``s_t = IDF_t`` with counts clipped to 1.

Pieces, all used by :mod:`train.trainer` when a recipe sets ``query_encoder: lilsr``:

- :class:`LiLsrQueryWeights`: the trainable ``[V]`` weight vector (an ``nn.Module``);
- :class:`LiLsrQueries`: the collator side: query texts -> token ids with repeats -> ``[Q, V]`` token counts;
- :class:`LiLsrModel`: the document model and the query weights in one module, so ``Trainer`` optimises (and DDP
  synchronises) both and checkpoints hold both;
- :func:`save_lookup_table` / :data:`TABLE_FILE`: the exported table (safetensors + readable JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from encode.lookup import TABLE_FILE, TABLE_JSON
from kit.io import atomic_write, write_json
from train.model import SpladeDocModel, WithQuerySide

#: The query module's full state inside training checkpoints (not exported: the table replaces it).
QUERY_STATE_FILE = "lilsr_query.safetensors"
#: How the weights are initialised: ``idf`` fits ``w, b`` so that ``s_t ≈ IDF_t``; ``uniform`` gives every token
#: the same weight (``w = 0``, ``s_t = IDF`` averaged), i.e. a plain bag of words.
INITS = ("idf", "uniform")


class LiLsrQueryWeights(nn.Module):
    """The Li-LSR static query weights ``s = log(1 + ReLU(E w + b))``, one per vocabulary token (eq. 2).

    Args:
        embeddings: ``[V, H]`` input word embeddings of the backbone (copied; the document model keeps its own).
        special_ids: token ids that never weigh anything ([CLS], [SEP], [PAD], ...).
        train_embeddings: learn ``E`` too (as ``E0 + Δ``); False learns only ``w`` and ``b``.
        lr_multiplier: ``w``, ``b`` and ``Δ`` are stored divided by this factor, so an optimizer step of size
            ``lr`` moves them by ``lr × lr_multiplier``: the query side (a handful of parameters, each token seen
            rarely) learns faster than the fine-tuned document encoder without a second optimizer group.

    Raises:
        ValueError: on an embedding matrix that is not 2-D, an out-of-range special id or a multiplier <= 0.
    """

    def __init__(self, embeddings: Tensor, special_ids: Sequence[int] = (), *, train_embeddings: bool = True,
                 lr_multiplier: float = 1.0) -> None:
        super().__init__()
        if embeddings.dim() != 2:
            raise ValueError(f"embeddings must be [V, H], got shape {tuple(embeddings.shape)}")
        if not lr_multiplier > 0:
            raise ValueError(f"lr_multiplier must be > 0, got {lr_multiplier}")
        vocab, hidden = embeddings.shape
        bad = [i for i in special_ids if not 0 <= i < vocab]
        if bad:
            raise ValueError(f"special ids {bad} are outside the vocabulary of {vocab} tokens")
        self.lr_multiplier = float(lr_multiplier)
        self.register_buffer("base_embeddings", embeddings.detach().clone().float())
        self.delta = nn.Parameter(torch.zeros(vocab, hidden), requires_grad=train_embeddings)
        self.w_raw = nn.Parameter(torch.zeros(hidden))
        self.b_raw = nn.Parameter(torch.zeros(()))
        keep = torch.ones(vocab)
        keep[list(special_ids)] = 0.0
        self.register_buffer("keep", keep)
        # the table training starts from (set by init_weights; rebuilt, not checkpointed: the init is deterministic)
        self.register_buffer("start", torch.zeros(vocab), persistent=False)

    @classmethod
    def from_doc_model(cls, model: SpladeDocModel, **options) -> "LiLsrQueryWeights":
        """Weights over ``model``'s vocabulary from its input word embeddings (``get_input_embeddings()``)."""
        embeddings = model.mlm.get_input_embeddings().weight
        special = [i for i in set(model.tokenizer.all_special_ids) if i < embeddings.shape[0]]
        return cls(embeddings, special, **options)

    @property
    def vocab_size(self) -> int:
        return self.keep.shape[0]

    @property
    def w(self) -> Tensor:
        return self.w_raw * self.lr_multiplier

    @property
    def b(self) -> Tensor:
        return self.b_raw * self.lr_multiplier

    def embeddings(self) -> Tensor:
        """``E = E0 + Δ`` ``[V, H]``."""
        return self.base_embeddings + self.delta * self.lr_multiplier

    def weights(self) -> Tensor:
        """``s`` ``[V]``: ``log(1 + ReLU(E w + b))``, 0 for special tokens (differentiable)."""
        return torch.log1p(torch.relu(self.embeddings() @ self.w + self.b)) * self.keep

    def forward(self, counts: Tensor) -> Tensor:
        """Query vectors ``[Q, V]`` from token counts ``[Q, V]``: each token's weight times its number of occurrences."""
        return counts.to(self.keep.dtype) * self.weights().unsqueeze(0)

    def anchor_penalty(self) -> Tensor:
        """Mean squared distance of the weights from the table training started at (:meth:`init_weights`), over the
        non-special tokens: the recipe's ``query_anchor`` times this keeps tokens the training queries cannot inform
        near their start (IDF) instead of letting the shared ``w`` and ``E`` switch them off."""
        return ((self.weights() - self.start) ** 2 * self.keep).sum() / self.keep.sum()

    @torch.no_grad()
    def table(self) -> Tensor:
        """The lookup table: :meth:`weights` as a detached float32 CPU tensor."""
        return self.weights().detach().float().cpu()

    @torch.no_grad()
    def init_weights(self, how: str, target: Tensor | None = None) -> None:
        """Set ``w, b`` (``Δ`` back to 0) for a starting point; ``how`` is one of :data:`INITS`.

        ``idf``: least squares over non-special tokens of ``E0 w + b ≈ exp(target) - 1``, the pre-activation for which
        ``s = target`` (``target`` [V], e.g. the recipe's IDF); with trainable embeddings, ``Δ`` then moves each token
        along ``w`` by exactly the fit's residual, so that ``s = target`` for every token: training starts from
        BoW × IDF weights (summed over repeated tokens). Without trainable embeddings tokens keep the fit's weight
        (those it puts below 0 start, and stay, at 0).
        ``uniform``: ``w = 0``, ``b = exp(mean target) - 1`` (``target`` optional; ``b = e - 1`` without one).
        """
        if how not in INITS:
            raise ValueError(f"unknown init {how!r}; choose one of {', '.join(INITS)}")
        if target is not None and target.shape != self.keep.shape:
            raise ValueError(f"target must have shape [{self.vocab_size}], got {tuple(target.shape)}")
        self.delta.zero_()
        rows = self.keep.bool()
        level = target[rows].float().mean() if target is not None else torch.tensor(1.0)
        if how == "uniform":
            self.w_raw.zero_()
            self.b_raw.fill_(float(torch.expm1(level)) / self.lr_multiplier)
            self.start.copy_(self.weights())
            return
        if target is None:
            raise ValueError("init 'idf' needs the target weights")
        design = torch.cat([self.base_embeddings[rows].double(), torch.ones(int(rows.sum()), 1, dtype=torch.double)], 1)
        solution = torch.linalg.lstsq(design, torch.expm1(target[rows].double()).unsqueeze(1)).solution.squeeze(1)
        self.w_raw.copy_(solution[:-1].float() / self.lr_multiplier)
        self.b_raw.fill_(float(solution[-1]) / self.lr_multiplier)
        if self.delta.requires_grad and float(self.w.norm()) > 0:
            residual = torch.expm1(target.float()) - (self.base_embeddings @ self.w + self.b)
            residual = residual * rows  # special tokens stay where they are
            self.delta.copy_(torch.outer(residual, self.w) / (self.w.dot(self.w) * self.lr_multiplier))
        self.start.copy_(self.weights())


class LiLsrQueries:
    """Training-time query side of Li-LSR: texts -> token ids (repeats kept) -> ``[Q, V]`` token counts.

    Tokenization is :class:`encode.lookup.LookupQueryEncoder`'s: no special tokens, no truncation, special ids
    dropped; a token that occurs twice counts twice. :meth:`batch` is what :class:`train.trainer.DistillCollator`
    adds to a batch (``query_counts``; :class:`LiLsrModel` turns them into vectors).
    """

    def __init__(self, tokenizer, vocab_size: int) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self._special = {i for i in tokenizer.all_special_ids if i < vocab_size}

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Non-special token ids of each text, in order, repeats kept."""
        encoded = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [[i for i in ids if i not in self._special] for ids in encoded]

    def counts(self, token_ids: Sequence[Sequence[int]]) -> Tensor:
        """``[Q, V]`` float32 number of occurrences of each token in each query."""
        out = torch.zeros(len(token_ids), self.vocab_size, dtype=torch.float32)
        for row, ids in zip(out, token_ids):
            row.index_add_(0, torch.as_tensor(list(ids), dtype=torch.long), torch.ones(len(ids)))
        return out

    def batch(self, token_ids: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        return {"query_counts": self.counts(token_ids)}


class LiLsrModel(WithQuerySide):
    """A :class:`~train.model.SpladeDocModel` and its :class:`LiLsrQueryWeights`, trained together.

    ``forward`` returns ``(doc_logits [N, V], query_vectors [Q, V])`` so the query side runs inside the module's
    forward (what DDP requires). Checkpoints (:meth:`save_pretrained`) hold the masked LM, its tokenizer and the
    query module's state (:data:`QUERY_STATE_FILE`); exports hold the lookup table instead.
    """

    def __init__(self, doc: SpladeDocModel, query: LiLsrQueryWeights, anchor: float = 0.0) -> None:
        if not anchor >= 0:
            raise ValueError(f"anchor must be >= 0, got {anchor}")
        if query.vocab_size != doc.vocab_size:
            raise ValueError(f"query weights cover {query.vocab_size} tokens, the document model {doc.vocab_size}")
        super().__init__(doc)
        self.query = query
        self.anchor = float(anchor)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None,
                query_counts: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(doc logits, query vectors or None, anchor · anchor_penalty or None)``; the penalty is computed here,
        inside forward, so that DDP sees every parameter it touches."""
        logits = self.doc(input_ids, attention_mask, token_type_ids)
        queries = self.query(query_counts) if query_counts is not None else None
        penalty = self.anchor * self.query.anchor_penalty() if self.anchor > 0 and queries is not None else None
        return logits, queries, penalty

    def save_pretrained(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        super().save_pretrained(directory)
        state = {name: tensor.detach().contiguous().cpu() for name, tensor in self.query.state_dict().items()}
        save_file(state, str(Path(directory) / QUERY_STATE_FILE))

    def load_weights(self, directory: str | Path) -> None:
        from safetensors.torch import load_file

        super().load_weights(directory)
        self.query.load_state_dict(load_file(str(Path(directory) / QUERY_STATE_FILE)))


def save_lookup_table(weights: Tensor, tokenizer, out_dir: str | Path) -> dict[str, str]:
    """Write the exported table: :data:`TABLE_FILE` (all ``V`` weights) and :data:`TABLE_JSON` (tokens weighing > 0).

    Returns the file names written (relative to ``out_dir``), for the model's metadata.
    """
    from safetensors.torch import save

    out_dir = Path(out_dir)
    weights = weights.detach().float().cpu().contiguous()
    with atomic_write(out_dir / TABLE_FILE, mode="wb", encoding=None) as fh:
        fh.write(save({"weights": weights}, metadata={"format": "li-lsr query weights"}))
    ids = weights.nonzero().squeeze(1).tolist()
    tokens = tokenizer.convert_ids_to_tokens(ids)
    write_json(out_dir / TABLE_JSON, {token: float(weights[i]) for token, i in zip(tokens, ids)})
    return {"table": TABLE_FILE, "table_json": TABLE_JSON}


def token_weights_tensor(table: Mapping[str, float], tokenizer, vocab_size: int) -> Tensor:
    """``[V]`` tensor of a ``{token: weight}`` table (tokens outside the vocabulary ignored)."""
    vocab = tokenizer.get_vocab()
    out = torch.zeros(vocab_size)
    for token, value in table.items():
        i = vocab.get(token)
        if i is not None and i < vocab_size:
            out[i] = float(value)
    return out


def lilsr_model(doc: SpladeDocModel, recipe, idf_weights: Tensor) -> tuple[LiLsrModel, LiLsrQueries]:
    """The trainable :class:`LiLsrModel` and collator-side :class:`LiLsrQueries` of a ``query_encoder: lilsr`` recipe.

    ``idf_weights`` ``[V]`` (the recipe's IDF, as :class:`train.model.BowIdfQueries` holds it) is the target of
    ``query_init: idf`` and sets the level of ``query_init: uniform``.
    """
    query = LiLsrQueryWeights.from_doc_model(doc, train_embeddings=recipe.query_train_embeddings,
                                             lr_multiplier=recipe.query_lr_multiplier)
    query.init_weights(recipe.query_init, idf_weights)
    return LiLsrModel(doc, query, anchor=recipe.query_anchor), LiLsrQueries(doc.tokenizer, doc.vocab_size)
