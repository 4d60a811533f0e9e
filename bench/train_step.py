"""Training-step time of the kit's trainer vs sentence-transformers' ``SparseEncoderTrainer``, same model and batch.

Both train SPLADE-tiny as an inference-free retriever (BoW × IDF queries, MLM + max pooling for documents) with KL
distillation plus FLOPS on documents, on the same batches: ``--queries`` SciFact train queries, each with a positive
and one negative of at least ``--max-length`` tokens (so every batch is ``2 × queries`` documents of exactly
``--max-length`` tokens). Each trainer runs in its own process (for a clean peak RSS); the time of a step is the time
between two consecutive optimizer steps (data collation, forward, backward, optimizer), as wall time and as the
process's CPU time (all threads; less sensitive to other processes sharing the cores), and the reported value is the
median over ``--steps`` steps after ``--warmup`` warm-up steps. ``--rounds`` alternates the two trainers (kit, st,
kit, st, ...) so that a change in the machine's load affects both.

    python -m bench.train_step                 # all three, then the ratios
    python -m bench.train_step --only kit      # one of them, as one JSON line
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report
from kit.argtypes import ArgumentParser
from kit.data import load_beir_local
from kit.models import resolve_model
from kit.paths import shared_dir
from train.batches import training_idf
from train.examples import TrainExample
from train.model import BowIdfQueries
from train.recipe import TrainRecipe
from train.trainer import build_trainer

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LAMBDA_D = 0.01
THRESHOLD = 200


def _examples(queries: int, max_length: int, rows: int):
    """``rows`` training examples (positive + one negative) built from SciFact, every document >= max_length tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("splade-tiny"))
    dataset = load_beir_local(shared_dir() / "data" / "beir" / "scifact", split="train")
    long_docs = []
    for doc in dataset.docs():
        if len(tokenizer(doc.text, add_special_tokens=True, verbose=False)["input_ids"]) >= max_length:
            long_docs.append(doc)
        if len(long_docs) >= 2 * rows:
            break
    query_texts = list(dataset.queries.values())
    return [TrainExample(str(i), query_texts[i % len(query_texts)], [long_docs[2 * i].doc_id, long_docs[2 * i + 1].doc_id],
                         [long_docs[2 * i].text, long_docs[2 * i + 1].text], [10.0, 5.0]) for i in range(rows)]


def _step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.ends: list[tuple[float, float]] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.ends.append((time.perf_counter(), time.process_time()))

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append((time.perf_counter(), time.process_time()))

    return StepTimer()


def run_naive(examples, args, out: str) -> list[float]:
    return run_kit(examples, args, out, head="naive")


def run_kit(examples, args, out: str, head: str = "fused") -> list[float]:
    import torch

    recipe = TrainRecipe(base_model="splade-tiny", data=Path("unused.jsonl"), variant="baseline", lambda_d=LAMBDA_D,
                         threshold=THRESHOLD, max_steps=args.warmup + args.steps, batch_size=args.queries,
                         max_length=args.max_length, docs_per_query=2, save_steps=10**9, logging_steps=10**9,
                         cpu_threads=torch.get_num_threads())  # the threads the sentence-transformers side gets
    trainer = build_trainer(recipe, out, examples=examples, save_strategy="no", disable_tqdm=True)
    trainer.model.head = head
    timer = _step_timer()
    trainer.add_callback(timer)
    trainer.train()
    return timer.ends


def run_st(examples, args, out: str) -> list[float]:
    from datasets import Dataset
    from sentence_transformers.base.modules import Router, Transformer
    from sentence_transformers.sparse_encoder import SparseEncoder, SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentence_transformers.sparse_encoder.losses import SparseDistillKLDivLoss, SpladeLoss
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding, SpladePooling

    documents = Transformer(resolve_model("splade-tiny"), transformer_task="fill-mask", max_seq_length=args.max_length)
    idf = BowIdfQueries(documents.tokenizer, training_idf(examples, documents.tokenizer))
    router = Router.for_query_document(
        query_modules=[SparseStaticEmbedding(tokenizer=documents.tokenizer, weight=idf.weights, frozen=True)],
        document_modules=[documents, SpladePooling(pooling_strategy="max", activation_function="relu")])
    model = SparseEncoder(modules=[router], similarity_fn_name="dot")
    loss = SpladeLoss(model, loss=SparseDistillKLDivLoss(model, temperature=1.0),
                      document_regularizer_weight=LAMBDA_D, document_regularizer_threshold=THRESHOLD)
    data = Dataset.from_dict({"query": [ex.query for ex in examples], "positive": [ex.docs[0] for ex in examples],
                              "negative": [ex.docs[1] for ex in examples],
                              "label": [ex.teacher_scores for ex in examples]})
    training_args = SparseEncoderTrainingArguments(
        output_dir=out, max_steps=args.warmup + args.steps, per_device_train_batch_size=args.queries,
        learning_rate=2e-5, save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True,
        dataloader_drop_last=True, router_mapping={"query": "query", "positive": "document", "negative": "document"})
    timer = _step_timer()
    trainer = SparseEncoderTrainer(model=model, args=training_args, train_dataset=data, loss=loss, callbacks=[timer])
    trainer.train()
    return timer.ends


