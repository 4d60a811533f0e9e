"""Document vectors as Anserini ``JsonVectorCollection`` files: sharded, resumable, one forward pass per document.

Layout of an output directory (the ``-input`` of ``IndexCollection -collection JsonVectorCollection``)::

    DIR/part-00000.jsonl      {"id": "4983", "contents": "...", "vector": {"cerebral": 231, "##ing": 12, ...}}
    DIR/part-00001.jsonl      documents part_size .. 2*part_size-1 of the corpus stream
    DIR/metadata.json         sidecar: model, activation, factor, counts (``metadata.shard-I-of-N.json`` per shard)

The sidecar exists only once every part of the run is written (it is written last; while a run is under way its
settings sit in ``metadata.in-progress.json``, so a resumed run can check them), so its presence means "complete";
read it with :func:`read_metadata` (reading and verifying a folder: :mod:`encode.collection`). Anserini's collection reader opens every file of ``-input`` and logs an error for
these two JSON files (the documents are still all indexed); :func:`index.anserini.build_impact_index` hands it the
parts only.

- Part ``k`` holds documents ``k*part_size .. (k+1)*part_size - 1`` of the corpus, whatever the sharding.
- Each part is written atomically and recorded in the sidecar with the fingerprint of its documents (ids and
  texts) and of its own bytes: a killed run resumes by keeping the parts whose documents and bytes are unchanged
  and encoding the others again (an edited document never keeps its old vector); the sidecar's settings (model
  fingerprint, activation, max length, precision, device, factor) must match this run's.
- ``shard=(i, n)`` writes only parts ``k`` with ``k % n == i``: ``n`` machines split a corpus without coordinating,
  and the union of their parts is the whole collection. :func:`check_complete` verifies a folder holds every
  shard and part of one encoding, unchanged (the index step calls it).
- A folder is locked while it is written (:func:`kit.io.exclusive`): a second writer stops with one line.
- A document with blank text is kept with an empty vector and counted in ``empty_docs`` (as is one whose weights all
  quantize to 0). Anserini skips such documents and reports them as ``empty``.
- ``activations=[...]`` encodes each document once and writes one directory per activation: the inference-free
  ``relu`` and ``l0`` systems of the paper share the forward pass (only the pooled logits are activated differently).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import kit
from encode.activations import check_activation
from encode.collection import (_RESUME_KEYS, DocLike, PathLike, _check_shard, _chunks, _load_sidecar, _progress_path,
                               metadata_path, part_inputs, part_name)
from encode.collection import check_complete, check_inputs, read_metadata, read_vectors  # noqa: F401 (re-exported)
from encode.quantize import MAX_EMPTY_SHARE, ImpactOverflow, check_document_total, check_factor, quantize
from kit.errors import InputError
from kit.fingerprint import file_sha256
from kit.io import atomic_write, exclusive, write_json


def write_vectors(docs: Iterable[DocLike], encoder, out_dir: PathLike | Mapping[str, PathLike], factor: float = 100,
                  shard: tuple[int, int] = (0, 1), part_size: int = 10_000, activations: Sequence[str] | None = None,
                  show_progress: bool = True, total: int | None = None, allow_empty: bool = False) -> dict:
    """Encode ``docs`` (objects with ``.doc_id`` and ``.text``) and write quantized vectors in Anserini's format.

    ``encoder`` is a :class:`~encode.doc_encoder.SpladeDocEncoder` (anything with ``encode_raw``, ``weights``,
    ``activation``, ``model_name``, ``max_length``, ``dtype`` and ``batch_size``; ``fingerprint`` and ``device``
    when it has them). Output directories:

    - ``out_dir`` a path, ``activations`` None: the encoder's activation into ``out_dir``;
    - ``out_dir`` a path, ``activations`` a list: each activation into ``out_dir/<activation>``;
    - ``out_dir`` a mapping ``{activation: directory}`` (``activations``, if given, must name the same keys).

    Every output directory is locked while it is written (a second writer stops with one line). A part already on
    disk is kept only when its documents (ids and texts) and its bytes are the ones recorded when it was written;
    otherwise it is encoded again. Returns the sidecar's content: one dict for a single path, else
    ``{activation: dict}``. ``total`` (the number of documents, if known) only sizes the progress bar.

    More than :data:`MAX_EMPTY_SHARE` of the documents with an empty vector is an InputError (a broken model, an
    unreadable corpus or a factor that rounds every weight to 0), raised after the parts are written but before the
    sidecar, so the encoding stays unfinished; ``allow_empty`` accepts it (re-running with it keeps the parts), and
    an encoder computing only some vocabulary entries (``whole_vectors`` False) is not checked.
    """
    targets = _targets(out_dir, activations, encoder.activation)
    index, count = _check_shard(shard)
    if part_size < 1:
        raise ValueError(f"part_size must be positive, not {part_size}")
    factor = check_factor(factor)
    settings = {name: _settings(encoder, name, factor, part_size, (index, count)) for name in targets}
    with contextlib.ExitStack() as locks:
        for directory in targets.values():
            locks.enter_context(exclusive(directory, "encoding"))
        return _write_locked(docs, encoder, targets, settings, factor, (index, count), part_size, show_progress,
                             total, single=not (isinstance(out_dir, Mapping) or activations is not None),
                             allow_empty=allow_empty)


def _write_locked(docs, encoder, targets: dict[str, Path], settings: dict[str, dict], factor: float,
                  shard: tuple[int, int], part_size: int, show_progress: bool, total: int | None, single: bool,
                  allow_empty: bool = False):
    index, count = shard
    records: dict[str, dict[str, dict]] = {}
    for name, directory in targets.items():
        previous = {}
        for path in (metadata_path(directory, shard), _progress_path(directory, shard)):
            _check_resume(path, settings[name])
            previous.update((_load_sidecar(path) or {}).get("part_records") or {})
        records[name] = previous
        _save_progress(directory, shard, settings[name], previous)
        metadata_path(directory, shard).unlink(missing_ok=True)  # parts may change: "complete" no longer holds

    from tqdm.auto import tqdm

    num_docs, written, kept = 0, 0, 0
    parts: list[str] = []
    with tqdm(total=total, unit="doc", desc="encode", disable=not show_progress) as bar:
        for k, part in enumerate(_chunks(docs, part_size)):
            if k % count != index:
                bar.update(len(part))
                continue
            num_docs += len(part)
            name_k = part_name(k)
            parts.append(name_k)
            inputs = part_inputs(part)
            paths = {name: Path(directory) / name_k for name, directory in targets.items()}
            pending = [name for name, path in paths.items() if not _part_is_current(path, records[name].get(name_k), inputs)]
            if not pending:
                kept += 1
                bar.update(len(part))
                continue
            vectors = _encode_part(part, encoder, pending, factor, bar)
            for name in pending:
                empty = _write_part(paths[name], part, vectors[name])
                records[name][name_k] = {"docs": len(part), "empty": empty, "inputs": inputs,
                                         "sha256": file_sha256(paths[name])}
                _save_progress(targets[name], shard, settings[name], records[name])
            written += 1

    for name, directory in targets.items():
        empty = sum(records[name][p]["empty"] for p in parts)
        if not allow_empty and getattr(encoder, "whole_vectors", True) and empty > MAX_EMPTY_SHARE * num_docs:
            raise InputError(directory, f"{empty} of {num_docs} documents have an empty vector (model "
                                        f"{encoder.model_name}, {name}; more than {MAX_EMPTY_SHARE:.0%} is refused)",
                             fix="check the model, the corpus texts and the factor; if the documents really are "
                                 "empty, python -m encode --allow-empty accepts them (the parts written are kept)")
    results = {}
    for name, directory in targets.items():
        part_records = {p: records[name][p] for p in parts}
        empty = sum(r["empty"] for r in part_records.values())
        meta = {**settings[name], "num_docs": num_docs, "empty_docs": empty, "parts": parts,
                "part_records": part_records}
        write_json(metadata_path(directory, shard), meta)
        _progress_path(directory, shard).unlink()
        results[name] = meta
        print(f"encode: {directory}: {num_docs} docs ({empty} with an empty vector) in {len(parts)} parts "
              f"({written} written, {kept} already there), shard {index}/{count}, activation {name}")
    return results[encoder.activation] if single else results


def _part_is_current(path: Path, record: dict | None, inputs: str) -> bool:
    """A written part may be kept: it exists, holds these documents, and its bytes are the ones recorded."""
    return (record is not None and path.exists() and record.get("inputs") == inputs
            and record.get("sha256") == file_sha256(path))


def _save_progress(directory: Path, shard: tuple[int, int], settings: dict, records: dict) -> None:
    write_json(_progress_path(directory, shard), {**settings, "part_records": records})


def _targets(out_dir, activations, default: str) -> dict[str, Path]:
    if isinstance(out_dir, Mapping):
        targets = {check_activation(name): Path(directory) for name, directory in out_dir.items()}
        if activations is not None and sorted(activations) != sorted(targets):
            raise ValueError(f"activations {list(activations)} do not match the output directories {list(targets)}")
        return targets
    if activations is None:
        return {default: Path(out_dir)}
    if len(set(activations)) != len(activations) or not activations:
        raise ValueError(f"activations must be distinct and non-empty, not {list(activations)}")
    return {check_activation(name): Path(out_dir) / name for name in activations}


def _settings(encoder, activation: str, factor: float, part_size: int, shard: tuple[int, int]) -> dict:
    """What determines the content of the parts; a resumed run must match it."""
    device = getattr(encoder, "device", "cpu")
    return {"format": "anserini JsonVectorCollection", "model": encoder.model_name,
            "model_fingerprint": getattr(encoder, "fingerprint", None), "encoding": getattr(encoder, "encoding", None),
            "activation": activation,
            "max_length": encoder.max_length, "dtype": str(encoder.dtype).removeprefix("torch."),
            "device": getattr(device, "type", str(device)), "factor": factor, "part_size": part_size,
            "shard": list(shard), "kit_version": kit.__version__, "generated_by": "encode.writer.write_vectors"}


def _check_resume(path: Path, settings: dict) -> None:
    old = _load_sidecar(path) or {}
    for key in _RESUME_KEYS:
        if key in old and old[key] != settings[key]:
            raise InputError(path, f"the vectors here were written with {key}={old[key]!r}, this run has "
                                   f"{settings[key]!r}", fix="write to a new output directory or delete the old one")


def _encode_part(part: list[DocLike], encoder, activations: list[str], factor: float, bar) -> dict[str, list[dict]]:
    """Quantized vectors of one part for each activation; blank documents get ``{}`` without a forward pass."""
    vectors = {name: [{} for _ in part] for name in activations}
    todo = [i for i, doc in enumerate(part) if doc.text.strip()]
    bar.update(len(part) - len(todo))
    step = encoder.batch_size * 16  # enough documents per call for length sorting to pay off
    for start in range(0, len(todo), step):
        rows = todo[start:start + step]
        for i, raw in zip(rows, encoder.encode_raw([part[i].text for i in rows])):
            for name in activations:
                try:
                    vectors[name][i] = quantize(encoder.weights(raw, name), factor)
                    check_document_total(vectors[name][i])
                except ValueError as err:  # an impact Anserini cannot store, or a non-finite weight
                    fix = ("lower --factor (recipe: factor)" if isinstance(err, ImpactOverflow) or "sum" in str(err)
                           else "the model produced an invalid weight; check the model and its precision (--dtype)")
                    raise InputError(None, f"document {part[i].doc_id!r} ({name}): {err}", fix=fix) from None
        bar.update(len(rows))
    return vectors


def _write_part(path: Path, part: list[DocLike], vectors: list[dict]) -> int:
    """Write one part atomically; return how many of its vectors are empty."""
    with atomic_write(path) as fh:
        for doc, vector in zip(part, vectors):
            fh.write(json.dumps({"id": doc.doc_id, "contents": doc.text, "vector": vector}, ensure_ascii=False))
            fh.write("\n")
    return sum(not vector for vector in vectors)
