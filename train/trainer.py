"""Fine-tune an inference-free sparse retriever with the paper's objective, on Hugging Face's ``Trainer``.

The paper ("Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers", SIGIR 2025, Sections 3-5) trains an
IDF-SPLADE-doc model: documents are encoded by a masked LM (:class:`train.model.SpladeDocModel`), queries are BoW ×
IDF vectors with no inference (:class:`train.model.BowIdfQueries`), and the loss is KL distillation from a teacher
plus the warmed-up, ℓ0-masked FLOPS of the documents (:class:`train.losses.SparseDistillLoss`).

The training loop is ``transformers.Trainer``'s: AdamW, linear schedule with warm-up, gradient accumulation, mixed
precision on GPUs, checkpoints and ``resume_from_checkpoint``, ``torchrun`` data parallelism. This module adds:

- :class:`DistillDataset` / :class:`DistillCollator`: each query with its positive and ``D - 1`` negatives sampled
  from its candidates; the sampling depends only on (seed, epoch, example), so a resumed run sees the same batches;
- :class:`SparseDistillTrainer`: the loss over the **global** batch (documents, query vectors and teacher scores
  are gathered from every process, as the authors' trainer does), every loss term logged by name;
- :func:`export_model`: the trained model as a directory that :class:`encode.doc_encoder.SpladeDocEncoder` and
  sentence-transformers' ``SparseEncoder`` both load, with the ``idf.json`` of its queries.

Recipes (``recipes/train/*.yaml``) are read by :func:`load_train_recipe`; ``python -m train`` runs one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from transformers import Trainer, TrainingArguments

from kit import validate as V
from kit.errors import InputError
from train.losses import RANKING_LOSSES, REGULARIZERS, VARIANTS, SparseDistillLoss
from train.model import BowIdfQueries, SpladeDocModel

logger = logging.getLogger(__name__)

#: Name of the metadata file the kit writes beside a trained model.
MODEL_METADATA = "kit_model.json"
#: Written last into each checkpoint folder: a checkpoint without it was interrupted while being written.
CHECKPOINT_COMPLETE = "kit-complete.json"
#: Loss terms logged beside the Trainer's ``loss`` (averaged over the micro-batches of each logging window).
LOGGED_TERMS = ("ranking", "flops", "l1", "lambda", "doc_l0", "masked_fraction")
#: Query sides a recipe can train: fixed BoW × IDF (the paper) or Li-LSR's learned static weights (train.lilsr).
QUERY_ENCODERS = ("bow-idf", "lilsr")
#: sentence-transformers' ``SpladePooling`` activation for each kit activation it can express.
_ST_ACTIVATIONS = {"relu": "relu", "l0": "log1p_relu"}


# ---- recipes -------------------------------------------------------------------------------------------------------

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
    regularizer: str = "flops"  # document regularizer: flops (eq. 3) | l1 (Li-LSR); threshold adds the ℓ0 mask to either
    query_encoder: str = "bow-idf"  # bow-idf | lilsr (learned static query weights, train.lilsr)
    query_init: str = "idf"    # lilsr: start from s ≈ IDF (idf) or equal weights (uniform)
    query_lr_multiplier: float = 1.0  # lilsr: the query weights learn at lr × this
    query_train_embeddings: bool = True  # lilsr: learn the word embeddings E too, not only w and b
    path: Path | None = None   # the recipe file, if any

    @property
    def activation(self) -> str:
        """The activation of the trained model at indexing time: the variant's ranking-side activation."""
        return VARIANTS[self.variant][0]

    def loss(self) -> SparseDistillLoss:
        """The training objective of this recipe."""
        return SparseDistillLoss(lambda_d=self.lambda_d, ranking=self.ranking_loss, threshold=self.threshold,
                                 warmup_steps=self.warmup_T, variant=self.variant, regularizer=self.regularizer)

    def replace(self, **changes: Any) -> "TrainRecipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``path`` left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "path"}
        out["data"] = str(self.data)
        return out


