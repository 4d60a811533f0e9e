"""Sparse encoding for the paper "Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers" (SIGIR 2025).

- :mod:`encode.activations`: ``relu`` (SPLADE) and the ℓ0 approximation activations (eq. 1 and 6);
- :mod:`encode.sparse_head`: max-pooled MLM logits without the ``B × L × V`` tensor, with a custom backward;
- :mod:`encode.doc_encoder`: :class:`~encode.doc_encoder.SpladeDocEncoder`, documents -> ``{token: weight}``;
- :mod:`encode.query`: inference-free BoW × IDF queries and the siamese SPLADE baseline;
- :mod:`encode.quantize`: float weights -> Anserini integer impacts;
- :mod:`encode.writer`: sharded, resumable JsonVectorCollection output (``python -m encode``);
- :mod:`encode.collection`: such a folder read back and verified complete and unchanged (the index step's check).

Nothing is imported here: ``import encode`` stays free of torch and transformers.
"""
