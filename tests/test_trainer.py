"""The trainer: student model and BoW × IDF queries, data sampling, recipes, logged terms, exact resume, export, DDP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_training_file
import torch

from kit.errors import InputError
from kit.paths import REPO
from train.losses import warmup_lambda
from train.model import BowIdfQueries, SpladeDocModel
from train.batches import DistillCollator, DistillDataset, EpochSampler
from train.export import MODEL_METADATA
from train.recipe import TrainRecipe, load_train_recipe
from train.trainer import CHECKPOINT_COMPLETE, train

TEXTS = ["Cerebral white matter develops in the preterm brain.", "Short text.",
         "Sparse retrieval with learned term weights is fast on inverted indexes and CPUs."]


# ---- fixtures --------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer(splade_tiny):
    return splade_tiny[0]


@pytest.fixture(scope="module")
def train_file(tmp_path_factory, scifact_dir) -> Path:
    return write_training_file(tmp_path_factory.mktemp("data") / "train.jsonl", scifact_dir)


def _recipe(data: Path, **changes) -> TrainRecipe:
    base = dict(base_model="splade-tiny", data=data, variant="l0", lambda_d=0.01, threshold=60.0, warmup_T=4,
                max_steps=6, batch_size=2, max_length=32, docs_per_query=3, save_steps=3, logging_steps=1, lr=1e-4)
    return TrainRecipe(**{**base, **changes})


# ---- model and queries -----------------------------------------------------------------------------------------------

def test_doc_model_equals_the_dense_head_and_its_gradient(splade_tiny):
    """Forward: max over real tokens of the Hugging Face logits; backward: the gradient of that dense computation."""
    tokenizer, reference = splade_tiny
    import copy

    model = SpladeDocModel(copy.deepcopy(reference), tokenizer).eval()
    dense = copy.deepcopy(reference).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    pooled = model(**batch)
    logits = dense(**batch).logits.masked_fill(~batch["attention_mask"].bool()[:, :, None], float("-inf"))
    expected = logits.max(dim=1).values
    assert pooled.shape == (3, 30522)
    torch.testing.assert_close(pooled, expected, atol=1e-4, rtol=1e-5)
    naive = SpladeDocModel(copy.deepcopy(reference), tokenizer, head="naive").eval()  # the benchmark's reference
    with torch.no_grad():
        torch.testing.assert_close(naive(**batch), expected.detach(), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError):
        SpladeDocModel(reference, tokenizer, head="dense")

    weights = torch.linspace(0.5, 1.5, 30522)
    (torch.log1p(torch.relu(pooled)) * weights).sum().backward()
    (torch.log1p(torch.relu(expected)) * weights).sum().backward()
    for (name, p), q in zip(model.mlm.named_parameters(), dense.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=2e-4, rtol=1e-3, msg=name)


def test_bow_idf_queries_by_hand_and_like_the_query_encoder(tokenizer):
    from encode.query import BowIdfQueryEncoder

    idf = {"the": 0.5, "cat": 2.0, "[SEP]": 9.0, "zebra": 3.0, "not-a-token": 7.0}
    queries = BowIdfQueries(tokenizer, idf)
    vector = queries.encode(["The cat, the CAT [SEP]"])[0]
    vocab = tokenizer.get_vocab()
    # each token once, special tokens and tokens without IDF (",") weigh 0
    assert {i: vector[i].item() for i in vector.nonzero().squeeze(1).tolist()} == {vocab["the"]: 0.5,
                                                                                  vocab["cat"]: 2.0}
    encoder = BowIdfQueryEncoder(tokenizer, idf)
    for text in ["The cat, the CAT [SEP]", "zebra cat", "nothing known here"]:
        row = queries.encode([text])[0]
        assert {t: row[vocab[t]].item() for t in encoder.encode(text)} == encoder.encode(text)
        assert int((row > 0).sum()) == len(encoder.encode(text))
    assert queries.idf_table() == {"the": 0.5, "cat": 2.0, "zebra": 3.0}  # [SEP] dropped
    with pytest.raises(ValueError, match="another tokenizer"):
        BowIdfQueries(tokenizer, {"not-a-token": 1.0})


# ---- data ------------------------------------------------------------------------------------------------------------

def test_dataset_draws_negatives_per_seed_epoch_and_example(train_file):
    from train.examples import load_training_file

    examples = load_training_file(train_file)
    dataset = DistillDataset(examples, [[1]] * len(examples), docs_per_query=3, seed=7)
    item = dataset[2]
    chosen = dataset.doc_indices(2)
    assert chosen[0] == 0 and len(set(chosen)) == 3 and all(1 <= i < 4 for i in chosen[1:])
    assert item["docs"] == [examples[2].docs[i] for i in chosen]
    assert item["teacher_scores"] == [examples[2].teacher_scores[i] for i in chosen]
    again = DistillDataset(examples, [[1]] * len(examples), docs_per_query=3, seed=7)
    assert [again.doc_indices(i) for i in range(8)] == [dataset.doc_indices(i) for i in range(8)]
    draws = set()
    for epoch in range(10):
        dataset.set_epoch(epoch)
        draws.add(tuple(dataset.doc_indices(2)))
    assert len(draws) > 1  # the negatives change from epoch to epoch
    assert DistillDataset(examples, [[1]] * 8, docs_per_query=4).doc_indices(5) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="fewer than docs_per_query=5"):
        DistillDataset(examples, [[1]] * 8, docs_per_query=5)


def test_sampler_permutes_per_epoch_and_sets_the_dataset_epoch(train_file):
    from train.examples import load_training_file

    dataset = DistillDataset(load_training_file(train_file), [[1]] * 8, docs_per_query=2)
    sampler = EpochSampler(dataset, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(8)) and list(sampler) == first
    sampler.set_epoch(1)
    assert dataset.epoch == 1 and list(sampler) != first and sorted(sampler) == list(range(8))


def test_collator_layout(train_file, tokenizer):
    from train.examples import load_training_file

    examples = load_training_file(train_file)[:2]
    queries = BowIdfQueries(tokenizer, {"the": 1.0, "of": 0.25})
    dataset = DistillDataset(examples, queries.token_ids([ex.query for ex in examples]), docs_per_query=3)
    batch = DistillCollator(tokenizer, queries, max_length=16)([dataset[0], dataset[1]])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (6, 16)  # Q*D rows, truncated
    torch.testing.assert_close(batch["teacher_scores"],
                               torch.tensor([dataset[0]["teacher_scores"], dataset[1]["teacher_scores"]]))
    torch.testing.assert_close(batch["query_vectors"], queries.encode([ex.query for ex in examples]))
    assert tokenizer.decode(batch["input_ids"][3]).startswith("[CLS] " + dataset[1]["docs"][0].lower()[:10])


# ---- recipes ---------------------------------------------------------------------------------------------------------

def test_shipped_recipes_load():
    tiny = load_train_recipe(REPO / "recipes" / "train" / "tiny.yaml")
    assert tiny.base_model == "splade-tiny" and tiny.data.name.startswith("scifact-train")
    full = load_train_recipe(REPO / "recipes" / "train" / "msmarco-full.yaml")
    assert (full.base_model, full.lambda_d, full.threshold, full.lr, full.weight_decay, full.batch_size,
            full.max_steps, full.max_length, full.docs_per_query, full.ranking_loss, full.fp16) == \
        ("Luyu/co-condenser-marco", 0.04, 200.0, 2e-5, 0.01, 40, 100_000, 256, 2, "kl", True)
    assert full.activation == "l0" and full.loss().threshold == 200.0


GOOD = "base_model: splade-tiny\ndata: train/x.jsonl\nvariant: l0\nlambda_d: 0.04\nmax_steps: 10\n"


@pytest.mark.parametrize("text,line,needle", [
    (GOOD.replace("variant: l0", "variant: tanh"), 3, "'tanh' is not one of baseline, l0"),
    (GOOD + "lr: -1\n", 6, "lr: must be a finite number > 0"),
    (GOOD + "batch_size: 2.5\n", 6, "batch_size: must be an integer >= 1"),
    (GOOD + "threshold: many\n", 6, "threshold: must be a finite number >= 0 or null"),
    (GOOD + "learning_rate: 1e-5\n", 6, "learning_rate: unknown key"),
    (GOOD.replace("max_steps: 10\n", ""), None, "missing key(s) max_steps"),
    (GOOD + "docs_per_query: 1\n", 6, "docs_per_query: must be an integer >= 2"),
    (GOOD + "fp16: yes please\n", 6, "fp16: must be true or false"),
    ("- a list\n", None, "must be a YAML mapping"),
    ("base_model: [unclosed\n", 2, "invalid YAML"),
])
def test_bad_recipes_are_one_line_errors(tmp_path, text, line, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_train_recipe(path)
    message = str(err.value)
    assert "\n" not in message and needle in message
    assert message.startswith(f"error: {path}:{line}: " if line else f"error: {path}: ")


def test_yaml_scientific_notation_and_null_threshold(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(GOOD + "lr: 2e-5\nthreshold: null\nmax_grad_norm: null\n")
    recipe = load_train_recipe(path)
    assert recipe.lr == 2e-5 and recipe.threshold is None and recipe.max_grad_norm is None
    assert recipe.data.is_absolute() and recipe.data.parts[-2:] == ("train", "x.jsonl")


def test_cli_and_train_refuse_bad_runs(tmp_path, capsys, train_file):
    from train.__main__ import main

    assert main(["--recipe", str(tmp_path / "missing.yaml")]) == 2
    assert "recipe not found" in capsys.readouterr().err
    recipe = _recipe(train_file)
    with pytest.raises(InputError, match="no complete checkpoint to resume from"):
        train(recipe, tmp_path / "fresh", resume=True)
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / MODEL_METADATA).write_text("{}")
    with pytest.raises(InputError, match="already holds a training run"):
        train(recipe, tmp_path / "done")
    bad = tmp_path / "short.yaml"
    bad.write_text(f"base_model: splade-tiny\ndata: {train_file}\nvariant: l0\nlambda_d: 0\nmax_steps: 1\n"
                   "docs_per_query: 6\n")
    assert main(["--recipe", str(bad), "--out", str(tmp_path / "short")]) == 2
    assert "fewer than docs_per_query=6" in capsys.readouterr().err


# ---- training end to end ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_file) -> tuple[TrainRecipe, Path]:
    """6 steps of the l0 recipe (8 queries, batch 2: 4 steps per epoch), checkpoints at steps 3 and 6."""
    recipe = _recipe(train_file)
    out = tmp_path_factory.mktemp("run") / "model"
    train(recipe, out, disable_tqdm=True)
    return recipe, out


@pytest.mark.integration
def test_logged_terms_add_up(trained):
    recipe, out = trained
    logs = [entry for entry in json.loads((out / "log_history.json").read_text()) if "loss" in entry]
    assert [entry["step"] for entry in logs] == [1, 2, 3, 4, 5, 6]
    for entry in logs:
        # the λ of the step's forward pass: global_step before the update, quadratic warm-up over T = 4 steps
        assert entry["lambda"] == pytest.approx(warmup_lambda(0.01, entry["step"] - 1, 4))
        assert entry["loss"] == pytest.approx(entry["ranking"] + entry["lambda"] * entry["flops"], rel=1e-5)
        assert 0 <= entry["masked_fraction"] <= 1 and 0 < entry["doc_l0"] <= 30522
        if entry["masked_fraction"] == 1:
            assert entry["flops"] == 0  # every document under t: the mask removes the whole FLOPS term


@pytest.mark.integration
def test_doc_anchor_pulls_the_student_toward_its_start_and_is_logged(train_file, tmp_path):
    """recipe doc_anchor (L2-SP): its term is logged and added to the loss, the weights end nearer the base model than
    without it, and at 0 it leaves the training key (and so every cached model) unchanged."""
    from train.cache import training_inputs
    from train.trainer import build_trainer

    def distance(recipe, name):
        trainer = build_trainer(recipe, tmp_path / name, disable_tqdm=True, max_steps=3)
        start = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.train()
        moved = sum(float(((p.detach() - start[n]) ** 2).sum()) for n, p in trainer.model.named_parameters())
        return moved, [e for e in trainer.state.log_history if "loss" in e]

    free, free_logs = distance(_recipe(train_file), "free")
    pulled, logs = distance(_recipe(train_file, doc_anchor=1e4), "pulled")
    assert "doc_anchor" not in free_logs[0] and all(e["doc_anchor"] >= 0 for e in logs)
    assert logs[-1]["doc_anchor"] > 0
    for entry in logs:
        assert entry["loss"] == pytest.approx(entry["ranking"] + entry["lambda"] * entry["flops"] + entry["doc_anchor"],
                                              rel=1e-5)
    assert pulled < 0.5 * free
    assert "doc_anchor" not in training_inputs(_recipe(train_file))
    assert training_inputs(_recipe(train_file, doc_anchor=0.5))["doc_anchor"] == 0.5


@pytest.mark.integration
def test_resume_gives_bitwise_identical_weights(trained, tmp_path):
    from transformers import AutoModelForMaskedLM

    from train.trainer import build_trainer

    recipe, out = trained
    resumed = build_trainer(recipe, tmp_path / "resumed", disable_tqdm=True)
    resumed.train(resume_from_checkpoint=str(out / "checkpoints" / "checkpoint-3"))  # mid-epoch, then epoch 2
    assert resumed.state.global_step == 6
    final = AutoModelForMaskedLM.from_pretrained(out).state_dict()
    mine = resumed.model.mlm.state_dict()
    assert final.keys() == mine.keys()
    different = [name for name in final if not torch.equal(final[name], mine[name])]
    assert not different


_KILL_AT_FIRST_CHECKPOINT = """
import os, signal, sys
from transformers import TrainerCallback
import train.trainer as trainer


