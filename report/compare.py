"""Compare a new system with the stored results, per dataset and query; or re-verify the stored numbers.

    python -m report.compare --run my.trec --dataset scifact [--name my-system]   # a TREC run, scored here
    python -m report.compare --metrics my-system.json                           # kit-results/1 file or per-query CSV
    python -m report.compare --recipe recipes/my-table.yaml                     # a recipe, run by eval.reproduce
    python -m report.compare --within results/table2.json [--baseline baseline]  # a stored table's rows, paired
    python -m report.compare --check                                            # every stored file re-verified
    python -m report.compare --same work/results/table3.json                    # a rerun's numbers = the stored ones?

The new side is compared with every stored system of the same dataset (``--baseline`` picks some) in
``results/table1.json`` (``--against``): per measure, the mean of both sides over the same queries, the delta, a paired
two-sided t-test (``scipy.stats.ttest_rel``) and a Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero differences
dropped, exact p-values for small samples) over the per-query values, and win/tie/loss counts. The t-test p-values of
every comparison one command prints form one family and are Holm-corrected together (``p_holm``, :mod:`eval.stats`);
a difference is significant at α = 0.05 only by that column. The two sides must cover the same queries of each dataset
(a judged query a run did not retrieve for counts as 0, as in :func:`pipeline.metrics.evaluate`); otherwise the command
stops with one line saying which differ.

``--within`` compares the systems of one stored file with each other: every system against each ``--baseline``
(default: the file's first system, e.g. Tables 2-3's Baseline row) on every dataset, a condition trained with several
seeds by its per-query seed mean (its own row; the ``<condition>@seed<N>`` rows are left out).

``--check`` is the regression check in the spirit of Anserini's, :func:`report.check.check`: every number of every stored
file (the records, their tables and Markdown, the generated pages) is re-derived from the per-query values, checked
against its recipe's expectation, or pinned by the digest written with it; each failure is printed with its file and
line and the command exits 1 (``make compare CHECK=1`` then reports make's ``Error 1`` and exits 2). Bad input exits 2
with one line (:func:`kit.errors.cli`).

``--same`` says whether a rerun written to ``work/results/`` holds the stored record's numbers bit for bit
(:mod:`report.same`; ``--against`` names another record).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from eval.recipe import load_recipe
from eval.reproduce import main as reproduce
from eval.schema import FORMAT, Results, load_results
from eval.stats import ALPHA, CORRECTION, TESTS, holm, paired_summary
from kit.argtypes import ArgumentParser
from kit.data import load_dataset
from kit.errors import InputError, cli
from kit.io import atomic_write, open_text
from kit.paths import REPO, dataset_slug, work_dir
from pipeline.metrics import check_run_measures, evaluate, measure_option, unknown_documents
from report.check import check
from report.same import same

DEFAULT_STORED = REPO / "results" / "table1.json"
_RUN_FIX = "a TREC run has six whitespace-separated columns: qid Q0 docid rank score tag"


# ---- the new side ----------------------------------------------------------------------------------------------------

def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """A TREC run ``{qid: {docid: score}}``; a malformed line or a repeated (qid, docid) is an InputError naming it."""
    run: dict[str, dict[str, float]] = {}
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise InputError(path, f"expected 6 columns, found {len(fields)}", lineno, fix=_RUN_FIX)
            qid, _, docid, _, score, _ = fields
            try:
                value = float(score)
            except ValueError:
                raise InputError(path, f"score {score!r} is not a number", lineno, fix=_RUN_FIX) from None
            if not math.isfinite(value):
                raise InputError(path, f"score {score!r} is not a finite number", lineno,
                                 fix="a run's scores must be finite numbers (NaN ranks arbitrarily)")
            if docid in run.setdefault(qid, {}):
                raise InputError(path, f"document {docid!r} listed twice for query {qid!r}", lineno,
                                 fix="one line per (query, document)")
            run[qid][docid] = value
    if not run:
        raise InputError(path, "empty run", fix=_RUN_FIX)
    return run


MISSING = ("error", "restrict", "zero")
"""What ``--missing`` does with judged queries a run has no line for: stop (default), compare on the queries the run
covers only, or count them as 0 (as if the run retrieved nothing for them)."""


def run_results(run_path: str | Path, dataset: str, name: str, measures: Sequence[str],
                missing: str = "error", unknown_docs: bool = False) -> Results:
    """Score a TREC run on ``dataset`` (:func:`kit.data.load_dataset` names) as a one-row :class:`Results`.

    A judged test query the run has no line for is an error unless ``missing`` says otherwise (:data:`MISSING`):
    a run of 30 of 300 queries must not be compared as if it had retrieved nothing for the other 270, nor
    silently on 30. So is a document id the corpus does not have (ids mapped wrongly score near 0), unless
    ``unknown_docs``, and a measure whose cutoff is deeper than the run (:func:`pipeline.metrics.check_run_measures`).
    """
    run = read_run(run_path)
    try:
        ds = load_dataset(dataset)
    except ValueError as exc:
        raise InputError(None, f"--dataset: {exc}") from None
    foreign = sorted(set(run) - set(ds.queries))
    if len(foreign) == len(run):
        raise InputError(run_path, f"none of the run's {len(run)} query ids are test queries of {dataset} "
                                   f"(e.g. {foreign[0]!r})", fix="pass the --dataset the run was made for")
    check_run_measures(run, measures, run_path)
    unknown = unknown_documents(run, run_path, (doc.doc_id for doc in ds.docs()))
    if unknown:
        count, line, qid, docid = unknown
        if not unknown_docs:
            raise InputError(run_path, f"document {docid!r} (query {qid!r}) is not in the {dataset} corpus ({count} "
                                       "of the run's document ids are not)", line,
                             fix="map your document ids to the corpus's _id, or pass --unknown-docs to score them "
                                 "as non-relevant")
        print(f"note: {count} document ids of {run_path} are not in the {dataset} corpus (e.g. {docid!r}, line "
              f"{line}); --unknown-docs: scored as non-relevant", file=sys.stderr)
    judged = {q for q, d in ds.qrels.items() if q in ds.queries and any(r > 0 for r in d.values())}
    absent = sorted(judged - set(run))
    qrels = ds.qrels
    if absent:
        covered = len(judged) - len(absent)
        if missing == "error":
            raise InputError(run_path, f"covers {covered} of the {len(judged)} judged test queries of {dataset} "
                                       f"({len(absent)} have no line, e.g. {absent[0]!r})",
                             fix="search every test query; or pass --missing restrict to compare on the "
                                 f"{covered} it covers, or --missing zero to score the others as 0")
        if missing == "restrict":
            qrels = {q: d for q, d in ds.qrels.items() if q in run}
        print(f"note: {run_path} covers {covered} of {len(judged)} judged queries; --missing {missing}: "
              + ("comparing on those only" if missing == "restrict" else "the others score 0"), file=sys.stderr)
    scores, per_query = evaluate({q: d for q, d in run.items() if q in ds.queries}, qrels, measures)
    key = dataset_slug(dataset)
    per_query.insert(0, "system", name)
    per_query.insert(0, "dataset", key)
    per_query["query_id"] = per_query["query_id"].astype(str)
    if foreign:
        print(f"note: {len(foreign)} query ids of {run_path} are not judged test queries of {dataset} and were ignored "
              f"(e.g. {foreign[0]!r})", file=sys.stderr)
    return Results(Path(run_path), {"format": FORMAT, "command": f"--run {run_path}"},
                   [{"dataset": key, "system": name, "metrics": scores}], per_query)


def recipe_results(recipe: str | Path, device: str | None) -> Results:
    """Run a recipe with :mod:`eval.reproduce` (outputs under ``work/compare/<recipe>``, stages cached) and load them."""
    spec = load_recipe(recipe, table=1)  # eval.reproduce makes Table 1 only
    out = work_dir() / "compare" / Path(recipe).stem
    code = reproduce(["--recipe", str(recipe), "--out", str(out), *(["--device", device] if device else [])])
    if code == 2:
        raise InputError(recipe, "the recipe could not be run (see the error above)")
    return load_results(out / f"table{spec.table}.json")


# ---- comparison ------------------------------------------------------------------------------------------------------

def _values(res: Results, dataset: str, system: str, measure: str) -> pd.Series:
    pq = res.per_query
    sel = pq[(pq["dataset"] == dataset) & (pq["system"] == system) & (pq["measure"] == measure)]
    return sel.set_index("query_id")["value"]


def _same_queries(new: Results, stored: Results, dataset: str, system: str, baseline: str, a: pd.Series,
                  b: pd.Series, restrict: bool = False) -> None:
    only_new, only_old = sorted(set(a.index) - set(b.index)), sorted(set(b.index) - set(a.index))
    if restrict:
        only_old = []
    if only_new or only_old:
        example = f"e.g. {only_new[0]!r} only in {new.path}" if only_new else f"e.g. {only_old[0]!r} only in {stored.path}"
        raise InputError(new.path, f"{dataset}: {system} and stored {baseline} do not cover the same queries "
                                   f"({len(only_new)} only new, {len(only_old)} only stored; {example})",
                         fix="score the dataset's test topics and qrels (a judged query without results counts as 0)")


def _named_as(new: Results, stored: Results) -> Results:
    """``new`` with each dataset the stored side names otherwise spelt as it does: a run's dataset is keyed by its
    work-folder name (:func:`kit.paths.dataset_slug`: ``tiny`` for a folder, ``nanobeir__scifact``), a study's record
    by the name it was run with (``path/to/tiny``, ``nanobeir/scifact``)."""
    names = {dataset_slug(d): d for d in stored.datasets}
    renamed = {d: names[d] for d in new.datasets if d not in stored.datasets and d in names}
    if not renamed:
        return new
    rows = [{**r, "dataset": renamed.get(r["dataset"], r["dataset"])} for r in new.rows]
    pq = None if new.per_query is None else new.per_query.assign(dataset=new.per_query["dataset"].replace(renamed))
    return Results(new.path, new.meta, rows, pq)


def compare(new: Results, stored: Results, baselines: Sequence[str] | None = None,
            measures: Sequence[str] | None = None, restrict: bool = False) -> pd.DataFrame:
    """One row per (dataset, new system, stored baseline, measure): means, delta, paired tests, wins/ties/losses.

    Both sides must hold values for exactly the same queries (InputError naming the difference); with ``restrict``
    the stored side is cut to the new side's queries (the ``queries`` column says how many were compared).
    """
    for side in (new, stored):
        if side.per_query is None:
            raise InputError(side.path, "no per-query values, so no significance test",
                             fix="name a per-query CSV in per_query, or give each row per_query values")
    new = _named_as(new, stored)
    missing = [d for d in new.datasets if d not in stored.datasets]
    if missing:
        raise InputError(new.path, f"dataset {missing[0]!r} is not in the stored results {stored.path} "
                                   f"(stored: {', '.join(stored.datasets)})",
                         fix="compare on a stored dataset, or reproduce that dataset first (make reproduce-table1 DATASETS=...)")
    rows = []
    for dataset in new.datasets:
        chosen = stored.systems(dataset) if not baselines else list(baselines)
        unknown = [b for b in chosen if b not in stored.systems(dataset)]
        if unknown:
            raise InputError(stored.path, f"--baseline {unknown[0]!r} has no {dataset} row",
                             fix=f"choose from {', '.join(stored.systems(dataset))}")
        for system in new.systems(dataset):
            new_measures = _measures(new, dataset, system)
            for baseline in chosen:
                old_measures = _measures(stored, dataset, baseline)
                for res, who, have in ((new, system, new_measures), (stored, baseline, old_measures)):
                    lacking = [m for m in measures or () if m not in have]
                    if lacking:
                        raise InputError(res.path, f"{dataset}: {who} has no per-query {', '.join(lacking)} "
                                                   f"(it has {', '.join(have) or 'none'})",
                                         fix="pass --measures from those both sides have")
                common = _common_measures(measures or new_measures, new_measures, old_measures, stored)
                if not common:
                    raise InputError(new.path, f"{dataset}: {system} and stored {baseline} share no measure "
                                               f"(new: {', '.join(new_measures)}; stored: {', '.join(sorted(old_measures))})",
                                     fix="report the stored measures (see --measures)")
                rows += [_paired_row(new, stored, dataset, system, baseline, m, restrict) for m in common]
    return _with_holm(pd.DataFrame(rows))


def _measures(res: Results, dataset: str, system: str) -> list[str]:
    """The measures ``system`` has per-query values of on ``dataset``, in file order."""
    pq = res.per_query
    return list(dict.fromkeys(pq.loc[(pq["dataset"] == dataset) & (pq["system"] == system), "measure"]))


def _common_measures(wanted: Sequence[str], have: Sequence[str], base: Sequence[str], stored: Results) -> list[str]:
    """The ``wanted`` measures both sides have, in the stored table's column order (nDCG@10 first)."""
    order = list(stored.meta.get("measures") or [])
    return sorted((m for m in wanted if m in have and m in base),
                  key=lambda m: order.index(m) if m in order else len(order))


