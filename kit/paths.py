"""Where things live: the repository, the read-only ../shared material, and the work directory for artifacts."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """``$KIT_SHARED`` or ``../shared`` beside the checkout (read-only offline data; never copied into the repo)."""
    return Path(os.environ.get("KIT_SHARED", REPO.parent / "shared")).resolve()


def work_dir() -> Path:
    """``$KIT_WORK`` or ``./work``: encoded vectors, indexes, runs (git-ignored, resumable)."""
    return Path(os.environ.get("KIT_WORK", REPO / "work")).resolve()


def slug(text: str) -> str:
    """A file-name-safe form of an id (``a/b`` -> ``a__b``)."""
    return text.replace("/", "__").replace(" ", "_")


def dataset_slug(name: str) -> str:
    """Work-dir name of a dataset: a local directory's own name, else the id with '/' made safe."""
    path = Path(name)
    return path.name if path.is_dir() else slug(name)


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it (how result files name recipes), else as given."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)