def _work_path(value: Any) -> Path:
    from kit.paths import work_dir

    path = Path(V.text(value)).expanduser()
    return path if path.is_absolute() else work_dir() / path


_CONVERTERS: dict[str, V.Converter] = {
    "base_model": V.text, "data": _work_path, "variant": V.choice(tuple(VARIANTS)),
    "lambda_d": V.number(0), "max_steps": V.integer(1), "idf": V.text, "threshold": V.number(0, optional=True),
    "warmup_T": V.integer(0), "ranking_loss": V.choice(RANKING_LOSSES),
    "teacher_scale": V.number(0, strict=True), "lr": V.number(0, strict=True),
    "weight_decay": V.number(0), "batch_size": V.integer(1), "grad_accumulation": V.integer(1),
    "warmup_steps": V.integer(0), "max_length": V.integer(8), "docs_per_query": V.integer(2), "seed": V.integer(0),
    "save_steps": V.integer(1), "logging_steps": V.integer(1), "max_grad_norm": V.number(0, strict=True, optional=True),
    "fp16": V.flag, "regularizer": V.choice(REGULARIZERS), "query_encoder": V.choice(QUERY_ENCODERS),
    "query_init": V.choice(("idf", "uniform")), "query_lr_multiplier": V.number(0, strict=True),
    "query_train_embeddings": V.flag,
}
_REQUIRED = tuple(f.name for f in dataclasses.fields(TrainRecipe) if f.default is dataclasses.MISSING)


def load_train_recipe(path: str | Path) -> TrainRecipe:
    """Read and validate a training recipe; any problem is one :class:`~kit.errors.InputError` naming file and line."""
    recipe_file = V.load_mapping(path, "training recipe", fix="see recipes/train/ for the shipped recipes")
    values = V.fields(recipe_file, recipe_file.data, _CONVERTERS, required=_REQUIRED)
    recipe = TrainRecipe(**values, path=Path(path))
    if recipe.idf != "train":
        recipe = recipe.replace(idf=str(_work_path(recipe.idf)))
    try:
        recipe.loss()
    except ValueError as err:
        raise InputError(path, str(err)) from None
    return recipe


# ---- data ----------------------------------------------------------------------------------------------------------

class DistillDataset(torch.utils.data.Dataset):
    """Training examples as ``{query_token_ids, docs, teacher_scores}`` with ``docs_per_query`` documents each.

    Document 0 is the positive; the ``D - 1`` negatives are drawn without replacement from the example's candidates
    by a generator seeded with ``(seed, epoch, index)`` — no global random state is touched, so an interrupted and
    resumed run draws exactly what an uninterrupted one does. With exactly ``D`` candidates all of them are used.

    Args:
        examples: :class:`train.data.TrainExample` s (anything with ``docs`` and ``teacher_scores``), each with at
            least ``docs_per_query`` documents.
        query_token_ids: each example's query as :meth:`BowIdfQueries.token_ids` gives it.
        teacher_scale: factor on every teacher score (the recipe's ``teacher_scale``): KL distillation matches
            softmax distributions, so the scale sets how peaked the target is relative to the student's dot products.
    """

    def __init__(self, examples: Sequence, query_token_ids: Sequence[Sequence[int]], docs_per_query: int,
                 seed: int = 0, teacher_scale: float = 1.0) -> None:
        if len(examples) != len(query_token_ids):
            raise ValueError(f"{len(examples)} examples but {len(query_token_ids)} tokenized queries")
        if docs_per_query < 2:
            raise ValueError(f"docs_per_query must be >= 2 (a positive and a negative), got {docs_per_query}")
        short = [ex for ex in examples if len(ex.docs) < docs_per_query]
        if short:
            raise ValueError(f"{len(short)} example(s) have fewer than docs_per_query={docs_per_query} documents, "
                             f"e.g. query {short[0].query_id!r} with {len(short[0].docs)}")
        self.examples = list(examples)
        self.query_token_ids = [list(ids) for ids in query_token_ids]
        self.docs_per_query = docs_per_query
        self.seed = seed
        self.teacher_scale = float(teacher_scale)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.examples)

    def doc_indices(self, index: int) -> list[int]:
        """Candidate positions used for example ``index`` in the current epoch: ``[0, sorted negatives...]``."""
        available = len(self.examples[index].docs) - 1
        wanted = self.docs_per_query - 1
        if available == wanted:
            return list(range(self.docs_per_query))
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return [0, *sorted(int(i) + 1 for i in rng.choice(available, size=wanted, replace=False))]

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.examples[index]
        chosen = self.doc_indices(index)
        return {"query_token_ids": self.query_token_ids[index],
                "docs": [example.docs[i] for i in chosen],
                "teacher_scores": [self.teacher_scale * float(example.teacher_scores[i]) for i in chosen]}


