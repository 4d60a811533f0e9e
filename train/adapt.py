"""``python -m train.adapt --corpus DIR [--out MODEL_DIR] [--scale smoke|full] [--seed N]``: an ℓ0 student for a
corpus alone (no queries, no judgments).

Stages, each cached under ``work_dir()/adapt/<corpus>/`` by a fingerprint of everything it depends on and reused
when that matches:

1. **pseudo-queries** (:mod:`train.pseudo`): titles, inverse-cloze sentences and random crops cut from documents drawn
   by seed; each query's source document is its pseudo-positive;
2. **labels** (:func:`train.mining.label_examples`, what ``python -m train.data mine-offline`` runs on judged
   queries): candidates are the source document and BM25's best other documents from the corpus's Anserini flat
   index (the one the table runner uses), labelled by the min-max fusion of BM25, all-MiniLM-L6-v2 and SPLADE-tiny;
   the source document is lifted above the others (``--positive-rule``); ``--mix FILE`` adds a real training file;
3. **IDF** of the whole corpus (:func:`encode.query.compute_idf`, every vocabulary token) for the queries' BoW × IDF
   weights: a corpus without queries has no training queries to draw them from, and ``idf: train`` would see only
   the documents the pseudo-queries retrieved;
4. **training** with ``recipes/train/adapt.yaml`` (mask + ℓ0 activation; :func:`train.cache.train_cached`, resumed
   from its last checkpoint when interrupted) and the model folder :mod:`train.export` writes, which
   ``python -m eval.reproduce --model DIR`` and sentence-transformers' ``SparseEncoder`` load; ``--out`` copies it.

``--corpus`` is a folder holding ``corpus.jsonl`` (BEIR layout; queries and qrels, if any, are not read) or a dataset
name of :func:`kit.data.load_dataset` (``vaswani``, ``cacm``: only its documents are used).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

from encode.query import compute_idf, save_idf_json
from kit.argtypes import ArgumentParser, positive_int
from kit.data import _count_records, load_dataset
from kit.dataset import Dataset
from kit.errors import InputError, cli
from kit.fingerprint import digest, model_fingerprint, short, text_file_sha256, tokenizer_fingerprint
from kit.formats import read_beir_corpus
from kit.hub import local_model_dir
from kit.manifest import Artifact, shown
from kit.paths import REPO, dataset_slug, work_dir
from kit.reading import read_jsonl
from train.cache import train_cached
from train.examples import FORMAT_VERSION, _reusable, _write_examples, iter_training_file, write_meta
from train.mining import MiningOptions, default_flat_index, label_examples, teacher_fingerprints
from train.pseudo import KINDS, CorpusDoc, check_kinds, pseudo_queries, sample_ids
from train.recipe import load_train_recipe
from train.teachers import POSITIVE_RULES, TEACHERS

DEFAULT_RECIPE = REPO / "recipes" / "train" / "adapt.yaml"
ADAPT_TEACHERS = ("bm25", "minilm", "splade-tiny")
#: ``--scale``: how many pseudo-queries, negatives and BM25 depth, and what changes in the recipe. ``full`` trains the
#: recipe's own steps (60 x 16 queries, about half of the 2,000 pseudo-queries); ``smoke`` checks the pipeline.
SCALES = {
    "smoke": {"queries": 12, "negatives": 2, "depth": 10,
              "recipe": {"max_steps": 2, "batch_size": 4, "max_length": 64, "warmup_T": 1, "warmup_steps": 0}},
    "full": {"queries": 2000, "negatives": 7, "depth": 100, "recipe": {}},
}


def say(message: str) -> None:
    print(f"[adapt] {message}", flush=True)


# ---- the corpus -------------------------------------------------------------------------------------------------------

def load_corpus(corpus: str | Path) -> Dataset:
    """The documents of ``corpus`` (a BEIR-layout folder or a dataset name) as a :class:`~kit.dataset.Dataset`
    without queries; InputError for a folder without ``corpus.jsonl`` or an unknown name."""
    root = Path(corpus)
    if root.is_dir():
        path = _corpus_file(root)
        if path is None:
            raise InputError(root, "no corpus.jsonl in this folder",
                             fix="pass a BEIR-layout folder holding corpus.jsonl (one {\"_id\", \"title\", \"text\"} "
                                 "per line), or a dataset name such as vaswani")
        num_docs = _count_records(path)
        if not num_docs:
            raise InputError(path, "no documents", fix="a corpus needs at least one {\"_id\", \"text\"} record")
        return Dataset(name=root.name, queries={}, qrels={}, docs=functools.partial(read_beir_corpus, path),
                       num_docs=num_docs, source=str(root.resolve()), corpus_key="file:" + text_file_sha256(path))
    if root.exists():
        raise InputError(root, "not a folder", fix="pass a BEIR-layout folder holding corpus.jsonl")
    try:
        return load_dataset(str(corpus))
    except ValueError as err:
        raise InputError(corpus, f"neither a folder nor a dataset the kit knows ({err})",
                         fix="pass a BEIR-layout folder holding corpus.jsonl, or vaswani, cacm, scifact") from None


def _corpus_file(root: Path) -> Path | None:
    return next((root / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (root / n).is_file()), None)


def corpus_docs(ds: Dataset, ids: Sequence[str]) -> Iterator[CorpusDoc]:
    """The documents ``ids`` in that order, with their titles apart where the corpus is a BEIR file."""
    wanted = set(ids)
    path = _corpus_file(Path(ds.source)) if ds.source and Path(ds.source).is_dir() else None
    if path is not None:
        found = {}
        for _, rec in read_jsonl(path):  # already validated by read_beir_corpus
            if rec["_id"] in wanted:
                title = rec.get("title") if isinstance(rec.get("title"), str) else ""
                found[rec["_id"]] = CorpusDoc(rec["_id"], title.strip(), rec["text"].strip())
    else:
        found = {d.doc_id: CorpusDoc(d.doc_id, "", d.text) for d in ds.docs() if d.doc_id in wanted}
    return (found[i] for i in ids)


def _counted_ids(ds: Dataset, counter: list[int]) -> Iterator[str]:
    from tqdm.auto import tqdm

    for doc in tqdm(ds.docs(), total=ds.num_docs, unit="doc", desc="drawing documents"):
        counter[0] += 1
        yield doc.doc_id


# ---- stage 1-2: pseudo-queries and their labels --------------------------------------------------------------------

def pseudo_training_file(ds: Dataset, *, queries: int, kinds: Sequence[str], seed: int, opts: MiningOptions,
                         device: str | None = None, batch_size: int = 32, threads: int = 2,
                         command: str = "train.adapt") -> Path:
    """The labelled pseudo-query training file of ``ds``: ``work_dir()/adapt/<slug>/pseudo.<key>.jsonl``, the key
    a digest of the corpus's content, the cuts, ``opts`` and the teacher models; reused when complete."""
    kinds = check_kinds(kinds)
    fingerprint = ds.corpus_fingerprint()
    params = {"pseudo": {"kinds": list(kinds), "queries": queries, "seed": seed}, **opts.params(),
              "fingerprints": {"corpus": fingerprint, "teachers": teacher_fingerprints(opts.teachers)}}
    out = adapt_dir(ds) / f"pseudo.{short(digest(params))}.jsonl"
    if _reusable(out, params, overwrite=False):
        say(f"pseudo-labelled training file reused: {shown(out)}")
        return out
    seen = [0]
    ids = sample_ids(_counted_ids(ds, seen), queries, seed)
    if seen[0] < 2:
        raise InputError(ds.source or ds.name, f"{seen[0]} document(s); adapting needs at least two",
                         fix="pass the folder of a corpus with many documents")
    cut = pseudo_queries(corpus_docs(ds, ids), kinds, queries, seed)
    if not cut:
        raise InputError(ds.source or ds.name, f"no pseudo-query ({', '.join(kinds)}) could be cut from "
                                               f"{len(ids)} documents", fix="documents need text of several words")
    by_kind = {k: sum(q.kind == k for q in cut) for k in kinds}
    say(f"{len(cut)} pseudo-queries from {len({q.doc_id for q in cut})} of {seen[0]} documents "
        f"({', '.join(f'{n} {k}' for k, n in by_kind.items())}); labelling them with {' + '.join(opts.teachers)}")
    labelled = dataclasses.replace(ds, queries={q.query_id: q.text for q in cut},
                                   qrels={q.query_id: {q.doc_id: 1} for q in cut})
    return label_examples(
        labelled, out, opts, params, index=default_flat_index(ds.source or ds.name, fingerprint), device=device,
        batch_size=batch_size, threads=threads, command=command,
        describe={"split": "pseudo",
                  "examples_per": "pseudo-query cut from a document (title, inverse-cloze sentence or random crop); "
                                  "that document first, then BM25's best-ranked other documents",
                  "counts": {"documents": seen[0], "queries": len(cut), "judged_pairs": len(cut),
                             **{f"{k}_queries": n for k, n in by_kind.items()}}})


