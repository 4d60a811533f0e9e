"""Fault tests for cached artifacts: a cache is trusted by its content, not by its description alone.

Every artifact the kit reuses records the SHA-256 of its files when it is completed (:mod:`kit.manifest`) and is
verified before it is reused. Each case here edits one cached file by hand -- as a user, a half-synced copy or a bad
disk would -- and re-runs the real command line: the run must give the numbers a fresh work directory gives, with a
note naming the changed file, or stop with one line naming it. Before content hashes were recorded each edit was
reused and moved a number with exit 0 (each test's docstring gives the numbers seen), except the vectors part, which
the encoding's own sidecar refused with exit 2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_beir_slice
from test_faults import no_traceback_ok, reproduce, run, table

pytestmark = pytest.mark.integration

MEASURED = ["nDCG@10", "R@100", "FLOPS", "Doc_Len"]


@pytest.fixture(scope="module")
def tiny(root, scifact_dir) -> Path:
    return write_beir_slice(root / "data" / "tiny", scifact_dir, n_queries=8, n_other=30, seed=1)


@pytest.fixture(scope="module")
def fresh(root, recipe, tiny) -> Path:
    """The tiny recipe computed once into a fresh work directory: the reference numbers and the caches to edit."""
    no_traceback_ok(reproduce(recipe, tiny, root / "res-fresh", root / "work"))
    return root / "res-fresh"


def rerun_edited(root: Path, recipe: Path, tiny: Path, name: str, *edits) -> tuple[str, list[Path]]:
    """Copy the fresh work directory, apply each ``edit(work / "tiny")`` (it returns the file it edited) and re-run
    the recipe there; return (stderr, edited files) once the numbers are asserted to be the fresh ones."""
    work = root / f"work-{name}"
    shutil.copytree(root / "work", work)
    edited = [edit(work / "tiny") for edit in edits]
    result = reproduce(recipe, tiny, root / f"res-{name}", work)
    no_traceback_ok(result)
    pd.testing.assert_frame_equal(table(root / f"res-{name}")[MEASURED], table(root / "res-fresh")[MEASURED])
    return result.err, edited


def one(folder: Path, pattern: str) -> Path:
    found = sorted(p for p in folder.glob(pattern) if not p.name.endswith(".manifest.json"))
    assert len(found) == 1, found
    return found[0]


def noted(err: str, path: Path) -> None:
    """One note on stderr naming ``path`` as changed, and its recomputation."""
    notes = [line for line in err.splitlines() if f"changed since it was made ({path.name})" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ") and notes[0].endswith("; recomputing"), err


def drop_one_query(folder: Path) -> Path:
    """The sparse system's run without the lines of its first query (R@100 and nDCG@10 fall when it is reused)."""
    path = one(folder / "runs", "tiny.bow-idf.l0.*.trec")
    lines = path.read_text().splitlines(keepends=True)
    first = lines[0].split()[0]
    path.write_text("".join(line for line in lines if line.split()[0] != first))
    return path


