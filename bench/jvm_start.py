"""What the JVM's class-data archive (``make setup``, :mod:`kit.java`) saves on each Anserini call, one run.

    python -m bench.jvm_start          # uses the SciFact impact index of `make reproduce-table1` (built if missing)

One ``IndexReaderUtils -stats`` call on that index is timed alternately with and without the archive (median of 5
each), so the ratio comes from one run on one machine. Index builds and searches start the same JVM.

Then the Anserini server (``KIT_ANSERINI_SERVER``, what ``make ablation`` uses): the statistics and the impact search
of SciFact's 300 test queries (1000 hits) are timed as a JVM per call and in the process's one JVM, alternately
(median of 3 each, after one untimed round in the server, as in an ablation run where the JVM has already served
earlier condition-seeds); both must write the same run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from bench.common import report
from bench.retrieval import scifact_artifacts
from index.anserini import index_stats, read_query_vectors, search_impact
from kit.java import class_archive, close_servers, server_classes, server_compiled
from kit.paths import work_dir

TARGET = 0.75  # an Anserini call with the archive takes at most this fraction of its time without


def timed_calls(index: Path, repeat: int = 5) -> dict[bool, list[float]]:
    """Seconds of each ``-stats`` call, with (True) and without (False) the archive, alternately."""
    archive = class_archive()
    if not archive.is_file():
        raise SystemExit(f"no class-data archive at {archive} (fix: make setup, or python -m index class-archive)")
    times: dict[bool, list[float]] = {True: [], False: []}
    with mock.patch.dict(os.environ):  # restored afterwards
        for _ in range(repeat):
            for with_archive in (True, False):
                os.environ["KIT_CLASS_ARCHIVE"] = str(archive if with_archive else archive.with_suffix(".absent"))
                started = time.perf_counter()
                index_stats(index)
                times[with_archive].append(time.perf_counter() - started)
    return times


SERVER_TARGET = 0.75  # the statistics and search of a dataset in a served JVM take at most this fraction of a JVM each


def timed_rounds(index: Path, queries: dict, repeat: int = 3) -> dict[str, list[float]]:
    """Seconds of one round (``-stats``, then the impact search of ``queries``) as a JVM per call (``"0"``) and in
    the server (``"1"``), alternately; raises when the two ways write different runs."""
    if not server_compiled():
        raise SystemExit(f"no compiled Anserini server at {server_classes()} (fix: make setup, or python -m index "
                         "server; needs javac)")
    times: dict[str, list[float]] = {"0": [], "1": []}
    runs: dict[str, bytes] = {}
    try:
        with mock.patch.dict(os.environ), tempfile.TemporaryDirectory(prefix="kit-bench.") as tmp:
            for round_ in range(-1, repeat):
                for mode in ("1", "0") if round_ < 0 else ("0", "1"):
                    os.environ["KIT_ANSERINI_SERVER"] = mode
                    run = Path(tmp, f"run.{mode}.trec")
                    started = time.perf_counter()
                    index_stats(index)
                    search_impact(index, queries, run, hits=1000)
                    if round_ >= 0:
                        times[mode].append(time.perf_counter() - started)
                    runs[mode] = run.read_bytes()
                if runs["0"] != runs["1"]:
                    raise SystemExit("the server wrote another run than a JVM per call")
    finally:
        close_servers()
    return times


def main(argv=None) -> int:
    index, queries_path = scifact_artifacts()
    times = timed_calls(index)
    rows = [{"Anserini call": f"index stats, {'with' if a else 'without'} class-data archive",
             "median s": statistics.median(times[a]), "min s": min(times[a]), "calls": len(times[a])}
            for a in (True, False)]
    ratio = rows[0]["median s"] / rows[1]["median s"]
    print(f"JVM start: Anserini IndexReaderUtils -stats on {index.name}; with / without the archive: {ratio:.2f}x")
    rounds = timed_rounds(index, read_query_vectors(queries_path))
    rows += [{"Anserini call": f"index stats + impact search of 300 queries, {label}",
              "median s": statistics.median(rounds[m]), "min s": min(rounds[m]), "calls": 2 * len(rounds[m])}
             for m, label in (("1", "one JVM for all (server)"), ("0", "a JVM per call"))]
    served = rows[2]["median s"] / rows[3]["median s"]
    print(f"Anserini server: stats + search, served / a JVM each: {served:.2f}x (the same run both ways)")
    report("jvm_start", rows, [{"target": f"an Anserini call with the class-data archive <= {TARGET:g}x its time "
                                          "without", "measured": f"{ratio:.2f}x", "met": ratio <= TARGET},
                               {"target": f"stats + search in the server <= {SERVER_TARGET:g}x a JVM each",
                                "measured": f"{served:.2f}x", "met": served <= SERVER_TARGET}],
           index=str(index.relative_to(work_dir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
