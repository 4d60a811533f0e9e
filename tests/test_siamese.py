"""The Siamese student (``query_encoder: splade``, train.siamese): the same recipe with the document model encoding
the queries too, to measure what the inference-free query side costs."""

from __future__ import annotations

import pytest
import torch

from conftest import write_training_file
from encode.doc_encoder import SpladeDocEncoder
from encode.query import SpladeQueryEncoder
from train.siamese import SiameseModel


def test_siamese_training_moves_the_query_side_and_exports_what_evaluation_reads(tmp_path, scifact_dir):
    """Two steps train the shared model through both sides; the query vectors the loss saw are the ones
    SpladeQueryEncoder computes from the exported model, and sentence-transformers loads the export."""
    from sentence_transformers.sparse_encoder import SparseEncoder

    from train.export import export_model
    from train.recipe import TrainRecipe
    from train.trainer import build_trainer

    data = write_training_file(tmp_path / "train.jsonl", scifact_dir)
    recipe = TrainRecipe(base_model="splade-tiny", data=data, variant="l0", lambda_d=1e-3, max_steps=2, batch_size=4,
                         max_length=48, query_encoder="splade", lr=1e-3, save_steps=100, logging_steps=1)
    trainer = build_trainer(recipe, tmp_path / "ckpt", disable_tqdm=True)
    model = trainer.model
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    assert isinstance(model, SiameseModel) and "query_input_ids" in batch and "query_vectors" not in batch
    text = "Vitamin D deficiency and bone density"
    ids = trainer.queries.batch(trainer.queries.token_ids([text]))
    before = model(batch["input_ids"][:1], batch["attention_mask"][:1], None, **ids)[1].detach().clone()
    trainer.train()
    model.eval()
    with torch.no_grad():
        after = model(batch["input_ids"][:1], batch["attention_mask"][:1], None, **ids)[1][0]
    assert (after - before[0]).abs().max() > 1e-4  # the query side is trained, not fixed

    out = export_model(model, trainer.queries, recipe, tmp_path / "model")
    assert (out / "idf.json").exists()  # its documents can be searched with BoW x IDF queries too
    encoder = SpladeQueryEncoder(SpladeDocEncoder(str(out), activation="l0", device="cpu"))
    vector = encoder.encode(text)
    vocab = model.tokenizer.get_vocab()
    nonzero = after.nonzero().squeeze(1).tolist()
    assert set(vector) == set(model.tokenizer.convert_ids_to_tokens(nonzero))
    assert [vector[t] for t in sorted(vector)] == pytest.approx([float(after[vocab[t]]) for t in sorted(vector)],
                                                                rel=1e-4)
    st = SparseEncoder(str(out), device="cpu")
    assert st.encode_query([text]).shape[-1] == model.vocab_size
