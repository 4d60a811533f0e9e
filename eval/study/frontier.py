"""Frontier comparisons: two sweeps' curves compared at equal cost (the paper's "higher nDCG@10 at equal FLOPS").

A comparison with ``at: FLOPS`` (or ``at: Doc_Len``) names two **curves**, ``<sweep id>.<condition>`` (the points of
one condition file along one sweep), instead of two models. Each training seed's curve is the piecewise-linear path
through that seed's points ordered by ``at`` (measured on the in-domain dataset). The curves are compared at
:data:`GRID` common values of ``at`` inside the range every seed of both curves covers (the overlap): at each value,
each seed's per-query scores are interpolated between the two points around it (the weights are that seed's own
``at`` values), so each side is again one row per seed and one column per query, and the seed-aware test of
:mod:`eval.claims` applies unchanged. A seed's curve is one replicate: its points share the seed, not its randomness
with the other curve.

No overlap is an error that names both ranges (add points to the sweep); a curve with fewer than two points run (a
smoke scale) is left out, like any comparison of a point not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

GRID = (0.25, 0.5, 0.75)
"""Where inside the overlap ``[lo, hi]`` the curves are compared: ``lo + g·(hi − lo)``."""


@dataclass(frozen=True)
class Curve:
    """One seed's points of one curve: ``x`` (the ``at`` measure), ``items`` (per-query values, one row per point)."""

    x: np.ndarray
    items: pd.DataFrame

    def at(self, value: float) -> pd.Series:
        """The per-query values interpolated at ``x = value`` between the two points around it (an end point when it
        is one); ValueError outside the curve's range."""
        order = np.argsort(self.x, kind="stable")
        x, rows = self.x[order], self.items.to_numpy(float)[order]
        if not x[0] <= value <= x[-1]:
            raise ValueError(f"{value:g} is outside the curve's range [{x[0]:g}, {x[-1]:g}]")
        hi = min(int(np.searchsorted(x, value, side="left")), len(x) - 1)
        lo = hi if x[hi] == value else hi - 1
        w = 0.0 if hi == lo else (value - x[lo]) / (x[hi] - x[lo])
        return pd.Series((1 - w) * rows[lo] + w * rows[hi], index=self.items.columns)


def overlap(curves: Sequence[Curve]) -> tuple[float, float]:
    """The range of ``x`` that every curve covers: ``(lo, hi)``, ``lo > hi`` when there is none."""
    return max(float(c.x.min()) for c in curves), min(float(c.x.max()) for c in curves)


def grid(lo: float, hi: float) -> list[float]:
    """The common values the curves are compared at (:data:`GRID`), rounded to 4 significant digits so a record
    names them as printed."""
    return [min(max(float(f"{lo + g * (hi - lo):.4g}"), lo), hi) for g in GRID]


def side_at(curves: Mapping[int, Curve], value: float) -> pd.DataFrame:
    """One row per seed (index), one column per query: each seed's curve interpolated at ``value``."""
    return pd.DataFrame({s: c.at(value) for s, c in curves.items()}).T


def point_name(curve: str, at: str, value: float) -> str:
    """A compared point's name in the record: ``<curve>@<at>=<value>`` (``lambda.l0-act@FLOPS=1.103``)."""
    return f"{curve}@{at}={value:g}"
