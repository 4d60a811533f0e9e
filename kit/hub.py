"""Where a model's files are, and what a released model declares about itself (idf.json, its SpladePooling).

A model is named by an offline short name (:data:`kit.models.OFFLINE_MODELS`), a local directory or a Hugging Face
hub id. :func:`local_model_dir` gives its directory; a hub id is fetched (or found in the local cache) through
``huggingface_hub``. Failing to reach a model is an error, never a quiet change of model: a released model read
without its ``idf.json`` or its declared activation would be a different system under the same name.
:func:`load_tokenizer` and :func:`load_masked_lm` load it, turning a folder that is not what it claims (no tokenizer,
a ``config.json`` that disagrees with the weights) into one-line errors naming the folder.
"""

from __future__ import annotations

import contextlib
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
        InputError: a local path that does not exist, a hub id that cannot be fetched (no network, unknown id,
            gated), with the reason, or a folder without a ``config.json`` or a tokenizer (:data:`TOKENIZER_FILES`).
    """
    local = Path(resolve_model(model)).expanduser()
    if local.is_dir():
        return _check_model_dir(local.resolve())
    if _looks_local(model):
        raise InputError(model, "model directory not found",
                         fix="give an existing directory, a Hugging Face id (owner/name), or splade-tiny")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo_id=model, allow_patterns=HUB_PATTERNS, ignore_patterns=HUB_IGNORED))
    except Exception as exc:  # noqa: BLE001 - any hub failure is reported, not swallowed
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(None, f"model {model!r}: cannot read it from the Hugging Face hub ({type(exc).__name__}: "
                               f"{reason[:200]})",
                         fix="check the id and the network (HF_HUB_OFFLINE=1 needs it in the local cache), or pass a "
                             "local directory") from None
    return _check_model_dir(folder)


#: Files holding a tokenizer's vocabulary; a model folder needs one of them (without any, ``AutoTokenizer`` makes a
#: tokenizer that knows only the special tokens).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")


def _check_model_dir(folder: Path) -> Path:
    """``folder``, once it holds a ``config.json`` and a tokenizer; else InputError naming what is missing."""
    if not (folder / "config.json").is_file():
        raise InputError(folder, "holds no config.json: not a Hugging Face model folder",
                         fix="give a folder written by save_pretrained (config, weights, tokenizer), a hub id, or "
                             "splade-tiny")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise InputError(folder, f"holds no tokenizer (none of {', '.join(TOKENIZER_FILES)})",
                         fix="save the model's tokenizer into it (tokenizer.save_pretrained(folder))")
    return folder


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message, shortened: what a one-line error can quote."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' logging (its multi-line load reports) while a model loads; errors are raised instead."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def load_tokenizer(model: str):
    """``AutoTokenizer`` of ``model`` (see :func:`local_model_dir`); a folder it cannot read is an InputError."""
    from transformers import AutoTokenizer

    folder = local_model_dir(model)
    try:
        with _quiet_transformers():
            return AutoTokenizer.from_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 - whatever the files are, the user sees the folder and the reason
        raise InputError(folder, f"cannot load its tokenizer ({_reason(exc)})",
                         fix="save the model's tokenizer into the folder (tokenizer.save_pretrained(folder))") from None


def load_masked_lm(model: str):
    """``AutoModelForMaskedLM`` of ``model``, every parameter read from its weights: a folder without weights, one
    whose ``config.json`` disagrees with them (other shapes, parameters its weights lack, which would be random) or
    that transformers cannot read is an InputError naming the folder."""
    from transformers import AutoModelForMaskedLM

    folder = local_model_dir(model)
    fix = ("the folder's config.json must describe its weights: save the model again with save_pretrained, or give "
           "another --model")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise InputError(folder, "holds no weights (*.safetensors or *.bin)",
                         fix="save the model into it with save_pretrained, or give another --model")
    try:
        with _quiet_transformers():
            module, info = AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True,
                                                                ignore_mismatched_sizes=True)
    except Exception as exc:  # noqa: BLE001 - as in load_tokenizer
        raise InputError(folder, f"cannot load it as a masked language model ({_reason(exc)})",
                         fix="save (or download) the model again, complete, or give another --model") from None
    mismatched = sorted(info.get("mismatched_keys") or [])
    if mismatched:
        raise InputError(folder, f"{len(mismatched)} weights have other shapes than its config.json describes "
                                 f"(e.g. {_mismatch(mismatched[0])})", fix=fix)
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise InputError(folder, f"its weights lack {len(missing)} parameters its config.json describes (e.g. "
                                 f"{missing[0]}), which would be random", fix=fix)
    return module


def _mismatch(entry) -> str:
    """One entry of transformers' ``mismatched_keys``: ``(name, checkpoint shape, model shape)`` or a name."""
    if isinstance(entry, (tuple, list)) and len(entry) == 3:
        name, stored, wanted = entry
        return f"{name}: {list(stored)} stored, {list(wanted)} in config.json"
    return str(entry)


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
