"""IDF-SPLADE-doc document encoder: an MLM, max pooling over tokens and a log-saturated activation.

Paper eq. 1 without its IDF factor (the kit puts IDF on the query side, as the inference-free setting does)::

    w_j = max_{i : attention_mask_i = 1} act(x_ij)

over every real token ``i`` of the (truncated) document, ``[CLS]`` and ``[SEP]`` included, padding excluded, with
``act`` one of :data:`encode.activations.ACTIVATIONS` (``relu`` for SPLADE, ``l0`` for eq. 6). The vocabulary-sized
logits are never materialised: see :mod:`encode.sparse_head`. The encoder does no file I/O and no quantization.
"""

from __future__ import annotations

import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from encode.activations import activate, check_activation
from encode.sparse_head import SparseMaxHead, mlm_hidden, output_layer
from kit.errors import InputError
from kit.fingerprint import digest, model_fingerprint
from kit.hub import load_masked_lm, load_tokenizer, local_model_dir
from kit.io import load_json

#: What a document vector is, beyond the model and the activation: part of every cache key of encoded vectors, so a
#: change here never serves vectors encoded the old way.
ENCODING = "max-pooled MLM logits over real tokens, activation, special tokens dropped"


def restricted_encoding(vocabulary: Sequence[int]) -> str:
    """:data:`ENCODING` of vectors computed over ``vocabulary`` only (a digest of the ids names the set)."""
    ids = sorted(set(int(i) for i in vocabulary))
    return f"{ENCODING}; only the {len(ids)} vocabulary ids {digest(ids)[:16]}"


RawVector = tuple[np.ndarray, np.ndarray]
"""``(vocabulary ids, max raw logits)`` of one document, entries with a positive logit only, ids ascending."""

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None -> float16 autocast on CUDA, exact float32 elsewhere; names and torch dtypes are validated."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(_DTYPES)}")
        return _DTYPES[dtype]
    if dtype not in _DTYPES.values():
        raise ValueError(f"unsupported dtype {dtype}; choose one of {', '.join(_DTYPES)}")
    return dtype


def resolve_precision(device: str | torch.device | None = None, dtype: str | torch.dtype | None = None
                      ) -> tuple[str, str]:
    """``(device type, dtype name)`` an encoder built with these arguments computes in (what changes its numbers,
    and so what every cache key of its vectors includes), without loading a model."""
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return device.type, str(_resolve_dtype(dtype, device)).removeprefix("torch.")


