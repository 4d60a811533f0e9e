"""Max-pooled MLM logits without materialising the ``batch × length × vocabulary`` logit tensor.

A SPLADE document vector (paper, eq. 1) is ``w_j = max_i act(x_ij)`` with ``x_ij = h_i · W_j + b_j``, where ``h_i`` is
the MLM head's last hidden state of token ``i`` (after its dense + GELU + LayerNorm transform) and ``W, b`` the decoder
(the output embeddings). The Hugging Face path computes every ``x_ij`` (``B × L × 30,522`` floats, 1 GB for 32
documents of 256 tokens), applies the activation to all of them and only then pools. Here:

- the activation is monotonic, so it is applied once to the pooled vector: ``max_i act(x_ij) == act(max_i x_ij)``;
- logits are computed one document and one cache-sized vocabulary slice at a time and reduced at once, padding never
  enters a product (:class:`SparseMaxHead`, inference; :class:`MaxPooledProjection` on CPUs, training), or masked to
  ``-inf`` in a batched, memory-bounded loop (:class:`MaxPooledProjection` on GPUs); training keeps only the max and
  its token, for a hand-written backward;
- at inference only entries with a positive max survive any activation, which allows an exact shortcut on CPUs with
  bfloat16 matrix units: screen the vocabulary with a bf16 product, then recompute the few candidates in float32
  (see :meth:`SparseMaxHead.candidates`).
"""

from __future__ import annotations

import threading
import weakref

import torch
from torch.autograd.function import once_differentiable

# Logit elements per vocabulary slice of the batched (training) path: 2**24 float32 = 64 MiB per slice.
_BATCH_SLICE_ELEMENTS = 1 << 24
# Logit elements per slice of the per-document (inference) path: 2**17 float32 = 512 KiB, one core's L2 cache on the
# AMD EPYC machines here; with 2**20 (4 MiB) each slice spilled to L3 and the head ran about 1.3x slower, with the
# same results (the max over tokens does not depend on how the vocabulary is sliced).
_CACHE_SLICE_ELEMENTS = 1 << 17
_MIN_VOCAB_SLICE = 1024

# bf16 screen (SparseMaxHead.candidates): logits are raised by c (||h|| ||W_v|| + |b_v|) with c = 4 bf16 roundoffs,
# twice the worst-case rounding error of the bf16 product; _TINY keeps a positive sum away from bf16 underflow.
_SLACK = 2.0**-6
_TINY = 1e-30
# bf16 logit elements per slice of the screen: 2**23 (16 MiB), the whole vocabulary for documents up to 274 tokens.
_SCREEN_SLICE_ELEMENTS = 1 << 23
# Token rows of the screen are padded to a multiple of this, bounding the number of distinct product shapes.
_ROW_BUCKET = 32


class _StopForward(Exception):
    """Raised by the output layer's pre-hook once it has captured its input."""


# Per thread: (decoder, list) while mlm_hidden runs in that thread, else absent. Threads encode concurrently.
_capture = threading.local()
_hooked: "weakref.WeakSet[torch.nn.Module]" = weakref.WeakSet()
_hook_lock = threading.Lock()


def _capture_input(module: torch.nn.Module, args: tuple) -> None:
    """Forward pre-hook left on the decoder: a no-op unless this thread is inside :func:`mlm_hidden` for it."""
    slot = getattr(_capture, "slot", None)
    if slot is not None and slot[0] is module:
        slot[1].append(args[0])
        raise _StopForward


def output_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The decoder ``Linear`` of a masked-LM model (``model.get_output_embeddings()``)."""
    decoder = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(decoder, torch.nn.Linear):
        raise ValueError(f"{type(model).__name__} has no linear output layer; a masked-language model "
                         "(e.g. AutoModelForMaskedLM) is needed")
    return decoder


def mlm_hidden(model: torch.nn.Module, **inputs: torch.Tensor) -> torch.Tensor:
    """The hidden states the MLM decoder would project, ``[B, L, H]``; the decoder itself never runs.

    Works for any Hugging Face masked LM whose logits are ``model.get_output_embeddings()(hidden)`` (BERT, DistilBERT,
    RoBERTa, ...): a forward pre-hook captures the decoder's input and stops the forward pass there. The hook is
    registered once and stays on the decoder, inert outside this function, so threads may call it concurrently
    (registering hooks while another thread runs the model would not be safe).
    """
    decoder = output_layer(model)
    with _hook_lock:
        if decoder not in _hooked:
            decoder.register_forward_pre_hook(_capture_input)
            _hooked.add(decoder)
    captured: list[torch.Tensor] = []
    _capture.slot = (decoder, captured)
    try:
        model(**inputs)
    except _StopForward:
        pass
    finally:
        _capture.slot = None
    if not captured:
        raise RuntimeError(f"{type(model).__name__}.forward never called its output layer")
    return captured[0]


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The autocast dtype when autocast is on for ``tensor``'s device, else ``tensor``'s own dtype."""
    device_type = tensor.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return tensor.dtype


