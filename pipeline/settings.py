"""How a dataset's stages are computed (:class:`Settings`) and where their time goes (:class:`Timer`)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kit.paths import slug
from pipeline.specs import IndexSpec


class Timer:
    """Wall time per stage, summed over datasets and systems (for the benchmark's end-to-end breakdown).

    A stage timed inside another counts once: its seconds are its own, not also the enclosing stage's, so the stages
    never add up to more than the wall time since the timer was made (:meth:`line` gives each stage's share of it).
    """

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()
        self._inner: list[float] = []  # per open stage, innermost last: the seconds of the stages timed inside it

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield
        finally:
            took = time.perf_counter() - start
            self.seconds[stage] = self.seconds.get(stage, 0.0) + took - self._inner.pop()
            if self._inner:
                self._inner[-1] += took

    def _slowest_first(self) -> list[tuple[str, float]]:
        return sorted(self.seconds.items(), key=lambda kv: -kv[1])

    def rounded(self) -> dict[str, float]:
        """Seconds per stage to 0.1 s, slowest first (what result files store as ``stage_seconds``)."""
        return {k: round(v, 1) for k, v in self._slowest_first()}

    def line(self) -> str:
        """One printed line saying where the run's time went: each stage's seconds and its share of the wall time
        since the timer was made (the rest went to untimed work: loading models, writing results)."""
        wall = max(time.perf_counter() - self.started, sum(self.seconds.values()))
        shares = ", ".join(f"{k} {v:.1f} ({v / wall:.0%})" for k, v in self._slowest_first())
        return f"stage wall time (s): {shares or 'none timed'}; {wall:.1f} s in all"


def model_label(model: str) -> str:
    """A short, file-name-safe name of a model for artifact names (the key beside it identifies the content)."""
    path = Path(model)
    if path.is_absolute() or model.startswith("."):
        parts = [p for p in path.parts if p not in ("/", "model")]
        return slug("-".join(parts[-2:]))[:60] or "model"
    return slug(model)[:60]


@dataclass(frozen=True)
class Settings:
    """How a table is computed: what the recipe fixes, then how this machine runs it.

    ``device`` None: CUDA when available; ``dtype`` None: fp16 autocast on CUDA, fp32 elsewhere
    (:func:`encode.doc_encoder.resolve_precision`). ``force`` recomputes every stage instead of reusing it.
    """

    measures: tuple[str, ...] = ("nDCG@10",)
    hits: int = 1000
    max_length: int = 512
    factor: float = 100.0
    index: IndexSpec = IndexSpec()
    device: str | None = None
    dtype: str | None = None
    batch_size: int = 32
    threads: int = 2
    force: bool = False

    @classmethod
    def of(cls, recipe, **machine) -> "Settings":
        """The settings of ``recipe`` (an :class:`eval.recipe.Recipe`; ``machine``: device, dtype, batch_size,
        threads, force, and ``backend`` to override the recipe's index backend)."""
        backend = machine.pop("backend", None)
        index = recipe.index or IndexSpec()
        if backend is not None and backend != index.backend:
            index = IndexSpec(backend)
        return cls(measures=tuple(recipe.measures), hits=recipe.hits, max_length=recipe.max_length,
                   factor=recipe.factor, index=index, **{k: v for k, v in machine.items() if v is not None})
