"""Term-weight activations of IDF-SPLADE-doc, chosen by name.

The paper writes a document's weight for vocabulary entry ``j`` as (eq. 1, without the IDF factor, which the kit
applies to queries only)::

    w_j = max_i log(1 + σ(x_ij))

where ``x_ij`` is the MLM logit of token ``i`` for entry ``j``. SPLADE uses ``σ = ReLU``; the ℓ0 approximation
activation (eq. 6) replaces it by ``σ(x) = log(1 + max(0, x))``, i.e. one more ``log1p``. The authors' code also
tries two and three extra logs. By name:

==========  ==========================================
``relu``    ``log1p(relu(x))``                (SPLADE)
``l0``      ``log1p(log1p(relu(x)))``         (eq. 6)
``l0x2``    ``log1p(log1p(log1p(relu(x))))``
``l0x3``    ``log1p(log1p(log1p(log1p(relu(x)))))``
==========  ==========================================

Every activation is monotonic non-decreasing, so ``activate(max_i x_ij) == max_i activate(x_ij)``: the encoder
max-pools raw logits and applies the activation once per vocabulary entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ACTIVATIONS = ("relu", "l0", "l0x2", "l0x3")

# Number of log1p applied after ReLU: ``relu`` is SPLADE's single log, each ℓ0 level adds one.
_LOG_DEPTH = {"relu": 1, "l0": 2, "l0x2": 3, "l0x3": 4}


def check_activation(name: str) -> str:
    """Return ``name`` if it is one of :data:`ACTIVATIONS`, else raise ValueError listing the choices."""
    if name not in _LOG_DEPTH:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return name


def activate(x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply the named activation element-wise to raw logits ``x`` (a new tensor; ``x`` is untouched)."""
    y = x.relu()
    for _ in range(_LOG_DEPTH[check_activation(name)]):
        y = y.log1p()
    return y
