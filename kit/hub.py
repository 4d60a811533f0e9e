"""Where a model's files are, and what a released model declares about itself (idf.json, its SpladePooling).

A model is named by an offline short name (:data:`kit.models.OFFLINE_MODELS`), a local directory or a Hugging Face
hub id. :func:`local_model_dir` gives its directory; a hub id is fetched (or found in the local cache) through
``huggingface_hub``. Failing to reach a model is an error, never a quiet change of model: a released model read
without its ``idf.json`` or its declared activation would be a different system under the same name.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from kit.errors import InputError
from kit.models import resolve_model

# sentence-transformers SpladePooling activation_function -> the kit's activation name (paper eq. 1 / eq. 6)
ST_ACTIVATIONS = {"relu": "relu", "log1p_relu": "l0"}

#: The files a model directory needs for the kit (weights, configs, tokenizer, idf.json, sentence-transformers modules).
HUB_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.bin", "*.model", "*/*.json", "*/*.txt"]
HUB_IGNORED = ["onnx/*", "openvino/*", "*.onnx", "*.msgpack", "*.h5", "*.ot", "*/*.safetensors", "*/*.bin"]


def _looks_local(name: str) -> bool:
    """A path rather than a hub id (``owner/name`` or a bare legacy id such as ``bert-base-uncased``)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1


@functools.cache
def local_model_dir(model: str) -> Path:
    """The directory holding ``model``'s files; a hub id is downloaded (or read from the hub cache).

    Raises:
        InputError: a local path that does not exist, or a hub id that cannot be fetched (no network, unknown id,
            gated), with the reason.
    """
    local = Path(resolve_model(model)).expanduser()
    if local.is_dir():
        return local.resolve()
    if _looks_local(model):
        raise InputError(model, "model directory not found",
                         fix="give an existing directory, a Hugging Face id (owner/name), or splade-tiny")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=model, allow_patterns=HUB_PATTERNS, ignore_patterns=HUB_IGNORED))
    except Exception as exc:  # noqa: BLE001 - any hub failure is reported, not swallowed
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(None, f"model {model!r}: cannot read it from the Hugging Face hub ({type(exc).__name__}: "
                               f"{reason[:200]})",
                         fix="check the id and the network (HF_HUB_OFFLINE=1 needs it in the local cache), or pass a "
                             "local directory") from None


def model_file(model: str, filename: str) -> Path | None:
    """``filename`` inside the model's directory, or None when the model does not ship it."""
    path = local_model_dir(model) / filename
    return path if path.is_file() else None


def find_model_idf(model: str) -> Path | None:
    """The model's ``idf.json`` ({token: idf}), as shipped with opensearch doc-v2/v3-distill."""
    return model_file(model, "idf.json")


def _pooling_configs(model: str) -> list[Path]:
    """The SpladePooling config(s) of a sentence-transformers sparse model: from ``modules.json`` (and a ``Router``'s
    document route), else the conventional folder names."""
    root = local_model_dir(model)
    found = []
    modules = root / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text(encoding="utf-8"))
        for entry in entries:
            if entry.get("type", "").endswith("SpladePooling"):
                found.append(root / entry.get("path", "") / "config.json")
        router = root / "router_config.json"
        if router.is_file():
            config = json.loads(router.read_text(encoding="utf-8"))
            for name in (config.get("structure") or {}).get("document", []):
                if "SpladePooling" in name:
                    found.append(root / name / "config.json")
    for name in ("document_1_SpladePooling", "1_SpladePooling"):
        if (root / name / "config.json").is_file():
            found.append(root / name / "config.json")
    return list(dict.fromkeys(p for p in found if p.is_file()))


def detect_activation(model: str) -> str | None:
    """The document activation a sentence-transformers inference-free model declares (its ``SpladePooling``), or
    None when it declares none (a plain masked LM).

    Raises:
        InputError: the model cannot be read, or it declares an activation the kit does not implement.
    """
    for path in _pooling_configs(model):
        declared = json.loads(path.read_text(encoding="utf-8")).get("activation_function", "relu")
        if declared not in ST_ACTIVATIONS:
            raise InputError(path, f"SpladePooling activation {declared!r} is not one the kit implements",
                             fix=f"one of {', '.join(ST_ACTIVATIONS)}; or pass --activation to override")
        return ST_ACTIVATIONS[declared]
    return None