class EpochSampler(torch.utils.data.Sampler[int]):
    """A random permutation seeded with ``seed + epoch`` that also tells the dataset its epoch.

    ``Trainer`` (through accelerate) calls :meth:`set_epoch` before every epoch, resumed ones included, and every
    process draws the same permutation, which accelerate then splits into per-process batches.
    """

    def __init__(self, dataset: DistillDataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(len(self.dataset), generator=generator).tolist())


@dataclass
class DistillCollator:
    """Batch of ``Q`` examples -> document tokens ``[Q*D, L]``, query vectors ``[Q, V]``, teacher scores ``[Q, D]``.

    Documents are truncated to ``max_length`` tokens and padded to the longest in the batch; query ``q``'s documents
    are rows ``q*D .. q*D + D - 1``, positive first (the layout :mod:`train.losses` expects).
    """

    tokenizer: Any
    queries: Any  # BowIdfQueries (adds query_vectors) or train.lilsr.LiLsrQueries (adds query_counts)
    max_length: int

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        docs = [doc for feature in features for doc in feature["docs"]]
        batch = dict(self.tokenizer(docs, max_length=self.max_length, truncation=True, padding=True,
                                    return_tensors="pt"))
        batch.update(self.queries.batch([feature["query_token_ids"] for feature in features]))
        batch["teacher_scores"] = torch.tensor([feature["teacher_scores"] for feature in features],
                                               dtype=torch.float32)
        return batch


def training_idf(examples: Sequence, tokenizer) -> dict[str, float]:
    """IDF (:func:`encode.query.compute_idf`) of the distinct documents of a training file, by document id."""
    from encode.query import compute_idf

    texts: dict[str, str] = {}
    for example in examples:
        for doc_id, text in zip(example.doc_ids, example.docs):
            texts.setdefault(doc_id, text)
    return compute_idf(texts.values(), tokenizer)


def resolve_idf(recipe: TrainRecipe, examples: Sequence, tokenizer) -> dict[str, float]:
    """The recipe's IDF table: computed from the training documents (``idf: train``) or read from an idf.json."""
    if recipe.idf == "train":
        return training_idf(examples, tokenizer)
    from encode.query import load_idf_json

    return load_idf_json(recipe.idf)


# ---- the trainer ---------------------------------------------------------------------------------------------------

class _ScaleGrad(torch.autograd.Function):
    """Identity in the forward pass, gradient times ``factor`` in the backward pass."""

    @staticmethod
    def forward(ctx, x: Tensor, factor: float) -> Tensor:
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.factor, None