def _accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    """Reductions run in at least float32 (float64 stays float64, for gradcheck)."""
    return torch.promote_types(dtype, torch.float32)


class MaxPooledProjection(torch.autograd.Function):
    """``pooled[b, v] = max over real tokens t of (hidden[b, t] · weight[v] + bias[v])``, with a sparse backward.

    ``apply(hidden [B, L, H], mask [B, L], weight [V, H], bias [V] or None) -> pooled [B, V]`` (float32, or float64
    for float64 inputs). Padding (``mask == 0``) never wins the max. The forward keeps only the max and its token
    (the first one on ties, like :func:`torch.max`); the backward routes each ``grad[b, v]`` to that token::

        grad_weight[v]    = Σ_b grad[b, v] · hidden[b, argmax(b, v)]
        grad_hidden[b, t] = Σ_{v : argmax(b, v) = t} grad[b, v] · weight[v]
        grad_bias         = Σ_b grad[b, :]

    as products with a ``(B·L) × V`` sparse routing matrix holding one entry per ``(b, v)``, so neither pass stores a
    ``B × L × V`` tensor. Under autocast the products run in the autocast dtype and the max in float32.
    """

    @staticmethod
    def forward(ctx, hidden, mask, weight, bias):
        compute = _compute_dtype(hidden)
        acc = _accumulate_dtype(compute)
        batch, vocab = hidden.shape[0], weight.shape[0]
        pooled = torch.empty(batch, vocab, dtype=acc, device=hidden.device)
        argmax = torch.empty(batch, vocab, dtype=torch.long, device=hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            pool = _pool_per_document if hidden.is_cpu else _pool_batched
            pool(hidden.to(compute), mask, weight.to(compute), bias, pooled, argmax)
        ctx.save_for_backward(hidden, weight, argmax)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return pooled

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_pooled):
        hidden, weight, argmax = ctx.saved_tensors
        batch, length, width = hidden.shape
        vocab = weight.shape[0]
        grad = grad_pooled.to(_accumulate_dtype(grad_pooled.dtype))
        want_hidden, _, want_weight, want_bias = ctx.needs_input_grad
        grad_hidden = grad_weight = grad_bias = None
        if want_hidden or want_weight:
            rows = (torch.arange(batch, device=argmax.device)[:, None] * length + argmax).reshape(-1)
            cols = torch.arange(vocab, device=argmax.device).repeat(batch)
            routing = torch.sparse_coo_tensor(torch.stack([rows, cols]), grad.reshape(-1), (batch * length, vocab),
                                              check_invariants=False)
            if want_hidden:
                grad_hidden = torch.sparse.mm(routing, weight.to(grad.dtype)).view(batch, length, width)
                grad_hidden = grad_hidden.to(hidden.dtype)
            if want_weight:
                flat = hidden.reshape(batch * length, width).to(grad.dtype)
                grad_weight = torch.sparse.mm(routing.t(), flat).to(weight.dtype)
        if want_bias:
            grad_bias = grad.sum(0).to(ctx.bias_dtype)
        return grad_hidden, None, grad_weight, grad_bias


