"""Fine-tune an inference-free sparse retriever with the paper's objective, on Hugging Face's ``Trainer``.

The paper ("Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers", SIGIR 2025, Sections 3-5) trains an
IDF-SPLADE-doc model: documents are encoded by a masked LM (:class:`train.model.SpladeDocModel`), queries are BoW ×
IDF vectors with no inference (:class:`train.model.BowIdfQueries`), and the loss is KL distillation from a teacher
plus the warmed-up, ℓ0-masked FLOPS of the documents (:class:`train.losses.SparseDistillLoss`).

The training loop is ``transformers.Trainer``'s: AdamW, linear schedule with warm-up, gradient accumulation, mixed
precision on GPUs, checkpoints and ``resume_from_checkpoint``, ``torchrun`` data parallelism. This module adds
:class:`SparseDistillTrainer` (the loss over the **global** batch: documents, query vectors and teacher scores are
gathered from every process, as the authors' trainer does; every loss term logged by name) and :func:`train`
(checkpoints written whole, resumed from the newest complete one, the model exported by :mod:`train.export`), shown
as one labelled progress bar with the latest loss terms (:mod:`train.progress`).
Recipes: :mod:`train.recipe`; batches: :mod:`train.batches`; ``python -m train`` runs one recipe.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import Tensor
from transformers import Trainer, TrainingArguments
from transformers import trainer as hf_trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from kit.errors import InputError
from kit.io import exclusive, write_json
from kit.paths import work_dir
from train.batches import DistillCollator, DistillDataset, EpochSampler, resolve_idf
from train.examples import load_training_file
from train.export import MODEL_METADATA, export_model
from train.lilsr import lilsr_model
from train.losses import SparseDistillLoss
from train.model import BowIdfQueries, SpladeDocModel
from train.progress import TrainingBar
from train.recipe import TrainRecipe
from train.siamese import SiameseModel, SiameseQueries

logger = logging.getLogger(__name__)

#: Written last into each checkpoint folder: a checkpoint without it was interrupted while being written.
CHECKPOINT_COMPLETE = "kit-complete.json"
#: Loss terms logged beside the Trainer's ``loss`` (averaged over the micro-batches of each logging window).
LOGGED_TERMS = ("ranking", "flops", "l1", "anchor", "doc_anchor", "lambda", "doc_l0", "masked_fraction")


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
        doc_anchor: adds ``doc_anchor · Σ (θ − θ₀)²`` over the trainable parameters, θ₀ their values when the trainer
            is built (the base model's; a resumed run rebuilds from the base model too), logged as ``doc_anchor``:
            L2-SP (Li et al., 2018), which keeps the student near the model it starts from. 0: off.
        threads: the intra-op threads :meth:`train` runs on when on CPU (the recipe's ``cpu_threads``), whether it
            starts or resumes a run.

    The model must be a :class:`~train.model.SpladeDocModel` (or, for ``query_encoder: lilsr``, a
    :class:`train.lilsr.LiLsrModel`, which computes the query vectors from ``query_counts``; for ``splade``, a
    :class:`train.siamese.SiameseModel`, which encodes the queries it is given) and the batches those of
    :class:`DistillCollator`.
    With several processes the loss is that of the global batch: every process gathers the max-pooled logits, query
    vectors and teacher scores of all processes (gradient flows through its own rows only) and scales its gradient
    by the number of processes, which DDP's gradient averaging then undoes. FLOPS and the ℓ0 mask thus see the
    same documents as a single process with the same global batch.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-micro-batch mean; Trainer divides by the GA steps

    def __init__(self, *args: Any, objective: SparseDistillLoss, doc_anchor: float = 0.0, threads: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.objective = objective
        self.doc_anchor = doc_anchor
        self.threads = threads  # intra-op threads on CPU (the recipe's cpu_threads; :func:`cpu_threads`)
        # (parameter, its starting value) pairs; the parameters are the same objects DDP wraps
        self._start = ([(p, p.detach().clone()) for p in self.model.parameters() if p.requires_grad]
                       if doc_anchor > 0 else [])
        self._term_sums: dict[str, Tensor] = {}
        self._term_batches = 0

    def train(self, *args: Any, **kwargs: Any):
        """``Trainer.train`` on :attr:`threads` intra-op threads when on CPU, a fresh run and a resumed one alike."""
        with cpu_threads(self.threads, self.args.device):
            return super().train(*args, **kwargs)

    def _get_train_sampler(self, train_dataset=None) -> torch.utils.data.Sampler:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochSampler(dataset, self.args.data_seed if self.args.data_seed is not None else self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        teacher = inputs.pop("teacher_scores")
        anchor = None
        if "query_vectors" not in inputs:  # Li-LSR or Siamese: the model computes the query vectors
            logits, queries, anchor = model(**inputs)
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
        if anchor is not None:  # Li-LSR's pull toward the starting table (recipe query_anchor)
            terms = {**terms, "loss": terms["loss"] + anchor, "anchor": anchor.detach()}
        if self._start:  # L2-SP: the pull of every trainable parameter toward its start (recipe doc_anchor)
            pull = self.doc_anchor * sum(((p - p0) ** 2).sum() for p, p0 in self._start)
            terms = {**terms, "loss": terms["loss"] + pull, "doc_anchor": pull.detach()}
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


def run_label(recipe: TrainRecipe, name: str | None = None) -> str:
    """``train <name> seed <n>``: the progress bar's label (name: the recipe file's stem by default)."""
    return f"train {name or (recipe.path.stem if recipe.path else 'model')} seed {recipe.seed}"


def build_trainer(recipe: TrainRecipe, output_dir: str | Path, *, examples: Sequence | None = None,
                  max_steps: int | None = None, label: str | None = None,
                  **argument_overrides: Any) -> SparseDistillTrainer:
    """A ready :class:`SparseDistillTrainer` for ``recipe``; checkpoints go to ``output_dir``.

    Args:
        examples: training examples (default: read ``recipe.data`` with :func:`train.examples.load_training_file`).
        max_steps: overrides ``recipe.max_steps``.
        label: the progress bar's label (default :func:`run_label`); ``disable_tqdm=True`` shows no bar.
        argument_overrides: extra ``TrainingArguments`` (e.g. ``disable_tqdm=True``).

    Raises:
        InputError: an unreadable training file or idf.json, or examples with fewer than ``docs_per_query`` documents.
    """
    if examples is None:
        examples = load_training_file(recipe.data)
    args = training_arguments(recipe, output_dir, max_steps, **argument_overrides)  # before the model: sets up DDP
    model = SpladeDocModel.from_pretrained(recipe.base_model)
    queries = BowIdfQueries(model.tokenizer, resolve_idf(recipe, examples, model.tokenizer), model.vocab_size)
    if recipe.query_encoder == "lilsr":
        model, queries = lilsr_model(model, recipe, queries.weights)
    elif recipe.query_encoder == "splade":
        model, queries = SiameseModel(model, recipe.variant), SiameseQueries(model.tokenizer, queries)
    try:
        dataset = DistillDataset(examples, queries.token_ids([ex.query for ex in examples]), recipe.docs_per_query,
                                 recipe.seed, recipe.teacher_scale)
    except ValueError as err:
        raise InputError(recipe.data, str(err), fix="lower docs_per_query or rebuild the file with more negatives") \
            from None
    if len(dataset) < recipe.batch_size * args.world_size:  # batches drop their last, incomplete one
        across = f" on each of {args.world_size} processes" if args.world_size > 1 else ""
        raise InputError(recipe.data, f"its {len(dataset)} training queries fill no batch of {recipe.batch_size}"
                                      f"{across}, so training would take no step",
                         fix="lower batch_size in the recipe, or train on a file with more queries")
    trainer = SparseDistillTrainer(model=model, args=args, train_dataset=dataset,
                                   data_collator=DistillCollator(model.tokenizer, queries, recipe.max_length),
                                   objective=recipe.loss(), doc_anchor=recipe.doc_anchor, threads=recipe.cpu_threads)
    trainer.queries = queries
    _show_progress(trainer, label or run_label(recipe))
    return trainer


def _show_progress(trainer: Trainer, label: str) -> None:
    """Replace ``Trainer``'s unlabelled bar and its printed log dictionaries by one :class:`TrainingBar`."""
    for callback in {PrinterCallback, ProgressCallback, hf_trainer.DEFAULT_PROGRESS_CALLBACK}:
        trainer.remove_callback(callback)
    if not trainer.args.disable_tqdm:
        trainer.add_callback(TrainingBar(label))


