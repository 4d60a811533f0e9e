"""One interface over the kit's two retrieval backends for learned sparse vectors.

- ``anserini``: Lucene impact index, exact ``Σ_t q_t · d_t`` (:mod:`index.anserini`; the ℓ0 paper's setting);
- ``seismic``: Seismic's approximate block-skipping index over the same vectors (:mod:`index.seismic`; the index
  the Li-LSR paper measures with).

Both build from a ``python -m encode`` vectors directory and search with the same quantized query vectors into a
TREC run, so a run of one is directly comparable with a run of the other::

    backend = get_backend("seismic", heap_factor=0.9)
    backend.build("work/scifact/vectors/...", "work/scifact/indexes/seismic")
    backend.search("work/scifact/indexes/seismic", query_vectors, "run.trec", hits=1000, threads=2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from index.anserini import build_impact_index, search_impact
from index.seismic import SeismicParams, build_seismic_index, directory_bytes, search_seismic

BACKENDS = ("anserini", "seismic")


@dataclass(frozen=True)
class Backend:
    """A retrieval backend: ``build(vectors_dir, index_dir)`` and ``search(index_dir, query_vectors, run_path)``.

    ``params`` holds the backend's own options (Seismic: :class:`index.seismic.SeismicParams`; Anserini: none).
    Both methods return the backend's record as a dict; ``search``'s has ``search_seconds``, the time spent
    searching alone (Anserini's from its log, without the JVM start; Seismic's without loading the index).
    """

    name: str
    params: object = field(default=None)

    def build(self, vectors_dir, index_dir, threads: int = 2, overwrite: bool = False,
              require_complete: bool = True) -> dict:
        """Index ``vectors_dir`` (a complete ``python -m encode`` output unless ``require_complete`` is False)."""
        if self.name == "anserini":
            return build_impact_index(vectors_dir, index_dir, threads=threads, overwrite=overwrite,
                                      require_complete=require_complete)

        return build_seismic_index(vectors_dir, index_dir, threads=threads, overwrite=overwrite, params=self.params,
                                   require_complete=require_complete)

    def search(self, index_dir, query_vectors: Mapping[str, Mapping[str, int]], run_path, hits: int = 1000,
               threads: int = 2, remove_query: bool = True) -> dict:
        if self.name == "anserini":
            return search_impact(index_dir, query_vectors, run_path, hits=hits, threads=threads,
                                 remove_query=remove_query)

        return search_seismic(index_dir, query_vectors, run_path, hits=hits, threads=threads,
                              remove_query=remove_query, params=self.params)

    def index_bytes(self, index_dir) -> int:
        """Size of the index on disk (every file under ``index_dir``)."""
        return directory_bytes(Path(index_dir))


def get_backend(name: str, params: Mapping[str, object] | None = None, **overrides: object) -> Backend:
    """The backend called ``name`` (one of :data:`BACKENDS`) with its parameters.

    ``params`` (e.g. a recipe's ``seismic:`` block) and keyword ``overrides`` (None = not given, as from a CLI flag)
    set Seismic's :class:`~index.seismic.SeismicParams`; Anserini takes none.

    Raises:
        ValueError: an unknown backend, an unknown or invalid parameter, or parameters given to Anserini.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    given = {**(params or {}), **{k: v for k, v in overrides.items() if v is not None}}
    if name == "anserini":
        if given:
            raise ValueError(f"the anserini backend takes no parameters, got {', '.join(sorted(given))}")
        return Backend("anserini")

    return Backend("seismic", SeismicParams.from_options(given))