def _cache_slice(tokens: int) -> int:
    """Vocabulary entries per slice when ``tokens`` rows of logits are computed at once on a CPU: one core's L2."""
    return max(_MIN_VOCAB_SLICE, _CACHE_SLICE_ELEMENTS // tokens)


def _pool_batched(hidden: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  pooled: torch.Tensor, argmax: torch.Tensor) -> None:
    """Forward of :class:`MaxPooledProjection` on GPUs: every document at once, one memory-bounded vocabulary slice
    at a time, padding masked to ``-inf``. Fills ``pooled`` and ``argmax`` (max and its token) in place."""
    batch, length, _ = hidden.shape
    vocab = weight.shape[0]
    padding = ~mask.bool()[:, :, None]
    step = max(_MIN_VOCAB_SLICE, _BATCH_SLICE_ELEMENTS // max(1, batch * length))
    for start in range(0, vocab, step):
        end = min(start + step, vocab)
        logits = torch.matmul(hidden, weight[start:end].T).to(pooled.dtype)
        if bias is not None:
            logits += bias[start:end].to(pooled.dtype)
        logits.masked_fill_(padding, float("-inf"))
        pooled[:, start:end], argmax[:, start:end] = logits.max(dim=1)


def _pool_per_document(hidden: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       pooled: torch.Tensor, argmax: torch.Tensor) -> None:
    """Forward of :class:`MaxPooledProjection` on CPUs: one document's real tokens and one cache-sized vocabulary
    slice at a time, where :func:`_pool_batched` writes, masks and re-reads ``B × L`` rows of each 64 MiB slice through
    memory. Same bias-then-max steps and tie rule; a document without real tokens pools to ``-inf`` at token 0.

    The float32 products of a smaller matrix may round differently in the last bit (BLAS picks kernels by shape), so
    values agree with the batched loop to rounding, not always bit for bit. Measured on the kit's tiny recipe (2-core
    AVX2 machine, SciFact documents filling all 128 tokens): the same trained weights bit for bit, training in 72-78 s
    instead of 79-87 s (docs/ablation.md)."""
    vocab = weight.shape[0]
    keep = mask.bool()
    bias = None if bias is None else bias.to(pooled.dtype)
    for row in range(hidden.shape[0]):
        positions = keep[row].nonzero().squeeze(1)
        if positions.numel() == 0:
            pooled[row] = float("-inf")
            argmax[row] = 0
            continue
        tokens = hidden[row, positions]
        step = _cache_slice(tokens.shape[0])
        for start in range(0, vocab, step):
            end = min(start + step, vocab)
            logits = (tokens @ weight[start:end].T).to(pooled.dtype)
            if bias is not None:
                logits += bias[start:end]
            pooled[row, start:end], argmax[row, start:end] = logits.max(dim=0)
        argmax[row] = positions[argmax[row]]


def max_pooled_projection(hidden: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                          bias: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable max-pooled MLM logits ``[B, V]``; see :class:`MaxPooledProjection`."""
    return MaxPooledProjection.apply(hidden, mask, weight, bias)


def pooled_mlm_logits(model: torch.nn.Module, **inputs: torch.Tensor) -> torch.Tensor:
    """Differentiable max over real tokens of a masked LM's logits, ``[B, V]``, for training.

    ``activate(pooled_mlm_logits(model, **batch), name)`` equals the SPLADE vectors of
    ``activate(model(**batch).logits, name)`` max-pooled over ``attention_mask``, gradients included, without the
    ``B × L × V`` activations in memory.
    """
    decoder = output_layer(model)
    hidden = mlm_hidden(model, **inputs)
    return max_pooled_projection(hidden, inputs["attention_mask"], decoder.weight, decoder.bias)


def bf16_screen_available() -> bool:
    """True on CPUs with bfloat16 matrix units (AMX or AVX512-BF16), where the bf16 screen pays off."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


class SparseMaxHead:
    """Inference: per document, the vocabulary entries whose max-pooled MLM logit is positive.

    Only those survive any activation of :mod:`encode.activations` (all are zero for ``x <= 0``), so they are the
    whole document vector. Each document is processed alone (padding never enters a product) in vocabulary slices
    sized to stay in cache, reducing each slice with ``amax`` as soon as it is computed.

    ``compute_dtype``: dtype of the products (default: the decoder's, float32); float16/bfloat16 on GPUs trade exactness
    for speed, the max is still taken in float32. ``screen`` (float32 only; default: on for CPUs with bf16 matrix
    units) makes the float32 result 2-3x faster there without changing it: see :meth:`candidates`.

    ``vocabulary`` (ids): compute only these entries of the vocabulary (the others are reported as zero). Every
    entry kept is the same as without it; what a document's vector holds outside it is simply never computed, which
    is exact for anything that reads only those entries (scores against queries made of them), not for a document's
    length. Ids returned are still ids of the whole vocabulary.
    """

    def __init__(self, decoder: torch.nn.Linear, compute_dtype: torch.dtype | None = None, screen: bool | None = None,
                 vocabulary=None):
        weight = decoder.weight.detach()
        bias = decoder.bias
        bias = (bias.detach() if bias is not None else torch.zeros_like(weight[:, 0])).float()
        #: rows of the whole decoder (the size of the vocabulary), whether or not ``vocabulary`` keeps them all
        self.vocab_size = weight.shape[0]
        self.kept: torch.Tensor | None = None
        if vocabulary is not None:
            kept = torch.as_tensor(sorted(set(int(i) for i in vocabulary)), dtype=torch.long)
            if len(kept) and not (0 <= int(kept[0]) and int(kept[-1]) < self.vocab_size):
                raise ValueError(f"vocabulary ids must lie in [0, {self.vocab_size}), got {int(kept[0])}..{int(kept[-1])}")
            self.kept = kept.to(weight.device)
            weight, bias = weight[self.kept], bias[self.kept]
        self.weight, self.bias = weight, bias
        self.compute_dtype = compute_dtype or self.weight.dtype
        exact = self.compute_dtype == torch.float32
        if screen is None:
            screen = exact and self.weight.device.type == "cpu" and bf16_screen_available()
        if screen and not exact:
            raise ValueError("screen=True needs float32 products (it makes the float32 result faster, not approximate)")
        self.screen = screen
        self._weight = self.weight.to(self.compute_dtype)
        if screen:
            self._screen_weight = self._augment(self.weight.float(), self.bias + _SLACK * self.bias.abs() + _TINY,
                                                self.weight.float().norm(dim=1))

    def __call__(self, hidden: torch.Tensor, mask: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``hidden [B, L, H]``, ``mask [B, L]`` -> per document ``(vocabulary ids, max logits)``, positives only."""
        keep = mask.bool()
        return [self.positive(hidden[b][keep[b]]) for b in range(hidden.shape[0])]

    def positive(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``tokens [L, H]`` (real tokens only) -> ``(ids, values)`` of the entries with ``max_t logit > 0``."""
        if tokens.shape[0] == 0 or self.weight.shape[0] == 0:
            device = self.weight.device
            return torch.empty(0, dtype=torch.long, device=device), torch.empty(0, device=device)
        if self.screen:
            tokens = tokens.float()
            ids = self.candidates(tokens)
            pooled = (tokens @ self._weight[ids].T).amax(dim=0) + self.bias[ids]
        else:
            vocab = self.weight.shape[0]
            step = _cache_slice(tokens.shape[0]) if tokens.is_cpu else vocab
            tokens = tokens.to(self.compute_dtype)
            pooled = torch.cat([(tokens @ self._weight[start:start + step].T).amax(dim=0).float()
                                for start in range(0, vocab, step)]) + self.bias
            ids = torch.arange(vocab, device=pooled.device)
        found = pooled > 0
        ids = ids[found]
        return (ids if self.kept is None else self.kept[ids]), pooled[found]

    def candidates(self, tokens: torch.Tensor) -> torch.Tensor:
        """Ids ``v`` that may have ``max_t tokens[t] · W[v] + b[v] > 0`` (a superset, found with bf16 products).

        One bf16 product decides the sign of ``tokens[t] · W[v] + b[v] + slack`` with two extra columns
        (``[h, 1, c·||h||] · [W[v], b[v] + c·|b[v]|, ||W[v]||]``, padded to a multiple of 32 for the matrix units),
        and the max over tokens is an integer ``amax`` of the bf16 bit patterns (positive floats order like
        positive int16; every negative float is a negative int16). bf16 rounds each input with unit roundoff
        ``u = 2**-8``, so the product errs by at most ``~2u ||h|| ||W[v]||`` (float32 accumulation adds ~H·2**-24);
        the slack ``c = 2**-6 = 4u`` also covers the rounding of the extra columns, so every entry with a positive
        float32 max stays a candidate. Candidates are then recomputed in float32 (typically ~2% of the vocabulary).
        """
        norms = tokens.norm(dim=1)
        # Zero rows (products exactly 0, never > 0) round the row count up: oneDNN caches one kernel per shape.
        rows = -(-tokens.shape[0] // _ROW_BUCKET) * _ROW_BUCKET
        screen = self._augment(tokens, torch.ones_like(norms), _SLACK * norms, rows)
        vocab = self._screen_weight.shape[0]
        step = max(_MIN_VOCAB_SLICE, _SCREEN_SLICE_ELEMENTS // rows)
        hits = torch.cat([(screen @ self._screen_weight[start:start + step].T).view(torch.int16).amax(dim=0) > 0
                          for start in range(0, vocab, step)])
        return hits.nonzero().squeeze(1)

    @staticmethod
    def _augment(matrix: torch.Tensor, first: torch.Tensor, second: torch.Tensor, rows: int | None = None):
        """``[matrix, first, second, 0...]`` in bf16, zero rows up to ``rows``, width a multiple of 32 (AMX tiles)."""
        count, width = matrix.shape
        out = matrix.new_zeros(rows or count, -(-(width + 2) // 32) * 32)
        out[:count, :width] = matrix
        out[:count, width] = first
        out[:count, width + 1] = second
        return out.to(torch.bfloat16)
