"""Query encoders: corpus IDF by hand, the BoW × IDF encoder, idf.json, and the siamese SPLADE baseline."""

from __future__ import annotations

import json
import math

import pytest

from encode.doc_encoder import SpladeDocEncoder
from encode.query import (BowIdfQueryEncoder, SpladeQueryEncoder, compute_idf, encode_queries, load_idf_json,
                          save_idf_json)
from kit.errors import InputError

# N = 3: the blank and the special-only texts hold no token; "cat" twice in one text counts once.
CORPUS = ["the cat sat", "", "the dog", "cat cat [SEP] protein", " [SEP] "]


@pytest.fixture(scope="module")
def tokenizer(splade_tiny):
    return splade_tiny[0]


@pytest.fixture(scope="module")
def idf(tokenizer):
    return compute_idf(iter(CORPUS), tokenizer)


def test_idf_by_hand(idf, tokenizer):
    assert tokenizer.tokenize(CORPUS[3]) == ["cat", "cat", "[SEP]", "protein"]
    # ln(1 + (N - df + 0.5) / (df + 0.5)) with N = 3
    assert idf["the"] == pytest.approx(math.log(1 + 1.5 / 2.5))      # df 2
    assert idf["cat"] == pytest.approx(math.log(1 + 1.5 / 2.5))      # df 2, not 3
    assert idf["sat"] == pytest.approx(math.log(1 + 2.5 / 1.5))      # df 1
    assert idf["protein"] == pytest.approx(math.log(1 + 2.5 / 1.5))  # df 1
    assert idf["zebra"] == pytest.approx(math.log(8.0))              # unseen: df 0
    assert idf["[SEP]"] == pytest.approx(math.log(8.0))              # special tokens are never counted
    assert len(idf) == len(tokenizer.get_vocab())                   # every vocabulary token has an IDF


def test_idf_of_seen_tokens_only(tokenizer, idf):
    seen = compute_idf(CORPUS, tokenizer, include_unseen=False)  # the layout of the released idf.json files
    assert seen == {token: idf[token] for token in ("the", "cat", "sat", "dog", "protein")}


def test_idf_counts_the_whole_document(tokenizer):
    idf = compute_idf(["the " * 700 + "zebra", "cat"], tokenizer)  # zebra sits past any model's max length
    assert idf["zebra"] == pytest.approx(math.log(1 + 1.5 / 1.5))
    with pytest.raises(ValueError, match="at least one document"):
        compute_idf([], tokenizer)


def test_bow_idf_query(idf, tokenizer):
    encoder = BowIdfQueryEncoder(tokenizer, idf)
    vector = encoder.encode("The cat, the CAT [SEP] zebra")
    assert vector == {"the": idf["the"], "cat": idf["cat"], ",": idf[","], "zebra": idf["zebra"]}  # no [SEP], once each


def test_idf_json_convention_and_round_trip(tmp_path, tokenizer):
    shipped = {"cat": 2.0, "the": 0.5, "[CLS]": 9.0}
    path = tmp_path / "idf.json"
    save_idf_json(shipped, path)
    assert load_idf_json(path) == shipped
    # sentence-transformers (and the kit's trainer): a token missing from idf.json weighs 0 and leaves the query.
    encoder = BowIdfQueryEncoder(tokenizer, load_idf_json(path))
    assert encoder.encode("the cat sat") == {"the": 0.5, "cat": 2.0}
    assert encode_queries(encoder, {"q1": "the cat sat", "q2": "sat"}) == {"q1": {"the": 50, "cat": 200}, "q2": {}}
    # OpenSearch's sparse tokenizer and the authors' code: 1.0.
    assert BowIdfQueryEncoder(tokenizer, shipped, default=1.0).encode("the cat sat") == {"the": 0.5, "cat": 2.0,
                                                                                       "sat": 1.0}


def test_query_truncation_and_options(tokenizer):
    shipped = {"the": 0.5, "cat": 2.0, "sat": 3.0}
    assert BowIdfQueryEncoder(tokenizer, shipped, max_length=4).encode("the cat sat") == {"the": 0.5, "cat": 2.0}
    for kwargs in ({"default": -1.0}, {"default": float("nan")}, {"max_length": 2}):
        with pytest.raises(ValueError):
            BowIdfQueryEncoder(tokenizer, shipped, **kwargs)


@pytest.mark.parametrize("content, match", [("[1, 2]", "not a JSON object"), ('{"a": -1}', "non-negative"),
                                            ('{"a": "x"}', "non-negative"), ("{", "malformed JSON")])
def test_idf_json_validation(tmp_path, content, match):
    path = tmp_path / "idf.json"
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        load_idf_json(path)


def test_splade_query_encoder_is_the_doc_encoder(splade_tiny):
    tokenizer, model = splade_tiny
    doc_encoder = SpladeDocEncoder(model, tokenizer=tokenizer, max_length=64, device="cpu")
    queries = {"q1": "0-dimensional biomaterials show inductive properties.", "q2": "protein folding"}
    encoder = SpladeQueryEncoder(doc_encoder)
    vector = encoder.encode(queries["q2"])
    assert vector == doc_encoder.encode([queries["q2"]])[0] and len(vector) > 2
    quantized = encode_queries(encoder, queries)
    assert quantized["q2"] == {t: int(w * 100 + 0.5) for t, w in vector.items() if int(w * 100 + 0.5)}
    assert json.loads(json.dumps(quantized)) == quantized


def test_ascii_word_cache_tokenizes_exactly_like_the_tokenizer(splade_tiny, scifact_dir):
    import itertools
    import json

    from encode.query import _AsciiBertWords

    tok, _ = splade_tiny
    words = _AsciiBertWords.for_tokenizer(tok)
    assert words is not None
    with open(scifact_dir / "queries.jsonl") as fh:
        texts = [json.loads(l)["text"] for l in fh]
    with open(scifact_dir / "corpus.jsonl") as fh:
        texts += [json.loads(l)["text"] for l in itertools.islice(fh, 300)]
    texts += ["", "  ", "A\x01B\tc\x0bd\x7fe", "don't U.S.-made (x)", "x" * 150, "naïve café", "a [SEP] b [mask]"]
    checked = 0
    for text in texts:
        got = words.ids(text)
        if got is None:
            assert not text.isascii() or "[SEP]" in text
            continue
        assert got == tok(text, add_special_tokens=False)["input_ids"], text
        checked += 1
    assert checked > 1000
