"""Document encoding: activations, the encoder against Hugging Face and sentence-transformers, quantization, writer."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

from encode.activations import ACTIVATIONS, activate
from encode.doc_encoder import SpladeDocEncoder
from encode.quantize import ImpactOverflow, quantize
from encode.sparse_head import SparseMaxHead
from encode.writer import metadata_path, read_metadata, read_vectors, write_vectors
from kit.errors import InputError

MAX_LENGTH = 256


@pytest.fixture(scope="module")
def scifact_texts(scifact_dir) -> list[str]:
    """The first 8 SciFact documents, read directly (title + " " + text, BEIR's flat convention)."""
    texts = []
    with open(scifact_dir / "corpus.jsonl", encoding="utf-8") as fh:
        for line in itertools.islice(fh, 8):
            record = json.loads(line)
            texts.append((record["title"] + " " + record["text"]).strip())
    return texts


@pytest.fixture(scope="module", params=[False, True], ids=["exact", "bf16-screen"])
def encoder(request, splade_tiny) -> SpladeDocEncoder:
    tokenizer, model = splade_tiny
    return SpladeDocEncoder(model, tokenizer=tokenizer, max_length=MAX_LENGTH, device="cpu", screen=request.param)


def dense(vectors: list[dict[str, float]], tokenizer) -> torch.Tensor:
    out = torch.zeros(len(vectors), len(tokenizer))
    for row, vector in enumerate(vectors):
        for token, weight in vector.items():
            out[row, tokenizer.convert_tokens_to_ids(token)] = weight
    return out


# ---- activations and pooling on hand-made numbers -------------------------------------------------------------------

E = math.e


@pytest.mark.parametrize("name, expected", [
    # x = -1, 0, e - 1, e^e - 1
    ("relu", [0.0, 0.0, 1.0, E]),
    ("l0", [0.0, 0.0, math.log(2.0), math.log(1.0 + E)]),
    ("l0x2", [0.0, 0.0, math.log(1.0 + math.log(2.0)), math.log(1.0 + math.log(1.0 + E))]),
    ("l0x3", [0.0, 0.0, math.log(1.0 + math.log(1.0 + math.log(2.0))),
              math.log(1.0 + math.log(1.0 + math.log(1.0 + E)))]),
])
def test_activation_values(name, expected):
    x = torch.tensor([-1.0, 0.0, E - 1.0, E**E - 1.0], dtype=torch.float64)
    torch.testing.assert_close(activate(x, name), torch.tensor(expected, dtype=torch.float64))


def test_unknown_activation():
    with pytest.raises(ValueError, match="relu, l0, l0x2, l0x3"):
        activate(torch.zeros(1), "gelu")


@pytest.mark.parametrize("screen", [False, True])
def test_pooling_by_hand(screen):
    """Identity decoder: logits are the hidden states. Padding (huge values) is ignored, the max is per column."""
    decoder = torch.nn.Linear(4, 4)
    decoder.weight.data = torch.eye(4)
    decoder.bias.data = torch.tensor([0.0, 0.0, 0.0, -1.0])
    hidden = torch.tensor([[[-1.0, 0.5, 2.0, 0.0],
                            [-3.0, 1.5, -2.0, E],     # + bias: column 3 becomes e - 1
                            [99.0, 99.0, 99.0, 99.0]]])  # padding
    mask = torch.tensor([[1, 1, 0]])
    (ids, values), = SparseMaxHead(decoder, screen=screen)(hidden, mask)
    assert ids.tolist() == [1, 2, 3]
    torch.testing.assert_close(values, torch.tensor([1.5, 2.0, E - 1.0]))
    expected = {"relu": [math.log(2.5), math.log(3.0), 1.0],
                "l0": [math.log(1 + math.log(2.5)), math.log(1 + math.log(3.0)), math.log(2.0)]}
    for name, weights in expected.items():
        torch.testing.assert_close(activate(values, name), torch.tensor(weights))


# ---- the encoder against the reference implementations -------------------------------------------------------------

@pytest.fixture(scope="module")
def naive_vectors(splade_tiny, scifact_texts) -> dict[str, torch.Tensor]:
    """The Hugging Face path for each activation: model(**batch).logits -> activation -> max over real tokens."""
    tokenizer, model = splade_tiny
    batch = tokenizer(scifact_texts, max_length=MAX_LENGTH, truncation=True, padding=True, return_tensors="pt")
    lengths = batch["attention_mask"].sum(1)
    assert (lengths < MAX_LENGTH).any() and (lengths == MAX_LENGTH).any()  # padding and truncation both occur
    with torch.inference_mode():
        weights = model(**batch).logits
        weights[batch["attention_mask"] == 0] = 0.0  # padding: 0 before, and so after, every activation
        weights.relu_().log1p_()  # log(1 + relu(x)), SPLADE (eq. 1)
        pooled = {"relu": weights.amax(dim=1)}
        for name in ("l0", "l0x2", "l0x3"):  # one more log1p each (eq. 6 and beyond), applied to every logit
            pooled[name] = weights.log1p_().amax(dim=1)
        return pooled


def test_matches_naive_hf_path(encoder, splade_tiny, scifact_texts, naive_vectors):
    assert tuple(naive_vectors) == ACTIVATIONS
    raw = encoder.encode_raw(scifact_texts)
    for name, naive in naive_vectors.items():
        ours = dense([encoder.weights(r, name) for r in raw], splade_tiny[0])
        assert (naive > 0).sum() > 100 * len(scifact_texts)
        assert (ours - naive).abs().max().item() <= 1e-4, name


@pytest.fixture(scope="module")
def st_mlm(splade_tiny_path):
    from sentence_transformers.sparse_encoder.modules import Transformer

    # Transformer(transformer_task="fill-mask") is MLMTransformer's non-deprecated spelling.
    return Transformer(splade_tiny_path, transformer_task="fill-mask", max_seq_length=MAX_LENGTH)


@pytest.mark.parametrize("activation, st_activation", [("relu", "relu"), ("l0", "log1p_relu")])
def test_matches_sentence_transformers(splade_tiny, st_mlm, scifact_texts, activation, st_activation):
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    tokenizer, model = splade_tiny
    pooling = SpladePooling(pooling_strategy="max", activation_function=st_activation)
    reference = SparseEncoder(modules=[st_mlm, pooling], device="cpu")
    expected = reference.encode(scifact_texts, convert_to_tensor=True).to_dense()
    ours = SpladeDocEncoder(model, tokenizer=tokenizer, activation=activation, max_length=MAX_LENGTH, device="cpu")
    assert (dense(ours.encode(scifact_texts), tokenizer) - expected).abs().max().item() <= 1e-4


def test_order_batches_and_raw_format(splade_tiny, scifact_texts):
    tokenizer, model = splade_tiny
    small = SpladeDocEncoder(model, tokenizer=tokenizer, max_length=64, batch_size=3, device="cpu")
    texts = scifact_texts[:5] + ["short", ""]
    raw = small.encode_raw(texts)
    again = small.encode_raw(texts[::-1])[::-1]
    for (ids, values), (ids2, values2) in zip(raw, again):
        assert ids.dtype == np.int64 and values.dtype == np.float32
        assert np.all(np.diff(ids) > 0) and np.all(values > 0)
        np.testing.assert_array_equal(ids, ids2)
        np.testing.assert_allclose(values, values2, atol=1e-5)
    assert small.encode([]) == []
    vector = small.encode(["protein folding"])[0]
    assert vector and all(w > 0 for w in vector.values()) and all(isinstance(t, str) for t in vector)


def test_encoder_validates_options(splade_tiny):
    tokenizer, model = splade_tiny
    for kwargs, match in [({"activation": "gelu"}, "activation"), ({"dtype": "int8"}, "dtype"),
                          ({"max_length": 1}, "max_length"), ({"max_length": 513}, "positions"),
                          ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(ValueError, match=match):
            SpladeDocEncoder(model, tokenizer=tokenizer, device="cpu", **kwargs)
    with pytest.raises(ValueError, match="tokenizer"):
        SpladeDocEncoder(model, device="cpu")


# ---- quantization ---------------------------------------------------------------------------------------------------

def test_quantize_by_hand():
    vec = {"a": 1.234, "b": 0.005, "c": 0.0049, "d": 0.0, "e": 2.0, "f": 0.285}
    # 0.5 rounds up; 0.49 rounds down and is dropped; 0.285 * 100 is 28.4999... in binary, so 28.
    assert quantize(vec) == {"a": 123, "b": 1, "e": 200, "f": 28}
    assert quantize(vec, factor=10) == {"a": 12, "e": 20, "f": 3}
    assert quantize({}) == {}
    assert quantize({"a": 6.5535}, factor=10_000) == {"a": 65535}  # the largest impact Lucene takes here
    with pytest.raises(ImpactOverflow, match="weight 6.5536 of 'a' × factor 10000 = 65536 exceeds the impact limit"):
        quantize({"a": 6.5536}, factor=10_000)
    with pytest.raises(ValueError, match=r"factor must be a number in \(0, 10000\]"):
        quantize({"a": 1.0}, factor=1e10)
    for bad in ({"x": -0.1}, {"x": float("nan")}, {"x": float("inf")}):
        with pytest.raises(ValueError, match="non-negative"):
            quantize(bad)
    with pytest.raises(ValueError, match="factor"):
        quantize({"a": 1.0}, factor=0)


# ---- writer ---------------------------------------------------------------------------------------------------------

class Doc(NamedTuple):
    doc_id: str
    text: str


class FakeEncoder:
    """Weights from word lengths (a test double of SpladeDocEncoder's writer-facing surface); counts what it encodes."""

    activation = "relu"
    model_name = "fake"
    max_length = 16
    dtype = torch.float32
    batch_size = 2

    def __init__(self):
        self.encoded: list[str] = []

    def encode_raw(self, texts):
        self.encoded.extend(texts)
        return list(texts)

    def weights(self, raw, activation=None):
        scale = {"relu": 1.0, "l0": 0.5}[activation or self.activation]
        return {word: scale * len(word) / 10 for word in raw.split()}


def corpus(n: int) -> list[Doc]:
    return [Doc(f"d{i}", "" if i == 2 else f"doc{i} " + "x" * (i % 4 + 1)) for i in range(n)]


def read_dir(path: Path) -> dict[str, dict[str, int]]:
    return dict(read_vectors(path))


def test_writer_parts_metadata_and_empty_doc(tmp_path, capsys):
    enc, out = FakeEncoder(), tmp_path / "vectors"
    meta = write_vectors(corpus(5), enc, out, part_size=2, show_progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "part-00000.jsonl", "part-00001.jsonl",
                                                     "part-00002.jsonl"]
    lines = (out / "part-00001.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": "d2", "contents": "", "vector": {}},  # blank: kept, empty, never encoded
        {"id": "d3", "contents": "doc3 xxxx", "vector": {"doc3": 40, "xxxx": 40}}]
    assert "" not in enc.encoded and len(enc.encoded) == 4
    assert read_metadata(out) == meta
    assert meta["num_docs"] == 5 and meta["empty_docs"] == 1
    assert meta["parts"] == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    assert (meta["model"], meta["activation"], meta["factor"], meta["max_length"]) == ("fake", "relu", 100, 16)
    assert "5 docs (1 with an empty vector)" in capsys.readouterr().out


def test_writer_resumes_without_rewriting(tmp_path):
    out = tmp_path / "v"
    write_vectors(corpus(5), FakeEncoder(), out, part_size=2, show_progress=False)
    kept = out / "part-00000.jsonl"
    stamp = kept.stat().st_mtime_ns
    (out / "part-00001.jsonl").unlink()  # as if killed while writing it
    enc = FakeEncoder()
    meta = write_vectors(corpus(5), enc, out, part_size=2, show_progress=False)
    assert kept.stat().st_mtime_ns == stamp  # a finished, unchanged part is never recomputed
    assert enc.encoded == ["doc3 xxxx"]  # only the missing part's non-blank document
    assert meta["num_docs"] == 5 and meta["empty_docs"] == 1


def test_writer_reencodes_a_changed_part_or_document(tmp_path):
    """A part whose bytes were changed after writing, or whose documents changed in the corpus, is encoded again:
    a resumed encoding never keeps a vector its current input would not give."""
    out = tmp_path / "v"
    write_vectors(corpus(5), FakeEncoder(), out, part_size=2, show_progress=False)
    tampered = out / "part-00000.jsonl"
    tampered.write_text(tampered.read_text().replace('"doc0": 40', '"doc0": 7'))
    enc = FakeEncoder()
    write_vectors(corpus(5), enc, out, part_size=2, show_progress=False)
    assert enc.encoded == ["doc0 x", "doc1 xx"] and read_dir(out)["d0"]["doc0"] == 40
    edited = corpus(5)
    edited[3] = Doc("d3", "doc3 edited words")
    enc = FakeEncoder()
    write_vectors(edited, enc, out, part_size=2, show_progress=False)
    assert enc.encoded == ["doc3 edited words"]  # part 1 holds d2 (blank) and d3
    assert read_dir(out)["d3"] == {"doc3": 40, "edited": 60, "words": 50}


def test_writer_refuses_mismatched_resume(tmp_path):
    out = tmp_path / "v"
    with pytest.raises(InputError, match="not found"):
        read_metadata(out)
    write_vectors(corpus(4), FakeEncoder(), out, part_size=2, show_progress=False)
    with pytest.raises(InputError, match="factor"):  # a refused run leaves the finished sidecar alone
        write_vectors(corpus(4), FakeEncoder(), out, factor=10, part_size=2, show_progress=False)
    assert read_metadata(out)["num_docs"] == 4
    write_vectors(corpus(4), FakeEncoder(), out, part_size=2, show_progress=False)
    assert read_metadata(out)["num_docs"] == 4 and not (out / "metadata.in-progress.json").exists()


def test_shards_cover_every_doc_once(tmp_path):
    out, docs = tmp_path / "v", corpus(11)
    metas = [write_vectors(docs, FakeEncoder(), out, part_size=2, shard=(i, 3), show_progress=False) for i in range(3)]
    assert [m["parts"] for m in metas] == [[f"part-{k:05d}.jsonl", f"part-{k + 3:05d}.jsonl"] for k in range(3)]
    assert sum(m["num_docs"] for m in metas) == 11
    ids = [doc_id for doc_id, _ in read_vectors(out)]  # read_vectors also rejects repeated ids
    assert sorted(ids) == sorted(d.doc_id for d in docs)
    assert metadata_path(out, (1, 3)) == out / "metadata.shard-1-of-3.json" and read_metadata(out, (1, 3)) == metas[1]
    with pytest.raises(ValueError, match="shard"):
        write_vectors(docs, FakeEncoder(), out, shard=(3, 3))


def test_one_forward_pass_for_several_activations(tmp_path):
    enc = FakeEncoder()
    metas = write_vectors(corpus(3), enc, tmp_path / "v", activations=["relu", "l0"], show_progress=False)
    assert len(enc.encoded) == 2  # each non-blank document once
    relu, l0 = read_dir(tmp_path / "v" / "relu"), read_dir(tmp_path / "v" / "l0")
    assert relu["d1"] == {"doc1": 40, "xx": 20} and l0["d1"] == {"doc1": 20, "xx": 10}
    assert metas["l0"] == read_metadata(tmp_path / "v" / "l0") and metas["l0"]["activation"] == "l0"
    mapped = write_vectors(corpus(3), FakeEncoder(), {"l0": tmp_path / "only-l0"}, show_progress=False)
    assert list(mapped) == ["l0"] and read_dir(tmp_path / "only-l0") == l0
    with pytest.raises(ValueError, match="activation"):
        write_vectors(corpus(3), FakeEncoder(), tmp_path / "w", activations=["relu", "tanh"], show_progress=False)


def test_read_vectors_validates(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "vector": {"x": 3}}\n{"id": "b", "vector": {"x": 0.5}}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: weight 0.5 is not an integer"):
        list(read_vectors(bad))
    bad.write_text('{"id": "a", "vector": {"x": 65536}}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: weight 65536 exceeds the impact limit 65535"):
        list(read_vectors(bad))
    bad.write_text('{"id": "a", "vector": {"x": 3}}\n{"id": "a", "vector": {}}\n')
    with pytest.raises(InputError, match="appears twice"):
        list(read_vectors(bad))
    bad.write_text('{"id": "a"}\n')
    with pytest.raises(InputError, match="missing field 'vector'"):
        list(read_vectors(bad))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no \\*.jsonl"):
        list(read_vectors(tmp_path / "empty"))


def test_writer_with_the_real_encoder(tmp_path, splade_tiny, scifact_texts):
    tokenizer, model = splade_tiny
    enc = SpladeDocEncoder(model, tokenizer=tokenizer, activation="l0", max_length=64, device="cpu")
    docs = [Doc(str(i), text) for i, text in enumerate(scifact_texts[:3])]
    write_vectors(docs, enc, tmp_path / "v", show_progress=False)
    expected = [quantize(v) for v in enc.encode([d.text for d in docs])]
    assert [v for _, v in read_vectors(tmp_path / "v")] == expected


def test_cli_on_a_tiny_beir_directory(tmp_path, capsys):
    from encode.__main__ import main

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = [{"_id": "a", "title": "Protein folding", "text": "Chaperones help proteins fold."},
            {"_id": "b", "title": "", "text": ""},
            {"_id": "c", "title": "Sparse retrieval", "text": "Inverted indexes are fast."}]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "protein"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\ta\t1\n")
    out = tmp_path / "out"
    args = ["--corpus", str(beir), "--activation", "relu", "l0", "--max-length", "32", "--device", "cpu",
            "--part-size", "2", "--no-progress", "--output", str(out)]
    assert main(args) == 0
    for name in ("relu", "l0"):
        vectors = dict(read_vectors(out / name))
        assert list(vectors) == ["a", "b", "c"] and vectors["b"] == {} and vectors["a"]
        meta = read_metadata(out / name)
        assert (meta["activation"], meta["num_docs"], meta["empty_docs"], meta["max_length"]) == (name, 3, 1, 32)
    assert main(args) == 0  # a re-run finds every part done
    assert "0 written, 2 already there" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--corpus", str(beir), "--shard", "2/2", "--output", str(out)])
    assert exit_info.value.code == 2


def test_low_precision_autocast_path(splade_tiny, scifact_texts):
    """dtype=bfloat16 (the GPU-style path: autocast body, low-precision head) runs and stays close to float32."""
    tokenizer, model = splade_tiny
    exact = SpladeDocEncoder(model, tokenizer=tokenizer, max_length=64, device="cpu").encode(scifact_texts[:2])
    fast = SpladeDocEncoder(model, tokenizer=tokenizer, max_length=64, device="cpu", dtype="bfloat16")
    assert fast.dtype == torch.bfloat16 and not fast.head.screen
    diff = dense(fast.encode(scifact_texts[:2]), tokenizer) - dense(exact, tokenizer)
    assert 0 < diff.abs().max().item() < 0.25


def test_special_tokens_never_reach_a_document_vector(splade_tiny):
    """[CLS], [SEP], [PAD], [UNK], [MASK] are dropped from every document vector, as the released models' reference
    code zeroes them (``values[:, special_token_ids] = 0``), whatever their pooled logit."""
    tokenizer, model = splade_tiny
    enc = SpladeDocEncoder(model, tokenizer=tokenizer, activation="relu", max_length=32, device="cpu")
    special = sorted(tokenizer.all_special_ids)
    cell = tokenizer.convert_tokens_to_ids("cell")
    ids = np.array(sorted([*special, cell]), dtype=np.int64)
    raw = (ids, np.full(len(ids), 2.0, dtype=np.float32))
    assert enc.weights(raw) == {"cell": pytest.approx(math.log(3.0))}
    assert {tokenizer.convert_ids_to_tokens(i) for i in special} == {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"}
