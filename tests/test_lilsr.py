"""Li-LSR learned static query weights: the module (train/lilsr.py), its export, the lookup encoder (encode/lookup.py),
the ℓ1 regularizer, and the recipe/eval plumbing."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import write_training_file
from encode.lookup import LookupQueryEncoder, load_lookup_table
from kit.errors import InputError
from train.lilsr import LiLsrQueries, LiLsrQueryWeights
from train.losses import SparseDistillLoss, l1_loss

E = torch.tensor([[5.0, 5.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])  # token 0 is special


def weights_module(w=(1.0, 2.0), b=-1.0, multiplier: float = 1.0) -> LiLsrQueryWeights:
    module = LiLsrQueryWeights(E, special_ids=[0], lr_multiplier=multiplier)
    with torch.no_grad():
        module.w_raw.copy_(torch.tensor(w) / multiplier)
        module.b_raw.fill_(b / multiplier)
    return module


@pytest.mark.parametrize("multiplier", [1.0, 10.0])
def test_static_weights_by_hand(multiplier):
    # s_t = log(1 + relu(E_t · (1, 2) - 1)): t1 -> 0 -> 0, t2 -> 1 -> ln 2, t3 -> 2 -> ln 3, t4 -> -1 -> 0; t0 special
    module = weights_module(multiplier=multiplier)
    expected = torch.tensor([0.0, 0.0, math.log(2), math.log(3), 0.0])
    torch.testing.assert_close(module.weights(), expected)
    counts = torch.tensor([[1.0, 1.0, 2.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0, 0.0]])
    torch.testing.assert_close(module(counts), counts * expected)  # repeated tokens add up


def test_init_weights():
    module = LiLsrQueryWeights(E, special_ids=[0])
    target = torch.log1p(E @ torch.tensor([0.5, 1.5]) + 1.0)  # every pre-activation > 0: exactly representable
    module.init_weights("idf", target)
    torch.testing.assert_close(module.weights()[1:], target[1:])
    module.init_weights("uniform", target)
    torch.testing.assert_close(module.weights()[1:], torch.full((4,), float(target[1:].mean())))
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        module.init_weights("zeros", target)
    with pytest.raises(ValueError, match="shape"):
        module.init_weights("idf", target[:3])


def test_idf_init_is_exact_with_trainable_embeddings():
    target = torch.tensor([0.0, 1.0, 0.2, 3.0, 0.5])  # not log1p of a linear function of E: no (w, b) fits it
    module = LiLsrQueryWeights(E, special_ids=[0], lr_multiplier=10.0)
    module.init_weights("idf", target)
    torch.testing.assert_close(module.weights(), torch.cat([torch.zeros(1), target[1:]]), atol=1e-5, rtol=1e-5)
    frozen = LiLsrQueryWeights(E, special_ids=[0], train_embeddings=False)
    frozen.init_weights("idf", target)
    assert not torch.allclose(frozen.weights()[1:], target[1:], atol=1e-2)  # only the least-squares fit
    assert frozen.delta.abs().sum() == 0


def test_anchor_penalty_by_hand_and_its_pull_toward_the_start():
    from train.lilsr import LiLsrModel

    target = torch.tensor([0.0, 1.0, 0.2, 3.0, 0.5])
    module = LiLsrQueryWeights(E, special_ids=[0])
    module.init_weights("idf", target)
    torch.testing.assert_close(module.start, module.weights().detach())
    assert module.anchor_penalty().item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():  # move b: s_t = log(1 + relu(pre_t + 1)), the penalty is the mean squared move of 4 tokens
        module.b_raw.add_(1.0)
    moved = module.weights().detach()
    assert module.anchor_penalty().item() == pytest.approx(float(((moved - module.start)[1:] ** 2).mean()))
    assert "start" not in module.state_dict()  # rebuilt by init_weights, so checkpoints keep their layout
    # the penalty's gradient points b back toward the start
    module.anchor_penalty().backward()
    assert module.b_raw.grad.item() > 0
    with pytest.raises(ValueError, match="anchor must be >= 0"):
        LiLsrModel.__new__(LiLsrModel).__init__(None, module, anchor=-1.0)


def test_bad_module_arguments():
    with pytest.raises(ValueError, match=r"embeddings must be \[V, H\]"):
        LiLsrQueryWeights(torch.zeros(3))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        LiLsrQueryWeights(E, special_ids=[7])
    with pytest.raises(ValueError, match="lr_multiplier must be > 0"):
        LiLsrQueryWeights(E, lr_multiplier=0)


def test_l1_regularizer_by_hand():
    docs = torch.tensor([[1.0, -2.0, 0.0], [0.0, 3.0, 0.0]])
    assert l1_loss(docs).item() == pytest.approx((3 + 3) / 2)
    assert l1_loss(docs, threshold=1).item() == pytest.approx(3 / 2)  # doc 2 has one active token: masked out
    queries, teacher = torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[2.0, 1.0]])
    l1 = SparseDistillLoss(lambda_d=0.5, regularizer="l1")(queries, docs.abs(), docs.abs(), teacher)
    assert l1["loss"].item() == pytest.approx(l1["ranking"].item() + 0.5 * 3.0)
    assert l1["flops"].item() == pytest.approx(((1 + 0) / 2) ** 2 + ((2 + 3) / 2) ** 2) and not l1["flops"].requires_grad
    with pytest.raises(ValueError, match="unknown regularizer 'l2'; choose one of flops, l1"):
        SparseDistillLoss(lambda_d=0.1, regularizer="l2")


def test_lookup_encoder_by_hand(splade_tiny):
    tokenizer, _ = splade_tiny
    encoder = LookupQueryEncoder(tokenizer, {"cat": 1.5, "dog": 0.5, "[SEP]": 9.0, "not-a-token": 3.0})
    assert encoder.encode("Cat, dog and a CAT [SEP]") == {"cat": 3.0, "dog": 0.5}  # summed, special token dropped
    assert encoder.encode("nothing here") == {}
    vocab = tokenizer.get_vocab()
    by_id = [0.0] * len(vocab)
    by_id[vocab["cat"]] = 2.0
    assert LookupQueryEncoder(tokenizer, by_id, max_length=4).encode("cat cat cat") == {"cat": 4.0}  # 2 tokens kept
    with pytest.raises(ValueError, match="not a finite non-negative number"):
        LookupQueryEncoder(tokenizer, {"cat": -1.0})


def test_lookup_encoder_equals_module(splade_tiny, scifact_dir):
    """Table lookup + summing repeats == the trainable module applied to the token counts, on real SciFact claims."""
    import json

    tokenizer, model = splade_tiny
    module = LiLsrQueryWeights(model.get_input_embeddings().weight, tokenizer.all_special_ids)
    torch.manual_seed(0)
    with torch.no_grad():
        module.w_raw.normal_(0, 0.5)
        module.b_raw.fill_(0.3)
    texts = [json.loads(line)["text"] for line in (scifact_dir / "queries.jsonl").read_text().splitlines()[:40]]
    texts.append("the cell the cell THE CELL")
    side = LiLsrQueries(tokenizer, module.vocab_size)
    dense = module(side.counts(side.token_ids(texts))).detach()
    encoder = LookupQueryEncoder(tokenizer, module.table().tolist())
    for text, row in zip(texts, dense):
        got = encoder.encode(text)
        ids = row.nonzero().squeeze(1).tolist()
        assert set(got) == set(tokenizer.convert_ids_to_tokens(ids))
        for token, i in zip(tokenizer.convert_ids_to_tokens(ids), ids):
            assert got[token] == pytest.approx(float(row[i]), rel=1e-6)
    assert encoder.encode(texts[-1])["cell"] == pytest.approx(3 * float(module.table()[tokenizer.vocab["cell"]]))


def test_table_files_are_checked(tmp_path):
    (tmp_path / "bad.json").write_text('{"cat": 1.0,\n "dog": }')
    with pytest.raises(InputError, match=r"bad.json:2: malformed JSON"):
        load_lookup_table(tmp_path / "bad.json")
    (tmp_path / "neg.json").write_text('{"cat": -2}')
    with pytest.raises(InputError, match="weight of 'cat' is -2"):
        load_lookup_table(tmp_path / "neg.json")
    with pytest.raises(InputError, match="no query_weights.safetensors"):
        load_lookup_table(tmp_path)


def test_train_export_and_lookup(tmp_path, scifact_dir):
    """A few joint training steps move w and b; the exported table is the module's output; checkpoints keep both."""
    from safetensors.torch import load_file

    from train.lilsr import LiLsrModel, save_lookup_table
    from train.export import export_model
    from train.recipe import TrainRecipe
    from train.trainer import build_trainer

    data = write_training_file(tmp_path / "train.jsonl", scifact_dir)
    recipe = TrainRecipe(base_model="splade-tiny", data=data, variant="l0", lambda_d=1e-3, max_steps=2, batch_size=4,
                         max_length=48, query_encoder="lilsr", regularizer="l1", query_lr_multiplier=100.0,
                         save_steps=100, logging_steps=1)
    trainer = build_trainer(recipe, tmp_path / "ckpt", disable_tqdm=True)
    model: LiLsrModel = trainer.model
    assert isinstance(model, LiLsrModel) and "query_counts" in trainer.data_collator(
        [trainer.train_dataset[0]])
    w0, b0, table0 = model.query.w.detach().clone(), model.query.b.detach().clone(), model.query.table()
    trainer.train()
    assert not torch.allclose(model.query.w, w0) and not torch.allclose(model.query.b, b0)
    assert (model.query.table() - table0).abs().max() > 1e-4
    assert all(entry["l1"] > 0 for entry in trainer.state.log_history if "loss" in entry)
    assert not any("anchor" in entry for entry in trainer.state.log_history)  # query_anchor 0: no term

    anchored = build_trainer(recipe.replace(query_anchor=10.0), tmp_path / "ckpt-anchor", disable_tqdm=True)
    anchored.train()
    logged = [entry["anchor"] for entry in anchored.state.log_history if "loss" in entry]
    assert logged[0] == pytest.approx(0.0, abs=1e-12) and logged[-1] > 0  # 0 at the start table, then the move

    out = export_model(model, trainer.queries, recipe, tmp_path / "model")
    exported = load_file(str(out / "query_weights.safetensors"))["weights"]
    torch.testing.assert_close(exported, model.query.table(), rtol=0, atol=0)
    assert not (out / "idf.json").exists() and not (out / "lilsr_query.safetensors").exists()
    encoder = LookupQueryEncoder.from_path(out)  # the tokenizer saved beside the table
    text = "Vitamin D deficiency vitamin levels"
    side = LiLsrQueries(model.tokenizer, model.vocab_size)
    dense = model.query(side.counts(side.token_ids([text])))[0].detach()
    assert sum(encoder.encode(text).values()) == pytest.approx(float(dense.sum()), rel=1e-5)
    json_table = load_lookup_table(out / "query_weights.json")
    assert encoder.weights == pytest.approx(json_table)

    model.save_pretrained(tmp_path / "checkpoint")  # what Trainer's checkpoints hold
    fresh = build_trainer(recipe, tmp_path / "ckpt2", disable_tqdm=True).model
    fresh.load_weights(tmp_path / "checkpoint")
    torch.testing.assert_close(fresh.query.table(), model.query.table(), rtol=0, atol=0)
    save_lookup_table(exported, model.tokenizer, tmp_path / "again")
    assert load_lookup_table(tmp_path / "again") == pytest.approx(exported.tolist())