def edit_query_vectors(folder: Path) -> Path:
    """Every query cut to its lightest token: FLOPS (and a run searched with them) change when the file is reused."""
    path = one(folder / "queries", "tiny.bow-idf.l0.*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        token = min(row["vector"], key=row["vector"].get)
        row["vector"] = {token: row["vector"][token]}
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def flatten_idf(folder: Path) -> Path:
    """Every corpus IDF weight 1.0: if the table were reused, BoW queries without IDF (other query vectors, another
    run, another nDCG@10)."""
    path = one(folder / "idf", "corpus-idf.*.json")
    path.write_text(json.dumps({token: 1.0 for token in json.loads(path.read_text())}))
    return path


def halve_document_frequencies(folder: Path) -> Path:
    """Every token's document frequency halved: FLOPS (computed from them) falls when the file is reused."""
    path = one(folder / "stats", "*.doc-df.*.json")
    data = json.loads(path.read_text())
    data["df"] = {token: max(1, n // 2) for token, n in data["df"].items()}
    path.write_text(json.dumps(data))
    return path


def overwrite_flat_index_norms(folder: Path) -> Path:
    """The last document-length norms of each segment of the BM25 index set to 1 (BM25 then ranks otherwise: nDCG@10
    0.828 -> 0.782 when searched as it is), and the run searched from it gone (searched again)."""
    norms = sorted(one(folder / "indexes", "flat.*").glob("*.nvd"))
    for path in norms:
        data = bytearray(path.read_bytes())
        data[-31:-16] = b"\x01" * 15  # before Lucene's 16-byte footer (its checksum is not verified on search)
        path.write_bytes(bytes(data))
    one(folder / "runs", "bm25-flat.*.trec").unlink()
    return norms[0]


@pytest.fixture(scope="module")
def edited_rerun(root, recipe, tiny, fresh) -> tuple[str, list[Path]]:
    """One re-run over five hand-edited caches: the sparse run, its query vectors, the corpus IDF table, the document
    frequencies and a BM25 index file (each edit alone would change a number if its file were reused; the checks
    below take them one by one)."""
    return rerun_edited(root, recipe, tiny, "edited", drop_one_query, edit_query_vectors, flatten_idf,
                        halve_document_frequencies, overwrite_flat_index_norms)


def test_an_edited_cached_run_is_recomputed(edited_rerun):
    """A cached run missing one query's lines: searched again, the fresh numbers (it was reused: nDCG@10 0.824 ->
    0.746, R@100 1.0 -> 0.875, exit 0)."""
    err, (run_file, *_) = edited_rerun
    noted(err, run_file)


def test_an_edited_query_vector_file_is_recomputed(edited_rerun):
    """Cached query vectors edited: encoded again (they were reused: FLOPS 0.85 -> 0.0, exit 0)."""
    err, (_, queries, *_) = edited_rerun
    noted(err, queries)


def test_an_edited_idf_table_is_recomputed(edited_rerun):
    """A cached corpus IDF table flattened to 1.0: computed again (it was reused and the queries weighted by it:
    nDCG@10 0.824 -> 0.806, exit 0)."""
    err, (_, _, idf, *_) = edited_rerun
    noted(err, idf)


def test_edited_document_frequencies_are_counted_again(edited_rerun):
    """A cached document-frequency table edited: counted again, the fresh FLOPS (it was reused: FLOPS 0.85 -> 0.45,
    Doc_Len 122.3 -> 76.1, exit 0)."""
    err, (*_, df, _) = edited_rerun
    noted(err, df)


def test_an_edited_index_file_is_rebuilt(edited_rerun):
    """Norms in the cached BM25 index overwritten: the index is built again before it is searched (it was searched as
    it was: nDCG@10 0.828 -> 0.782, exit 0)."""
    err, (*_, index_file) = edited_rerun
    noted(err, index_file)


def test_an_edited_vectors_part_is_encoded_again(root, recipe, tiny, fresh):
    """A part of the cached document vectors edited (one document's weights cut to one), the index, statistics and
    run built from them gone: the documents are encoded again, not indexed as they are (before: the part's own
    sidecar refused it, exit 2, with no way on but deleting the folder)."""
    def edit(folder: Path) -> Path:
        vectors = one(folder / "vectors", "splade-tiny.l0.*")
        part = sorted(vectors.glob("part-*"))[0]
        lines = part.read_bytes().splitlines(keepends=True)
        first = json.loads(lines[0])
        first["vector"] = dict(list(first["vector"].items())[:1])
        part.write_bytes((json.dumps(first) + "\n").encode() + b"".join(lines[1:]))
        for stale in (*folder.glob("indexes/splade-tiny.*"), *folder.glob("stats/*"), *folder.glob("runs/tiny.*")):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        return part

    err, (part,) = rerun_edited(root, recipe, tiny, "vectors", edit)
    noted(err, part)


# ---- the mined training file -----------------------------------------------------------------------------------------

def test_a_truncated_mined_training_file_is_mined_again(root, scifact_dir):
    """``train.data mine-offline`` finds its earlier output with its last example cut off: it mines it again (the
    same bytes as before) instead of handing the truncated file on (before: reused, exit 0)."""
    data = write_beir_slice(root / "mine" / "tiny-train", scifact_dir, n_queries=6, n_other=30, seed=3, split="train")
    out = root / "mine" / "train.jsonl"
    args = ("mine-offline", "--dataset", data, "--split", "train", "--negatives", "3", "--depth", "10",
            "--teachers", "bm25", "--out", out)
    env = {"KIT_WORK": str(root / "mine" / "work")}
    no_traceback_ok(run("train.data", *args, env=env))
    made = out.read_bytes()
    out.write_bytes(made[:made.rstrip(b"\n").rfind(b"\n") + 1])
    result = run("train.data", *args, env=env)
    no_traceback_ok(result)
    assert out.read_bytes() == made
    assert f"{out}: changed since it was made ({out.name})" in result.err