# ---- running ---------------------------------------------------------------------------------------------------------

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
    return work_dir() / "models" / (recipe.path.stem if recipe.path else "model")


def train(recipe: TrainRecipe, out_dir: str | Path | None = None, *, max_steps: int | None = None,
          resume: bool = False, label: str | None = None, **argument_overrides: Any) -> Path:
    """Train ``recipe`` and export the model to ``out_dir`` (checkpoints under ``out_dir/checkpoints``), showing
    one progress bar labelled ``label`` (default :func:`run_label`).

    Raises:
        InputError: ``resume`` without a checkpoint, or a fresh run into a directory that already holds one.
    """
    import contextlib

    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(recipe)
    _refuse_data_parallel()
    first = int(os.environ.get("RANK", "0")) == 0  # the processes of one torchrun job share the output: rank 0 locks it
    with exclusive(out_dir, "training") if first else contextlib.nullcontext():
        return _train_locked(recipe, out_dir, max_steps, resume, label, argument_overrides)


def _refuse_data_parallel() -> None:
    """Several GPUs without torchrun would make Trainer wrap the model in ``nn.DataParallel``, which replicates the
    fused head's hooks on every forward; the kit trains multi-GPU through torchrun (DDP) only."""
    if torch.cuda.is_available() and torch.cuda.device_count() > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        raise InputError(None, f"{torch.cuda.device_count()} GPUs visible but not started by torchrun (Trainer would "
                               "use nn.DataParallel, which the kit does not support)",
                         fix="torchrun --nproc_per_node N -m train ..., or CUDA_VISIBLE_DEVICES=0 for one GPU")


