"""Files that released models ship beside their weights (opensearch inference-free models): idf.json and the
sentence-transformers SpladePooling config. Local directories are read directly; hub ids go through huggingface_hub
(online only; offline, a hub id without a local copy simply yields None)."""

from __future__ import annotations

import json
from pathlib import Path

from kit.models import resolve_model

# sentence-transformers SpladePooling activation_function -> the kit's activation name (paper eq. 1 / eq. 6)
ST_ACTIVATIONS = {"relu": "relu", "log1p_relu": "l0"}


def model_file(model: str, filename: str) -> Path | None:
    """``filename`` inside the model (local dir or hub repo), or None if it does not ship one."""
    local = Path(resolve_model(model))
    if local.is_dir():
        path = local / filename
        return path if path.exists() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=model, filename=filename))
    except Exception:  # not on the hub, no network, gated: the caller falls back
        return None


def find_model_idf(model: str) -> Path | None:
    """The model's ``idf.json`` ({token: idf}), as shipped with opensearch doc-v2/v3-distill."""
    return model_file(model, "idf.json")


def detect_activation(model: str) -> str | None:
    """The doc activation declared by a sentence-transformers inference-free model (``document_1_SpladePooling``)."""
    for name in ("document_1_SpladePooling/config.json", "1_SpladePooling/config.json"):
        path = model_file(model, name)
        if path is not None:
            act = json.loads(path.read_text()).get("activation_function", "relu")
            return ST_ACTIVATIONS.get(act)
    return None
