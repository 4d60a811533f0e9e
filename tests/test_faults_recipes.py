"""Faults of recipes and inputs: recipes that cannot run, and inputs compare and the condition files should
question, each through the real command line.

Every refusal here happens while the recipe or the run is read, before any model loads: exit 2 and one line
``error: <file>:<line>: ...`` (``one_line_error``). Each case was accepted by the kit before (a silently used value,
a run that computed everything then failed, a traceback, or a number reported with no word), except the boundary
cases of :func:`test_a_strict_minimum_refuses_its_boundary` and :func:`test_an_inclusive_minimum_accepts_its_boundary`,
which guard the validators against an off-by-one (``>`` turned ``>=``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import TINY_RECIPE, write_beir_slice
from test_faults import no_traceback_ok, one_line_error, run

from kit.paths import REPO

pytestmark = pytest.mark.integration

RECIPE = TINY_RECIPE.lstrip("\n")  # the fault suite's tiny recipe, its first key on line 1

CONDITION = """\
id: {id}
train: recipes/train/tiny.yaml
set: {{variant: l0}}
mask: true
evaluate: [scifact, vaswani]
expected:
  scifact: {{nDCG@10: 0.6}}
"""

TRAIN = "base_model: splade-tiny\ndata: x.jsonl\nvariant: l0\nlambda_d: 0.01\nmax_steps: 1\n"


@pytest.fixture(scope="module")
def tiny(root, scifact_dir) -> Path:
    return write_beir_slice(root / "tiny", scifact_dir, n_queries=4, n_other=10, seed=3)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def reproduce(root: Path, recipe: Path, tiny: Path, *extra):
    """``eval.reproduce`` of ``recipe`` on the tiny slice, timed: a refusal must come before any model loads."""
    started = time.perf_counter()
    result = run("eval.reproduce", "--recipe", recipe, "--datasets", tiny, "--out", root / "out", "--device", "cpu",
                 *extra, env={"KIT_WORK": str(root / "work")})
    return result, time.perf_counter() - started


def refused(root: Path, tiny: Path, name: str, text: str, *needles: str) -> str:
    path = write(root / name, text)
    result, seconds = reproduce(root, path, tiny)
    line = one_line_error(result, *(n.format(path=path) for n in needles))
    assert seconds < 30, seconds  # refused while reading the recipe
    return line


# ---- class 4: a recipe that cannot run is refused while it is read -------------------------------------------------

@pytest.mark.parametrize("name, edit, needle", [
    ("top", ("hits: 100\n", "hits: 100\nhits: 5\n"), "{path}:5: hits: given twice (first on line 4)"),
    ("nested", ("{id: bm25-flat, type: bm25}", "{id: bm25-flat, type: bm25, tolerance: 0.1, tolerance: 0.2}"),
     "{path}:8: systems[0].tolerance: given twice"),
])
def test_a_table_recipe_key_given_twice_is_refused(root, tiny, name, edit, needle):
    refused(root, tiny, f"twice-{name}.yaml", RECIPE.replace(*edit), needle, "keep one of them")


def test_a_key_given_twice_is_refused_in_training_condition_regime_and_teacher_files(root):
    """One loader reads every YAML file of the kit: each kind refuses a repeated key at its line."""
    train = write(root / "twice-train.yaml", TRAIN + "lr: 2.0e-5\nlr: 1.0e-3\n")
    one_line_error(run("train", "--recipe", train), f"{train}:7: lr: given twice (first on line 6)")
    condition = write(root / "conditions" / "twice.yaml", CONDITION.format(id="twice") + "mask: false\n")
    one_line_error(run("eval.ablation", "measure", condition, "--dry-run", env={"KIT_WORK": str(root / "work")}),
                   f"{condition}:8: mask: given twice (first on line 4)")
    teachers = write(root / "twice-teachers.yaml", (REPO / "recipes" / "studies" / "teachers.yaml").read_text()
                     + "in_domain: scifact\n")
    lineno = len(teachers.read_text().splitlines())
    one_line_error(run("eval.study", teachers, "--list-conditions"), f"{teachers}:{lineno}: in_domain: given twice")


def test_an_empty_system_list_is_refused(root, tiny):
    text = RECIPE.split("systems:")[0] + "systems: []\n"
    refused(root, tiny, "no-systems.yaml", text, "{path}:7: systems: expected a non-empty list")


@pytest.mark.parametrize("table", [2, 9, 0])
def test_a_table_the_runner_does_not_make_is_refused(root, tiny, table):
    """eval.reproduce makes Table 1 only: another number used to compute every stage, then end in a traceback."""
    refused(root, tiny, f"table{table}.yaml", RECIPE.replace("table: 1", f"table: {table}"),
            f"{{path}}:1: table: this runner makes Table 1, not Table {table}")


@pytest.mark.parametrize("factor", ["0.01", "0.5"])
def test_a_factor_that_rounds_the_weights_to_zero_is_refused(root, tiny, factor):
    refused(root, tiny, "small-factor.yaml", RECIPE.replace("factor: 100", f"factor: {factor}"),
            "{path}:6: factor:", "below 1")


@pytest.mark.parametrize("system, expected, needle", [
    ("{id: bm25-flat, type: bm25, expected: {tiny: {nDCG@10: 0.5, RR@10: 0.123}}}", "RR@10",
     "RR@10 is expected, but a bm25 system here does not measure it (it measures nDCG@10, R@100)"),
    ("{id: bm25-flat, type: bm25, expected: {tiny: {FLOPS: 2.0}}}", "FLOPS", "FLOPS is expected"),
])
def test_an_expected_measure_the_recipe_never_computes_is_refused(root, tiny, system, expected, needle):
    """It used to run everything, then print ``FAIL ... nan≠0.123``."""
    text = RECIPE.replace("{id: bm25-flat, type: bm25}", system)
    refused(root, tiny, "unmeasured.yaml", text, f"{{path}}:8: systems[0].expected.tiny.{expected}: {needle}")


def test_flops_and_doc_len_may_be_expected_of_a_sparse_system(root, tiny):
    text = RECIPE.replace("idf: corpus}}", "idf: corpus}, expected: {tiny: {FLOPS: 2.0, Doc_Len: 120.5}}}")
    path = write(root / "sparse-flops.yaml", text)
    result = run("eval.reproduce", "--recipe", path, "--datasets", tiny, "--list-conditions")
    no_traceback_ok(result)
    assert f"tiny.bow-idf.l0: sparse system of Table 1; one run per dataset; expected {tiny} FLOPS 2, Doc_Len 120.5" \
        in result.out


@pytest.mark.parametrize("measures, needle", [("[nDCG@10, MRR@10]", "ir-measures spells it RR@10"),
                                              ("[ndcg@10]", "ir-measures spells it nDCG@10"),
                                              ("[nDCG@10, R@100, nDCG@10]", "listed twice")])
def test_recipe_measures_must_be_spelled_as_ir_measures_does(root, tiny, measures, needle):
    refused(root, tiny, "spelling.yaml", RECIPE.replace("[nDCG@10, R@100]", measures), "{path}:3: measures:", needle)


def test_a_misspelt_dataset_in_a_recipe_fails_before_any_dataset_loads(root, tiny):
    path = write(root / "typo-datasets.yaml", RECIPE.replace("datasets: [unused]", "datasets: [vaswani, scifcat]"))
    started = time.perf_counter()
    result = run("eval.reproduce", "--recipe", path, "--out", root / "out", "--device", "cpu",
                 env={"KIT_WORK": str(root / "work")})
    one_line_error(result, f"{path}:2: datasets: unknown dataset 'scifcat' (did you mean scifact?)")
    assert time.perf_counter() - started < 30


# ---- class 8: boundaries of the validators ---------------------------------------------------------------------------

@pytest.mark.parametrize("line", ["lr: 0", "teacher_scale: 0", "query_lr_multiplier: 0", "max_grad_norm: 0",
                                  "max_steps: 0", "batch_size: 0", "grad_accumulation: 0", "save_steps: 0",
                                  "logging_steps: 0", "docs_per_query: 1", "max_length: 7"])
def test_a_strict_minimum_refuses_its_boundary(root, line):
    key = line.split(":")[0]
    path = write(root / f"boundary-{key}.yaml", TRAIN.replace(f"{key}: 1\n", "") + line + "\n")
    one_line_error(run("train", "--recipe", path), f"{path}:", f"{key}: must be")


@pytest.mark.parametrize("edit, needle", [(("factor: 100", "factor: 0"), ":6: factor: must be a finite number > 0"),
                                          (("hits: 100", "hits: 0"), ":4: hits: must be an integer in [1, 100000]"),
                                          (("max_length: 64", "max_length: 1"), ":5: max_length: must be an integer")])
def test_a_table_recipe_minimum_refuses_its_boundary(root, tiny, edit, needle):
    refused(root, tiny, "boundary.yaml", RECIPE.replace(*edit), "{path}" + needle)


def test_an_inclusive_minimum_accepts_its_boundary(root, tiny):
    path = write(root / "factor-1.yaml", RECIPE.replace("factor: 100", "factor: 1").replace("hits: 100", "hits: 1"))
    no_traceback_ok(run("eval.reproduce", "--recipe", path, "--datasets", tiny, "--list-conditions"))
    changes = ["max_steps=1", "batch_size=1", "grad_accumulation=1", "docs_per_query=2", "warmup_T=0", "lambda_d=0",
               "weight_decay=0", "max_length=8"]
    result = run("eval.ablation", "measure", "l0-mask", "--dry-run", *(a for c in changes for a in ("--set", c)),
                 env={"KIT_WORK": str(root / "work")})
    no_traceback_ok(result)
    assert "'max_steps': 1, 'batch_size': 1" in result.out and "'max_length': 8}" in result.out


# ---- class 6: condition files are checked against what the kit can load and measure ---------------------------------

@pytest.mark.parametrize("edit, lineno, needle", [
    (("[scifact, vaswani]", "[scifact, scifcat]"), 5, "evaluate: unknown dataset 'scifcat' (did you mean scifact?)"),
    (("{nDCG@10: 0.6}", "{ndcg@10: 0.6}"), 6,
     "expected: scifact: unknown measure 'ndcg@10': ir-measures spells it nDCG@10"),
    (("scifact: {nDCG@10: 0.6}", "scifact: {nDCG@10: 0.6}\n  vaswani: {FLOPS: 2.0}"), 8,
     "expected.vaswani.FLOPS: FLOPS is expected, but eval.ablation on vaswani does not measure it"),
])
def test_a_condition_file_is_validated_before_training(root, edit, lineno, needle):
    """A typo in ``evaluate`` used to be ignored (training started, the dataset was never evaluated)."""
    path = write(root / "conditions" / "typo.yaml", CONDITION.format(id="typo").replace(*edit))
    one_line_error(run("eval.ablation", "measure", path, "--dry-run", env={"KIT_WORK": str(root / "work")}),
                   f"{path}:{lineno}: {needle}")


def test_a_condition_may_expect_flops_and_doc_len_on_scifact(root):
    path = write(root / "conditions" / "sparsity.yaml", CONDITION.format(id="sparsity")
                 .replace("{nDCG@10: 0.6}", "{nDCG@10: 0.6, FLOPS: 2.0, Doc_Len: 120.5}"))
    result = run("eval.ablation", "measure", path, "--dry-run", env={"KIT_WORK": str(root / "work")})
    no_traceback_ok(result)
    assert result.out.startswith("sparsity seed 42: model ")


@pytest.mark.parametrize("edit, needle", [
    (("datasets: [scifact]", "datasets: [scifcat]"), "datasets: unknown dataset 'scifcat'"),
    (("{scifact: {nDCG@10: 0.5676}}", "{scifact: {ndcg@10: 0.5676}}"), "ir-measures spells it nDCG@10"),
    (("expected: {scifact: {nDCG@10: 0.5676}}", "expected: {vaswani: {nDCG@10: 0.5676}}"),
     "'vaswani' is not one of the study's datasets"),
])
def test_a_regime_study_is_validated_before_training(root, edit, needle):
    path = write(root / "regime.yaml", (REPO / "recipes" / "studies" / "regime.yaml").read_text().replace(*edit))
    one_line_error(run("eval.study", path, "--list-conditions"), f"{path}:", needle)


def test_measure_dry_run_plans_exactly_its_condition(root):
    result = run("eval.ablation", "measure", "l0-mask", "--seed", "43", "--no-zero-shot", "--dry-run",
                 env={"KIT_WORK": str(root / "work")})
    no_traceback_ok(result)
    lines = result.out.splitlines()
    assert len(lines) == 2, result.out
    assert lines[0].startswith("l0-mask seed 43: model ") and lines[0].endswith("evaluated on scifact")
    assert lines[1].strip() == "python -m eval.ablation measure l0-mask --seed 43 --scale full --no-zero-shot"


# ---- class 6: compare questions the run it is given -----------------------------------------------------------------

@pytest.fixture(scope="module")
def scifact_runs(root, scifact_dir) -> dict[str, Path]:
    """10-deep runs of every SciFact test query: its relevant documents first, then corpus documents (``good``);
    the same with every document id prefixed ``doc`` (``foreign``, the classic id-mapping bug)."""
    relevant: dict[str, list[str]] = {}
    for line in (scifact_dir / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, docid, _ = line.split("\t")
        relevant.setdefault(qid, []).append(docid)
    with open(scifact_dir / "corpus.jsonl") as fh:
        fillers = [json.loads(next(fh))["_id"] for _ in range(20)]
    runs = {}
    for name, prefix in (("good", ""), ("foreign", "doc")):
        lines = []
        for qid, docs in relevant.items():
            ranked = list(dict.fromkeys([*docs, *fillers]))[:10]
            lines += [f"{qid} Q0 {prefix}{d} {rank} {20 - rank} mine" for rank, d in enumerate(ranked, start=1)]
        runs[name] = write(root / f"{name}.trec", "\n".join(lines) + "\n")
    return runs


def compare(*args):
    return run("report.compare", *args, "--baseline", "bm25-flat")


def test_a_run_of_document_ids_not_in_the_corpus_is_refused(scifact_runs):
    """Scored before as nDCG@10 0.0000 against BM25's 0.6789, with no note."""
    bad = scifact_runs["foreign"]
    first = bad.read_text().split()[2]
    one_line_error(compare("--run", bad, "--dataset", "scifact", "--measures", "nDCG@10"),
                   f"{bad}:1: document {first!r}", "is not in the scifact corpus (",
                   "of the run's document ids are not)",
                   "map your document ids to the corpus's _id")
    flagged = compare("--run", bad, "--dataset", "scifact", "--measures", "nDCG@10", "--unknown-docs")
    no_traceback_ok(flagged)
    assert "--unknown-docs: scored as non-relevant" in flagged.err


