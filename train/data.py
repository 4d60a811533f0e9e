"""Distillation training data: one JSONL line per training example, a ``.meta.json`` sidecar saying how it was made.

The paper ("Exploring l0 Sparsification for Inference-free Sparse Retrievers", SIGIR 2025, Section 5.1) fine-tunes on
MS MARCO with teacher scores prepared "following (Geng et al., 2024)" and a KL-divergence ranking loss. Every builder
here writes the same record, which the trainer reads with :func:`~train.examples.load_training_file`::

    {"query_id": "0", "query": "...", "doc_ids": ["pos", "neg1", ...], "docs": ["...", ...],
     "teacher_scores": [12.3, 4.5, ...]}

``docs[0]`` is a judged positive, the rest are hard negatives; the three lists align and hold at least two documents.

Two builders:

- :func:`~train.mining.mine_offline` (no network): BEIR SciFact's train split, BM25 hard negatives from the kit's
  Anserini flat index and the heterogeneous dense + sparse teacher ensemble of Geng et al. (2024, arXiv:2411.04403):
  each teacher's scores are min-max normalised per query over its candidate documents, the teachers are averaged and the
  result is multiplied by a scale -- exactly ``BiEncoderWrapper.get_scores_batch`` of the authors' training code
  (github.com/zhichao-aws/opensearch-sparse-model-tuning-sample, ``scripts/train/bi_encoder_wrapper.py``, which defaults
  to ``score_scale=30``). The offline teachers are all-MiniLM-L6-v2 (dense, cosine) and SPLADE-tiny (siamese sparse, dot
  product).
- :func:`~train.msmarco.build_msmarco` (online): the authors' released MS MARCO training data,
  ``opensearch-project/msmarco-hard-negatives`` on the Hugging Face hub, with passage and query texts from
  ``ir_datasets``.

Both write atomically and reuse a complete earlier output (JSONL and sidecar) when it was made with the same options.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Sequence

from kit.argtypes import ArgumentParser, non_negative_float, positive_float, positive_int
from kit.errors import cli
from train.examples import _Stats, iter_training_file, meta_path
from train.mining import mine_offline
from train.msmarco import HF_HARD_NEGATIVES, SAMPLINGS, build_msmarco
from train.teachers import DEFAULT_TEACHERS, OFFLINE_MARGIN, OFFLINE_SCALE, POSITIVE_RULES, TEACHERS


# ---- command line -------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m train.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, scale: float, rule: str) -> None:
        p.add_argument("--negatives", type=positive_int, default=7, help="hard negatives per example (default 7)")
        p.add_argument("--scale", type=positive_float, default=scale, help=f"teacher score scale (default {scale:g})")
        p.add_argument("--positive-rule", choices=POSITIVE_RULES, default=rule,
                       help=f"lift the judged positive above the negatives, or keep the teacher's score ({rule})")
        p.add_argument("--margin", type=non_negative_float, default=OFFLINE_MARGIN,
                       help="margin of a lifted positive over the best negative (default 1)")
        p.add_argument("--overwrite", action="store_true", help="rebuild even if the output exists")

    mine = sub.add_parser("mine-offline", help="BM25 negatives + MiniLM/SPLADE-tiny teachers (offline, SciFact)")
    mine.add_argument("--dataset", default="scifact", help="dataset name or BEIR directory (default scifact)")
    mine.add_argument("--split", default="train", help="qrels split (default train)")
    mine.add_argument("--depth", type=positive_int, default=100, help="BM25 depth to mine from (default 100)")
    mine.add_argument("--out", type=Path, help="output JSONL (default under work/train/)")
    mine.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    mine.add_argument("--batch-size", type=positive_int, default=32)
    mine.add_argument("--threads", type=positive_int, default=2)
    mine.add_argument("--teachers", nargs="+", choices=TEACHERS, default=list(DEFAULT_TEACHERS),
                      help="the teacher ensemble (default: %(default)s)")
    common(mine, OFFLINE_SCALE, "lift")

    marco = sub.add_parser("msmarco", help=f"MS MARCO train with {HF_HARD_NEGATIVES} (online)")
    marco.add_argument("--out", type=Path, required=True, help="output JSONL")
    marco.add_argument("--sampling", choices=SAMPLINGS, default="top", help="which negatives to keep (default top)")
    marco.add_argument("--limit", type=positive_int, help="stop after this many hub rows")
    marco.add_argument("--hard-negatives", nargs="+", type=Path, metavar="PARQUET",
                       help="local Parquet shards instead of downloading them")
    marco.add_argument("--revision", help="hub revision of the dataset (default main)")
    common(marco, 1.0, "keep")

    check = sub.add_parser("check", help="validate a training file and print its statistics")
    check.add_argument("file", type=Path)
    return parser


@cli
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    command = shlex.join(["python", "-m", "train.data", *argv])
    if args.command == "mine-offline":
        path = mine_offline(args.dataset, args.split, args.negatives, args.depth, args.out, args.scale,
                            args.positive_rule, args.margin, device=args.device, batch_size=args.batch_size,
                            threads=args.threads, overwrite=args.overwrite, command=command, teachers=args.teachers)
    elif args.command == "msmarco":
        path = build_msmarco(args.out, args.negatives, args.sampling, args.scale, args.positive_rule, args.margin,
                             limit=args.limit, hard_negatives=args.hard_negatives, revision=args.revision,
                             overwrite=args.overwrite, command=command)
    else:
        stats = _Stats()
        for ex in iter_training_file(args.file):
            stats.add(ex)
        print(json.dumps(stats.summary(), indent=2))
        return 0
    summary = json.loads(meta_path(path).read_text(encoding="utf-8"))["stats"]
    print(f"{path}\n{json.dumps(summary, indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
