"""Integer impact weights for Anserini: the one place where float term weights become integers, and their bounds.

Anserini's ``JsonVectorCollection`` (indexed with ``-impact -pretokenized``) and ``JsonIntVector`` topics store each
weight as an integer term frequency, so the kit multiplies by ``factor`` (100, as Pyserini's SPLADE recipes do) and
rounds half up: ``int(w * factor + 0.5)``. Entries that round to 0 are dropped: they could never add to a score.
Rounding happens on the binary float product, e.g. ``0.285 * 100 == 28.499999999999996`` rounds to 28.

Bounds, checked here before Java ever sees a weight (Lucene would otherwise drop or mangle it silently):

- ``factor`` is at most :data:`MAX_FACTOR`;
- one impact is at most :data:`MAX_IMPACT` (2¹⁶ − 1): Lucene keeps a document's impacts as term frequencies and
  their sum as the document's length, an ``int``; 30,522 BERT tokens × 65,535 stays below 2³¹ (a larger sum is
  refused by :func:`check_document_total`);
- a query's impacts sum to at most :data:`MAX_QUERY_TOTAL`: Anserini reads a weighted query as each token repeated
  ``q_t`` times, so the sum is the length of the query string.
"""

from __future__ import annotations

import math
from typing import Mapping

MAX_FACTOR = 10_000.0
MAX_IMPACT = 2**16 - 1
MAX_DOCUMENT_TOTAL = 2**31 - 1
MAX_QUERY_TOTAL = 2**20


class ImpactOverflow(ValueError):
    """A weight that would not fit Anserini's integer impacts at this factor."""


#: The largest share of documents (or queries) with an empty vector an encoding may hold without ``allow_empty``:
#: more is a broken model, an unreadable input or a factor that rounds every weight to 0.
MAX_EMPTY_SHARE = 0.5


def check_factor(factor) -> float:
    """``factor`` as a float; ValueError unless ``0 < factor <= MAX_FACTOR``."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) \
            or not 0 < factor <= MAX_FACTOR:
        raise ValueError(f"factor must be a number in (0, {MAX_FACTOR:g}], not {factor!r} (100 is the usual choice)")
    return float(factor)


def quantize(vec: Mapping[str, float], factor: float = 100) -> dict[str, int]:
    """``{token: int(weight * factor + 0.5)}`` without the zeros; weights must be finite and non-negative.

    Raises:
        ValueError: a bad factor or weight; :class:`ImpactOverflow` when an impact would exceed :data:`MAX_IMPACT`.
    """
    factor = check_factor(factor)
    out = {}
    for token, weight in vec.items():
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight of {token!r} is {weight}; sparse vectors need finite non-negative weights")
        value = int(weight * factor + 0.5)
        if value > MAX_IMPACT:
            raise ImpactOverflow(f"weight {weight:g} of {token!r} × factor {factor:g} = {value} exceeds the impact "
                                 f"limit {MAX_IMPACT}")
        if value:
            out[token] = value
    return out


def impact_problem(weight) -> str | None:
    """Why ``weight`` cannot be a stored impact (``None`` for an integer in ``[0, MAX_IMPACT]``)."""
    import numbers

    if isinstance(weight, bool) or not isinstance(weight, numbers.Integral):
        return f"weight {weight!r} is not an integer (quantize the vector first)"
    if weight < 0:
        return f"weight {weight!r} is negative"
    if weight > MAX_IMPACT:
        return f"weight {weight} exceeds the impact limit {MAX_IMPACT} (re-quantize with a smaller factor)"
    return None


def check_document_total(vector: Mapping[str, int]) -> None:
    """ValueError when a document's impacts sum beyond Lucene's ``int`` document length."""
    total = sum(vector.values())
    if total > MAX_DOCUMENT_TOTAL:
        raise ValueError(f"the document's weights sum to {total}, beyond Lucene's limit {MAX_DOCUMENT_TOTAL} "
                         "(re-quantize with a smaller factor)")


def check_query_total(vector: Mapping[str, int]) -> None:
    """ValueError when a query's impacts sum beyond :data:`MAX_QUERY_TOTAL` (the length of its query string)."""
    total = sum(vector.values())
    if total > MAX_QUERY_TOTAL:
        raise ValueError(f"the query's weights sum to {total}, beyond the limit {MAX_QUERY_TOTAL} "
                         "(Anserini repeats each token weight times; use a smaller factor or prune the query)")
