"""Trained models cached by what they train: ``<root>/<slug>/<hash of the effective recipe>/model``.

The ablation (:mod:`eval.ablation`) and Table 1's row of the kit's own ℓ0 model (:mod:`eval.reproduce`) both ask
for "the model this recipe trains"; :func:`train_cached` returns a finished model directory as is, resumes an
interrupted one from its last checkpoint, and otherwise trains it. The offline training file the shipped tiny recipe
names is mined first when it is missing (:func:`ensure_training_data`). Two recipes that differ only in where the
YAML file lives share a model; any changed field (λ, t, steps, teacher scale, ...) trains a new one.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kit.errors import InputError
from kit.paths import work_dir

if TYPE_CHECKING:
    from train.trainer import TrainRecipe


def recipe_hash(recipe: "TrainRecipe") -> str:
    """12 hex digits identifying what a recipe trains (its fields; not where the recipe file lives)."""
    text = json.dumps(recipe.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def model_dir(slug: str, recipe: "TrainRecipe", root: Path | None = None) -> Path:
    """``<root>/<slug>/<recipe_hash>/model`` (root: ``work/ablation``)."""
    return (root if root is not None else work_dir() / "ablation") / slug / recipe_hash(recipe) / "model"


def ensure_training_data(recipe: "TrainRecipe") -> Path:
    """``recipe.data``, mined first (``python -m train.data mine-offline``) when it is the missing offline default.

    Raises:
        InputError: any other missing training file (the kit cannot know how it was meant to be built).
    """
    from train.data import default_offline_path, mine_offline

    data = Path(recipe.data)
    if data.exists():
        return data
    if data.resolve() == default_offline_path().resolve():
        print(f"[train] {data} is missing: mining it from SciFact train (BM25 negatives, MiniLM + SPLADE-tiny "
              "teachers; a few minutes, once)", flush=True)
        return mine_offline(out=data, command="python -m train.data mine-offline")
    raise InputError(data, "training file not found", fix="build it with `python -m train.data` (see its --help)")


def train_cached(slug: str, recipe: "TrainRecipe", root: Path | None = None) -> Path:
    """The trained model of ``recipe``: reused when finished, resumed from its last checkpoint, else trained."""
    from transformers.trainer_utils import get_last_checkpoint

    from kit.io import write_json
    from train.trainer import MODEL_METADATA, train

    out = model_dir(slug, recipe, root)
    if (out / MODEL_METADATA).exists():
        return out
    ensure_training_data(recipe)
    checkpoints = out / "checkpoints"
    resume = checkpoints.is_dir() and get_last_checkpoint(str(checkpoints)) is not None
    print(f"[train] {'resuming' if resume else 'training'} {slug} ({recipe.variant}, t={recipe.threshold}, "
          f"λ={recipe.lambda_d:g}, {recipe.max_steps} steps) -> {out}", flush=True)
    write_json(out.parent / "recipe.json", json.loads(json.dumps(recipe.to_dict(), default=str)))
    started = time.perf_counter()
    train(recipe, out, resume=resume, disable_tqdm=True)
    record_seconds(out, "train", time.perf_counter() - started, add=True)
    return out


def timing_path(model: Path) -> Path:
    """``timing.json`` beside a cached model: wall seconds of its training (summed over resumes) and evaluations."""
    return Path(model).parent / "timing.json"


def read_seconds(model: Path) -> dict[str, float]:
    path = timing_path(model)
    return json.loads(path.read_text()) if path.exists() else {}


def record_seconds(model: Path, key: str, seconds: float, *, add: bool = False) -> None:
    """Store ``seconds`` under ``key`` (added to what is there with ``add``, else kept when already recorded)."""
    from kit.io import write_json

    times = read_seconds(model)
    if add:
        times[key] = round(times.get(key, 0.0) + seconds, 1)
    else:
        times.setdefault(key, round(seconds, 1))
    write_json(timing_path(model), times)
