"""The names training shares with recipes, caches and runners, in a module that imports nothing heavy.

A recipe is validated, a cache looked up and a ``--help`` printed without torch: the loss, regularizer and
activation-variant names and the exported model's metadata file live here; :mod:`train.losses` and
:mod:`train.export`, which need torch, import them from here.
"""

from __future__ import annotations

#: Ranking losses over each query's own documents (``kl+inbatch`` adds the batch's other documents as negatives).
RANKING_LOSSES = ("kl", "margin_mse", "infonce", "kl+inbatch")

#: Document regularizers: FLOPS (eq. 3, the paper) or ℓ1 (Li-LSR); either takes the ℓ0 mask through ``threshold``.
REGULARIZERS = ("flops", "l1")

#: variant name -> (activation for the ranking loss, activation for FLOPS), in encode.activations' names.
VARIANTS: dict[str, tuple[str, str]] = {
    "baseline": ("relu", "relu"),
    "l0": ("l0", "l0"),
    "de-l0": ("relu", "l0"),
    "inv-de-l0": ("l0", "relu"),
    "l0x2": ("l0x2", "l0x2"),
    "l0x3": ("l0x3", "l0x3"),
}

#: The file beside an exported model that records how it was trained (:func:`train.export.export_model`).
MODEL_METADATA = "kit_model.json"
