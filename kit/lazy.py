"""Modules whose import costs seconds (torch, transformers), named at the top of a file but loaded on first use.

    trainer = lazy_import("train.trainer")   # at module top: the dependency is visible and checked by tests/test_layers
    ...
    trainer.train(recipe, out)                # the module (and torch) is imported here, not when the file is imported

A command that fails on bad input, or prints its ``--help``, then answers in a second instead of the seconds torch and
transformers take to import. The proxy stays out of ``sys.modules`` until the real import: a lazily executed module
registered there (``importlib.util.LazyLoader``) is loaded by whatever walks ``sys.modules``, which transformers does
in the middle of its own import, and the module's ``from transformers import ...`` then meets a half-initialised
package.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``; the first attribute access imports it (:func:`importlib.import_module`)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):  # copy, pickle and inspect probe these: not a reason to load
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r} ({'loaded' if self._module is not None else 'not loaded'})>"


def lazy_import(name: str) -> LazyModule:
    """A stand-in for the module ``name``, imported on its first attribute access."""
    return LazyModule(name)
