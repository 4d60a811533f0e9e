"""Render the benchmark records (results/bench/*.json, `make bench`) into docs/performance.md.

    python -m bench.summary        # = python -m eval.docs, which regenerates every results page
"""

from __future__ import annotations

import sys

from eval.docs import main

if __name__ == "__main__":
    sys.exit(main())