@contextmanager
def cpu_threads(count: int, device: torch.device) -> Iterator[None]:
    """Train on ``count`` intra-op threads when ``device`` (the trainer's) is the CPU, then restore the count.

    PyTorch's CPU kernels split their reductions by thread count, so the same recipe trained at 1 and at 2 threads
    ends in weights that differ in the last bits, and the numbers measured on them differ too. Pinning the count
    makes a model depend on its recipe, not on the cores of the machine that trained it (the count enters the
    model's cache key when it is not 1, :data:`train.cache.KEY_NEUTRAL`). On CUDA the count is left alone.
    """
    before = torch.get_num_threads()
    pin = device.type == "cpu"
    if pin:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if pin:
            torch.set_num_threads(before)


def _train_locked(recipe: TrainRecipe, out_dir: Path, max_steps: int | None, resume: bool, label: str | None,
                  argument_overrides: dict) -> Path:
    checkpoints = out_dir / "checkpoints"
    last = last_complete_checkpoint(checkpoints, remove_partial=resume and int(os.environ.get("RANK", "0")) == 0)
    if resume and last is None:
        raise InputError(checkpoints, "no complete checkpoint to resume from",
                         fix="run without --resume to start training")
    if not resume and (last is not None or (out_dir / MODEL_METADATA).exists()):
        raise InputError(out_dir, "already holds a training run",
                         fix="pass --resume to continue it, or choose another --out")
    trainer = build_trainer(recipe, checkpoints, max_steps=max_steps, label=label, **argument_overrides)
    try:
        result = trainer.train(resume_from_checkpoint=str(last) if resume else None)
    except FloatingPointError as err:
        raise InputError(recipe.path or recipe.data, str(err),
                         fix="lower lr or lambda_d, check the training file's teacher scores and that the base "
                             "model's weights are finite") from None
    if trainer.is_world_process_zero():
        model = trainer.accelerator.unwrap_model(trainer.model)
        export_model(model, trainer.queries, recipe, out_dir,
                     extra={"steps": trainer.state.global_step, "train_runtime_s": result.metrics.get("train_runtime")})
        write_json(out_dir / "log_history.json", trainer.state.log_history)
    trainer.accelerator.wait_for_everyone()
    return out_dir