def test_recipes_and_eval_spec(tmp_path):
    from eval.recipe import load_recipe
    from kit.paths import REPO
    from train.recipe import load_train_recipe

    tiny = load_train_recipe(REPO / "recipes" / "train" / "tiny.yaml")
    lilsr = load_train_recipe(REPO / "recipes" / "train" / "lilsr-tiny.yaml")
    assert tiny.query_encoder == "bow-idf" and lilsr.query_encoder == "lilsr"
    doc_fields = ("base_model", "data", "variant", "threshold", "lambda_d", "warmup_T", "ranking_loss", "lr",
                  "batch_size", "max_steps", "max_length", "docs_per_query", "seed", "regularizer", "teacher_scale")
    assert {f: getattr(lilsr, f) for f in doc_fields} == {f: getattr(tiny, f) for f in doc_fields}  # same doc recipe
    for name in ("lilsr-msmarco.yaml",):
        big = load_train_recipe(REPO / "recipes" / "train" / name)
        assert (big.query_encoder, big.regularizer, big.lambda_d, big.ranking_loss) == ("lilsr", "l1", 1e-5, "kl")
    bad = tmp_path / "bad.yaml"
    bad.write_text(REPO.joinpath("recipes/train/lilsr-tiny.yaml").read_text().replace("regularizer: flops",
                                                                                      "regularizer: l2"))
    with pytest.raises(InputError, match="regularizer: 'l2' is not one of flops, l1"):
        load_train_recipe(bad)
    table = tmp_path / "table.yaml"
    table.write_text("datasets: [scifact]\nsystems:\n  - {id: x, type: sparse, doc: {model: m},"
                     " query: {encoder: bow-idf, table: t.json}}\n")
    with pytest.raises(InputError, match="only the lilsr encoder reads a table"):
        load_recipe(table)
    table.write_text("datasets: [scifact]\nsystems:\n  - {id: x, type: sparse, doc: {model: m},"
                     f" query: {{encoder: lilsr, table: {tmp_path / 't.json'}}}}}\n")
    with pytest.raises(InputError, match="t.json not found"):  # checked before anything loads
        load_recipe(table)
    (tmp_path / "t.json").write_text("{}")
    assert load_recipe(table).systems[0].query.table == str(tmp_path / "t.json")