def test_a_measure_deeper_than_the_run_is_refused(scifact_runs):
    """A 10-deep run was given R@100 and R@1000 (the stored table's measures), p(Holm) 4.7e-12, without a word."""
    good = scifact_runs["good"]
    one_line_error(compare("--run", good, "--dataset", "scifact"),
                   f"{good}: R@100 needs the top 100 documents of each query, but the run lists at most 10",
                   "--measures with cutoffs <= 10")
    ok = compare("--run", good, "--dataset", "scifact", "--measures", "nDCG@10")
    no_traceback_ok(ok)
    assert "| scifact | good.trec | bm25-flat | nDCG@10 | 300 |" in ok.out


def test_measures_the_stored_side_lacks_are_refused(scifact_runs):
    """``--measures nDCG@10,AP,RR@10`` compared nDCG@10 only and said nothing of the other two."""
    one_line_error(compare("--run", scifact_runs["good"], "--dataset", "scifact", "--measures", "nDCG@10,AP,RR@10"),
                   f"{REPO / 'results' / 'table1.json'}: scifact: bm25-flat has no per-query AP, RR@10 (it has ",
                   "nDCG@10", "pass --measures from those both sides have")


@pytest.mark.parametrize("name, hint", [("ndcg_cut_10", "nDCG@10"), ("MRR@10", "RR@10"), ("ndcg@10", "nDCG@10")])
def test_a_measure_name_ir_measures_spells_otherwise_is_one_line(scifact_runs, name, hint):
    """A trec_eval name was a traceback."""
    one_line_error(compare("--run", scifact_runs["good"], "--dataset", "scifact", "--measures", f"{name},R@10"),
                   f"--measures: unknown measure {name!r}: ir-measures spells it {hint}")
