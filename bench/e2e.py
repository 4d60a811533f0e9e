"""End-to-end wall time of `make reproduce-table1` by stage, from scratch (fresh work dir), one run.

From scratch means everything the default table needs: the SciFact training file is mined and the kit's ℓ0 model trained
(stage ``train (mine data, train; cached)``), the dense corpus encoded, every index built.

    python -m bench.e2e
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

from bench.common import report
from eval.reproduce import main as reproduce


def main(argv=None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with mock.patch.dict(os.environ, {"KIT_WORK": str(Path(tmp) / "work")}):  # the caller's KIT_WORK is kept
            code = reproduce(["--out", str(Path(tmp) / "results")])  # the study recipes/studies/table1.yaml
        total = time.perf_counter() - start
        meta = json.loads((Path(tmp) / "results" / "table1.json").read_text())
    stages = meta["stage_seconds"]
    rows = [{"stage": k, "seconds": v, "share": v / total} for k, v in sorted(stages.items(), key=lambda kv: -kv[1])]
    rows.append({"stage": "total (incl. model loading, tables)", "seconds": total, "share": 1.0})
    targets = [{"target": "make reproduce-table1 from an empty work/ (mining and training included) <= 20 min",
                "measured": f"{total / 60:.1f} min", "met": total <= 20 * 60}]
    report("e2e", rows, targets, exit_code=code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