def _gather(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from every process in rank order; only this process's rows carry gradient."""
    import torch.distributed as dist

    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[dist.get_rank()] = tensor
    return torch.cat(parts)


class SparseDistillTrainer(Trainer):
    """``transformers.Trainer`` with the paper's objective (ranking + λ · FLOPS on documents).

    Args:
        objective: the :class:`~train.losses.SparseDistillLoss` to minimise; everything else is ``Trainer``'s.

    The model must be a :class:`~train.model.SpladeDocModel` (or, for ``query_encoder: lilsr``, a
    :class:`train.lilsr.LiLsrModel`, which computes the query vectors from ``query_counts``) and the batches those of
    :class:`DistillCollator`.
    With several processes the loss is that of the global batch: every process gathers the max-pooled logits, query
    vectors and teacher scores of all processes (gradient flows through its own rows only) and scales its gradient
    by the number of processes, which DDP's gradient averaging then undoes. FLOPS and the ℓ0 mask thus see the
    same documents as a single process with the same global batch.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-micro-batch mean; Trainer divides by the GA steps

    def __init__(self, *args: Any, objective: SparseDistillLoss, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.objective = objective
        self._term_sums: dict[str, Tensor] = {}
        self._term_batches = 0

    def _get_train_sampler(self, train_dataset=None) -> torch.utils.data.Sampler:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochSampler(dataset, self.args.data_seed if self.args.data_seed is not None else self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        teacher = inputs.pop("teacher_scores")
        if "query_counts" in inputs:  # Li-LSR: the model computes the query vectors (train.lilsr.LiLsrModel)
            logits, queries = model(**inputs)
        else:
            queries = inputs.pop("query_vectors")
            logits = model(**inputs)
        processes = self.accelerator.num_processes
        if processes > 1:
            logits, queries, teacher = _gather(logits), _gather(queries), _gather(teacher)
        # The loss is cheap; keep its scores and FLOPS in float32 whatever the autocast dtype.
        with torch.autocast(logits.device.type, enabled=False):
            rank_vectors, flops_vectors = self.objective.doc_vectors(logits.float())
            terms = self.objective(queries.float(), rank_vectors, flops_vectors, teacher.float(),
                                   step=self.state.global_step)
        if not torch.isfinite(terms["loss"]):
            bad = ", ".join(f"{k}={v.item():g}" for k, v in terms.items() if v.numel() == 1)
            raise FloatingPointError(f"non-finite training loss at step {self.state.global_step} ({bad})")
        self._record(terms)
        loss = terms["loss"] if processes == 1 else _ScaleGrad.apply(terms["loss"], float(processes))
        return (loss, terms) if return_outputs else loss

    def _record(self, terms: Mapping[str, Tensor]) -> None:
        for name in LOGGED_TERMS:
            if name not in terms:  # l1: only with regularizer l1
                continue
            value = terms[name].detach().float()
            self._term_sums[name] = self._term_sums[name] + value if name in self._term_sums else value
        self._term_batches += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean of each loss term since the last log to a training log (same value on every process)."""
        if "loss" in logs and self._term_batches:
            for name, total in self._term_sums.items():
                logs[name] = total.item() / self._term_batches
            self._term_sums, self._term_batches = {}, 0
        super().log(logs, start_time)

    def _save_checkpoint(self, model, trial) -> None:
        """Hugging Face's checkpoint, then :data:`CHECKPOINT_COMPLETE` written last (atomically): a checkpoint
        killed halfway has no marker and is never resumed from (:func:`last_complete_checkpoint`)."""
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            from kit.io import write_json

            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            write_json(folder / CHECKPOINT_COMPLETE, {"step": self.state.global_step})

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Checkpoints hold the masked LM in Hugging Face format (tied weights kept) and its tokenizer."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        self.accelerator.unwrap_model(self.model).save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        model = model if model is not None else self.model
        if not os.path.isfile(os.path.join(resume_from_checkpoint, "config.json")):
            raise InputError(resume_from_checkpoint, "not a checkpoint of this trainer (no config.json)",
                             fix="resume from a checkpoint-<step> directory written by python -m train")
        self.accelerator.unwrap_model(model).load_weights(resume_from_checkpoint)


def training_arguments(recipe: TrainRecipe, output_dir: str | Path, max_steps: int | None = None,
                       **overrides: Any) -> TrainingArguments:
    """``TrainingArguments`` of a recipe: AdamW, linear decay after ``warmup_steps``, fp16 only on CUDA."""
    cuda = torch.cuda.is_available()
    if recipe.fp16 and not cuda:
        logger.warning("fp16 needs CUDA; training in float32 on CPU")
    options = dict(
        output_dir=str(output_dir), max_steps=max_steps or recipe.max_steps,
        per_device_train_batch_size=recipe.batch_size, gradient_accumulation_steps=recipe.grad_accumulation,
        learning_rate=recipe.lr, weight_decay=recipe.weight_decay, optim="adamw_torch",
        max_grad_norm=recipe.max_grad_norm or 0.0,
        lr_scheduler_type="linear", warmup_steps=recipe.warmup_steps, seed=recipe.seed, data_seed=recipe.seed,
        fp16=recipe.fp16 and cuda, save_strategy="steps", save_steps=recipe.save_steps, save_total_limit=2,
        logging_steps=recipe.logging_steps, report_to="none", remove_unused_columns=False,
        dataloader_drop_last=True, dataloader_pin_memory=cuda, ddp_find_unused_parameters=False,
        # Without use_cpu, accelerate shards the batches of a CPU torchrun but wraps no DDP (gradients never sync).
        use_cpu=not cuda, ddp_backend="gloo" if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
    )
    options.update(overrides)
    return TrainingArguments(**options)


def build_trainer(recipe: TrainRecipe, output_dir: str | Path, *, examples: Sequence | None = None,
                  max_steps: int | None = None, **argument_overrides: Any) -> SparseDistillTrainer:
    """A ready :class:`SparseDistillTrainer` for ``recipe``; checkpoints go to ``output_dir``.

    Args:
        examples: training examples (default: read ``recipe.data`` with :func:`train.data.load_training_file`).
        max_steps: overrides ``recipe.max_steps``.
        argument_overrides: extra ``TrainingArguments`` (e.g. ``disable_tqdm=True``).

    Raises:
        InputError: an unreadable training file or idf.json, or examples with fewer than ``docs_per_query`` documents.
    """
    if examples is None:
        from train.data import load_training_file

        examples = load_training_file(recipe.data)
    args = training_arguments(recipe, output_dir, max_steps, **argument_overrides)  # before the model: sets up DDP
    model = SpladeDocModel.from_pretrained(recipe.base_model)
    queries = BowIdfQueries(model.tokenizer, resolve_idf(recipe, examples, model.tokenizer), model.vocab_size)
    if recipe.query_encoder == "lilsr":
        from train.lilsr import lilsr_model

        model, queries = lilsr_model(model, recipe, queries.weights)
    try:
        dataset = DistillDataset(examples, queries.token_ids([ex.query for ex in examples]), recipe.docs_per_query,
                                 recipe.seed, recipe.teacher_scale)
    except ValueError as err:
        raise InputError(recipe.data, str(err), fix="lower docs_per_query or rebuild the file with more negatives") \
            from None
    trainer = SparseDistillTrainer(model=model, args=args, train_dataset=dataset,
                                   data_collator=DistillCollator(model.tokenizer, queries, recipe.max_length),
                                   objective=recipe.loss())
    trainer.queries = queries
    return trainer


# ---- output --------------------------------------------------------------------------------------------------------

def sentence_transformers_model(model_dir: str | Path, queries: BowIdfQueries | Tensor, activation: str):
    """An inference-free sentence-transformers ``SparseEncoder`` over a saved model directory.

    Queries: ``SparseStaticEmbedding`` with the IDF weights (token presence × IDF, no special tokens) or another
    ``[V]`` weight tensor (Li-LSR's table; sentence-transformers counts a repeated token once); documents:
    the masked LM (``Transformer``, ``fill-mask``) and ``SpladePooling`` (max, the model's activation) — the layout
    of the released opensearch inference-free models. ``activation`` must be ``relu`` or ``l0``.
    """
    from sentence_transformers.base.modules import Router, Transformer
    from sentence_transformers.sparse_encoder import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding, SpladePooling

    if activation not in _ST_ACTIVATIONS:
        raise ValueError(f"sentence-transformers' SpladePooling has no {activation!r} activation; "
                         f"only {', '.join(_ST_ACTIVATIONS)} can be exported")
    documents = Transformer(str(model_dir), transformer_task="fill-mask")
    weight = queries if isinstance(queries, Tensor) else queries.weights
    query = SparseStaticEmbedding(tokenizer=documents.tokenizer, weight=weight.clone(), frozen=True)
    router = Router.for_query_document(
        query_modules=[query],
        document_modules=[documents, SpladePooling(pooling_strategy="max",
                                                   activation_function=_ST_ACTIVATIONS[activation])])
    return SparseEncoder(modules=[router], similarity_fn_name="dot")


def export_model(model: SpladeDocModel, queries: Any, recipe: TrainRecipe, out_dir: str | Path,
                 extra: Mapping[str, Any] | None = None) -> Path:
    """Write the trained model directory.

    ``out_dir`` receives: the masked LM and tokenizer (Hugging Face format, what ``SpladeDocEncoder(out_dir,
    activation=...)`` loads), ``idf.json`` (``{token: idf}``, OpenSearch format, the query weights used in
    training), the sentence-transformers inference-free layout (``modules.json``, ``router_config.json``,
    ``query_0_SparseStaticEmbedding/``, ``document_1_Transformer/``, ``document_2_SpladePooling/``; only for the
    ``relu`` and ``l0`` activations, which ``SpladePooling`` can express) and, written last, :data:`MODEL_METADATA`.

    A ``query_encoder: lilsr`` recipe (``model`` a :class:`train.lilsr.LiLsrModel`) writes the learned query weights
    once as a lookup table (``query_weights.safetensors`` + ``query_weights.json``, :func:`train.lilsr.save_lookup_table`)
    instead of ``idf.json``; :class:`encode.lookup.LookupQueryEncoder` reads it.
    """
    from encode.query import save_idf_json
    from kit.io import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MODEL_METADATA).unlink(missing_ok=True)
    lilsr = recipe.query_encoder == "lilsr"
    doc_model = model.doc if lilsr else model
    doc_model.save_pretrained(out_dir)
    if lilsr:
        from train.lilsr import save_lookup_table

        query_weights = model.query.table()
        query_files = save_lookup_table(query_weights, doc_model.tokenizer, out_dir)
    else:
        query_weights = queries.weights
        save_idf_json(queries.idf_table(), out_dir / "idf.json")
        query_files = {"idf": "idf.json"}
    exported = recipe.activation in _ST_ACTIVATIONS
    if exported:
        sentence_transformers_model(out_dir, query_weights, recipe.activation).save(str(out_dir),
                                                                                  create_model_card=False)
    else:
        logger.warning("activation %s has no sentence-transformers equivalent; wrote no SparseEncoder layout",
                       recipe.activation)
    metadata = {
        "kind": "li-lsr" if lilsr else "idf-splade-doc", "activation": recipe.activation, "variant": recipe.variant,
        "lambda_d": recipe.lambda_d, "threshold": recipe.threshold, "warmup_T": recipe.warmup_T,
        "regularizer": recipe.regularizer, "query_encoder": recipe.query_encoder, **query_files,
        "idf_source": "training documents" if recipe.idf == "train" else recipe.idf,
        "base_model": recipe.base_model, "sentence_transformers": exported,
        "recipe": recipe.to_dict(), "recipe_path": str(recipe.path) if recipe.path else None, **(extra or {}),
    }
    write_json(out_dir / MODEL_METADATA, metadata)
    return out_dir


