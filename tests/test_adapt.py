"""Label-free adaptation (train.pseudo, train.adapt): the pseudo-query cuts, and ``python -m train.adapt`` end to end
at smoke scale on a SciFact slice, with the one-line errors of a corpus it cannot adapt to."""

from __future__ import annotations

import json
import random

import pytest
from conftest import write_beir_slice
from test_faults import one_line_error, run

from train.examples import load_training_file, meta_path
from train.pseudo import (CROP_WORDS, KINDS, CorpusDoc, check_kinds, crop_query, cut, pseudo_queries, sample_ids,
                          sentence_query, title_query)

DOC = CorpusDoc("d1", "Sleep deprivation impairs memory consolidation",
                "Sleep after learning helps memory. We deprived 40 adults of sleep for one night. Recall of word "
                "pairs fell by a third the next day. Naps restored part of it.")


def _joined(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_cuts_are_deterministic_non_empty_and_drawn_from_the_document(seed):
    queries = cut(DOC, KINDS, seed)
    assert queries == cut(DOC, KINDS, seed)
    assert [q.kind for q in queries] == list(KINDS)
    assert all(q.doc_id == "d1" and q.query_id == f"{q.kind}:d1" and q.text.strip() for q in queries)
    title, sentence, crop = (q.text for q in queries)
    assert title == DOC.title
    assert sentence in DOC.body and sentence.endswith(".") and sentence != DOC.body
    assert f" {crop} " in f" {_joined(DOC.text)} "  # a contiguous span of whole words
    assert CROP_WORDS[0] <= len(crop.split()) <= CROP_WORDS[1]


def test_cuts_vary_with_the_seed_and_skip_what_a_document_lacks():
    assert len({crop_query(DOC, random.Random(s)) for s in range(10)}) > 3
    assert len({sentence_query(DOC, random.Random(s)) for s in range(10)}) > 1
    bare = CorpusDoc("d2", "Editorial", "One sentence only, without an end")
    assert title_query(bare, random.Random(0)) is None  # one word: not a query
    assert sentence_query(bare, random.Random(0)) is None  # a one-sentence body is the document itself
    assert crop_query(CorpusDoc("d3", "", "three short words"), random.Random(0)) is None
    assert [q.kind for q in cut(bare, KINDS, 0)] == ["crop"]


def test_documents_are_drawn_by_seed_not_by_file_order():
    ids = [f"doc{i}" for i in range(50)]
    assert sample_ids(ids, 5, 7) == sample_ids(reversed(ids), 5, 7)
    assert sample_ids(ids, 5, 7) != sample_ids(ids, 5, 8)
    docs = [CorpusDoc(i, "", DOC.body) for i in ids]
    capped = pseudo_queries(docs, ("sentence", "crop"), max_queries=5, seed=1)
    assert len(capped) == 5 and {q.kind for q in capped} == {"sentence", "crop"}
    assert check_kinds(["crop", "title"]) == ("title", "crop")
    for bad in ([], ["crop", "crop"], ["question"]):
        with pytest.raises(ValueError, match="kinds must be"):
            check_kinds(bad)


@pytest.mark.integration
def test_adapt_end_to_end_at_smoke_scale(tmp_path, scifact_dir):
    """``python -m train.adapt --scale smoke`` on a corpus alone: a pseudo-labelled training file the kit's checker
    reads (each query's source document first), and a model folder sentence-transformers loads, whose query IDF is
    the corpus's."""
    from sentence_transformers.sparse_encoder import SparseEncoder

    corpus = write_beir_slice(tmp_path / "slice", scifact_dir, n_queries=3, n_other=120)
    work, out = tmp_path / "work", tmp_path / "model"
    result = run("train.adapt", "--corpus", corpus, "--scale", "smoke", "--out", out, env={"KIT_WORK": str(work)})
    assert result.rc == 0 and "Traceback" not in result.err, result.err[-3000:]
    assert result.out.splitlines()[-1] == str(out)

    [data] = (work / "adapt" / "slice").glob("pseudo.*.jsonl")
    examples = load_training_file(data)
    assert len(examples) == 12 and all(ex.doc_ids[0] == ex.query_id.split(":", 1)[1] for ex in examples)
    assert all(ex.teacher_scores[0] == max(ex.teacher_scores) for ex in examples)  # the source document lifted
    meta = json.loads(meta_path(data).read_text())
    assert meta["params"]["teachers"] == ["bm25", "all-MiniLM-L6-v2", "splade-tiny"]
    assert meta["counts"]["documents"] == len((corpus / "corpus.jsonl").read_text().splitlines())
    assert run("train.data", "check", data).rc == 0

    info = json.loads((out / "kit_model.json").read_text())
    assert info["activation"] == "l0" and info["threshold"] == 150 and info["steps"] == 2
    assert info["idf_source"].startswith(str(work / "adapt" / "slice" / "idf"))
    model = SparseEncoder(str(out), device="cpu")
    query = model.encode_query(["sleep and memory"], convert_to_tensor=True)
    doc = model.encode_document([DOC.text], convert_to_tensor=True)
    assert float(model.similarity(query, doc)) > 0


def test_a_corpus_it_cannot_adapt_to_is_one_line(tmp_path):
    (tmp_path / "no-corpus").mkdir()
    one_line_error(run("train.adapt", "--corpus", tmp_path / "no-corpus"), "no corpus.jsonl", "fix:")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "corpus.jsonl").write_text("")
    one_line_error(run("train.adapt", "--corpus", tmp_path / "empty"), "no documents")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "corpus.jsonl").write_text(json.dumps({"_id": "a", "title": "", "text": DOC.body}) + "\n")
    one_line_error(run("train.adapt", "--corpus", tmp_path / "one", env={"KIT_WORK": str(tmp_path / "work")}),
                   "1 document(s); adapting needs at least two")
    one_line_error(run("train.adapt", "--corpus", tmp_path / "nowhere"), "neither a folder nor a dataset")
    one_line_error(run("train.adapt", "--corpus", "cacm", "--negatives", "9", "--depth", "5"),
                   "depth (5) must be at least negatives (9)")


