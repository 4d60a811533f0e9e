"""The fault suite: bad inputs, environment faults and interruptions, each through the real command line.

Every case runs a kit command in a subprocess on tiny data built here and asserts its exact outcome: a correct
result, or exit status 2 with one line on stderr (``error: <path>[:line]: ... (fix: ...)``), no traceback, and
nothing already written lost. The classes are those of the kit's contract (README, "What the kit guarantees"):
caches keyed by content, complete-or-refuse stages, bounded and finite numbers, validated recipes, one-line
environment faults, no leaked processes or temporaries.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_RECIPE, write_beir_slice, write_training_file

from kit.paths import REPO

pytestmark = pytest.mark.integration

# ---- running commands ---------------------------------------------------------------------------------------------

@dataclass
class Result:
    rc: int
    out: str
    err: str


def run(module: str, *args, env: dict | None = None, fsize: int | None = None, read_only: bool = False,
        timeout: int = 600) -> Result:
    """``python -m module args`` from the repository. ``fsize``: a file-size limit (bytes; writing past it fails like
    a full disk). ``read_only``: run without the power to write into folders whose mode forbids it (root included)."""
    command = [sys.executable, "-m", module, *map(str, args)]
    if read_only and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]

    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    proc = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
    return Result(proc.returncode, proc.stdout, proc.stderr)


_PROGRESS = re.compile(r"\d+%\||\d+/\d+ \[")  # a tqdm progress bar (model loading, encoding), not a message


def one_line_error(result: Result, *needles: str) -> str:
    """Assert exit 2, no traceback and exactly one stderr line ``error: ...`` (besides progress bars) holding every
    needle; return it."""
    lines = [line for line in result.err.splitlines() if line.strip() and not _PROGRESS.search(line)]
    assert result.rc == 2, (result.rc, result.err[-3000:])
    assert "Traceback" not in result.err, result.err[-3000:]
    assert len(lines) == 1, result.err[-3000:]
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def no_traceback_ok(result: Result) -> None:
    assert result.rc == 0, (result.rc, result.err[-3000:])
    assert "Traceback" not in result.err


def reproduce(recipe: Path, dataset: Path, out: Path, work: Path, *extra) -> Result:
    return run("eval.reproduce", "--recipe", recipe, "--datasets", dataset, "--out", out, "--device", "cpu",
               *extra, env={"KIT_WORK": str(work)})


def table(out: Path) -> pd.DataFrame:
    """The Table 1 a run of one dataset wrote to ``out``, by system, its ``<dataset> <measure>`` columns named by the
    measure alone (``nDCG@10``, ``paper nDCG@10``)."""
    (dataset,) = json.loads((out / "table1.json").read_text())["datasets"]
    frame = pd.read_csv(out / "table1.csv").set_index("system")
    return frame.rename(columns=lambda c: c.replace(f"{dataset} ", ""))


# ---- data --------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_a(root, scifact_dir) -> Path:
    """A SciFact slice in a folder named ``tiny`` (8 queries, their documents and 30 others)."""
    return write_beir_slice(root / "a" / "tiny", scifact_dir, n_queries=8, n_other=30, seed=1)


@pytest.fixture(scope="module")
def tiny_b(root, scifact_dir) -> Path:
    """*Another* SciFact slice, in a folder also named ``tiny``: other queries, other documents."""
    return write_beir_slice(root / "b" / "tiny", scifact_dir, n_queries=8, n_other=30, seed=2, offset=40)


@pytest.fixture(scope="module")
def encoded(root, tiny_a) -> Path:
    """``python -m encode`` of ``tiny_a`` (complete), in parts of 10 documents."""
    out = root / "encoded"
    no_traceback_ok(run("encode", "--corpus", tiny_a, "--activation", "l0", "--max-length", "32", "--device", "cpu",
                        "--part-size", "10", "--no-progress", "--output", out))
    return out


@pytest.fixture(scope="module")
def impact_index(root, encoded) -> Path:
    index = root / "i-encoded"
    no_traceback_ok(run("index", "build-impact", "--vectors", encoded, "--index", index))
    return index


@pytest.fixture(scope="module")
def flat_index(root, tiny_a) -> Path:
    index = root / "flat-a"
    no_traceback_ok(run("index", "build-flat", "--corpus", tiny_a / "corpus.jsonl", "--index", index))
    return index


def copy_of(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def first_run(root, recipe, tiny_a) -> Path:
    """``eval.reproduce`` of the tiny recipe on ``tiny_a`` into ``res-a``, work dir ``shared-work``."""
    no_traceback_ok(reproduce(recipe, tiny_a, root / "res-a", root / "shared-work"))
    return root / "res-a"


# ---- 1. caches are keyed by content, not names ---------------------------------------------------------------------

def test_two_datasets_with_the_same_folder_name_never_share_a_cache(root, recipe, first_run, tiny_b):
    """Both slices are called ``tiny``: the second run in the same work dir must score exactly what a fresh work dir
    scores (before the fix it reused the first slice's vectors and index and reported nDCG@10 0.0, exit 0)."""
    work = root / "shared-work"
    no_traceback_ok(reproduce(recipe, tiny_b, root / "res-b", work))
    no_traceback_ok(reproduce(recipe, tiny_b, root / "res-b-fresh", root / "fresh-work"))
    second, fresh = table(root / "res-b"), table(root / "res-b-fresh")
    pd.testing.assert_frame_equal(second[["nDCG@10", "R@100", "FLOPS", "Doc_Len"]],
                                  fresh[["nDCG@10", "R@100", "FLOPS", "Doc_Len"]])
    assert (second["nDCG@10"] > 0.3).all()
    first = table(root / "res-a")
    assert not first["nDCG@10"].equals(second["nDCG@10"])


def test_unchanged_inputs_are_fully_cached(root, recipe, tiny_a, first_run):
    """A re-run with the same inputs recomputes nothing: every artifact is a cache hit (no file rewritten)."""
    work = root / "shared-work"
    artifacts = sorted(p for p in (work / "tiny").rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in artifacts}
    result = reproduce(recipe, tiny_a, root / "res-a2", work)
    no_traceback_ok(result)
    assert {p: p.stat().st_mtime_ns for p in artifacts} == before
    assert "encoding" not in result.out
    pd.testing.assert_frame_equal(table(root / "res-a"), table(root / "res-a2"))


def test_an_edited_document_is_encoded_again_on_resume(root, tiny_a, encoded):
    """``python -m encode`` resumed over a corpus whose document text changed: that document's vector is the one
    a fresh encoding gives, not the stale one (before the fix resume only compared document ids)."""
    edited = copy_of(tiny_a, root / "edited" / "tiny")
    lines = (edited / "corpus.jsonl").read_text().splitlines()
    doc = json.loads(lines[3])
    doc["text"] = "Zebrafish photoreceptors regenerate after laser ablation."
    lines[3] = json.dumps(doc)
    (edited / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    out = copy_of(encoded, root / "encoded-edited")
    args = ["--activation", "l0", "--max-length", "32", "--device", "cpu", "--part-size", "10", "--no-progress"]
    no_traceback_ok(run("encode", "--corpus", edited, *args, "--output", out))
    no_traceback_ok(run("encode", "--corpus", edited, *args, "--output", root / "encoded-fresh"))
    assert (out / "part-00000.jsonl").read_text() == (root / "encoded-fresh" / "part-00000.jsonl").read_text()
    assert "zebra" in (out / "part-00000.jsonl").read_text()


def test_an_index_is_never_reused_for_other_vectors(root, encoded, tiny_b):
    index = root / "idx-reuse"
    no_traceback_ok(run("index", "build-impact", "--vectors", encoded, "--index", index))
    no_traceback_ok(run("index", "build-impact", "--vectors", encoded, "--index", index))  # same vectors: reused
    other = root / "encoded-b"
    no_traceback_ok(run("encode", "--corpus", tiny_b, "--activation", "l0", "--max-length", "32", "--device", "cpu",
                        "--no-progress", "--output", other))
    one_line_error(run("index", "build-impact", "--vectors", other, "--index", index), str(index),
                   "built from other inputs", "--overwrite")


def test_a_flat_index_is_never_reused_for_another_corpus(root, tiny_a, tiny_b):
    index = root / "flat-reuse"
    no_traceback_ok(run("index", "build-flat", "--corpus", tiny_a / "corpus.jsonl", "--index", index))
    one_line_error(run("index", "build-flat", "--corpus", tiny_b / "corpus.jsonl", "--index", index), str(index),
                   "built from other inputs")


# ---- 2. incomplete inputs are refused ------------------------------------------------------------------------------

def test_unfinished_encoding_is_not_indexed(root, encoded):
    unfinished = copy_of(encoded, root / "unfinished")
    (unfinished / "metadata.json").rename(unfinished / "metadata.in-progress.json")  # as when killed mid-way
    one_line_error(run("index", "build-impact", "--vectors", unfinished, "--index", root / "i-unfinished"),
                   "metadata.in-progress.json", "did not finish", "re-run")
    assert not (root / "i-unfinished").exists()


def test_half_a_sharded_encoding_is_not_indexed(root, tiny_a):
    out = root / "sharded"
    args = ["--corpus", tiny_a, "--activation", "l0", "--max-length", "32", "--device", "cpu", "--part-size", "10",
            "--no-progress", "--output", out]
    no_traceback_ok(run("encode", *args, "--shard", "0/2"))
    one_line_error(run("index", "build-impact", "--vectors", out, "--index", root / "i-half"), str(out),
                   "shard 1/2 is missing", "--shard 1/2")
    no_traceback_ok(run("encode", *args, "--shard", "1/2"))
    built = run("index", "build-impact", "--vectors", out, "--index", root / "i-whole")
    no_traceback_ok(built)
    corpus_size = sum(1 for _ in open(tiny_a / "corpus.jsonl"))
    assert json.loads(built.out)["input_documents"] == corpus_size


def test_a_missing_part_is_refused(root, encoded):
    broken = copy_of(encoded, root / "missing-part")
    (broken / "part-00001.jsonl").unlink()
    one_line_error(run("index", "build-impact", "--vectors", broken, "--index", root / "i-missing"),
                   "part-00001.jsonl", "missing")


def test_a_foreign_part_is_refused(root, encoded):
    broken = copy_of(encoded, root / "extra-part")
    shutil.copy(broken / "part-00000.jsonl", broken / "part-00099.jsonl")
    one_line_error(run("index", "build-impact", "--vectors", broken, "--index", root / "i-extra"),
                   "part-00099.jsonl", "not a part of this encoding")


def test_a_part_changed_after_encoding_is_refused(root, encoded):
    broken = copy_of(encoded, root / "changed-part")
    part = broken / "part-00000.jsonl"
    part.write_text(part.read_text().replace('"vector": {', '"vector": {"injected": 99, ', 1))
    one_line_error(run("index", "build-impact", "--vectors", broken, "--index", root / "i-changed"),
                   "part-00000.jsonl", "changed after encoding")


def test_vectors_without_sidecar_need_the_explicit_flag(root, encoded):
    bare = root / "bare-vectors"
    bare.mkdir()
    for part in encoded.glob("part-*.jsonl"):
        shutil.copy(part, bare)
    one_line_error(run("index", "build-impact", "--vectors", bare, "--index", root / "i-bare"), str(bare),
                   "no completion sidecar", "--no-manifest")
    no_traceback_ok(run("index", "build-impact", "--vectors", bare, "--index", root / "i-bare", "--no-manifest"))


def test_seismic_refuses_an_unfinished_encoding_too(root, encoded):
    unfinished = copy_of(encoded, root / "unfinished-seismic")
    (unfinished / "metadata.json").rename(unfinished / "metadata.in-progress.json")
    one_line_error(run("index", "build-impact", "--backend", "seismic", "--vectors", unfinished, "--index",
                       root / "s-unfinished"), "did not finish")


# ---- 3. comparisons use exactly the queries both sides have --------------------------------------------------------

@pytest.fixture(scope="module")
def bm25_run(root) -> Path:
    """A BM25 run of SciFact test through the kit's CLIs (the stored Table 1 row was made the same way)."""
    from kit.paths import shared_dir

    data = shared_dir() / "data"
    index, run_path = root / "scifact-flat", root / "scifact-bm25.trec"
    no_traceback_ok(run("index", "build-flat", "--corpus", data / "beir" / "scifact" / "corpus.jsonl",
                        "--index", index))
    no_traceback_ok(run("index", "search-bm25", "--index", index, "--topics",
                        data / "beir-topics-qrels" / "topics.beir-v1.0.0-scifact.test.tsv.gz", "--output", run_path))
    return run_path


def test_a_kit_produced_run_compares_equal_to_the_stored_bm25_row(bm25_run):
    result = run("report.compare", "--run", bm25_run, "--dataset", "scifact", "--name", "bm25-again",
                 "--baseline", "bm25-flat")
    no_traceback_ok(result)
    row = "| scifact | bm25-again | bm25-flat | nDCG@10 | 300 | 0.6789 | 0.6789 | +0.0000 | 0.000 | 1 | 1 | 1 | 0/300/0 |"
    assert row in result.out


def test_a_partial_run_is_refused_or_explicitly_restricted(root, bm25_run):
    lines = bm25_run.read_text().splitlines()
    queries = list(dict.fromkeys(line.split()[0] for line in lines))[:30]
    partial = write_lines(root / "partial.trec", [line for line in lines if line.split()[0] in set(queries)])
    one_line_error(run("report.compare", "--run", partial, "--dataset", "scifact", "--baseline", "bm25-flat"),
                   str(partial), "covers 30 of the 300 judged test queries", "--missing restrict")
    restricted = run("report.compare", "--run", partial, "--dataset", "scifact", "--baseline", "bm25-flat",
                     "--missing", "restrict")
    no_traceback_ok(restricted)
    row = next(line for line in restricted.out.splitlines() if "| nDCG@10 |" in line)
    cells = [c.strip() for c in row.split("|")]
    assert cells[5] == "30" and cells[6] == cells[7]  # 30 queries, the same mean on both sides (same run)
    zero = run("report.compare", "--run", partial, "--dataset", "scifact", "--baseline", "bm25-flat",
               "--missing", "zero")
    no_traceback_ok(zero)
    row = next(line for line in zero.out.splitlines() if "| nDCG@10 |" in line)
    assert [c.strip() for c in row.split("|")][5] == "300"  # not 570: each query once


def test_a_judged_query_that_retrieves_nothing_is_scored_once(root, tiny_a, recipe):
    """A query whose words occur in no document: its run has no line for it, it scores 0 once per measure, and the
    kit's own results file passes the kit's own schema check (before the fix the row was duplicated)."""
    data = copy_of(tiny_a, root / "nothing" / "tiny")
    with open(data / "queries.jsonl", "a") as fh:
        fh.write(json.dumps({"_id": "999999", "text": "qwxzv jjjkkq"}) + "\n")
    first_doc = json.loads((data / "corpus.jsonl").read_text().splitlines()[0])["_id"]
    with open(data / "qrels" / "test.tsv", "a") as fh:
        fh.write(f"999999\t{first_doc}\t1\n")
    out = root / "res-nothing"
    no_traceback_ok(reproduce(recipe, data, out, root / "work-nothing"))
    per_query = pd.read_csv(out / "per-query" / "table1.csv.gz", dtype={"query_id": str})
    assert not per_query.duplicated(["system", "query_id", "measure"]).any()
    assert (per_query[per_query["query_id"] == "999999"]["value"] == 0).all()
    no_traceback_ok(run("eval.schema", "check", out / "table1.json"))


# ---- 4. non-finite numbers are errors ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stored(root) -> Path:
    """A valid kit-results/1 file with inline per-query values."""
    doc = {"format": "kit-results/1", "command": "hand-made", "measures": ["nDCG@10"],
           "rows": [{"dataset": "scifact", "system": "mine", "metrics": {"nDCG@10": 0.5},
                     "per_query": {"nDCG@10": {"1": 0.25, "3": 0.75}}}]}
    path = root / "stored.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_nan_metric_in_a_results_file(root, stored):
    bad = root / "nan-metric.json"
    bad.write_text(stored.read_text().replace('"nDCG@10": 0.5', '"nDCG@10": NaN'))
    line = one_line_error(run("eval.schema", "check", bad), str(bad), "NaN is not a finite number")
    assert f"{bad}:" in line  # with its line number


def test_nan_inline_per_query_value(root, stored):
    bad = root / "nan-inline.json"
    bad.write_text(stored.read_text().replace('"3": 0.75', '"3": NaN'))
    one_line_error(run("eval.schema", "check", bad), str(bad), "NaN is not a finite number")


def test_nan_in_a_per_query_csv(root):
    bad = write_lines(root / "nan.csv", ["dataset,system,query_id,measure,value", "scifact,x,1,nDCG@10,0.5",
                                         "scifact,x,3,nDCG@10,nan"])
    one_line_error(run("eval.schema", "check", bad), f"{bad}:3", "not finite")


def test_infinite_metric_given_to_compare(root, stored):
    bad = root / "inf.json"
    bad.write_text(stored.read_text().replace('"1": 0.25', '"1": Infinity'))
    one_line_error(run("report.compare", "--metrics", bad), str(bad), "Infinity is not a finite number")


def test_nan_score_in_a_run(root, bm25_run):
    lines = bm25_run.read_text().splitlines()
    fields = lines[5].split()
    fields[4] = "nan"
    lines[5] = " ".join(fields)
    bad = write_lines(root / "nan.trec", lines)
    one_line_error(run("report.compare", "--run", bad, "--dataset", "scifact"), f"{bad}:6", "not a finite number")


def test_nan_query_weight(root, impact_index):
    queries = write_lines(root / "nan-queries.jsonl", ['{"id": "q1", "vector": {"cell": 1}}',
                                                       '{"id": "q2", "vector": {"cell": NaN}}'])
    one_line_error(run("index", "search-impact", "--index", impact_index, "--queries", queries, "--output",
                       root / "nan-run.trec"), f"{queries}:2", "NaN is not a finite number")
    assert not (root / "nan-run.trec").exists()


def test_nan_in_a_lookup_table(root, tiny_a):
    table = root / "nan-table.json"
    table.write_text('{"cell": 1.5, "protein": NaN}')
    one_line_error(run("encode", "--corpus", tiny_a, "--queries", "lilsr", "--table", table, "--output",
                       root / "q.jsonl"), str(table), "NaN is not a finite number")


def test_nan_teacher_score_in_a_training_file(root, scifact_dir):
    data = write_training_file(root / "nan-train.jsonl", scifact_dir, n_queries=2)
    lines = data.read_text().splitlines()
    record = json.loads(lines[1])
    lines[1] = json.dumps(record).replace(str(record["teacher_scores"][1]), "NaN", 1)
    data.write_text("\n".join(lines) + "\n")
    train_recipe = root / "nan-train.yaml"
    train_recipe.write_text(f"base_model: splade-tiny\ndata: {data}\nvariant: l0\nlambda_d: 0.01\nmax_steps: 1\n")
    one_line_error(run("train", "--recipe", train_recipe, "--out", root / "nan-model"), f"{data}:2",
                   "not a finite number")


def test_nan_expected_score_in_a_recipe(root, tiny_a):
    bad = root / "nan-expected.yaml"
    bad.write_text(TINY_RECIPE.replace("{id: bm25-flat, type: bm25}",
                                       "{id: bm25-flat, type: bm25, expected: {tiny: {nDCG@10: .nan}}}"))
    one_line_error(reproduce(bad, tiny_a, root / "r", root / "w"), f"{bad}:", "must be a finite number")


# ---- 5. weights are bounded before Java sees them ------------------------------------------------------------------

@pytest.mark.parametrize("factor", ["1e10", "0", "-5", "nan"])
def test_encode_factor_out_of_range(root, tiny_a, factor):
    one_line_error(run("encode", "--corpus", tiny_a, "--factor", factor, "--output", root / "f"), "--factor",
                   "factor must be a number in (0, 10000]")


def test_a_document_weight_beyond_the_impact_limit(root):
    vectors = write_lines(root / "big-doc" / "part-00000.jsonl", [
        json.dumps({"id": "d1", "contents": "", "vector": {"cell": 3}}),
        json.dumps({"id": "d2", "contents": "", "vector": {"cell": 2**31}})])
    one_line_error(run("index", "build-impact", "--vectors", vectors.parent, "--index", root / "i-big",
                       "--no-manifest"), f"{vectors}:2", "exceeds the impact limit 65535")


def test_a_query_weight_beyond_the_impact_limit(root, impact_index):
    queries = write_lines(root / "big-q.jsonl", ['{"id": "q1", "vector": {"cell": 1000000000}}'])
    one_line_error(run("index", "search-impact", "--index", impact_index, "--queries", queries, "--output",
                       root / "big.trec"), f"{queries}:1", "exceeds the impact limit")


def test_a_query_whose_weights_sum_too_high(root, impact_index):
    vector = {f"t{i}": 60000 for i in range(20)}
    queries = write_lines(root / "sum-q.jsonl", [json.dumps({"id": "q1", "vector": vector})])
    one_line_error(run("index", "search-impact", "--index", impact_index, "--queries", queries, "--output",
                       root / "sum.trec"), f"{queries}:1", "weights sum to 1200000")


def test_a_recipe_factor_that_would_overflow_impacts(root, tiny_a):
    bad = root / "big-factor.yaml"
    bad.write_text(TINY_RECIPE.replace("factor: 100", "factor: 1e10"))
    one_line_error(reproduce(bad, tiny_a, root / "r", root / "w"), f"{bad}:7", "factor")


# ---- 6. recipes reject unknown keys and wrong types, before loading anything ---------------------------------------

@pytest.mark.parametrize("edit, needle", [
    (("hits: 100", "hitz: 100"), ":5: hitz: unknown key"),
    (("hits: 100", "hits: many"), ":5: hits: must be an integer"),
    (("factor: 100", "factor: -5"), ":7: factor: must be a finite number > 0"),
    (("max_length: 64", "max_length: 1"), ":6: max_length: must be an integer"),
    (("{id: bm25-flat, type: bm25}", "{id: bm25-flat, type: bm25, tolerence: 0.1}"), ":9: systems[0].tolerence"),
    (("idf: corpus}", "idf: coprus}"), ":10: systems[1].query.idf"),
    (("measures: [nDCG@10, R@100]", "measures: [nDCG@10, R@@100]"), ":4: measures"),
])
def test_bad_table_recipe_is_one_line_before_anything_loads(root, tiny_a, edit, needle):
    bad = root / "bad-recipe.yaml"
    bad.write_text(TINY_RECIPE.replace(*edit))
    started = time.perf_counter()
    result = reproduce(bad, tiny_a, root / "r", root / "w")
    one_line_error(result, f"{bad}{needle}")
    assert time.perf_counter() - started < 30  # no model was loaded first


@pytest.mark.parametrize("line, needle", [("lr: fast", ":6: lr: must be a finite number"),
                                          ("warmup: 3", ":6: warmup: unknown key")])
def test_bad_training_recipe_is_one_line(root, line, needle):
    bad = root / "bad-train.yaml"
    bad.write_text(f"base_model: splade-tiny\ndata: x.jsonl\nvariant: l0\nlambda_d: 0.01\nmax_steps: 1\n{line}\n")
    one_line_error(run("train", "--recipe", bad), f"{bad}{needle}")


# ---- 7. environment faults are one line, and nothing already written is lost ----------------------------------------

def test_non_utf8_corpus(root, tiny_a):
    data = copy_of(tiny_a, root / "latin1" / "tiny")
    lines = (data / "corpus.jsonl").read_bytes().splitlines()
    lines[2] = lines[2].replace(b'"text": "', b'"text": "caf\xe9 ', 1)
    (data / "corpus.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    one_line_error(run("encode", "--corpus", data, "--output", root / "latin1-out"), f"{data / 'corpus.jsonl'}:3",
                   "not UTF-8", "save the file as UTF-8")


def test_non_utf8_recipe(root, tiny_a):
    bad = root / "latin1.yaml"
    bad.write_bytes(TINY_RECIPE.replace("BM25", "x").encode() + b"# caf\xe9\n")
    one_line_error(reproduce(bad, tiny_a, root / "r", root / "w"), f"{bad}:", "not UTF-8")


def test_non_utf8_topics(root, flat_index):
    topics = root / "latin1-topics.tsv"
    topics.write_bytes(b"1\tcells\n2\tcaf\xe9 cells\n")
    one_line_error(run("index", "search-bm25", "--index", flat_index, "--topics", topics, "--output",
                       root / "t.trec"), f"{topics}:2", "not UTF-8")


def test_non_utf8_run(root):
    bad = root / "latin1.trec"
    bad.write_bytes(b"1 Q0 d1 1 2.5 t\n3 Q0 caf\xe9 1 2.0 t\n")
    one_line_error(run("report.compare", "--run", bad, "--dataset", "scifact"), f"{bad}:2", "not UTF-8")


def test_read_only_output_folder(root, tiny_a):
    parent = root / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        one_line_error(run("encode", "--corpus", tiny_a, "--output", parent / "out", read_only=True),
                       str(parent / "out"), "permission denied")
    finally:
        parent.chmod(0o755)


def test_read_only_work_directory(root, recipe, tiny_a):
    work = root / "read-only-work"
    work.mkdir()
    work.chmod(0o555)
    try:
        result = run("eval.reproduce", "--recipe", recipe, "--datasets", tiny_a, "--out", root / "ro-res",
                     "--device", "cpu", env={"KIT_WORK": str(work)}, read_only=True)
        one_line_error(result, str(work), "permission denied")
    finally:
        work.chmod(0o755)


def test_disk_full_while_encoding_keeps_finished_parts(root, tiny_a, encoded):
    """Writing stops at a file-size limit (as on a full disk): one line naming the file, and the parts and the
    sidecar of an earlier complete encoding in the same folder are untouched."""
    out = copy_of(encoded, root / "disk-full")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "part-00001.jsonl").unlink()  # this part must be written again, and will not fit
    before.pop("part-00001.jsonl")
    result = run("encode", "--corpus", tiny_a, "--activation", "l0", "--max-length", "32", "--device", "cpu",
                 "--part-size", "10", "--no-progress", "--output", out, fsize=2000)
    one_line_error(result, str(out), "file-size limit")
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert {k: v for k, v in after.items() if k in before and k.startswith("part-")} == \
           {k: v for k, v in before.items() if k.startswith("part-")}
    assert "part-00001.jsonl" not in after and not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_disk_full_while_writing_results_keeps_the_old_ones(root, recipe, tiny_a, first_run):
    """The results of an earlier run survive a run that cannot write its own (no partial file replaces them)."""
    out = root / "res-a"
    old = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = run("eval.reproduce", "--recipe", recipe, "--datasets", tiny_a, "--out", out, "--device", "cpu",
                 env={"KIT_WORK": str(root / "shared-work")}, fsize=1000)
    one_line_error(result, str(out), "file-size limit")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == old


def test_a_second_encode_on_the_same_folder_stops_at_once(root, tiny_a):
    from kit.io import exclusive

    out = root / "locked"
    with exclusive(out, "encoding"):  # held by this (test) process, as by a running encode
        result = run("encode", "--corpus", tiny_a, "--output", out)
    one_line_error(result, str(out), "is being written by another encoding", f"pid {os.getpid()}")


def test_stale_temporaries_are_cleaned_by_the_next_run(root, tiny_a, encoded):
    from kit.io import temp_name

    out = copy_of(encoded, root / "stale")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = Path(str(temp_name(out / "part-00003.jsonl")).replace(f"-{os.getpid()}.", f"-{pid}."))
    stale.write_text("half a part")
    stale_dir = Path(str(temp_name(out / "index")).replace(f"-{os.getpid()}.", f"-{pid}."))
    stale_dir.mkdir()
    no_traceback_ok(run("encode", "--corpus", tiny_a, "--activation", "l0", "--max-length", "32", "--device", "cpu",
                        "--part-size", "10", "--no-progress", "--output", out))
    assert not stale.exists() and not stale_dir.exists()


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def test_killing_the_python_parent_kills_the_java_child(root):
    """SIGKILL of ``python -m index build-flat`` while Anserini indexes: the Java process dies with it."""
    from kit.paths import shared_dir

    corpus = shared_dir() / "data" / "beir" / "scifact" / "corpus.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "index", "build-flat", "--corpus", corpus, "--index",
                             root / "killed-flat", "--threads", "1"], cwd=REPO, env={**os.environ,
                            "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    java = None
    deadline = time.time() + 120
    while java is None and time.time() < deadline and proc.poll() is None:
        java = next(iter(_children(proc.pid)), None)
        time.sleep(0.2)
    assert java is not None, "Anserini never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for _ in range(100):
        try:
            os.kill(java, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(java, signal.SIGKILL)
        pytest.fail("the Java child outlived its killed parent")
    assert not (root / "killed-flat").exists()


# ---- 8. the regression check is exactly as tight as the recipe says ------------------------------------------------

@pytest.mark.parametrize("shift, code", [(0.0015, 0), (-0.0015, 0), (0.0025, 1), (-0.0025, 1)])
def test_expected_score_just_outside_its_tolerance_fails_the_run(root, tiny_a, first_run, shift, code):
    """BM25's expected nDCG@10 set 1.5 or 2.5 thousandths from what it measures, tolerance 0.002: the run exits 0 or
    1 accordingly (the stages are cached from the first test, so this only re-scores)."""
    measured = table(root / "res-a").at["bm25-flat", "nDCG@10"]
    path = root / f"edge{shift}.yaml"
    path.write_text(TINY_RECIPE.replace("{id: bm25-flat, type: bm25}", "{id: bm25-flat, type: bm25, expected: "
                                        f"{{tiny: {{nDCG@10: {measured + shift:.5f}}}}}, tolerance: 0.002}}"))
    result = reproduce(path, tiny_a, root / f"res-edge{shift}", root / "shared-work")
    assert result.rc == code, result.err[-2000:]
    assert (f"FAIL bm25-flat: {tiny_a}: nDCG@10" in result.err) == (code == 1)
    # a passing run says that it was checked, and against how many expectations, instead of staying silent
    ok, outside = (0, 1) if code else (1, 0)
    assert (f"table1: {ok} of 2 rows within their stored expectations, {outside} outside, 1 without one "
            "(the check column of table1.md)") in result.out, result.out[-2000:]
