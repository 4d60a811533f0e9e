"""Scoring runs (ir-measures), sparsity statistics (FLOPS, Doc_Len) and the paper tables."""