def last_complete_checkpoint(folder: str | Path, remove_partial: bool = False) -> Path | None:
    """The newest ``checkpoint-<step>`` folder under ``folder`` whose writing finished (it holds
    :data:`CHECKPOINT_COMPLETE`), or None. With ``remove_partial``, newer unfinished ones (a kill while saving) are
    deleted, so that the resumed run writes them again."""
    import re
    import shutil

    folder = Path(folder)
    if not folder.is_dir():
        return None
    steps = sorted(((int(m.group(1)), p) for p in folder.iterdir()
                    if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))), reverse=True)
    for _, path in steps:
        if (path / CHECKPOINT_COMPLETE).is_file():
            return path
        if remove_partial:
            logger.warning("removing %s: its writing was interrupted", path)
            shutil.rmtree(path, ignore_errors=True)
    return None


def default_out_dir(recipe: TrainRecipe) -> Path:
    """``work_dir()/models/<recipe file stem>``."""
    from kit.paths import work_dir

    return work_dir() / "models" / (recipe.path.stem if recipe.path else "model")


def train(recipe: TrainRecipe, out_dir: str | Path | None = None, *, max_steps: int | None = None,
          resume: bool = False, **argument_overrides: Any) -> Path:
    """Train ``recipe`` and export the model to ``out_dir`` (checkpoints under ``out_dir/checkpoints``).

    Raises:
        InputError: ``resume`` without a checkpoint, or a fresh run into a directory that already holds one.
    """
    import contextlib

    from kit.io import exclusive

    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(recipe)
    _refuse_data_parallel()
    first = int(os.environ.get("RANK", "0")) == 0  # the processes of one torchrun job share the output: rank 0 locks it
    with exclusive(out_dir, "training") if first else contextlib.nullcontext():
        return _train_locked(recipe, out_dir, max_steps, resume, argument_overrides)


