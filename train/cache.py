"""Trained models cached by what they train: ``<root>/<slug>/<training key>/model``.

The ablation (:mod:`eval.ablation`) and Table 1's row of the kit's own ℓ0 model (:mod:`eval.reproduce`) both ask
for "the model this recipe trains"; :func:`train_cached` returns a finished model directory as is, resumes an
interrupted one from its last complete checkpoint, and otherwise trains it. The offline training file the shipped
tiny recipe names is mined first when it is missing (:func:`ensure_training_data`).

The training key (:func:`training_key`) covers every recipe field (λ, t, steps, teacher scale, seed, ...) and the
*content* of what the recipe names: the training file's bytes, the base model's files and an ``idf.json``'s bytes.
Two recipes that differ only in where the YAML file or the work directory lives share a model; a re-mined training
file or another base model trains a new one. A finished model's files are recorded by their SHA-256 beside it
(``<training key>/model.manifest.json``) and verified on every reuse: a model edited since it was trained stops the
run with one line naming the file (retraining it is the user's call: it may have taken hours). A kit-mined training
file is verified against the hash its sidecar recorded and mined again when it changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kit.errors import InputError
from kit.fingerprint import MODEL_IGNORED_DIRS, digest, file_sha256, model_fingerprint
from kit.hub import local_model_dir
from kit.io import write_json
from kit.lazy import lazy_import
from kit.manifest import Artifact, shown
from kit.paths import work_dir
from train.examples import content_changed
from train.mining import mine_offline, offline_options
from train.names import MODEL_METADATA

trainer = lazy_import("train.trainer")  # torch and transformers: loaded when a model is trained

if TYPE_CHECKING:
    from train.recipe import TrainRecipe


def train(recipe: "TrainRecipe", out: Path, **options) -> None:
    """:func:`train.trainer.train` (what :func:`train_cached` calls; tests replace it here)."""
    trainer.train(recipe, out, **options)


def recipe_hash(recipe: "TrainRecipe") -> str:
    """12 hex digits identifying a recipe's fields (not where the recipe file lives, nor what its files hold)."""
    text = json.dumps(recipe.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


KEY_NEUTRAL = {"query_anchor": 0.0, "doc_anchor": 0.0, "cpu_threads": 1}
"""Recipe fields added after models were cached, with the default that trains exactly as before: left out of the
key at that value, so models trained before the field existed stay valid (any other value is part of the key)."""
_UNSET = object()


def training_inputs(recipe: "TrainRecipe") -> dict:
    """Everything a trained model depends on: the recipe's fields, with the training file, the base model and an
    ``idf.json`` replaced by fingerprints of their content (InputError when one of them cannot be read)."""
    fields = {k: v for k, v in recipe.to_dict().items() if KEY_NEUTRAL.get(k, _UNSET) != v}
    data = Path(recipe.data)
    if not data.is_file():
        raise InputError(data, "training file not found", fix="build it with `python -m train.data` (see its --help)")
    fields["data"] = "sha256:" + file_sha256(data)
    fields["base_model"] = {"name": recipe.base_model,
                            "files": model_fingerprint(local_model_dir(recipe.base_model))}
    if recipe.idf != "train":
        fields["idf"] = "sha256:" + file_sha256(recipe.idf)
    return fields


def training_key(recipe: "TrainRecipe") -> str:
    """12 hex digits of :func:`training_inputs`: the name of the model's cache folder."""
    return digest(training_inputs(recipe))[:12]


def model_dir(slug: str, recipe: "TrainRecipe", root: Path | None = None) -> Path:
    """``<root>/<slug>/<training_key>/model`` (root: ``work/ablation``)."""
    return (root if root is not None else work_dir() / "ablation") / slug / training_key(recipe) / "model"


def ensure_training_data(recipe: "TrainRecipe") -> Path:
    """``recipe.data``, mined first (``python -m train.data mine-offline``) when it is a missing offline SciFact file
    (its name says how: ``scifact-train.bm25-neg7.bm25+minilm+splade-tiny.jsonl``).

    Raises:
        InputError: any other missing training file (the kit cannot know how it was meant to be built).
    """
    import shlex

    data = Path(recipe.data)
    options = offline_options(data)
    if data.exists() and (options is None or content_changed(data) is None):
        return data
    if options is not None:
        command = shlex.join(["python", "-m", "train.data", "mine-offline", "--split", options["split"], "--negatives",
                              str(options["negatives"]), "--teachers", *options["teachers"]])
        state = "cannot be reused as it is" if data.exists() else "is missing"
        print(f"[train] {data} {state}: mining it from SciFact {options['split']} (BM25 negatives, "
              f"{' + '.join(options['teachers'])} teachers; a few minutes, once): {command}", flush=True)
        return mine_offline(options["dataset"], options["split"], options["negatives"], out=data, command=command,
                            teachers=options["teachers"])
    raise InputError(data, "training file not found", fix="build it with `python -m train.data` (see its --help)")


def train_cached(slug: str, recipe: "TrainRecipe", root: Path | None = None) -> Path:
    """The trained model of ``recipe``: reused when finished, resumed from its last checkpoint, else trained."""
    ensure_training_data(recipe)
    out = model_dir(slug, recipe, root)
    if (out / MODEL_METADATA).exists():
        return verified_model(out, recipe)
    with exclusive(out.parent / "train.lock", f"[train] waiting: another process is training {slug} -> {out}"):
        if (out / MODEL_METADATA).exists():  # the other process finished it while this one waited
            return verified_model(out, recipe)
        _train(slug, recipe, out)
        model_artifact(out, recipe).complete()
        return out


def model_artifact(out: Path, recipe: "TrainRecipe") -> Artifact:
    """A trained model as a cached artifact: its files (checkpoints aside) hashed into ``model.manifest.json`` beside
    the model folder, not inside it, so the model's own fingerprint stays that of its files."""
    return Artifact(out, {"stage": "trained-model", "training": training_inputs(recipe)}, skip_dirs=MODEL_IGNORED_DIRS)


_said_unrecorded = False


def verified_model(out: Path, recipe: "TrainRecipe") -> Path:
    """``out``, a finished model, once its files are the ones recorded when it was trained.

    A model trained before the kit recorded content hashes (no manifest) has its hashes recorded now, with a note.

    Raises:
        InputError: a file of the model changed, appeared or disappeared since it was trained (the file named).
    """
    global _said_unrecorded
    art = model_artifact(out, recipe)
    reason = art.stale()
    if reason is not None:
        raise InputError(out, f"{reason}; it is not the model this recipe trained",
                         fix=f"restore the file, or delete {shown(out.parent)} to train it again")
    if art.manifest() is None:
        if not _said_unrecorded:
            _said_unrecorded = True
            print(f"note: {shown(out)}: trained before the kit recorded content hashes; recording them now (this and "
                  "any other such model is trusted as it is)", file=sys.stderr, flush=True)
        art.complete()
    return out


@contextmanager
def exclusive(lock: Path, waiting: str):
    """Hold an exclusive lock on ``lock`` (``flock``; released when the process dies), printing ``waiting`` first
    when another process holds it: two runners (``make ablation`` and ``make lilsr``) that need the same model train
    it once, the second one waiting for it instead of training it again into the same folder."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(waiting, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _train(slug: str, recipe: "TrainRecipe", out: Path) -> Path:
    checkpoints = out / "checkpoints"
    resume = checkpoints.is_dir() and trainer.last_complete_checkpoint(checkpoints) is not None
    print(f"[train] {'resuming' if resume else 'training'} {slug} ({recipe.variant}, t={recipe.threshold}, "
          f"λ={recipe.lambda_d:g}, {recipe.max_steps} steps) -> {out}", flush=True)
    write_json(out.parent / "recipe.json", {"recipe": json.loads(json.dumps(recipe.to_dict(), default=str)),
                                            "inputs": training_inputs(recipe)})
    started = time.perf_counter()
    train(recipe, out, resume=resume, label=f"train {slug} seed {recipe.seed}")
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
    times = read_seconds(model)
    if add:
        times[key] = round(times.get(key, 0.0) + seconds, 1)
    else:
        times.setdefault(key, round(seconds, 1))
    write_json(timing_path(model), times)
