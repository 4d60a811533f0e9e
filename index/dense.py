"""Dense baseline: a sentence-transformers bi-encoder and a flat (exact) inner-product faiss index.

Table 1 of the paper ("Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers", SIGIR 2025) has three dense
columns: ColBERTv2, Contriever and TAS-B (Section 5.1.2). Offline, the kit measures the same kind of system with the
bundled all-MiniLM-L6-v2; online, the same code takes the paper's bi-encoders by hub id (``facebook/contriever-msmarco``,
``sentence-transformers/msmarco-distilbert-base-tas-b``; ColBERTv2 is a late-interaction model and out of scope here).

The score is the inner product of the model's own embeddings (``faiss.IndexFlatIP``, exact search): all-MiniLM-L6-v2 ends
with a ``Normalize`` module, so its inner product is the cosine it was trained with; Contriever (mean pooling) and TAS-B
(CLS pooling) were trained with the raw dot product and are used unnormalised, as they were published. A document is
encoded as ``title + " " + text`` (Pyserini's BEIR "flat" text), truncated to the model's ``max_seq_length``.

An encoded corpus is a folder: ``index.faiss`` (the flat index, i.e. the float32 embeddings), ``docids.txt`` (one id per
row, in index order) and ``metadata.json`` (model, dimension, count, max length, seconds); it is written atomically.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from kit.io import atomic_dir, atomic_write
from kit.models import resolve_model

if TYPE_CHECKING:
    import faiss
    from sentence_transformers import SentenceTransformer

    from kit.dataset import Doc

CHUNK = 512
"""Documents encoded per call: bounds memory on large corpora (the index holds the vectors, not the texts)."""


def load_encoder(model: str, device: str | None = None, max_length: int | None = None) -> "SentenceTransformer":
    """A SentenceTransformer for an offline short name (:func:`kit.models.resolve_model`), hub id or directory.

    ``max_length`` overrides the model's ``max_seq_length`` (None keeps the model's own).
    """
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(resolve_model(model), device=device)
    if max_length is not None:
        if max_length < 1:
            raise ValueError(f"max_length must be a positive number of tokens, got {max_length}")
        encoder.max_seq_length = max_length
    return encoder


def _embed(encoder: "SentenceTransformer", texts: list[str], batch_size: int):
    import numpy as np

    emb = encoder.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(emb, dtype=np.float32)


def encode_corpus(docs: Iterable["Doc"], encoder: "SentenceTransformer", out_dir: str | Path, *, model: str,
                  batch_size: int = 64, total: int | None = None, show_progress: bool = True) -> dict:
    """Encode a document stream into a flat inner-product index folder (see module docstring); returns its metadata."""
    import faiss
    from tqdm import tqdm

    started = time.perf_counter()
    dim = encoder.get_embedding_dimension()
    index = faiss.IndexFlatIP(dim)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp, open(tmp / "docids.txt", "w", encoding="utf-8") as ids, \
            tqdm(total=total, unit="doc", desc=f"dense {model}", disable=not show_progress) as bar:
        stream = iter(docs)
        while chunk := list(itertools.islice(stream, CHUNK)):
            index.add(_embed(encoder, [d.text for d in chunk], batch_size))
            ids.writelines(f"{d.doc_id}\n" for d in chunk)
            bar.update(len(chunk))
        ids.close()
        if index.ntotal == 0:
            raise ValueError("no documents to encode")
        faiss.write_index(index, str(tmp / "index.faiss"))
        meta = {"model": model, "dim": dim, "count": int(index.ntotal), "max_length": encoder.max_seq_length,
                "index": "faiss.IndexFlatIP", "seconds": round(time.perf_counter() - started, 1)}
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def load_index(index_dir: str | Path) -> tuple["faiss.Index", list[str]]:
    """``(faiss index, doc ids in index order)`` of an :func:`encode_corpus` folder."""
    import faiss

    index_dir = Path(index_dir)
    index = faiss.read_index(str(index_dir / "index.faiss"))
    docids = (index_dir / "docids.txt").read_text(encoding="utf-8").splitlines()
    if len(docids) != index.ntotal:
        raise ValueError(f"{index_dir}: {len(docids)} doc ids for {index.ntotal} vectors; delete the folder and re-encode")
    return index, docids


def search(index_dir: str | Path, queries: Mapping[str, str], encoder: "SentenceTransformer", run_path: str | Path, *,
           hits: int = 1000, batch_size: int = 64, tag: str = "dense") -> int:
    """Exact top-``hits`` inner-product search; writes a TREC run (``qid Q0 docid rank score tag``), returns #queries."""
    index, docids = load_index(index_dir)
    qids = list(queries)
    if not qids:
        raise ValueError("no queries to search")
    scores, rows = index.search(_embed(encoder, [queries[q] for q in qids], batch_size), min(hits, index.ntotal))
    with atomic_write(run_path) as fh:
        for qid, q_scores, q_rows in zip(qids, scores, rows):
            for rank, (score, row) in enumerate(zip(q_scores, q_rows), start=1):
                if row >= 0:
                    fh.write(f"{qid} Q0 {docids[row]} {rank} {score:.6f} {tag}\n")
    return len(qids)
