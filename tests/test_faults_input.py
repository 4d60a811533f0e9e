"""Fault suite, input side: broken models and malformed collections, each through the real command line.

A model whose weights or activations are not finite, or whose vectors come out (nearly) all
empty, stops the run with one line instead of writing a complete encoding of empty vectors (NaN fails every ``> 0``
test, so it used to vanish silently). Class 5: an empty or blank corpus, an id with whitespace, a lone surrogate, a
model folder that cannot be what it claims and a max length beyond the model's positions are one line naming the
file (and line) and the fix, exit 2, never a traceback -- nor a silent zero.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import write_beir_slice, write_training_file
from test_faults import no_traceback_ok, one_line_error, run

pytestmark = pytest.mark.integration

ENCODE = ("--max-length", "32", "--device", "cpu", "--no-progress")


def recipe(root: Path, name: str, model: str = "splade-tiny", max_length: int = 32, idf: str = "corpus") -> Path:
    """A one-system Table 1 recipe: ``model``'s l0 documents, bow-idf queries."""
    path = root / f"{name}.yaml"
    path.write_text(f"""
table: 1
datasets: [unused]
measures: [nDCG@10]
hits: 100
max_length: {max_length}
factor: 100
systems:
  - id: sys.bow-idf.l0
    type: sparse
    doc: {{model: {model}, activation: l0}}
    query: {{encoder: bow-idf, idf: {idf}}}
""")
    return path


def reproduce(root: Path, recipe_path: Path, dataset: Path, name: str):
    return run("eval.reproduce", "--recipe", recipe_path, "--datasets", dataset, "--out", root / f"res-{name}",
               "--device", "cpu", env={"KIT_WORK": str(root / f"work-{name}")})


def edit_jsonl(path: Path, line: int, **fields) -> None:
    """Set ``fields`` of the JSON record on ``line`` (1-based) of ``path``."""
    lines = path.read_text().splitlines()
    lines[line - 1] = json.dumps({**json.loads(lines[line - 1]), **fields})
    path.write_text("".join(x + "\n" for x in lines))


# ---- data and models --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(root, scifact_dir) -> Path:
    """A SciFact slice: 4 judged queries, their documents and 10 others."""
    return write_beir_slice(root / "data" / "tiny", scifact_dir, n_queries=4, n_other=10, seed=1)


@pytest.fixture
def slice_copy(tmp_path, tiny):
    """A fresh copy of ``tiny`` (in a folder named ``tiny``) for a test to break."""
    return shutil.copytree(tiny, tmp_path / "tiny")


