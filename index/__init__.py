"""Anserini indexes for the kit: impact indexes of learned sparse vectors and flat BM25 indexes, and their search.

See :mod:`index.anserini` (the API) and ``python -m index --help`` (the command line).
"""

from index.anserini import (
    build_flat_index,
    build_impact_index,
    index_stats,
    search_bm25,
    search_impact,
)

__all__ = ["build_flat_index", "build_impact_index", "index_stats", "search_bm25", "search_impact"]
