"""Session-wide fixtures: offline paths and the tiny models, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.models import resolve_model
from kit.paths import shared_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "data").exists():
        pytest.fail(f"offline data not found at {path}; the kit expects ../shared beside the checkout")
    return path


@pytest.fixture(scope="session")
def scifact_dir(shared) -> Path:
    return shared / "data" / "beir" / "scifact"


@pytest.fixture(scope="session")
def splade_tiny_path() -> str:
    return resolve_model("splade-tiny")


@pytest.fixture(scope="session")
def splade_tiny(splade_tiny_path):
    """(tokenizer, BertForMaskedLM in eval mode) for the bundled SPLADE-tiny."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(splade_tiny_path)
    model = AutoModelForMaskedLM.from_pretrained(splade_tiny_path).eval()
    return tok, model
