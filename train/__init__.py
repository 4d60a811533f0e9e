"""Training the paper's inference-free ℓ0 sparsification: losses (train.losses), distillation data (train.data),
the document model (train.model) and a Hugging Face Trainer subclass with export (train.trainer); `python -m train`."""
