"""Training the paper's inference-free ℓ0 sparsification: losses (train.losses), distillation data (the format in
train.examples, teacher scores in train.teachers, builders in train.mining and train.msmarco, the command line
train.data), the document model (train.model) and a Hugging Face Trainer subclass with export (train.trainer);
`python -m train`."""