class SpladeDocEncoder:
    """Encode documents into SPLADE vectors ``{token: weight}``.

    Args:
        model: a short name known to :func:`kit.models.resolve_model` (``splade-tiny``), a Hugging Face id or local
            path, or an already loaded masked-LM module (then pass ``tokenizer`` too).
        activation: one of :data:`~encode.activations.ACTIVATIONS`.
        max_length: documents are truncated to this many tokens, special tokens included (the paper uses 512).
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
        dtype: ``float32`` (exact), ``float16`` or ``bfloat16`` (autocast); default float16 on CUDA, float32 elsewhere.
        batch_size: documents per forward pass; each :meth:`encode_raw` call sorts its texts by length first, so
            batches carry little padding.
        tokenizer: the model's tokenizer, required when ``model`` is a module.
        screen: see :class:`~encode.sparse_head.SparseMaxHead` (default: automatic; results are identical).
        vocabulary: token ids; compute only these entries of each document vector (see
            :class:`~encode.sparse_head.SparseMaxHead`). Exact for retrieval with queries made of these tokens, and
            10-50x less work for the MLM decoder, but the vectors are not the documents' whole vectors (no Doc_Len
            or FLOPS from them): :attr:`encoding` says so, and with it every cache key and metadata file.
    """

    def __init__(self, model: str | torch.nn.Module = "splade-tiny", activation: str = "relu", max_length: int = 512,
                 device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                 batch_size: int = 32, *, tokenizer=None, screen: bool | None = None,
                 vocabulary: Sequence[int] | None = None):
        self.activation = check_activation(activation)
        self.encoding = ENCODING if vocabulary is None else restricted_encoding(vocabulary)
        #: False when only ``vocabulary``'s entries are computed: then a document sharing none of them is empty by design
        self.whole_vectors = vocabulary is None
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 (room for [CLS] and [SEP]), not {max_length}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _resolve_dtype(dtype, self.device)

        self.model_path: Path | None = None
        if isinstance(model, (str, os.PathLike)):
            self.model_name = str(model)
            self.model_path = local_model_dir(str(model))
            config = self.model_path / "config.json"
            positions = load_json(config, fix="save the model again with save_pretrained")
            positions = positions.get("max_position_embeddings") if isinstance(positions, dict) else None
            if isinstance(positions, int) and max_length > positions:  # before the weights load
                raise InputError(config, f"max length {max_length} exceeds the model's {positions} positions",
                                 fix=f"use a max length of at most {positions} (--max-length, recipe: max_length)")
            tokenizer = tokenizer or load_tokenizer(str(model))
            model = load_masked_lm(str(model))
        elif tokenizer is None:
            raise ValueError("pass the tokenizer along with an already loaded model")
        else:
            self.model_name = getattr(getattr(model, "config", None), "name_or_path", "") or type(model).__name__
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        if positions is not None and max_length > positions:
            raise ValueError(f"max_length {max_length} exceeds the model's {positions} positions")
        self.tokenizer = tokenizer
        self.model = model.to(self.device).eval()
        self.head = SparseMaxHead(output_layer(self.model), compute_dtype=self.dtype, screen=screen,
                                  vocabulary=vocabulary)
        self.vocab: list[str] = tokenizer.convert_ids_to_tokens(list(range(self.head.vocab_size)))
        self._special_ids = np.array(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)
        if any(token is None for token in self.vocab):
            message = f"the tokenizer knows fewer tokens than the model's {len(self.vocab)} outputs"
            if self.model_path is None:
                raise ValueError(message)
            raise InputError(self.model_path, message, fix="the folder's tokenizer must be the model's own")
        self._check_weights()

    def _check_weights(self) -> None:
        """InputError unless the MLM decoder's weights are finite. A NaN logit fails the head's "max > 0" test, so NaN
        there would only empty the vectors; NaN anywhere before it reaches the hidden states, which every batch checks
        (:meth:`_encode_batch`). A float64 sum propagates NaN and inf and cannot overflow: one pass, once per model."""
        decoder = output_layer(self.model)
        for name, tensor in (("weight", decoder.weight), ("bias", decoder.bias)):
            if tensor is not None and not torch.isfinite(tensor.detach().sum(dtype=torch.float64)):
                raise InputError(self._where, f"the model's weights are not finite (NaN or inf in its output layer's "
                                              f"{name})",
                                 fix="use an intact model: re-export or re-download it (a diverged training run?)")

    @property
    def _where(self) -> str:
        """How an error names the model: its folder, else its name."""
        return str(self.model_path) if self.model_path is not None else f"model {self.model_name!r}"

    @functools.cached_property
    def fingerprint(self) -> str:
        """Digest of the model's files (weights, config, tokenizer), or of its parameters and vocabulary when it was
        passed in already loaded: part of every cache key of the vectors it encodes."""
        if self.model_path is not None:
            return model_fingerprint(self.model_path)
        import hashlib

        sha = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            sha.update(name.encode())
            sha.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return digest({"parameters": sha.hexdigest(), "vocab": self.vocab})

    def encode_raw(self, texts: Sequence[str], show_progress: bool = False) -> list[RawVector]:
        """Max-pooled raw MLM logits of each text (positive entries only), in input order.

        On CPU, batches run concurrently, one per torch thread, each single-threaded: the many small per-document
        products of the head parallelise badly inside one operation, and whole batches never wait on each other.
        """
        texts = list(texts)
        if not texts:
            return []
        encoded = self.tokenizer(texts, max_length=self.max_length, truncation=True)
        workers = torch.get_num_threads() if self.device.type == "cpu" else 1
        batches = self._batches([len(ids) for ids in encoded["input_ids"]], workers)
        run = functools.partial(self._encode_batch, encoded)
        results: list[RawVector | None] = [None] * len(texts)
        from tqdm.auto import tqdm

        with contextlib.ExitStack() as stack:
            bar = stack.enter_context(tqdm(total=len(texts), unit="doc", disable=not show_progress))
            outputs = map(run, batches)
            if workers > 1 and len(batches) > 1:
                pool = stack.enter_context(ThreadPoolExecutor(min(workers, len(batches)),
                                                              initializer=torch.set_num_threads, initargs=(1,)))
                outputs = pool.map(run, batches)
            for batch_ids, raws in zip(batches, outputs):
                for i, raw in zip(batch_ids, raws):
                    results[i] = raw
                bar.update(len(batch_ids))
        return results  # type: ignore[return-value]

    def weights(self, raw: RawVector, activation: str | None = None) -> dict[str, float]:
        """``{token: weight}`` from one :meth:`encode_raw` result (default: this encoder's activation), without the
        tokenizer's special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]), as the released models' reference code
        zeroes them (``values[:, special_token_ids] = 0``): no query ever holds them, so they could only inflate
        Doc_Len and the index."""
        ids, values = raw
        keep = ~np.isin(ids, self._special_ids)
        ids, values = ids[keep], values[keep]
        weights = activate(torch.from_numpy(values), activation or self.activation).tolist()
        return {self.vocab[i]: w for i, w in zip(ids.tolist(), weights) if w > 0}

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> list[dict[str, float]]:
        """``{token: weight}`` per text (non-zero weights only, activation applied, not quantized)."""
        return [self.weights(raw) for raw in self.encode_raw(texts, show_progress=show_progress)]

    def _batches(self, lengths: list[int], workers: int) -> list[list[int]]:
        """Text indices per batch, longest first, smaller batches if that gives every worker one.

        Sorting by length keeps padding low and brings any out-of-memory error to the first batch.
        """
        order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
        size = min(self.batch_size, -(-len(order) // workers))
        return [order[start:start + size] for start in range(0, len(order), size)]

    def _encode_batch(self, encoded, batch_ids: list[int]) -> list[RawVector]:
        """Pad one batch, run the model up to the MLM decoder's input, and max-pool through the fast head."""
        keys = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoded]
        batch = self._pad([[encoded[key][i] for i in batch_ids] for key in keys], keys)
        with torch.inference_mode():
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
                hidden = mlm_hidden(self.model, **batch)
            # NaN never passes the head's "max > 0" test: it would turn into silently empty vectors.
            if not torch.isfinite(hidden).all():
                raise InputError(self._where, f"the model's activations are not finite (NaN or inf; "
                                              f"{str(self.dtype)[6:]}, a batch of {len(batch_ids)} document(s))",
                                 fix="check the model's weights" + (", or compute in float32 (--dtype float32)"
                                                                    if self.dtype != torch.float32 else ""))
            return [(ids.cpu().numpy(), values.float().cpu().numpy())
                    for ids, values in self.head(hidden, batch["attention_mask"])]

    def _pad(self, columns: list[list[list[int]]], keys: list[str]) -> dict[str, torch.Tensor]:
        """Right-pad one batch: ``input_ids`` with the pad token, masks and segment ids with 0."""
        width = max(len(row) for row in columns[0])
        batch = {}
        for key, rows in zip(keys, columns):
            fill = self.tokenizer.pad_token_id if key == "input_ids" else 0
            tensor = torch.full((len(rows), width), fill, dtype=torch.long)
            for i, row in enumerate(rows):
                tensor[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            batch[key] = tensor.to(self.device)
        return batch

    def __repr__(self) -> str:
        return (f"SpladeDocEncoder(model={self.model_name!r}, activation={self.activation!r}, "
                f"max_length={self.max_length}, device={str(self.device)!r}, dtype={str(self.dtype)[6:]!r})")
