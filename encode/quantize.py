"""Integer impact weights for Anserini: the one place where float term weights become integers.

Anserini's ``JsonVectorCollection`` (indexed with ``-impact -pretokenized``) and ``JsonIntVector`` topics store each
weight as an integer term frequency, so the kit multiplies by ``factor`` (100, as Pyserini's SPLADE recipes do) and
rounds half up: ``int(w * factor + 0.5)``. Entries that round to 0 are dropped: they could never add to a score.
Rounding happens on the binary float product, e.g. ``0.285 * 100 == 28.499999999999996`` rounds to 28.
"""

from __future__ import annotations

import math
from typing import Mapping


def quantize(vec: Mapping[str, float], factor: float = 100) -> dict[str, int]:
    """``{token: int(weight * factor + 0.5)}`` without the zeros; weights must be finite and non-negative."""
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be a positive number, not {factor!r}")
    out = {}
    for token, weight in vec.items():
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight of {token!r} is {weight}; sparse vectors need finite non-negative weights")
        value = int(weight * factor + 0.5)
        if value:
            out[token] = value
    return out
