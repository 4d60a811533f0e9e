"""Print the summary of the benchmark records (results/bench/*.json, `make bench`): one table per benchmark with its
command, date, commit, machine and targets. It is also written to results/bench/summary.md, and the documentation
pages that show it are regenerated (docs/performance.md, by ``python -m report.docs``).

    python -m bench.summary                      # results/bench: print, write summary.md, regenerate the docs
    python -m bench.summary --records DIR        # another folder of records: print and write DIR/summary.md only
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from kit.argtypes import ArgumentParser
from kit.errors import cli
from kit.io import atomic_write
from kit.paths import repo_relative
from report.docs import BENCH_DIR, bench_summary, main as docs_main, render_bench


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m bench.summary", description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=Path, default=BENCH_DIR,
                   help="folder of benchmark records (default: results/bench, which also regenerates the docs)")
    args = p.parse_args(argv)
    print(render_bench(args.records), end="", flush=True)
    with atomic_write(args.records / "summary.md") as fh:
        fh.write(bench_summary(args.records))
    print(f"\nwrote {repo_relative(args.records / 'summary.md')}")
    stored = args.records.resolve() == BENCH_DIR.resolve()
    return docs_main([]) if stored else 0


if __name__ == "__main__":
    sys.exit(main())