def mixed_training_file(pseudo: Path, mix: Path) -> Path:
    """``pseudo``'s examples followed by those of the real training file ``mix`` (validated), cached beside it."""
    params = {"pseudo": text_file_sha256(pseudo), "mix": text_file_sha256(mix)}
    out = pseudo.with_name(f"mixed.{short(digest(params))}.jsonl")
    if _reusable(out, params, overwrite=False):
        return out

    def examples():
        yield from iter_training_file(pseudo)
        yield from iter_training_file(mix)

    stats = _write_examples(out, examples())
    write_meta(out, {"format": FORMAT_VERSION, "params": params, "sources": [str(pseudo), str(mix.resolve())], "stats": stats,
                     "examples_per": "the pseudo-labelled file's examples, then the mixed-in file's"})
    return out


# ---- stage 3-4: the corpus IDF, training, the model folder ---------------------------------------------------------

def adapt_dir(ds: Dataset) -> Path:
    return work_dir() / "adapt" / dataset_slug(ds.source or ds.name)


def corpus_idf(ds: Dataset, base_model: str) -> Path:
    """``idf.json`` of every document of ``ds`` with ``base_model``'s tokenizer (cached by corpus and tokenizer)."""
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    model_dir = local_model_dir(base_model)
    art = Artifact.named(adapt_dir(ds) / "idf", "corpus-idf", {
        "stage": "corpus-idf", "corpus": ds.corpus_fingerprint(), "tokenizer": tokenizer_fingerprint(model_dir)},
        suffix=".json")
    if not art.reusable():
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        texts = (d.text for d in tqdm(ds.docs(), total=ds.num_docs, unit="doc", desc="corpus IDF"))
        idf = compute_idf(texts, tokenizer)
        save_idf_json(idf, art.path)
        art.complete(tokens=len(idf))
    return art.path


