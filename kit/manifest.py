"""Cached artifacts keyed by their inputs, with a completion manifest written last that records their content.

An :class:`Artifact` is a file or folder under ``work/`` plus a *description* of everything it depends on (input
fingerprints from :mod:`kit.fingerprint`, recipe fields, precision). Its name carries the description's key, and
the manifest beside it (written only once the artifact is complete) stores the description in full and the SHA-256
of every file the artifact holds::

    work/scifact/vectors/splade-tiny.l0.len512.q100.3f9a0c12d4e5/            the artifact (a folder)
    work/scifact/vectors/splade-tiny.l0.len512.q100.3f9a0c12d4e5/kit-manifest.json
    work/scifact/runs/bm25-flat.91b0e2aa7c3d.trec                            the artifact (a file)
    work/scifact/runs/bm25-flat.91b0e2aa7c3d.trec.manifest.json

:meth:`Artifact.ready` is true only when the manifest exists, its description equals the current one and every file
still has the bytes it had when the artifact was completed (no file missing, none added): a cache hit is the same
inputs by construction *and* the same content as was made from them. An artifact whose writer was killed (no
manifest yet) is rebuilt; one edited, truncated or partly deleted since is recomputed (:meth:`Artifact.reusable`
says so on stderr, naming the file). Files are hashed once per process (:func:`kit.fingerprint.file_sha256`), so
every new run re-reads them.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.fingerprint import canonical, digest, directory_files, file_sha256, short
from kit.io import write_json

FORMAT = "kit-manifest/2"
#: The manifest of an earlier kit: the description without the files' hashes (never verified, so never reused).
UNVERIFIED_FORMATS = frozenset({"kit-manifest/1"})
DIR_MANIFEST = "kit-manifest.json"
_said_unverified = False


def content_hashes(path: Path, skip_dirs: frozenset[str] = frozenset()) -> dict[str, str]:
    """``{name: SHA-256}`` of what ``path`` holds: a file, or every regular file under a folder (names relative to
    it; hidden temporaries and locks, the folder's own manifest and ``skip_dirs`` left out)."""
    if path.is_dir():
        return {f.relative_to(path).as_posix(): file_sha256(f) for f in directory_files(path, ignored_dirs=skip_dirs)
                if f != path / DIR_MANIFEST}
    return {path.name: file_sha256(path)}


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it (``work/...``), else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Artifact:
    """A cached file or folder and the description of its inputs (JSON-able; see :func:`kit.fingerprint.canonical`).

    ``is_dir``: the manifest lives inside the folder. ``skip_dirs``: sub-folders that are not part of the content
    (a trained model's checkpoints).
    """

    path: Path
    inputs: dict[str, Any] = field(hash=False)
    is_dir: bool = False
    skip_dirs: frozenset[str] = field(default=frozenset(), hash=False)

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
        """The artifact exists, is complete, was made from exactly these inputs and holds what it held then."""
        return self.manifest() is not None and self.stale() is None

    def stale(self) -> str | None:
        """Why a completed artifact (its manifest is there) may not be reused, or None: its file is gone, it was made
        from other inputs, a file changed, appeared or disappeared since :meth:`complete` (named), or its manifest
        records no content (an earlier kit's; then ``"unverified"``). None too when there is no manifest."""
        stored = self.manifest()
        if stored is None:
            return None
        if not self.path.exists():
            return "deleted since it was made"
        if stored.get("key") != self.key or canonical(stored.get("inputs")) != canonical(self.inputs):
            return "made from other inputs"
        if stored.get("format") in UNVERIFIED_FORMATS:
            return "unverified"
        recorded = stored.get("files")
        if stored.get("format") != FORMAT or not isinstance(recorded, dict):
            return "its manifest is not a kit manifest"
        now = content_hashes(self.path, self.skip_dirs)
        changed = sorted(name for name in recorded.keys() | now.keys() if recorded.get(name) != now.get(name))
        return f"changed since it was made ({changed[0]})" if changed else None

    def reusable(self, force: bool = False) -> bool:
        """:meth:`ready` (never with ``force``); otherwise a completed artifact is removed so that its producer makes
        it anew, with one line on stderr saying why when it is not ``force``. A folder without a manifest (a killed
        writer's, or shards copied in for adoption) is left for its producer to resume or verify."""
        if force:
            self.clear()
            return False
        reason = self.stale()
        if reason is None:
            return self.manifest() is not None
        _note(self.path, reason)
        self.clear()
        return False

    def complete(self, **facts: Any) -> None:
        """Record the artifact as complete (its manifest, written last): the description, the SHA-256 of each of its
        files and ``facts`` (counts and the like)."""
        files = content_hashes(self.path, self.skip_dirs)
        write_json(self.manifest_path, {"format": FORMAT, "key": self.key, "inputs": self.inputs, "files": files,
                                        "facts": facts, "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def clear(self) -> None:
        """Remove the artifact and its manifest (manifest first: a half-removed artifact is never 'ready')."""
        self.manifest_path.unlink(missing_ok=True)
        if self.path.is_dir():
            shutil.rmtree(self.path)
        else:
            self.path.unlink(missing_ok=True)


def _note(path: Path, reason: str) -> None:
    """One line on stderr: why a cached artifact is recomputed (an earlier kit's artifacts: said once per run)."""
    global _said_unverified
    if reason == "unverified":
        if not _said_unverified:
            _said_unverified = True
            print(f"note: {shown(path)}: made by an earlier kit that recorded no content hash, so it cannot be "
                  "verified; recomputing it and every other such artifact", file=sys.stderr, flush=True)
        return
    print(f"note: {shown(path)}: {reason}; recomputing", file=sys.stderr, flush=True)
