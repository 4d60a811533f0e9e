"""Document vectors as Anserini ``JsonVectorCollection`` files: sharded, resumable, one forward pass per document.

Layout of an output directory (the ``-input`` of ``IndexCollection -collection JsonVectorCollection``)::

    DIR/part-00000.jsonl      {"id": "4983", "contents": "...", "vector": {"cerebral": 231, "##ing": 12, ...}}
    DIR/part-00001.jsonl      documents part_size .. 2*part_size-1 of the corpus stream
    DIR/metadata.json         sidecar: model, activation, factor, counts (``metadata.shard-I-of-N.json`` per shard)

The sidecar exists only once every part of the run is written (it is written last; while a run is under way its
settings sit in ``metadata.in-progress.json``, so a resumed run can check them), so its presence means "complete";
read it with :func:`read_metadata`. Anserini's collection reader opens every file of ``-input`` and logs an error for
these two JSON files (the documents are still all indexed); :func:`index.anserini.build_impact_index` hands it the
parts only.

- Part ``k`` holds documents ``k*part_size .. (k+1)*part_size - 1`` of the corpus, whatever the sharding.
- Each part is written atomically, so an existing part is complete: a killed run resumes by skipping them
  (their document ids are checked against the corpus, and the sidecar's settings against this run's).
- ``shard=(i, n)`` writes only parts ``k`` with ``k % n == i``: ``n`` machines split a corpus without coordinating,
  and the union of their parts is the whole collection.
- A document with blank text is kept with an empty vector and counted in ``empty_docs`` (as is one whose weights all
  quantize to 0). Anserini skips such documents and reports them as ``empty``.
- ``activations=[...]`` encodes each document once and writes one directory per activation: the inference-free
  ``relu`` and ``l0`` systems of the paper share the forward pass (only the pooled logits are activated differently).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Protocol, Sequence

from encode.activations import check_activation
from encode.quantize import quantize
import kit
from kit.errors import InputError
from kit.io import atomic_write, read_jsonl, write_json

PathLike = str | os.PathLike


class DocLike(Protocol):
    doc_id: str
    text: str


def part_name(k: int) -> str:
    """File name of part ``k``."""
    return f"part-{k:05d}.jsonl"


def metadata_path(out_dir: PathLike, shard: tuple[int, int] = (0, 1)) -> Path:
    """The sidecar of a finished encoding of ``out_dir`` (by ``shard`` when the corpus was split)."""
    index, count = _check_shard(shard)
    return Path(out_dir) / ("metadata.json" if count == 1 else f"metadata.shard-{index}-of-{count}.json")


def _progress_path(out_dir: PathLike, shard: tuple[int, int]) -> Path:
    """The settings of a run under way (replaced by :func:`metadata_path` when it finishes)."""
    path = metadata_path(out_dir, shard)
    return path.with_name(path.stem + ".in-progress.json")


def write_vectors(docs: Iterable[DocLike], encoder, out_dir: PathLike | Mapping[str, PathLike], factor: float = 100,
                  shard: tuple[int, int] = (0, 1), part_size: int = 10_000, activations: Sequence[str] | None = None,
                  show_progress: bool = True, total: int | None = None) -> dict:
    """Encode ``docs`` (objects with ``.doc_id`` and ``.text``) and write quantized vectors in Anserini's format.

    ``encoder`` is a :class:`~encode.doc_encoder.SpladeDocEncoder` (anything with ``encode_raw``, ``weights``,
    ``activation``, ``model_name``, ``max_length``, ``dtype`` and ``batch_size``). Output directories:

    - ``out_dir`` a path, ``activations`` None: the encoder's activation into ``out_dir``;
    - ``out_dir`` a path, ``activations`` a list: each activation into ``out_dir/<activation>``;
    - ``out_dir`` a mapping ``{activation: directory}`` (``activations``, if given, must name the same keys).

    Returns the sidecar's content: one dict for a single path, else ``{activation: dict}``. ``total`` (the number of
    documents, if known) only sizes the progress bar.
    """
    targets = _targets(out_dir, activations, encoder.activation)
    index, count = _check_shard(shard)
    if part_size < 1:
        raise ValueError(f"part_size must be positive, not {part_size}")
    if not (factor > 0):
        raise ValueError(f"factor must be positive, not {factor}")
    settings = {name: _settings(encoder, name, factor, part_size, (index, count)) for name in targets}
    for name, directory in targets.items():
        for path in (metadata_path(directory, shard), _progress_path(directory, shard)):
            _check_resume(path, settings[name])
        write_json(_progress_path(directory, shard), settings[name])
        metadata_path(directory, shard).unlink(missing_ok=True)  # parts may change: "complete" no longer holds

    from tqdm.auto import tqdm

    num_docs, written, kept = 0, 0, 0
    parts: list[str] = []
    empty = dict.fromkeys(targets, 0)
    with tqdm(total=total, unit="doc", desc="encode", disable=not show_progress) as bar:
        for k, part in enumerate(_chunks(docs, part_size)):
            if k % count != index:
                bar.update(len(part))
                continue
            num_docs += len(part)
            parts.append(part_name(k))
            paths = {name: Path(directory) / part_name(k) for name, directory in targets.items()}
            pending = [name for name, path in paths.items() if not path.exists()]
            for name in paths.keys() - set(pending):
                empty[name] += _check_existing_part(paths[name], part)
            if not pending:
                kept += 1
                bar.update(len(part))
                continue
            vectors = _encode_part(part, encoder, pending, factor, bar)
            for name in pending:
                empty[name] += _write_part(paths[name], part, vectors[name])
            written += 1

    results = {}
    for name, directory in targets.items():
        meta = {**settings[name], "num_docs": num_docs, "empty_docs": empty[name], "parts": parts}
        write_json(metadata_path(directory, shard), meta)
        _progress_path(directory, shard).unlink()
        results[name] = meta
        print(f"encode: {directory}: {num_docs} docs ({empty[name]} with an empty vector) in {len(parts)} parts "
              f"({written} written, {kept} already there), shard {index}/{count}, activation {name}")
    return results if isinstance(out_dir, Mapping) or activations is not None else results[encoder.activation]


def read_vectors(path: PathLike) -> Iterator[tuple[str, dict[str, int]]]:
    """Yield ``(doc_id, {token: int weight})`` from a vectors directory (its ``*.jsonl`` parts) or one JSONL file.

    Every record is validated: a missing field, a non-integer or negative weight or a repeated id raises
    :class:`~kit.errors.InputError` naming the file and line.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl")) + sorted(path.glob("*.jsonl.gz"))
        if not files:
            raise InputError(path, "no *.jsonl vector files in this directory",
                             fix="point to a directory written by `python -m encode`")
    elif path.exists():
        files = [path]
    else:
        raise InputError(path, "not found", fix="check the path")
    seen: set[str] = set()
    for file in files:
        for lineno, record in read_jsonl(file, required=("id", "vector")):
            doc_id, vector = record["id"], record["vector"]
            if not isinstance(doc_id, str):
                raise InputError(file, f"id {doc_id!r} is not a string", lineno, fix='write ids as JSON strings ("7")')
            if not isinstance(vector, dict):
                raise InputError(file, "'vector' is not an object", lineno, fix='write {"token": weight, ...}')
            for token, weight in vector.items():
                if type(weight) is not int or weight < 0:
                    raise InputError(file, f"weight {weight!r} of {token!r} is not a non-negative integer", lineno,
                                     fix="quantize the weights (encode.quantize)")
            if doc_id in seen:
                raise InputError(file, f"document id {doc_id!r} appears twice", lineno,
                                 fix="each document must be written once; check the shards")
            seen.add(doc_id)
            yield doc_id, vector