def export_copy(model: Path, out: Path, overwrite: bool) -> Path:
    """Copy the trained ``model`` folder (checkpoints left out) to ``out``, atomically; a copy of the same model is
    left as it is, any other non-empty ``out`` is refused unless ``overwrite``."""
    if out.exists():
        if out.is_dir() and any(out.iterdir()) and model_fingerprint(out) == model_fingerprint(model):
            return out
        if not out.is_dir() or (any(out.iterdir()) and not overwrite):
            raise InputError(out, "already holds other files", fix="pass --overwrite to replace it, or another --out")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model, tmp, ignore=shutil.ignore_patterns("checkpoints"))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def adapt(corpus: str | Path, out: str | Path | None = None, *, scale: str = "full", seed: int = 42,
          recipe: str | Path = DEFAULT_RECIPE, queries: int | None = None, kinds: Sequence[str] = KINDS,
          negatives: int | None = None, depth: int | None = None, teachers: Sequence[str] = ADAPT_TEACHERS,
          positive_rule: str = "lift", max_steps: int | None = None, mix: str | Path | None = None,
          device: str | None = None, batch_size: int = 32, threads: int = 2, overwrite: bool = False,
          command: str = "train.adapt") -> Path:
    """Adapt the recipe's student to ``corpus`` (stages 1-4 above); returns the model folder (``out``, or the
    cached one under ``work_dir()/adapt`` when ``out`` is None)."""
    started = time.perf_counter()
    sizes = SCALES[scale]
    train_recipe = load_train_recipe(recipe)
    try:
        opts = MiningOptions(negatives or sizes["negatives"], depth or sizes["depth"], positive_rule=positive_rule,
                             teachers=tuple(teachers))
        kinds = check_kinds(kinds)
    except ValueError as err:  # depth below negatives, a repeated teacher or kind, ...
        raise InputError(None, str(err), fix="see python -m train.adapt --help") from None
    if mix is not None and not Path(mix).is_file():
        raise InputError(mix, "training file not found", fix="--mix takes a training JSONL (python -m train.data)")
    ds = load_corpus(corpus)
    data = pseudo_training_file(ds, queries=queries or sizes["queries"], kinds=kinds, seed=seed, opts=opts,
                                device=device, batch_size=batch_size, threads=threads, command=command)
    if mix is not None:
        data = mixed_training_file(data, Path(mix))
    labelled = time.perf_counter()
    idf = corpus_idf(ds, train_recipe.base_model)
    changes = {**sizes["recipe"], **({"max_steps": max_steps} if max_steps else {})}
    train_recipe = train_recipe.replace(data=data, idf=str(idf), seed=seed, **changes)
    model = train_cached(dataset_slug(ds.source or ds.name), train_recipe, root=work_dir() / "adapt")
    trained = time.perf_counter()
    result = export_copy(model, Path(out), overwrite) if out is not None else model
    say(f"{ds.name}: training data {labelled - started:.0f} s, IDF and training {trained - labelled:.0f} s, "
        f"total {time.perf_counter() - started:.0f} s")
    return result


