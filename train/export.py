"""A trained model as a directory the kit and sentence-transformers both load (the released models' layout).

:func:`export_model` writes the masked LM and tokenizer (Hugging Face format), the queries' ``idf.json`` (or Li-LSR's
lookup table), the sentence-transformers inference-free layout and, last, :data:`MODEL_METADATA`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor

from encode.query import save_idf_json
from kit.io import write_json
from train.lilsr import save_lookup_table
from train.model import BowIdfQueries, SpladeDocModel
from train.names import MODEL_METADATA
from train.recipe import TrainRecipe

logger = logging.getLogger(__name__)

#: Name of the metadata file the kit writes beside a trained model.
#: sentence-transformers' ``SpladePooling`` activation for each kit activation it can express.
_ST_ACTIVATIONS = {"relu": "relu", "l0": "log1p_relu"}


def sentence_transformers_model(model_dir: str | Path, queries: BowIdfQueries | Tensor, activation: str):
    """An inference-free sentence-transformers ``SparseEncoder`` over a saved model directory.

    Queries: ``SparseStaticEmbedding`` with the IDF weights (token presence × IDF, no special tokens) or another
    ``[V]`` weight tensor (Li-LSR's table; sentence-transformers counts a repeated token once); documents:
    the masked LM (``Transformer``, ``fill-mask``) and ``SpladePooling`` (max, the model's activation) — the layout
    of the released opensearch inference-free models. ``activation`` must be ``relu`` or ``l0``.
    """
    from sentence_transformers.base.modules import Router, Transformer
    from sentence_transformers.sparse_encoder import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding, SpladePooling

    if activation not in _ST_ACTIVATIONS:
        raise ValueError(f"sentence-transformers' SpladePooling has no {activation!r} activation; "
                         f"only {', '.join(_ST_ACTIVATIONS)} can be exported")
    documents = Transformer(str(model_dir), transformer_task="fill-mask")
    weight = queries if isinstance(queries, Tensor) else queries.weights
    query = SparseStaticEmbedding(tokenizer=documents.tokenizer, weight=weight.clone(), frozen=True)
    router = Router.for_query_document(
        query_modules=[query],
        document_modules=[documents, SpladePooling(pooling_strategy="max",
                                                   activation_function=_ST_ACTIVATIONS[activation])])
    return SparseEncoder(modules=[router], similarity_fn_name="dot")


def siamese_sentence_transformers_model(model_dir: str | Path, activation: str):
    """A Siamese sentence-transformers ``SparseEncoder`` (queries and documents: the masked LM and ``SpladePooling``)
    over a saved model directory, for a ``query_encoder: splade`` recipe (:mod:`train.siamese`)."""
    from sentence_transformers.sparse_encoder import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

    return SparseEncoder(modules=[MLMTransformer(str(model_dir)),
                                  SpladePooling(pooling_strategy="max", activation_function=_ST_ACTIVATIONS[activation])],
                         similarity_fn_name="dot")


def export_model(model: SpladeDocModel, queries: Any, recipe: TrainRecipe, out_dir: str | Path,
                 extra: Mapping[str, Any] | None = None) -> Path:
    """Write the trained model directory.

    ``out_dir`` receives: the masked LM and tokenizer (Hugging Face format, what ``SpladeDocEncoder(out_dir,
    activation=...)`` loads), ``idf.json`` (``{token: idf}``, OpenSearch format, the query weights used in
    training), the sentence-transformers inference-free layout (``modules.json``, ``router_config.json``,
    ``query_0_SparseStaticEmbedding/``, ``document_1_Transformer/``, ``document_2_SpladePooling/``; only for the
    ``relu`` and ``l0`` activations, which ``SpladePooling`` can express) and, written last, :data:`MODEL_METADATA`.

    A ``query_encoder: lilsr`` recipe (``model`` a :class:`train.lilsr.LiLsrModel`) writes the learned query weights
    once as a lookup table (``query_weights.safetensors`` + ``query_weights.json``, :func:`train.lilsr.save_lookup_table`)
    instead of ``idf.json``; :class:`encode.lookup.LookupQueryEncoder` reads it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MODEL_METADATA).unlink(missing_ok=True)
    lilsr, siamese = recipe.query_encoder == "lilsr", recipe.query_encoder == "splade"
    doc_model = model.doc if lilsr or siamese else model
    doc_model.save_pretrained(out_dir)
    if lilsr:
        query_weights = model.query.table()
        query_files = save_lookup_table(query_weights, doc_model.tokenizer, out_dir)
    else:  # a Siamese model keeps the IDF too: its documents can be searched with BoW x IDF queries as well
        idf_queries = queries.idf_queries if siamese else queries
        query_weights = idf_queries.weights
        save_idf_json(idf_queries.idf_table(), out_dir / "idf.json")
        query_files = {"idf": "idf.json"}
    exported = recipe.activation in _ST_ACTIVATIONS
    if exported:
        st_model = (siamese_sentence_transformers_model(out_dir, recipe.activation) if siamese
                    else sentence_transformers_model(out_dir, query_weights, recipe.activation))
        st_model.save(str(out_dir), create_model_card=False)
    else:
        logger.warning("activation %s has no sentence-transformers equivalent; wrote no SparseEncoder layout",
                       recipe.activation)
    metadata = {
        "kind": "li-lsr" if lilsr else "splade-siamese" if siamese else "idf-splade-doc",
        "activation": recipe.activation, "variant": recipe.variant,
        "lambda_d": recipe.lambda_d, "threshold": recipe.threshold, "warmup_T": recipe.warmup_T,
        "regularizer": recipe.regularizer, "query_encoder": recipe.query_encoder, **query_files,
        "idf_source": "training documents" if recipe.idf == "train" else recipe.idf,
        "base_model": recipe.base_model, "sentence_transformers": exported,
        "recipe": recipe.to_dict(), "recipe_path": str(recipe.path) if recipe.path else None, **(extra or {}),
    }
    write_json(out_dir / MODEL_METADATA, metadata)
    return out_dir