def read_metadata(out_dir: PathLike, shard: tuple[int, int] = (0, 1)) -> dict:
    """The sidecar of a finished encoding; InputError if the encoding is missing or unfinished, or it is malformed."""
    path = metadata_path(out_dir, shard)
    meta = _load_sidecar(path)
    if meta is None:
        if _progress_path(out_dir, shard).exists():
            raise InputError(path, "not written: the encoding did not finish",
                             fix="re-run the same command; it resumes")
        raise InputError(path, "not found", fix=f"encode the corpus first (python -m encode ... --output {out_dir})")
    return meta


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and count >= 1 and 0 <= index < count):
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, not {shard!r}")
    return index, count


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
    return {"format": "anserini JsonVectorCollection", "model": encoder.model_name, "activation": activation,
            "max_length": encoder.max_length, "dtype": str(encoder.dtype).removeprefix("torch."), "factor": factor,
            "part_size": part_size, "shard": list(shard), "kit_version": kit.__version__,
            "generated_by": "encode.writer.write_vectors"}


_RESUME_KEYS = ("model", "activation", "max_length", "dtype", "factor", "part_size", "shard")


def _load_sidecar(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc.msg})", exc.lineno,
                         fix="delete this sidecar and the vectors beside it, or write elsewhere") from None
    if not isinstance(meta, dict):
        raise InputError(path, "not a JSON object", fix="delete this sidecar and the vectors beside it")
    return meta


def _check_resume(path: Path, settings: dict) -> None:
    old = _load_sidecar(path) or {}
    for key in _RESUME_KEYS:
        if key in old and old[key] != settings[key]:
            raise InputError(path, f"the vectors here were written with {key}={old[key]!r}, this run has "
                                   f"{settings[key]!r}", fix="write to a new output directory or delete the old one")


def _chunks(docs: Iterable[DocLike], size: int) -> Iterator[list[DocLike]]:
    it = iter(docs)
    while part := list(itertools.islice(it, size)):
        yield part


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
                vectors[name][i] = quantize(encoder.weights(raw, name), factor)
        bar.update(len(rows))
    return vectors


def _write_part(path: Path, part: list[DocLike], vectors: list[dict]) -> int:
    """Write one part atomically; return how many of its vectors are empty."""
    with atomic_write(path) as fh:
        for doc, vector in zip(part, vectors):
            fh.write(json.dumps({"id": doc.doc_id, "contents": doc.text, "vector": vector}, ensure_ascii=False))
            fh.write("\n")
    return sum(not vector for vector in vectors)


def _check_existing_part(path: Path, part: list[DocLike]) -> int:
    """An existing part must hold exactly this part's documents; return how many of its vectors are empty."""
    ids, empty = [], 0
    for _, record in read_jsonl(path, required=("id", "vector")):
        ids.append(record["id"])
        empty += not record["vector"]
    expected = [doc.doc_id for doc in part]
    if ids != expected:
        raise InputError(path, f"holds {len(ids)} documents starting {ids[:1]}, the corpus has {len(expected)} "
                               f"starting {expected[:1]} at this position",
                         fix="the corpus or --part-size changed; write to a new output directory or delete this one")
    return empty