# ---- command line -------------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m train.adapt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="BEIR-layout folder holding corpus.jsonl, or a dataset name")
    parser.add_argument("--out", type=Path, help="model folder to write (default: print the cached one)")
    parser.add_argument("--scale", choices=tuple(SCALES), default="full",
                        help="full: 2,000 pseudo-queries and the recipe's steps; smoke: a few, 2 steps (default full)")
    parser.add_argument("--seed", type=int, default=42, help="draws the documents and cuts, and seeds training")
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="training recipe (default %(default)s)")
    parser.add_argument("--queries", type=positive_int, help="pseudo-queries at most (default: the scale's)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="pseudo-query kinds")
    parser.add_argument("--negatives", type=positive_int, help="BM25 negatives per example (default: the scale's)")
    parser.add_argument("--depth", type=positive_int, help="BM25 depth to mine from (default: the scale's)")
    parser.add_argument("--teachers", nargs="+", choices=TEACHERS, default=list(ADAPT_TEACHERS),
                        help="the teacher ensemble (default: %(default)s)")
    parser.add_argument("--positive-rule", choices=POSITIVE_RULES, default="lift",
                        help="lift the source document above BM25's candidates, or keep the teachers' score (lift)")
    parser.add_argument("--max-steps", type=positive_int, help="training steps (default: the recipe's)")
    parser.add_argument("--mix", type=Path, help="a real training file (train.data format) to train on as well")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="teachers' encoding batch")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    return parser


@cli
def main(argv: Sequence[str] | None = None) -> int:
    import shlex

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    out = adapt(args.corpus, args.out, scale=args.scale, seed=args.seed, recipe=args.recipe, queries=args.queries,
                kinds=args.kinds, negatives=args.negatives, depth=args.depth, teachers=args.teachers,
                positive_rule=args.positive_rule, max_steps=args.max_steps, mix=args.mix, device=args.device,
                batch_size=args.batch_size, threads=args.threads, overwrite=args.overwrite,
                command=shlex.join(["python", "-m", "train.adapt", *argv]))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