def _refuse_data_parallel() -> None:
    """Several GPUs without torchrun would make Trainer wrap the model in ``nn.DataParallel``, which replicates the
    fused head's hooks on every forward; the kit trains multi-GPU through torchrun (DDP) only."""
    if torch.cuda.is_available() and torch.cuda.device_count() > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        raise InputError(None, f"{torch.cuda.device_count()} GPUs visible but not started by torchrun (Trainer would "
                               "use nn.DataParallel, which the kit does not support)",
                         fix="torchrun --nproc_per_node N -m train ..., or CUDA_VISIBLE_DEVICES=0 for one GPU")


def _train_locked(recipe: TrainRecipe, out_dir: Path, max_steps: int | None, resume: bool,
                  argument_overrides: dict) -> Path:
    from kit.io import write_json

    checkpoints = out_dir / "checkpoints"
    last = last_complete_checkpoint(checkpoints, remove_partial=resume and int(os.environ.get("RANK", "0")) == 0)
    if resume and last is None:
        raise InputError(checkpoints, "no complete checkpoint to resume from",
                         fix="run without --resume to start training")
    if not resume and (last is not None or (out_dir / MODEL_METADATA).exists()):
        raise InputError(out_dir, "already holds a training run",
                         fix="pass --resume to continue it, or choose another --out")
    trainer = build_trainer(recipe, checkpoints, max_steps=max_steps, **argument_overrides)
    try:
        result = trainer.train(resume_from_checkpoint=str(last) if resume else None)
    except FloatingPointError as err:
        raise InputError(recipe.path or recipe.data, str(err),
                         fix="lower lr or lambda_d, check the training file's teacher scores") from None
    if trainer.is_world_process_zero():
        model = trainer.accelerator.unwrap_model(trainer.model)
        export_model(model, trainer.queries, recipe, out_dir,
                     extra={"steps": trainer.state.global_step, "train_runtime_s": result.metrics.get("train_runtime")})
        write_json(out_dir / "log_history.json", trainer.state.log_history)
    trainer.accelerator.wait_for_everyone()
    return out_dir
