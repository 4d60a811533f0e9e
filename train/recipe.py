"""Training recipes (``recipes/train/*.yaml``): one :class:`TrainRecipe` per training run, validated field by field.

Every key is a field of :class:`TrainRecipe` (:data:`TRAIN_FIELDS` holds its converter); an unknown key, a wrong type or
an out-of-range value is one :class:`~kit.errors.InputError` naming the file and the key's line
(:mod:`kit.validate`). ``python -m train --recipe FILE`` trains one; conditions (:mod:`train.conditions`) change a
few of its fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from encode.registry import TRAINABLE_QUERY_ENCODERS
from kit import validate as V
from kit.errors import InputError
from kit.lazy import lazy_import
from kit.paths import work_dir
from train.names import RANKING_LOSSES, REGULARIZERS, VARIANTS

losses = lazy_import("train.losses")  # torch: loaded when a loss is built, not when a recipe is read

if TYPE_CHECKING:
    from train.losses import SparseDistillLoss


@dataclass(frozen=True)
class TrainRecipe:
    """One training condition; field names are the recipe's YAML keys.

    ``data`` and ``idf`` paths that are relative are resolved against the kit's work directory
    (:func:`kit.paths.work_dir`), where ``python -m train.data`` writes training files.
    """

    base_model: str            # kit short name (splade-tiny), hub id or local directory of a masked LM
    data: Path                 # training JSONL (train.data format)
    variant: str               # activation variant (train.losses.VARIANTS)
    lambda_d: float            # λ_d, FLOPS weight after warm-up (eq. 2)
    max_steps: int             # optimizer steps
    idf: str = "train"         # "train": IDF of the training file's documents; else a path to an idf.json
    threshold: float | None = None  # t of the ℓ0 mask (eq. 5); None = plain FLOPS
    warmup_T: int = 0          # T of the quadratic λ warm-up (optimizer steps)
    ranking_loss: str = "kl"   # kl | margin_mse | infonce
    teacher_scale: float = 1.0  # multiplies the training file's teacher scores (1/temperature of the teacher softmax)
    lr: float = 2e-5
    weight_decay: float = 0.01
    batch_size: int = 16       # queries per process and micro-batch
    grad_accumulation: int = 1
    warmup_steps: int = 0      # linear learning-rate warm-up (optimizer steps)
    max_length: int = 256      # document tokens, special tokens included
    docs_per_query: int = 2    # D: the positive + D - 1 sampled negatives
    seed: int = 42
    save_steps: int = 500
    logging_steps: int = 10
    max_grad_norm: float | None = 1.0  # gradient clipping; None = off (the authors' setting)
    fp16: bool = False         # mixed precision (CUDA only; ignored on CPU)
    cpu_threads: int = 1       # intra-op threads of training on CPU (ignored on CUDA): PyTorch splits its CPU
    #                            reductions by thread count, so the weights depend on it bit for bit
    regularizer: str = "flops"  # document regularizer: flops (eq. 3) | l1 (Li-LSR); threshold adds the ℓ0 mask to either
    query_encoder: str = "bow-idf"  # bow-idf | lilsr (learned static query weights, train.lilsr) | splade (Siamese)
    query_init: str = "idf"    # lilsr: start from s ≈ IDF (idf) or equal weights (uniform)
    query_lr_multiplier: float = 1.0  # lilsr: the query weights learn at lr × this
    query_train_embeddings: bool = True  # lilsr: learn the word embeddings E too, not only w and b
    query_anchor: float = 0.0  # lilsr: weight of the mean squared pull of the table toward its start (IDF); 0 = none
    doc_anchor: float = 0.0    # weight of the squared distance of the trained parameters from the base model's
    #                            (L2-SP, Li et al. 2018); 0 = none
    path: Path | None = None   # the recipe file, if any

    @property
    def activation(self) -> str:
        """The activation of the trained model at indexing time: the variant's ranking-side activation."""
        return VARIANTS[self.variant][0]

    def loss(self) -> SparseDistillLoss:
        """The training objective of this recipe."""
        return losses.SparseDistillLoss(lambda_d=self.lambda_d, ranking=self.ranking_loss, threshold=self.threshold,
                                 warmup_steps=self.warmup_T, variant=self.variant, regularizer=self.regularizer)

    def replace(self, **changes: Any) -> "TrainRecipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``path`` left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "path"}
        out["data"] = str(self.data)
        return out


def _work_path(value: Any) -> Path:
    path = Path(V.text(value)).expanduser()
    return path if path.is_absolute() else work_dir() / path


TRAIN_FIELDS: dict[str, V.Converter] = {
    "base_model": V.text, "data": _work_path, "variant": V.choice(tuple(VARIANTS)),
    "lambda_d": V.number(0), "max_steps": V.integer(1), "idf": V.text, "threshold": V.number(0, optional=True),
    "warmup_T": V.integer(0), "ranking_loss": V.choice(RANKING_LOSSES),
    "teacher_scale": V.number(0, strict=True), "lr": V.number(0, strict=True),
    "weight_decay": V.number(0), "batch_size": V.integer(1), "grad_accumulation": V.integer(1),
    "warmup_steps": V.integer(0), "max_length": V.integer(8), "docs_per_query": V.integer(2), "seed": V.integer(0),
    "save_steps": V.integer(1), "logging_steps": V.integer(1), "max_grad_norm": V.number(0, strict=True, optional=True),
    "fp16": V.flag, "cpu_threads": V.integer(1), "regularizer": V.choice(REGULARIZERS),
    "query_encoder": V.choice(TRAINABLE_QUERY_ENCODERS),
    "query_init": V.choice(("idf", "uniform")), "query_lr_multiplier": V.number(0, strict=True),
    "query_train_embeddings": V.flag, "query_anchor": V.number(0),
    "doc_anchor": V.number(0),
}
_REQUIRED = tuple(f.name for f in dataclasses.fields(TrainRecipe) if f.default is dataclasses.MISSING)


def load_train_recipe(path: str | Path) -> TrainRecipe:
    """Read and validate a training recipe; any problem is one :class:`~kit.errors.InputError` naming file and line."""
    recipe_file = V.load_mapping(path, "training recipe", fix="see recipes/train/ for the shipped recipes")
    values = V.fields(recipe_file, recipe_file.data, TRAIN_FIELDS, required=_REQUIRED)
    recipe = TrainRecipe(**values, path=Path(path))
    if recipe.idf != "train":
        recipe = recipe.replace(idf=str(_work_path(recipe.idf)))
    try:
        recipe.loss()
    except ValueError as err:
        raise InputError(path, str(err)) from None
    return recipe


