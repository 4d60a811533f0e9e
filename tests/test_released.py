"""Released models on the table path: a hub-format replica folder, processed exactly as the authors' code does,
checked against published numbers; no silent fallback; shards assembled from several machines; the paper's errata."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import write_beir_slice
from test_faults import table as one_dataset_table

from eval.recipe import load_recipe
from kit.paths import REPO

pytestmark = pytest.mark.integration

V3 = "opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill"
V2 = "opensearch-project/opensearch-neural-sparse-encoding-doc-v2-distill"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run(module: str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **OFFLINE, **(env or {})}, timeout=900)


def error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


# ---- the replica -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def replica(root, splade_tiny_path) -> Path:
    """A folder laid out like the doc-v3-distill hub repository, filled with SPLADE-tiny: the masked LM, its config
    and tokenizer at the root, an ``idf.json`` (here with some tokens left out, as a partial table would), and the
    sentence-transformers Router (query: SparseStaticEmbedding; documents: Transformer + SpladePooling
    ``log1p_relu``)."""
    from transformers import AutoTokenizer

    from train.export import sentence_transformers_model

    folder = root / "doc-v3-replica"
    tokenizer = AutoTokenizer.from_pretrained(splade_tiny_path)
    vocab = tokenizer.get_vocab()
    weights = torch.rand(len(vocab), generator=torch.Generator().manual_seed(0)) * 8 + 0.5
    sentence_transformers_model(splade_tiny_path, weights, "l0").save(str(folder), create_model_card=False)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(splade_tiny_path) / name, folder / name)
    by_id = {i: t for t, i in vocab.items()}
    idf = {by_id[i]: round(float(weights[i]), 4) for i in range(len(vocab)) if i % 7}  # every 7th token missing
    (folder / "idf.json").write_text(json.dumps(idf))
    return folder


@pytest.fixture(scope="module")
def data(root, scifact_dir) -> Path:
    """A SciFact slice with one extra judged query longer than 512 tokens (ArguAna has 41 such topics)."""
    folder = write_beir_slice(root / "data" / "slice", scifact_dir, n_queries=6, n_other=30, seed=3)
    doc = json.loads((folder / "corpus.jsonl").read_text().splitlines()[0])
    long_text = " ".join([doc["title"], doc["text"]] * 8)
    with open(folder / "queries.jsonl", "a") as fh:
        fh.write(json.dumps({"_id": "long-query", "text": long_text}) + "\n")
    with open(folder / "qrels" / "test.tsv", "a") as fh:
        fh.write(f"long-query\t{doc['_id']}\t1\n")
    return folder


def released_file(root: Path, replica: Path, ndcg: float, activation: str = "l0", name: str = "released") -> Path:
    """A released-models recipe that lists the replica with one expected nDCG@10 on the slice."""
    path = root / f"{name}.yaml"
    path.write_text(f"""
table: 1
datasets: [slice]
measures: [nDCG@10, R@100]
hits: 100
max_length: 512
factor: 100
systems:
  - {{id: bm25-flat, type: bm25, paper: bm25}}
  - id: replica
    type: sparse
    doc: {{model: {replica}, activation: {activation}}}
    query: {{encoder: bow-idf, idf: model}}
    paper: l0-mask-l0-act
    expected: {{slice: {{nDCG@10: {ndcg}}}}}
    tolerance: 0.01