class KillAfterSave(TrainerCallback):  # SIGKILL: no clean-up, no atexit, as when a job is killed or a node dies
    def on_save(self, args, state, control, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)


build = trainer.build_trainer
def build_and_arm(*args, **kwargs):
    t = build(*args, **kwargs)
    t.add_callback(KillAfterSave())
    return t
trainer.build_trainer = build_and_arm
from train.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.integration
def test_killed_run_resumes_from_its_checkpoint_to_the_same_weights(trained, tmp_path):
    """``kill -9`` right after the step-3 checkpoint, then ``python -m train --resume`` past a half-written newer
    checkpoint: the weights of the uninterrupted 6-step run, bit for bit."""
    from transformers import AutoModelForMaskedLM

    recipe, reference = trained
    fields = {k: v for k, v in recipe.to_dict().items() if v is not None}
    path = tmp_path / "recipe.yaml"
    path.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in fields.items()))
    out = tmp_path / "model"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = ["--recipe", str(path), "--out", str(out)]
    killed = subprocess.run([sys.executable, "-c", _KILL_AT_FIRST_CHECKPOINT, *command], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-3"]
    assert (out / "checkpoints" / "checkpoint-3" / CHECKPOINT_COMPLETE).is_file()
    assert not (out / MODEL_METADATA).exists()
    # a newer checkpoint whose writing was killed halfway (weights, no optimizer, no completion marker): --resume
    # must take the newest *complete* one, not this one
    partial = out / "checkpoints" / "checkpoint-5"
    partial.mkdir()
    shutil.copy(out / "checkpoints" / "checkpoint-3" / "config.json", partial)
    resumed = subprocess.run([sys.executable, "-m", "train", *command, "--resume"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Traceback" not in resumed.stderr
    assert json.loads((out / MODEL_METADATA).read_text())["steps"] == 6
    final = AutoModelForMaskedLM.from_pretrained(reference).state_dict()
    mine = AutoModelForMaskedLM.from_pretrained(out).state_dict()
    assert [name for name in final if not torch.equal(final[name], mine[name])] == []


@pytest.mark.integration
def test_the_weights_do_not_depend_on_the_threads_of_the_machine(train_file, tmp_path):
    """The recipe's ``cpu_threads`` (1) pins training: 2 steps trained here at 2 intra-op threads and by
    ``python -m train`` in a process started with 1 end in the same weights, bit for bit (at 64 tokens and 4 queries a
    batch the kernels split their sums by thread count, so without the pin they differ)."""
    from transformers import AutoModelForMaskedLM

    recipe = _recipe(train_file, max_steps=2, batch_size=4, max_length=64)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(recipe, tmp_path / "here", disable_tqdm=True)
    finally:
        torch.set_num_threads(before)
    fields = {k: v for k, v in recipe.to_dict().items() if v is not None}
    path = tmp_path / "recipe.yaml"
    path.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in fields.items()))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "train", "--recipe", str(path), "--out", str(tmp_path / "there")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    here = AutoModelForMaskedLM.from_pretrained(tmp_path / "here").state_dict()
    there = AutoModelForMaskedLM.from_pretrained(tmp_path / "there").state_dict()
    assert [name for name in here if not torch.equal(here[name], there[name])] == []


@pytest.mark.integration
def test_export_loads_in_the_kit_and_in_sentence_transformers(trained):
    from sentence_transformers.sparse_encoder import SparseEncoder

    from encode.doc_encoder import SpladeDocEncoder
    from encode.query import BowIdfQueryEncoder, load_idf_json

    recipe, out = trained
    meta = json.loads((out / MODEL_METADATA).read_text())
    assert (meta["activation"], meta["variant"], meta["lambda_d"], meta["threshold"], meta["idf_source"],
            meta["sentence_transformers"], meta["steps"]) == ("l0", "l0", 0.01, 60.0, "training documents", True, 6)
    kit = SpladeDocEncoder(str(out), activation=meta["activation"], max_length=64)
    st = SparseEncoder(str(out), device="cpu")
    st.max_seq_length = 64
    vocab = kit.vocab
    docs = st.encode_document(TEXTS, convert_to_sparse_tensor=False)
    for text, row, vector in zip(TEXTS, docs, kit.encode(TEXTS)):
        dense = torch.zeros(len(vocab))
        for token, weight in vector.items():
            dense[vocab.index(token)] = weight
        assert vector and torch.allclose(row, dense, atol=1e-4), text
    idf = load_idf_json(out / "idf.json")
    bow = BowIdfQueryEncoder(kit.tokenizer, idf)
    query = "What causes white matter changes in the preterm brain?"
    row = st.encode_query([query], convert_to_sparse_tensor=False)[0]
    assert {vocab[i]: pytest.approx(row[i].item()) for i in row.nonzero().squeeze(1).tolist()} == bow.encode(query)


@pytest.mark.integration
def test_torchrun_two_processes_match_one_process(tmp_path, splade_tiny, train_file):
    """Same global batch (2 × 2 queries vs 4): the loss curve (and gradient norms) agree; dropout is off."""
    tokenizer, _ = splade_tiny
    from transformers import AutoModelForMaskedLM

    from kit.models import resolve_model

    base = tmp_path / "no-dropout"
    model = AutoModelForMaskedLM.from_pretrained(resolve_model("splade-tiny"), hidden_dropout_prob=0.0,
                                                 attention_probs_dropout_prob=0.0)
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    curves = {}
    for processes, batch in ((1, 4), (2, 2)):
        recipe = tmp_path / f"p{processes}.yaml"
        recipe.write_text(f"base_model: {base}\ndata: {train_file}\nvariant: l0\nlambda_d: 0.05\nthreshold: 20\n"
                          f"max_steps: 4\nbatch_size: {batch}\nmax_length: 24\ndocs_per_query: 3\nlogging_steps: 1\n"
                          "save_steps: 100\nlr: 1.0e-3\n")
        out = tmp_path / f"out{processes}"
        if processes == 1:
            train(load_train_recipe(recipe), out, disable_tqdm=True)
        else:
            run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "train",
                                  "--recipe", str(recipe), "--out", str(out)],
                                 cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stderr[-3000:]
        history = json.loads((out / "log_history.json").read_text())
        curves[processes] = [(entry["loss"], entry["grad_norm"], entry["flops"]) for entry in history if "loss" in entry]
    assert len(curves[1]) == 4 and curves[1][0][2] > 0  # FLOPS is active at step 1 (λ warm-up T = 0)
    for (loss1, norm1, flops1), (loss2, norm2, flops2) in zip(curves[1], curves[2]):
        assert (loss2, flops2) == pytest.approx((loss1, flops1), rel=1e-5)
        assert norm2 == pytest.approx(norm1, rel=1e-3)  # a norm over 4.4M summed gradients: looser float noise
