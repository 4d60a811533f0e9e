"""Cached artifacts keyed by their inputs, with a completion manifest written last.

An :class:`Artifact` is a file or folder under ``work/`` plus a *description* of everything it depends on (input
fingerprints from :mod:`kit.fingerprint`, recipe fields, precision). Its name carries the description's key, and
the manifest beside it (written only once the artifact is complete) stores the description in full::

    work/scifact/vectors/splade-tiny.l0.len512.q100.3f9a0c12d4e5/            the artifact (a folder)
    work/scifact/vectors/splade-tiny.l0.len512.q100.3f9a0c12d4e5/kit-manifest.json
    work/scifact/runs/bm25-flat.91b0e2aa7c3d.trec                            the artifact (a file)
    work/scifact/runs/bm25-flat.91b0e2aa7c3d.trec.manifest.json

:meth:`Artifact.ready` is true only when the manifest exists and its description equals the current one, so a
cache hit is the same inputs by construction, and an artifact whose writer was killed (no manifest yet) is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.fingerprint import canonical, digest, short
from kit.io import write_json

FORMAT = "kit-manifest/1"
DIR_MANIFEST = "kit-manifest.json"


@dataclass(frozen=True)
class Artifact:
    """A cached file or folder and the description of its inputs (JSON-able; see :func:`kit.fingerprint.canonical`)."""

    path: Path
    inputs: dict[str, Any] = field(hash=False)
    is_dir: bool = False

    @classmethod
    def named(cls, folder: str | Path, label: str, inputs: dict[str, Any], *, suffix: str = "",
              is_dir: bool = False) -> "Artifact":
        """``<folder>/<label>.<key>[suffix]``: the key (12 hex digits of the description's SHA-256) names it."""
        return cls(Path(folder) / f"{label}.{short(digest(inputs))}{suffix}", inputs, is_dir)

    @property
    def key(self) -> str:
        return digest(self.inputs)

    @property
    def manifest_path(self) -> Path:
        if self.is_dir:
            return self.path / DIR_MANIFEST
        return self.path.with_name(self.path.name + ".manifest.json")

    def manifest(self) -> dict | None:
        """The stored manifest, or None when absent or unreadable (an unreadable one means: not complete)."""
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def ready(self) -> bool:
        """The artifact exists, is complete, and was made from exactly these inputs."""
        if not self.path.exists():
            return False
        stored = self.manifest()
        return (stored is not None and stored.get("format") == FORMAT and stored.get("key") == self.key
                and canonical(stored.get("inputs")) == canonical(self.inputs))

    def complete(self, **facts: Any) -> None:
        """Record the artifact as complete (its manifest, written last); ``facts``: counts and the like."""
        write_json(self.manifest_path, {"format": FORMAT, "key": self.key, "inputs": self.inputs, "facts": facts,
                                        "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def clear(self) -> None:
        """Remove the artifact and its manifest (manifest first: a half-removed artifact is never 'ready')."""
        self.manifest_path.unlink(missing_ok=True)
        if self.path.is_dir():
            shutil.rmtree(self.path)
        else:
            self.path.unlink(missing_ok=True)