@pytest.fixture(scope="module")
def make_model(root, splade_tiny_path):
    """``make_model(name, edit)``: SPLADE-tiny with ``edit(model)`` applied to its weights, saved in its own folder."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    def make(name: str, edit=None, tokenizer: bool = True) -> Path:
        folder = root / "models" / name
        model = AutoModelForMaskedLM.from_pretrained(splade_tiny_path)
        if edit is not None:
            with torch.no_grad():
                edit(model)
        model.save_pretrained(folder)
        if tokenizer:
            AutoTokenizer.from_pretrained(splade_tiny_path).save_pretrained(folder)
        return folder

    return make


@pytest.fixture(scope="module")
def nan_model(make_model) -> Path:
    return make_model("nan", lambda m: [p.fill_(float("nan")) for p in m.parameters()])


@pytest.fixture(scope="module")
def silent_model(make_model) -> Path:
    """Finite weights, every logit negative (decoder bias -1e4): every document vector is empty."""
    return make_model("silent", lambda m: m.get_output_embeddings().bias.fill_(-1e4))


# ---- 3. NaN inside the model ---------------------------------------------------------------------------------------

def test_nan_weights_stop_the_encoding(root, tiny, nan_model):
    """Before the fix every document encoded to an empty vector and metadata.json was written, exit 0."""
    out = root / "enc-nan"
    result = run("encode", "--corpus", tiny, "--model", nan_model, *ENCODE, "--output", out)
    one_line_error(result, str(nan_model), "not finite")
    assert not (out / "metadata.json").exists()


def test_non_finite_activations_stop_the_encoding(root, tiny, make_model):
    """Finite weights whose activations overflow (an embedding LayerNorm scale of 3e38): NaN hidden states. Before
    the fix: all vectors empty, exit 0."""
    model = make_model("overflow", lambda m: m.bert.embeddings.LayerNorm.weight.fill_(3e38))
    out = root / "enc-overflow"
    result = run("encode", "--corpus", tiny, "--model", model, *ENCODE, "--output", out)
    one_line_error(result, str(model), "activations are not finite")
    assert not (out / "metadata.json").exists()


def test_an_encoding_of_empty_vectors_is_refused_unless_allowed(root, tiny, silent_model):
    """More than half of the documents empty: one line naming the output and --allow-empty, no metadata.json (before
    the fix: '14 docs (14 with an empty vector)', exit 0); with --allow-empty the parts written are kept, and it
    finishes."""
    out = root / "enc-silent"
    args = ("--corpus", tiny, "--model", silent_model, *ENCODE, "--output", out)
    one_line_error(run("encode", *args), str(out), "14 of 14 documents have an empty vector", "--allow-empty")
    assert not (out / "metadata.json").exists() and (out / "part-00000.jsonl").exists()
    allowed = run("encode", *args, "--allow-empty")
    no_traceback_ok(allowed)
    assert "0 written, 1 already there" in allowed.out
    assert json.loads((out / "metadata.json").read_text())["empty_docs"] == 14


def test_reproduce_refuses_empty_document_vectors(root, tiny, silent_model):
    """eval.reproduce encodes through the same writer: before the fix it scored the empty vectors (nDCG@10 0.0)."""
    result = reproduce(root, recipe(root, "silent", model=str(silent_model)), tiny, "silent")
    one_line_error(result, "of 14 documents have an empty vector")
    assert not (root / "res-silent" / "table1.csv").exists()


def test_reproduce_refuses_empty_query_vectors(root, tiny, splade_tiny_path):
    """A model's idf.json of zeros weighs every query token 0: every query vector is empty (before the fix: scored,
    nDCG@10 0.0, exit 0)."""
    model = shutil.copytree(splade_tiny_path, root / "models" / "zero-idf")
    vocab = json.loads((model / "tokenizer.json").read_text())["model"]["vocab"]
    (model / "idf.json").write_text(json.dumps(dict.fromkeys(vocab, 0.0)))
    result = reproduce(root, recipe(root, "zero-idf", model=str(model), idf="model"), tiny, "zero-idf")
    one_line_error(result, "4 of 4 queries have an empty vector")


# ---- 5. one line, never a traceback ---------------------------------------------------------------------------------

def test_an_empty_corpus_is_one_line(root, slice_copy):
    """An empty corpus.jsonl: before the fix a traceback from index_stats (``int('null')``) after the pipeline ran."""
    corpus = slice_copy / "corpus.jsonl"
    corpus.write_text("")
    one_line_error(reproduce(root, recipe(root, "tiny"), slice_copy, "empty"), str(corpus), "no documents")


def test_a_corpus_of_blank_texts_is_one_line(tmp_path, slice_copy):
    """Every document blank: before the fix ``error: invalid literal for int() with base 10: 'null'``, naming
    nothing (a traceback from eval.reproduce)."""
    corpus = slice_copy / "corpus.jsonl"
    records = [json.loads(line) for line in corpus.read_text().splitlines()]
    corpus.write_text("".join(json.dumps({**r, "title": "", "text": " "}) + "\n" for r in records))
    result = run("index", "build-flat", "--corpus", corpus, "--index", tmp_path / "index")
    one_line_error(result, str(corpus), "all 14 documents have a blank title and text")


def test_an_index_of_empty_documents_is_one_line_naming_the_index(tmp_path):
    """Vectors that are all empty (indexed with --no-manifest): before the fix ``error: invalid literal for int()
    with base 10: 'null'``, naming nothing."""
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    (vectors / "part-00000.jsonl").write_text('{"id": "d1", "vector": {}}\n{"id": "d2", "vector": {}}\n')
    index = tmp_path / "index"
    result = run("index", "build-impact", "--vectors", vectors, "--index", index, "--no-manifest")
    one_line_error(result, str(index), "none of the 2 input documents has a term")


def test_a_document_id_with_a_space_is_refused_by_the_reader(root, slice_copy):
    """Before the fix the reader accepted it and the indexer raised a ValueError: a traceback from eval.reproduce."""
    edit_jsonl(slice_copy / "corpus.jsonl", 14, _id="a b")
    result = reproduce(root, recipe(root, "tiny"), slice_copy, "id-space")
    one_line_error(result, f"{slice_copy / 'corpus.jsonl'}:14:", "'a b' contains whitespace")


def test_a_document_id_with_a_tab_is_refused_by_the_reader(tmp_path, slice_copy):
    """Before the fix ``python -m index build-flat`` named neither the file nor the line."""
    corpus = slice_copy / "corpus.jsonl"
    edit_jsonl(corpus, 3, _id="a\tb")
    result = run("index", "build-flat", "--corpus", corpus, "--index", tmp_path / "index")
    one_line_error(result, f"{corpus}:3:", "whitespace")


def test_a_query_id_with_whitespace_is_refused(root, slice_copy):
    """The same id in queries.jsonl and the qrels: before the fix a TREC run line with four columns was written."""
    queries = slice_copy / "queries.jsonl"
    qid = json.loads(queries.read_text().splitlines()[0])["_id"]
    edit_jsonl(queries, 1, _id=f"q {qid}")
    qrels = slice_copy / "qrels" / "test.tsv"
    qrels.write_text("".join(f"q {line}" if line.startswith(f"{qid}\t") else line
                             for line in qrels.read_text().splitlines(keepends=True)))
    one_line_error(reproduce(root, recipe(root, "tiny"), slice_copy, "qid-space"), f"{qrels}:",
                   f"'q {qid}' contains whitespace")


def test_a_qrels_document_id_with_whitespace_is_refused(root, slice_copy):
    """A judged document no corpus can hold: before the fix it was silently never retrieved (exit 0)."""
    qrels = slice_copy / "qrels" / "test.tsv"
    lines = qrels.read_text().splitlines()
    lines[1] = lines[1].split("\t")[0] + "\tdoc 7\t1"
    qrels.write_text("".join(x + "\n" for x in lines))
    one_line_error(reproduce(root, recipe(root, "tiny"), slice_copy, "qrels-space"), f"{qrels}:2:", "whitespace")


@pytest.mark.parametrize("file, line, command", [("corpus.jsonl", 14, "index"), ("queries.jsonl", 2, "eval.reproduce")])
def test_a_lone_surrogate_is_refused_by_the_reader(root, tmp_path, slice_copy, file, line, command):
    """A JSON-escaped lone surrogate ("\\ud800"): before the fix a UnicodeEncodeError in the fingerprint (a traceback
    from eval.reproduce; from python -m index, one line naming neither file nor line)."""
    path = slice_copy / file
    lines = path.read_text().splitlines()
    lines[line - 1] = lines[line - 1].replace('"text": "', '"text": "\\ud800 ', 1)
    path.write_text("".join(x + "\n" for x in lines))
    if command == "index":
        result = run("index", "build-flat", "--corpus", path, "--index", tmp_path / "index")
    else:
        result = reproduce(root, recipe(root, "tiny"), slice_copy, "surrogate")
    one_line_error(result, f"{path}:{line}:", "lone surrogate", "valid Unicode")


def test_blank_query_texts_are_refused(root, slice_copy):
    """Every judged query blank: before the fix every system scored 0.0, exit 0."""
    queries = slice_copy / "queries.jsonl"
    queries.write_text("".join(json.dumps({**json.loads(line), "text": " "}) + "\n"
                               for line in queries.read_text().splitlines()))
    one_line_error(reproduce(root, recipe(root, "tiny"), slice_copy, "blank-queries"), str(queries), "blank text")


def _drop_tokenizer(folder: Path) -> None:
    for path in folder.glob("tokenizer*"):
        path.unlink()


@pytest.mark.parametrize("fault, words", [
    ("empty", "holds no config.json"),
    ("no-tokenizer", "holds no tokenizer"),
    ("wider-config", "other shapes than its config.json"),
    ("deeper-config", "its weights lack 32 parameters"),
])
def test_a_broken_model_folder_is_one_line_naming_it(root, tiny, splade_tiny_path, fault, words):
    """Before the fix: tracebacks (a sentencepiece hint, 'fewer tokens than the model's outputs', a size-mismatch
    RuntimeError), and for a config with more layers than its weights, silently random layers (exit 0)."""
    folder = root / "models" / f"broken-{fault}"
    if fault == "empty":
        folder.mkdir(parents=True)
    else:
        shutil.copytree(splade_tiny_path, folder)
    config = folder / "config.json"
    if fault == "no-tokenizer":
        _drop_tokenizer(folder)
    elif fault != "empty":
        settings = json.loads(config.read_text())
        settings["hidden_size" if fault == "wider-config" else "num_hidden_layers"] *= 2
        config.write_text(json.dumps(settings))
    result = run("encode", "--corpus", tiny, "--model", folder, *ENCODE, "--output", root / f"enc-{fault}")
    one_line_error(result, str(folder), words)


def test_a_query_encoding_without_a_tokenizer_is_one_line(root, tiny, splade_tiny_path):
    """``python -m encode --queries bow-idf`` on a folder without tokenizer files: before the fix transformers made a
    tokenizer of the special tokens only, and compute_idf raised a ValueError (traceback)."""
    folder = shutil.copytree(splade_tiny_path, root / "models" / "query-no-tokenizer")
    _drop_tokenizer(folder)
    result = run("encode", "--corpus", tiny, "--model", folder, "--queries", "bow-idf",
                 "--output", root / "q-no-tokenizer.jsonl")
    one_line_error(result, str(folder), "holds no tokenizer")


@pytest.mark.parametrize("length, words", [("100000", ("config.json", "exceeds the model's 512 positions")),
                                           ("1", ("--max-length", "give at least 2"))])
def test_a_max_length_the_model_cannot_take_is_one_line(root, tiny, length, words):
    """``--max-length 100000`` (beyond the model's positions) or ``1`` (no room for [CLS] and [SEP]): the message
    was right but raised as a ValueError traceback, for 100000 after the model loaded."""
    result = run("encode", "--corpus", tiny, "--max-length", length, "--device", "cpu", "--no-progress",
                 "--output", root / "enc-long")
    one_line_error(result, *words)


def test_a_recipe_max_length_beyond_the_model_is_one_line(root, tiny):
    """A recipe's max_length within the recipe's bound (8192) but beyond SPLADE-tiny's 512 positions: a traceback from
    eval.reproduce before the fix."""
    result = reproduce(root, recipe(root, "long", max_length=1024), tiny, "long")
    one_line_error(result, "exceeds the model's 512 positions", "max_length")


def test_a_training_file_that_fills_no_batch_is_refused(tmp_path, scifact_dir):
    """Two queries and batch_size 16: every batch would be dropped as incomplete, so the trainer took 0 steps and
    exported the untrained base model as the trained one, exit 0."""
    data = write_training_file(tmp_path / "train.jsonl", scifact_dir, n_queries=2)
    path = tmp_path / "r.yaml"
    path.write_text(f"base_model: splade-tiny\ndata: {data}\nvariant: l0\nlambda_d: 0.01\nmax_steps: 3\n"
                    "batch_size: 16\n")
    one_line_error(run("train", "--recipe", path, "--out", tmp_path / "model"), f"{data}: its 2 training queries "
                   "fill no batch of 16", "lower batch_size")
    assert not (tmp_path / "model" / "kit_model.json").exists()
