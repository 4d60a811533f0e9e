"""Command line: ``python -m index build-impact|build-flat|search-impact|search-bm25|stats ...``.

``build-impact`` and ``search-impact`` take ``--backend anserini|seismic`` (:mod:`index.backends`); Seismic's
parameters are flags (``--n-postings``, ``--heap-factor``, ...; defaults in :class:`index.seismic.SeismicParams`).

Each command prints its result (build record, search timings or index statistics) as JSON on stdout.
Bad input is reported on one line naming the file and line (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys

from index import anserini
from index.anserini import read_query_vectors
from index.backends import BACKENDS, get_backend
from index.seismic import SeismicParams, add_arguments, options_from_args
from kit.errors import InputError, cli
from kit.fingerprint import file_sha256
from kit.formats import read_beir_corpus, read_topics_tsv
from kit.java import compile_server
from kit.argtypes import ArgumentParser


def _corpus_sha(path) -> str:
    try:
        return file_sha256(path)
    except OSError:
        raise InputError(path, "corpus file not found", fix="check the path") from None


def _backend_options(p: argparse.ArgumentParser, stage: str) -> None:
    p.add_argument("--backend", default="anserini", choices=BACKENDS,
                   help="anserini (Lucene, exact) or seismic (approximate; default: %(default)s)")
    add_arguments(p, SeismicParams.BUILD if stage == "build" else SeismicParams.SEARCH)


def _seismic_options(args) -> dict:
    return options_from_args(args)


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m index", description="Build Anserini indexes and search them.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--index", required=True, help="index folder")
        p.add_argument("--threads", type=int, default=2, help="Anserini threads (default: 2)")
        p.add_argument("--heap", default=None, help="Java heap, e.g. 8g (default: $KIT_JAVA_HEAP or 4g)")

    for name, source, help_ in (("build-impact", "--vectors", "folder of *.jsonl(.gz) sparse document vectors"),
                                ("build-flat", "--corpus", "BEIR corpus.jsonl (.gz allowed)")):
        p = sub.add_parser(name, help=f"build an index from a {help_}")
        p.add_argument(source, required=True, help=help_)
        common(p)
        p.add_argument("--overwrite", action="store_true", help="rebuild even if a complete index exists")
        p.add_argument("--optimize", action="store_true", help="merge the index into one segment")
        if name == "build-impact":
            p.add_argument("--no-validate", dest="validate", action="store_false",
                           help="skip checking every record before indexing")
            p.add_argument("--no-manifest", dest="require_complete", action="store_false",
                           help="index the *.jsonl files as they are, without requiring the complete python -m encode "
                                "output (its metadata sidecars) that is checked by default")
            _backend_options(p, "build")
    for name, source, help_ in (("search-impact", "--queries", "jsonl of {id, vector: {token: int}}"),
                                ("search-bm25", "--topics", "TSV topics: query id<TAB>text (.gz allowed)")):
        p = sub.add_parser(name, help=f"search an index with {help_}")
        p.add_argument(source, required=True, help=help_)
        p.add_argument("--output", required=True, help="TREC run file to write")
        common(p)
        p.add_argument("--hits", type=int, default=1000, help="hits per query (default: 1000)")
        p.add_argument("--keep-query", dest="remove_query", action="store_false",
                       help="keep hits whose id equals the query id (default: drop them, as BEIR runs do)")
        if name == "search-impact":
            _backend_options(p, "search")
        if name == "search-bm25":
            p.add_argument("--k1", type=float, default=anserini.BM25_K1, help="BM25 k1 (default: %(default)s)")
            p.add_argument("--b", type=float, default=anserini.BM25_B, help="BM25 b (default: %(default)s)")
    p = sub.add_parser("class-archive", help="dump the JVM class-data archive that shortens each Anserini start "
                       "(make setup runs it; kept when it exists)")
    p.add_argument("--force", action="store_true", help="dump it again even if it exists")
    p = sub.add_parser("server", help="compile the Anserini server that runs many calls in one JVM "
                       "(KIT_ANSERINI_SERVER; make setup runs it; needs javac)")
    p.add_argument("--force", action="store_true", help="compile it again even if it exists")
    p = sub.add_parser("stats", help="print an index's statistics")
    p.add_argument("--index", required=True, help="index folder")
    p.add_argument("--heap", default=None, help="Java heap (default: $KIT_JAVA_HEAP or 4g)")
    return parser


@cli
def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "class-archive":
        print(f"class-data archive: {anserini.build_class_archive(force=args.force)}")
        return 0
    if args.command == "server":
        print(f"Anserini server: {compile_server(force=args.force)}")
        return 0
    run = dict(threads=getattr(args, "threads", None), heap=args.heap)
    try:
        if args.command in ("build-impact", "search-impact") and (args.backend != "anserini" or any(
                v is not None for v in _seismic_options(args).values())):
            backend = get_backend(args.backend, **_seismic_options(args))
            if args.command == "build-impact":
                result = backend.build(args.vectors, args.index, threads=args.threads, overwrite=args.overwrite,
                                       require_complete=args.require_complete)
            else:
                result = backend.search(args.index, read_query_vectors(args.queries), args.output, hits=args.hits,
                                        threads=args.threads, remove_query=args.remove_query)
        elif args.command == "build-impact":
            result = anserini.build_impact_index(args.vectors, args.index, overwrite=args.overwrite,
                                                 validate=args.validate, optimize=args.optimize,
                                                 require_complete=args.require_complete, **run)
        elif args.command == "build-flat":
            result = anserini.build_flat_index(read_beir_corpus(args.corpus), args.index, overwrite=args.overwrite,
                                               optimize=args.optimize, inputs={"corpus": _corpus_sha(args.corpus)},
                                               **run)
        elif args.command == "search-impact":
            result = anserini.search_impact(args.index, read_query_vectors(args.queries), args.output,
                                            hits=args.hits, remove_query=args.remove_query, **run)
        elif args.command == "search-bm25":
            result = anserini.search_bm25(args.index, read_topics_tsv(args.topics), args.output, hits=args.hits,
                                          remove_query=args.remove_query, k1=args.k1, b=args.b, **run)
        else:
            result = anserini.index_stats(args.index, heap=args.heap)
    except ValueError as err:  # an invalid option value or record that has no file position
        raise InputError(None, str(err)) from None
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