""")
    return path


@pytest.fixture(scope="module")
def measured(root, replica, data) -> tuple[Path, subprocess.CompletedProcess]:
    """The table path on the replica with the hub disabled, against a deliberately wrong expected value."""
    out = root / "out"
    proc = run("eval.reproduce", "--model", replica, "--released", released_file(root, replica, 0.01),
               "--datasets", data, "--out", out, "--device", "cpu", env={"KIT_WORK": str(root / "work")})
    return out, proc


def test_a_wrong_published_value_fails_the_run(measured):
    out, proc = measured
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert any(line.startswith("FAIL replica: ") and "/slice: nDCG@10 " in line for line in proc.stderr.splitlines())
    table = one_dataset_table(out)
    assert list(table.index) == ["bm25-flat", "replica"] and table.at["replica", "check"] == "FAIL"
    assert table.at["replica", "paper column"] == "l0-mask-l0-act"


def test_the_replica_is_processed_as_its_authors_do(measured, replica, data, root):
    """Activation and IDF come from the folder; queries and documents equal the authors' reference code: queries
    binary x relu(IDF) with 1.0 for a token idf.json lacks, truncated at 512 tokens with special tokens dropped;
    documents max-pooled MLM logits, log(1 + log(1 + relu)), special tokens zeroed (the model card's code)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from encode.writer import read_vectors
    from kit.data import load_dataset

    out, proc = measured
    meta = json.loads((out / "table1.json").read_text())
    assert meta["systems"] == ["bm25-flat", "replica"]
    tokenizer = AutoTokenizer.from_pretrained(replica)
    ds = load_dataset(str(data))

    # queries: the authors' evaluation (opensearch-sparse-model-tuning-sample, l0_enhance, SparseModel._encode_inf_free)
    idf_vector = [1.0] * tokenizer.vocab_size
    for token, weight in json.loads((replica / "idf.json").read_text()).items():
        idf_vector[tokenizer._convert_token_to_id_with_added_voc(token)] = weight
    idf_vector = torch.tensor(idf_vector)
    special = [tokenizer.vocab[t] for t in tokenizer.special_tokens_map.values()]
    qids = list(ds.queries)
    feats = tokenizer([ds.queries[q] for q in qids], padding=True, truncation=True, return_tensors="pt",
                      return_token_type_ids=False, max_length=512)
    ref = torch.zeros(len(qids), tokenizer.vocab_size)
    ref[torch.arange(len(qids)).unsqueeze(-1), feats["input_ids"]] = 1
    ref[:, special] = 0
    ref = ref * torch.relu(idf_vector)
    (queries_file,) = (root / "work" / "slice" / "queries").glob("replica.*.jsonl")
    kit = {r["id"]: r["vector"] for r in map(json.loads, queries_file.read_text().splitlines())}
    for row, qid in enumerate(qids):
        nz = ref[row].nonzero().squeeze(1).tolist()
        expected = {tokenizer.convert_ids_to_tokens(i): int(float(ref[row, i]) * 100 + 0.5) for i in nz}
        assert kit[qid] == {t: w for t, w in expected.items() if w}, qid
    assert len(tokenizer(ds.queries["long-query"])["input_ids"]) > 512  # the truncation mattered
    assert any(tokenizer.convert_tokens_to_ids(t) % 7 == 0 for q in kit.values() for t in q)  # so did the default

    # documents: the model card's code with the v3 double log
    (vectors,) = [p for p in (root / "work" / "slice" / "vectors").iterdir() if "doc-v3-replica" in p.name]
    kit_docs = dict(read_vectors(vectors))
    docs = list(ds.docs())[:8]
    model = AutoModelForMaskedLM.from_pretrained(replica).eval()
    feats = tokenizer([d.text for d in docs], padding=True, truncation=True, return_tensors="pt",
                      return_token_type_ids=False, max_length=512)
    with torch.no_grad():
        values, _ = torch.max(model(**feats)[0] * feats["attention_mask"].unsqueeze(-1), dim=1)
    values = torch.log(1 + torch.log(1 + torch.relu(values)))
    values[:, special] = 0
    for row, doc in enumerate(docs):
        mine = torch.zeros(tokenizer.vocab_size)
        for token, weight in kit_docs[doc.doc_id].items():
            mine[tokenizer.convert_tokens_to_ids(token)] = weight / 100
        assert (mine - values[row]).abs().max() <= 0.0051  # x100 quantization, float noise
        assert not mine[special].any()


def test_sentence_transformers_reads_the_replica_the_same_way(replica, data):
    """The replica's own sentence-transformers pipeline (the hub layout) gives the kit's document weights, special
    tokens aside (the model card's code drops them; SpladePooling keeps them)."""
    from sentence_transformers.sparse_encoder import SparseEncoder

    from encode.doc_encoder import SpladeDocEncoder
    from kit.data import load_dataset

    texts = [d.text for d in list(load_dataset(str(data)).docs())[:6]]
    st = SparseEncoder(str(replica), device="cpu")
    dense = st.encode_document(texts, convert_to_tensor=True).to_dense()
    kit = SpladeDocEncoder(str(replica), activation="l0", max_length=512, device="cpu")
    special = list(kit.tokenizer.all_special_ids)
    dense[:, special] = 0
    for row, vector in enumerate(kit.encode(texts)):
        mine = torch.zeros(dense.shape[1])
        for token, weight in vector.items():
            mine[kit.tokenizer.convert_tokens_to_ids(token)] = weight
        assert (mine - dense[row]).abs().max() < 1e-4


# ---- no silent fallback ----------------------------------------------------------------------------------------------

def test_an_unreachable_hub_model_is_an_error_not_another_model(root, data):
    proc = run("eval.reproduce", "--model", "opensearch-project/no-such-model-here", "--datasets", data,
               "--out", root / "o", env={"KIT_WORK": str(root / "w")})
    line = error_line(proc)
    assert "cannot read it from the Hugging Face hub" in line and "no-such-model-here" in line


def test_a_model_that_declares_no_activation_needs_one(root, data, splade_tiny_path):
    proc = run("eval.reproduce", "--model", splade_tiny_path, "--datasets", data, "--out", root / "o",
               env={"KIT_WORK": str(root / "w")})
    assert "declares no document activation" in error_line(proc)


def test_a_model_without_idf_json_needs_the_explicit_flag(root, replica, data):
    bare = root / "no-idf"
    shutil.copytree(replica, bare)
    (bare / "idf.json").unlink()
    proc = run("eval.reproduce", "--model", bare, "--datasets", data, "--out", root / "o-bare",
               env={"KIT_WORK": str(root / "w")})
    line = error_line(proc)
    assert "ships no idf.json" in line and "--idf corpus" in line
    fine = run("eval.reproduce", "--model", bare, "--idf", "corpus", "--datasets", data, "--out", root / "o-bare",
               env={"KIT_WORK": str(root / "w")})
    assert fine.returncode == 0, fine.stderr[-2000:]
    assert "not listed in recipes/released.yaml" in fine.stdout  # an unknown model: measured, not checked
    table = one_dataset_table(root / "o-bare")
    assert table["check"].isna().iloc[1] and pd.isna(table["paper column"].iloc[1])


def test_a_declared_activation_must_be_the_listed_one(root, replica, data):
    proc = run("eval.reproduce", "--model", replica, "--released", released_file(root, replica, 0.5, "relu", "wrong"),
               "--datasets", data, "--out", root / "o", env={"KIT_WORK": str(root / "w")})
    assert "declares the l0 activation, this file lists relu" in error_line(proc)


def test_known_models_map_to_their_paper_columns():
    released = {s.doc.model: s for s in load_recipe(REPO / "recipes" / "released.yaml").systems if s.doc}
    assert (released[V3].paper, released[V3].doc.activation) == ("l0-mask-l0-act", "l0")
    assert (released[V2].paper, released[V2].doc.activation) == ("idf-splade-doc-distill", "relu")
    for system in released.values():
        assert len(system.expected) == 13 and system.tolerance == 0.01
        assert system.query.idf == "model"
    averages = {s.id: sum(e["nDCG@10"] for e in s.expected.values()) / 13 for s in released.values()}
    assert round(averages["opensearch-doc-v3-distill"], 3) == 0.517  # the card's printed average
    assert round(averages["opensearch-doc-v2-distill"], 3) == 0.504


def test_several_gpus_without_torchrun_are_refused(monkeypatch):
    from kit.errors import InputError
    from train import trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(InputError, match="torchrun"):
        trainer._refuse_data_parallel()
    monkeypatch.setenv("WORLD_SIZE", "2")
    trainer._refuse_data_parallel()  # under torchrun: DDP, fine


# ---- runs never replace the stored reference -------------------------------------------------------------------------

def test_runs_write_to_the_work_folder_unless_asked(root, data):
    """A run without --update (a --model run included) writes work/results and leaves the stored reference alone."""
    stored = {p: p.read_bytes() for p in (REPO / "results").glob("table1.*")}
    recipe = root / "bm25.yaml"
    recipe.write_text("datasets: [slice]\nmeasures: [nDCG@10]\nhits: 100\nsystems: [{id: bm25-flat, type: bm25}]\n")
    proc = run("eval.reproduce", "--recipe", recipe, "--datasets", data, env={"KIT_WORK": str(root / "w-default")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (root / "w-default" / "results" / "table1.json").is_file()
    assert "the stored reference in results/ is unchanged; --update writes it" in proc.stdout
    assert {p: p.read_bytes() for p in (REPO / "results").glob("table1.*")} == stored


# ---- shards from several machines ------------------------------------------------------------------------------------

def test_shards_encoded_apart_are_verified_and_used(root, data, splade_tiny_path):
    """``--dry-run --shards 2`` prints the encode commands; run on two "machines" (two output folders), copied into
    the folder printed, they are checked and used without encoding again, and score as a one-machine run does."""
    recipe = root / "shard.yaml"
    recipe.write_text("datasets: [slice]\nmeasures: [nDCG@10]\nhits: 100\nmax_length: 64\nsystems:\n"
                      "  - {id: tiny, type: sparse, doc: {model: splade-tiny, activation: l0}, "
                      "query: {encoder: bow-idf, idf: corpus}}\n")
    env = {"KIT_WORK": str(root / "shard-work")}
    plan = run("eval.reproduce", "--recipe", recipe, "--datasets", data, "--dry-run", "--shards", "2", env=env)
    assert plan.returncode == 0, plan.stderr[-2000:]
    commands = [shlex.split(line.strip()) for line in plan.stdout.splitlines() if "python -m encode" in line]
    assert len(commands) == 2 and [c[-1] for c in commands] == ["0/2", "1/2"]
    target = Path(commands[0][commands[0].index("--output") + 1])
    for i, command in enumerate(commands):  # each "machine" writes its own folder, in parts of 10 documents
        machine = root / f"machine-{i}"
        command[command.index("--output") + 1] = str(machine)
        proc = run(*command[2:], "--part-size", "10", "--no-progress", env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        target.mkdir(parents=True, exist_ok=True)
        for f in machine.iterdir():
            shutil.copy(f, target)
    half = run("eval.reproduce", "--recipe", recipe, "--datasets", data, "--out", root / "o-shards", env=env)
    assert half.returncode == 0 and "verified, used" in half.stdout and "] encoding " not in half.stdout, half.stderr
    whole = run("eval.reproduce", "--recipe", recipe, "--datasets", data, "--out", root / "o-whole",
                env={"KIT_WORK": str(root / "whole-work")})
    assert whole.returncode == 0
    assert one_dataset_table(root / "o-shards")["nDCG@10"].tolist() == \
           one_dataset_table(root / "o-whole")["nDCG@10"].tolist()


# ---- the paper's errata ----------------------------------------------------------------------------------------------

def test_errata_correct_the_contriever_shift_against_pyserini():
    """Each erratum's printed value is the transcription's, and its correction is Contriever-msmarco's own score
    (Pyserini's regression, rounded as the paper prints)."""
    import importlib.util

    import yaml

    from eval.paper import load_errata, load_paper_table

    spec = importlib.util.find_spec("pyserini")
    beir = Path(list(spec.submodule_search_locations)[0]) / "2cr" / "beir.yaml"
    conditions = {c["name"]: c for c in yaml.safe_load(beir.read_text())["conditions"]}
    scores = {d["dataset"]: d["scores"][0]["nDCG@10"] for d in conditions["contriever-msmarco"]["datasets"]}
    printed = load_paper_table(1).set_index("dataset")
    corrected = load_paper_table(1, corrected=True).set_index("dataset")
    errata = load_errata()
    assert set(errata["column"]) == {"contriever"} and len(errata) == 5
    for e in errata.to_dict("records"):
        assert printed.at[e["dataset"], "contriever"] == e["printed"]
        assert corrected.at[e["dataset"], "contriever"] == e["corrected"] == round(100 * scores[e["dataset"]], 1)
    untouched = [d for d in printed.index if d not in set(errata["dataset"])]
    assert printed.loc[untouched].equals(corrected.loc[untouched])