def _paired_row(new: Results, stored: Results, dataset: str, system: str, baseline: str, measure: str,
                restrict: bool = False) -> dict:
    """One comparison: both sides' means over the same queries, the delta, paired tests and wins/ties/losses."""
    a, b = _values(new, dataset, system, measure), _values(stored, dataset, baseline, measure)
    _same_queries(new, stored, dataset, system, baseline, a, b, restrict)
    b = b.loc[a.index]
    return {"dataset": dataset, "system": system, "baseline": baseline, "measure": measure, "queries": len(a),
            "new": a.mean(), "stored": b.mean(), **paired_summary(a.tolist(), b.tolist())}


def _with_holm(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the Holm-corrected t-test p-values of all its rows (one family) as ``p_holm``."""
    table["p_holm"] = holm(table["p_t"].tolist()) if len(table) else []
    return table


def within(stored: Results, baselines: Sequence[str] | None = None,
           measures: Sequence[str] | None = None) -> pd.DataFrame:
    """Every system of one stored file against each of ``baselines`` (default: the file's first system) on every
    dataset that has both: paired tests over the per-query values (a condition's own rows hold its seeds' mean; the
    ``@seed`` rows are left out), Holm-corrected over every comparison of the call."""
    if stored.per_query is None:
        raise InputError(stored.path, "no per-query values, so no significance test",
                         fix="name a per-query CSV in per_query, or give each row per_query values")
    systems = {d: [s for s in stored.systems(d) if "@seed" not in s] for d in stored.datasets}
    chosen = list(baselines) if baselines else [next(iter(systems.values()))[0]]
    for b in chosen:
        if not any(b in s for s in systems.values()):
            raise InputError(stored.path, f"--baseline {b!r} is not a system of this file",
                             fix=f"choose from {', '.join(dict.fromkeys(x for s in systems.values() for x in s))}")
    rows = []
    for dataset, names in systems.items():
        for baseline in (b for b in chosen if b in names):
            for system in (s for s in names if s != baseline):
                have = _measures(stored, dataset, system)
                common = _common_measures(measures or have, have, _measures(stored, dataset, baseline), stored)
                rows += [_paired_row(stored, stored, dataset, system, baseline, m) for m in common]
    if not rows:
        raise InputError(stored.path, "nothing to compare: no dataset has a baseline and another system with a "
                                      "shared per-query measure")
    return _with_holm(pd.DataFrame(rows))


def render(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table, with the tests named."""
    lines = [f"Tests: {TESTS}; p-values two-sided. p (Holm): the t-test p-values of the {len(table)} comparisons "
             f"below corrected together by {CORRECTION}; significant at α = {ALPHA}: p (Holm) < {ALPHA}.", "",
             "| dataset | system | baseline | measure | queries | new | stored | Δ | t | p (t-test) | p (Wilcoxon) "
             "| p (Holm) | W/T/L |",
             "|" + "---|" * 13]
    for r in table.to_dict("records"):
        lines.append(f"| {r['dataset']} | {r['system']} | {r['baseline']} | {r['measure']} | {r['queries']} | {r['new']:.4f} | "
                     f"{r['stored']:.4f} | {r['delta'] + 0.0:+.4f} | {r['t']:.3f} | {r['p_t']:.4g} | {r['p_wilcoxon']:.4g} | "
                     f"{r['p_holm']:.4g} | {r['wins']}/{r['ties']}/{r['losses']} |")
    return "\n".join(lines) + "\n"


# ---- command line ----------------------------------------------------------------------------------------------------

def _described(stored: Results) -> str:
    return f"{stored.path} ({stored.meta.get('command', '?')}, commit {(stored.meta.get('commit') or '?')[:8]})"


def _report(header: str, table: pd.DataFrame, out: str | None) -> int:
    """Print a comparison under ``header`` (and write it as CSV to ``out``)."""
    print(header + "\n")
    print(render(table))
    if out:
        with atomic_write(out) as fh:
            table.to_csv(fh, index=False)
    return 0


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m report.compare", description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--run", help="a TREC run file (needs --dataset)")
    mode.add_argument("--metrics", help="a kit-results/1 JSON file or a per-query CSV (results/SCHEMA.md)")
    mode.add_argument("--recipe", help="a recipe to run with eval.reproduce (outputs under work/compare/)")
    mode.add_argument("--within", metavar="FILE",
                      help="compare the systems of one stored kit-results/1 file with its --baseline rows")
    mode.add_argument("--check", action="store_true", help="re-verify the stored numbers (the default without a new side)")
    mode.add_argument("--same", metavar="FILE",
                      help="whether a rerun's kit-results/1 record holds the numbers of the stored one (results/<its "
                           "name>, or --against) bit for bit")
    p.add_argument("--dataset", help="dataset of --run (scifact, a BEIR directory, ...)")
    p.add_argument("--missing", choices=MISSING, default="error",
                   help="--run: judged queries without a line in the run: error (default), restrict (compare on the "
                        "queries the run covers) or zero (score them 0)")
    p.add_argument("--unknown-docs", action="store_true",
                   help="--run: score a run whose document ids are not all in the corpus (those count as non-relevant)")
    p.add_argument("--name", help="system name of --run (default: the file name)")
    p.add_argument("--against", nargs="+", default=None,
                   help=f"stored results (default: {DEFAULT_STORED.relative_to(REPO)}; --check: everything under "
                        "results/ and docs/)")
    p.add_argument("--baseline", action="append",
                   help="stored system id to compare with (repeatable; default: all; --within: the file's first)")
    p.add_argument("--measures", help="comma-separated measures (default: all the new side reports)")
    p.add_argument("--expected-from", metavar="STUDY",
                   help="--check: a study file holding the expected scores (default: the one each record names)")
    p.add_argument("--device", default=None, help="--recipe: cpu or cuda")
    p.add_argument("--out", help="also write the comparison as CSV here")
    args = p.parse_args(argv)
    measures = measure_option(args.measures) if args.measures else None

    if args.same:
        if args.against and len(args.against) > 1:
            raise InputError(None, f"--against: --same compares with one record, got {len(args.against)}")
        return same(args.same, args.against[0] if args.against else None)

    if args.within:
        stored = load_results(args.within)
        table = within(stored, args.baseline, measures)
        return _report(f"within: {_described(stored)}", table, args.out)

    if args.run or args.metrics or args.recipe:
        if args.against and len(args.against) > 1:
            raise InputError(None, f"--against: a comparison takes one stored results file, got {len(args.against)}")
        stored = load_results(args.against[0] if args.against else DEFAULT_STORED)
        if args.run:
            if not args.dataset:
                raise InputError(None, "--run needs --dataset (the dataset the run was made for, e.g. scifact)")
            new = run_results(args.run, args.dataset, args.name or Path(args.run).name,
                              measures or stored.meta.get("measures") or ["nDCG@10"], args.missing, args.unknown_docs)
        elif args.metrics:
            new = load_results(args.metrics)
        else:
            new = recipe_results(args.recipe, args.device)
        table = compare(new, stored, args.baseline, measures, restrict=args.run is not None and args.missing == "restrict")
        return _report(f"new: {new.path}\nstored: {_described(stored)}", table, args.out)

    failures = check(args.against, expected_from=args.expected_from)
    for line in failures:
        print(line, file=sys.stderr)
    print(f"check: FAILED, {len(failures)} failures (exit 1)" if failures
          else "check: every stored number re-derived or within its expectation, every stored file as written")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