def test_mixing_in_a_real_training_file(tmp_path, scifact_dir):
    from conftest import write_training_file

    from train.adapt import mixed_training_file

    pseudo = write_training_file(tmp_path / "pseudo.x.jsonl", scifact_dir, n_queries=3)
    real = write_training_file(tmp_path / "real.jsonl", scifact_dir, n_queries=2, docs_each=3)
    mixed = mixed_training_file(pseudo, real)
    assert [ex.query_id for ex in load_training_file(mixed)] == ["q0", "q1", "q2", "q0", "q1"]
    stamp = mixed.stat().st_mtime_ns
    assert mixed_training_file(pseudo, real) == mixed and mixed.stat().st_mtime_ns == stamp  # reused
    real.write_text(real.read_text().splitlines()[0] + "\n")
    assert mixed_training_file(pseudo, real) != mixed  # another mixed-in file, another output


def test_the_model_copy_leaves_out_checkpoints_and_never_replaces_other_files(tmp_path):
    from kit.errors import InputError
    from train.adapt import export_copy

    model = tmp_path / "cached"
    (model / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "idf.json").write_text('{"a": 1.0}')
    out = export_copy(model, tmp_path / "out", overwrite=False)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "idf.json"]
    assert export_copy(model, out, overwrite=False) == out  # the same model: left as it is
    (model / "idf.json").write_text('{"a": 2.0}')
    with pytest.raises(InputError, match="already holds other files"):
        export_copy(model, out, overwrite=False)
    export_copy(model, out, overwrite=True)
    assert (out / "idf.json").read_text() == '{"a": 2.0}'
    assert not list(tmp_path.glob(".out.tmp-*"))
