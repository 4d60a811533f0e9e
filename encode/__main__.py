"""``python -m encode``: encode a corpus into Anserini JsonVectorCollection parts (sharded, resumable).

Example (the paper's two inference-free document sides from one forward pass)::

    python -m encode --corpus scifact --model splade-tiny --activation relu l0 --output work/vectors/scifact

writes ``work/vectors/scifact/relu/part-*.jsonl`` and ``.../l0/part-*.jsonl`` with a ``<dir>.metadata.json`` sidecar
beside each directory. Re-running skips the parts already written; ``--shard 1/4`` writes every fourth part.
"""

from __future__ import annotations

import argparse

from encode.activations import ACTIVATIONS
from encode.lookup import LookupQueryEncoder
from encode.quantize import MAX_FACTOR, check_factor
from encode.query import BowIdfQueryEncoder, compute_idf, encode_queries
from encode.writer import write_vectors
from kit.data import load_dataset
from kit.errors import cli
from kit.argtypes import ArgumentParser
from kit.hub import load_tokenizer, local_model_dir
from kit.io import atomic_write, exclusive
from kit.lazy import lazy_import

doc_encoder = lazy_import("encode.doc_encoder")  # torch: loaded once the arguments are valid


def _shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not I/N (e.g. 0/1 or 3/8)") from None
    if not (count >= 1 and 0 <= index < count):
        raise argparse.ArgumentTypeError(f"{value!r}: need 0 <= I < N")
    return index, count


def _factor(value: str) -> float:
    try:
        return check_factor(float(value))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def _max_length(value: str) -> int:
    number = _positive(value)
    if number < 2:
        raise argparse.ArgumentTypeError(f"{value} leaves no room for [CLS] and [SEP]: give at least 2")
    return number


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m encode", description="Encode a corpus into Anserini "
                                "JsonVectorCollection parts (sharded, resumable).")
    p.add_argument("--corpus", required=True, help="dataset name (scifact, nfcorpus, ...) or a BEIR directory")
    p.add_argument("--model", default="splade-tiny",
                   help="short name, Hugging Face id or local path of a masked LM (default: %(default)s)")
    p.add_argument("--activation", nargs="+", default=["relu"], choices=ACTIVATIONS,
                   help="one or more (default: relu); several share one forward pass and go to OUTPUT/<activation>")
    p.add_argument("--max-length", type=_max_length, default=512,
                   help="tokens per document, longer ones are truncated (default: %(default)s)")
    p.add_argument("--factor", type=_factor, default=100,
                   help=f"quantization: int(weight * factor + 0.5), at most {MAX_FACTOR:g} (default: %(default)s)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"),
                   help="default: float16 autocast on CUDA, float32 (exact) on CPU")
    p.add_argument("--batch-size", type=_positive, default=32, help="documents per forward pass (default: %(default)s)")
    p.add_argument("--part-size", type=_positive, default=10_000, help="documents per part file (default: %(default)s)")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N",
                   help="write only parts k with k %% N == I (default: 0/1)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="CPU threads; on CPU each one encodes its own batches (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-empty", action="store_true",
                   help="finish even when more than half of the documents (or queries) get an empty vector (refused "
                        "by default: a broken model, corpus or factor)")
    p.add_argument("--queries", choices=("bow-idf", "lilsr"), default=None,
                   help="encode the dataset's queries instead of its documents, with no model: bow-idf (IDF of the "
                        "corpus) or lilsr (a Li-LSR lookup table); OUTPUT is then one JSONL file of {id, vector}, "
                        "what `python -m index search-impact --queries` reads")
    p.add_argument("--table", default=None,
                   help="--queries lilsr: query_weights.safetensors/.json or a trained model dir (default: --model)")
    p.add_argument("--output", required=True, help="vectors directory")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    cli_parser = parser()
    args = cli_parser.parse_args(argv)
    if args.table and args.queries != "lilsr":
        cli_parser.error("--table goes with --queries lilsr")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        dataset = load_dataset(args.corpus)
    except ValueError as exc:  # an unknown name or split: a usage error, not a traceback
        cli_parser.error(str(exc))
    if args.queries:
        return _write_queries(args, dataset)
    with exclusive(args.output, "encoding"):  # before loading the model: a busy or unwritable output fails at once
        encoder = doc_encoder.SpladeDocEncoder(args.model, activation=args.activation[0], max_length=args.max_length,
                                               device=args.device, dtype=args.dtype, batch_size=args.batch_size)
        several = args.activation if len(args.activation) > 1 else None
        write_vectors(dataset.docs(), encoder, args.output, factor=args.factor, shard=args.shard,
                      part_size=args.part_size, activations=several, show_progress=not args.no_progress,
                      total=dataset.num_docs, allow_empty=args.allow_empty)
    return 0


def _write_queries(args, dataset) -> int:
    """``--queries``: the dataset's queries as quantized inference-free vectors, one ``{id, vector}`` line each."""
    import json

    tokenizer = load_tokenizer(args.model)
    if args.queries == "lilsr":
        encoder = LookupQueryEncoder.from_path(args.table or local_model_dir(args.model), tokenizer)
    else:
        encoder = BowIdfQueryEncoder(tokenizer, compute_idf((doc.text for doc in dataset.docs()), tokenizer))
    with atomic_write(args.output) as fh:
        for qid, vector in encode_queries(encoder, dataset.queries, factor=args.factor,
                                          allow_empty=args.allow_empty, where=args.output).items():
            fh.write(json.dumps({"id": qid, "vector": vector}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