def measure(which: str, args) -> dict:
    import torch

    torch.manual_seed(0)
    examples = _examples(args.queries, args.max_length, args.queries * (args.warmup + args.steps))
    with tempfile.TemporaryDirectory() as out:
        ends = {"kit": run_kit, "naive": run_naive, "st": run_st}[which](examples, args, out)
    wall = [b[0] - a[0] for a, b in zip(ends, ends[1:])]
    cpu = [b[1] - a[1] for a, b in zip(ends, ends[1:])]
    return {"trainer": which, "median_s": statistics.median(wall[args.warmup:]),
            "median_cpu_s": statistics.median(cpu[args.warmup:]), "steps_s": [round(t, 2) for t in wall],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": torch.get_num_threads(),
            # on a GPU the memory that matters is the device's
            "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "load_avg": os.getloadavg()[0]}


LABELS = {"kit": "kit trainer, fused max-pooled head", "naive": "kit trainer, naive HF head (B×L×V logits)",
          "st": "sentence-transformers SparseEncoderTrainer"}


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=tuple(LABELS), help="run one trainer in this process (JSON line)")
    parser.add_argument("--queries", type=int, default=16, help="queries per batch (default 16)")
    parser.add_argument("--max-length", type=int, default=256, help="document tokens (default 256)")
    parser.add_argument("--steps", type=int, default=5, help="measured steps (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured first steps (default 2)")
    args = parser.parse_args(argv)
    if args.only:
        print("RESULT " + json.dumps(measure(args.only, args)), flush=True)
        return 0
    runs: dict[str, dict] = {}
    for which in LABELS:  # each in its own process, for a clean peak RSS
        cmd = [sys.executable, "-m", "bench.train_step", "--only", which, "--queries", str(args.queries),
               "--max-length", str(args.max_length), "--steps", str(args.steps), "--warmup", str(args.warmup)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            sys.stderr.write(proc.stderr[-3000:])
            raise SystemExit(f"{which} benchmark failed (exit {proc.returncode})")
        runs[which] = json.loads(line[len("RESULT "):])

    kit = runs["kit"]
    rows = [{"trainer": LABELS[w], "s/step": r["median_s"], "CPU s/step": r["median_cpu_s"],
             "peak RSS MB": r["peak_rss_mb"], "time vs fused": r["median_s"] / kit["median_s"],
             "RSS vs fused": r["peak_rss_mb"] / kit["peak_rss_mb"],
             **({"peak CUDA MB": r["peak_cuda_mb"]} if r.get("peak_cuda_mb") is not None else {})} for w, r in runs.items()]
    naive, st = runs["naive"], runs["st"]
    targets = [
        {"target": "fused training step >= 3x faster than naive, <= 1/3 of its peak memory",
         "measured": f"{naive['median_s'] / kit['median_s']:.2f}x faster, {kit['peak_rss_mb'] / naive['peak_rss_mb']:.2f} of its RSS",
         "met": naive["median_s"] / kit["median_s"] >= 3 and kit["peak_rss_mb"] <= naive["peak_rss_mb"] / 3},
        {"target": "kit step >= 3x faster than sentence-transformers' SparseEncoderTrainer",
         "measured": f"{st['median_s'] / kit['median_s']:.2f}x", "met": st["median_s"] / kit["median_s"] >= 3},
    ]
    print(f"batch: {args.queries} queries x 2 docs x {args.max_length} tokens, SPLADE-tiny, {kit['threads']} threads; "
          f"median of {args.steps} steps after {args.warmup} warm-up (load {kit['load_avg']:.1f})")
    report("train_step", rows, targets, runs=runs, queries=args.queries, max_length=args.max_length)
    return 0

if __name__ == "__main__":
    sys.exit(main())
