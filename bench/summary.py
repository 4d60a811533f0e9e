"""Summarise the benchmark records (results/bench/*.json, `make bench`) in results/bench/summary.md, print it, and
regenerate the documentation pages that show them (docs/performance.md, by ``python -m eval.docs``).

    python -m bench.summary
"""

from __future__ import annotations

import sys

from eval.docs import BENCH_DIR, bench_summary, main as docs_main
from kit.io import atomic_write


def main(argv: list[str] | None = None) -> int:
    text = bench_summary(BENCH_DIR)
    with atomic_write(BENCH_DIR / "summary.md") as fh:
        fh.write(text)
    print(text, end="")
    return docs_main([])


if __name__ == "__main__":
    sys.exit(main())
