"""Training objective of the paper (losses, FLOPS regularizer, ℓ0 mask, λ warm-up); the trainer builds on it."""
