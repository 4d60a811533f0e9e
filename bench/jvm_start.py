"""What the JVM's class-data archive (``make setup``, :mod:`kit.java`) saves on each Anserini call, one run.

    python -m bench.jvm_start          # uses the SciFact impact index of `make reproduce-table1` (built if missing)

One ``IndexReaderUtils -stats`` call on that index is timed alternately with and without the archive (median of 5
each), so the ratio comes from one run on one machine. Index builds and searches start the same JVM.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from bench.common import report
from bench.retrieval import scifact_index
from index.anserini import index_stats
from kit.java import class_archive
from kit.paths import work_dir

TARGET = 0.75  # an Anserini call with the archive takes at most this fraction of its time without


def timed_calls(index: Path, repeat: int = 5) -> dict[bool, list[float]]:
    """Seconds of each ``-stats`` call, with (True) and without (False) the archive, alternately."""
    archive = class_archive()
    if not archive.is_file():
        raise SystemExit(f"no class-data archive at {archive} (fix: make setup, or python -m index class-archive)")
    before = os.environ.get("KIT_CLASS_ARCHIVE")
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        for _ in range(repeat):
            for with_archive in (True, False):
                os.environ["KIT_CLASS_ARCHIVE"] = str(archive if with_archive else archive.with_suffix(".absent"))
                started = time.perf_counter()
                index_stats(index)
                times[with_archive].append(time.perf_counter() - started)
    finally:
        os.environ.pop("KIT_CLASS_ARCHIVE", None)
        if before is not None:
            os.environ["KIT_CLASS_ARCHIVE"] = before
    return times


def main(argv=None) -> int:
    index = scifact_index()
    times = timed_calls(index)
    rows = [{"Anserini call": f"index stats, {'with' if a else 'without'} class-data archive",
             "median s": statistics.median(times[a]), "min s": min(times[a]), "calls": len(times[a])}
            for a in (True, False)]
    ratio = rows[0]["median s"] / rows[1]["median s"]
    print(f"JVM start: Anserini IndexReaderUtils -stats on {index.name}; with / without the archive: {ratio:.2f}x")
    report("jvm_start", rows, [{"target": f"an Anserini call with the class-data archive <= {TARGET:g}x its time "
                                          "without", "measured": f"{ratio:.2f}x", "met": ratio <= TARGET}],
           index=str(index.relative_to(work_dir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
