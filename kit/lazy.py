"""Modules whose import costs seconds (torch, transformers), named at the top of a file but loaded on first use.

    trainer = lazy_import("train.trainer")   # at module top: the dependency is visible and checked by tests/test_layers
    ...
    trainer.train(recipe, out)                # the module (and torch) is loaded here, not when the file is imported

A command that fails on bad input, or prints its ``--help``, then answers in a second instead of the seconds torch and
transformers take to import. Built on :class:`importlib.util.LazyLoader`.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """The module ``name``, executed on its first attribute access (at once when it is already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
