"""Unit tests of the content fingerprints (:mod:`kit.fingerprint`) and of cached artifacts verified by them
(:mod:`kit.manifest`, the trained-model cache of :mod:`train.cache`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_training_file

import kit.manifest
from kit.errors import InputError
from kit.fingerprint import stream_sha256
from kit.manifest import Artifact
from kit.paths import REPO


# ---- stream fingerprints ---------------------------------------------------------------------------------------------

def test_the_stream_fingerprint_delimits_fields():
    """Each field is length-prefixed: moving a character across a field boundary changes the digest (a document id
    ending where its text begins is another document)."""
    assert stream_sha256([("ab", "c")]) != stream_sha256([("a", "bc")])
    assert stream_sha256([("d1", "")]) != stream_sha256([("", "d1")])


def test_the_stream_fingerprint_delimits_records():
    """Each record ends with a separator: two one-field records are not one two-field record, and an empty record
    is not nothing."""
    assert stream_sha256([("a",), ("b",)]) != stream_sha256([("a", "b")])
    assert stream_sha256([()]) != stream_sha256([])


# ---- artifacts verified by content -----------------------------------------------------------------------------------

def file_artifact(tmp_path: Path, text: str = "q1 Q0 d1 1 2.5 run\n") -> Artifact:
    art = Artifact.named(tmp_path / "runs", "bm25", {"stage": "test"}, suffix=".trec")
    art.path.parent.mkdir(parents=True, exist_ok=True)
    art.path.write_text(text)
    art.complete()
    return art


def dir_artifact(tmp_path: Path) -> Artifact:
    art = Artifact.named(tmp_path / "indexes", "flat", {"stage": "test"}, is_dir=True)
    (art.path / "sub").mkdir(parents=True)
    (art.path / "a.bin").write_bytes(b"\x00" * 64)
    (art.path / "sub" / "b.bin").write_bytes(b"\x01" * 64)
    art.complete()
    return art


def test_a_completed_artifact_records_the_hash_of_each_file(tmp_path):
    art = dir_artifact(tmp_path)
    stored = art.manifest()
    assert stored["format"] == kit.manifest.FORMAT and sorted(stored["files"]) == ["a.bin", "sub/b.bin"]
    assert art.ready() and art.reusable()


def test_an_artifact_whose_file_was_deleted_is_not_ready(tmp_path, capsys):
    """The run file is gone, its manifest remains: not ready, and reusable() removes the orphan manifest."""
    art = file_artifact(tmp_path)
    assert art.ready()
    art.path.unlink()
    assert art.manifest() is not None
    assert not art.ready()
    assert not art.reusable() and not art.manifest_path.exists()


@pytest.mark.parametrize("change", ["edit", "delete", "add"])
def test_a_changed_file_of_a_folder_artifact_is_named(tmp_path, change, capsys):
    art = dir_artifact(tmp_path)
    if change == "edit":
        (art.path / "sub" / "b.bin").write_bytes(b"\x02" * 64)
    elif change == "delete":
        (art.path / "sub" / "b.bin").unlink()
    else:
        (art.path / "sub" / "c.bin").write_bytes(b"")
    name = "sub/c.bin" if change == "add" else "sub/b.bin"
    assert not art.ready() and art.stale() == f"changed since it was made ({name})"
    assert not art.reusable()
    assert not art.path.exists() and not art.manifest_path.exists()  # cleared for its producer
    err = capsys.readouterr().err.strip()
    assert err.startswith("note: ") and err.endswith(f"changed since it was made ({name}); recomputing")


def test_hidden_temporaries_and_locks_are_not_content(tmp_path):
    art = dir_artifact(tmp_path)
    (art.path / ".a.bin.lock").write_text("")
    assert art.ready()


def test_an_edit_keeping_size_and_time_is_caught_by_the_next_process(tmp_path):
    """Hashes are memoised per process only: a same-size edit whose modification time is set back is still caught
    by the next run (no cache of hashes keyed by size and time outlives a process)."""
    art = file_artifact(tmp_path, "q1 Q0 d1 1 2.5 run\n")
    probe = [sys.executable, "-c", "import sys; from pathlib import Path; from kit.manifest import Artifact; "
             f"sys.exit(0 if Artifact(Path({str(art.path)!r}), {art.inputs!r}).ready() else 3)"]
    assert subprocess.run(probe, cwd=REPO).returncode == 0
    stat = art.path.stat()
    art.path.write_text("q1 Q0 d2 1 2.5 run\n")
    os.utime(art.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert subprocess.run(probe, cwd=REPO).returncode == 3


def test_an_earlier_kits_manifests_are_recomputed_with_one_note(tmp_path, monkeypatch, capsys):
    """A manifest without content hashes (kit-manifest/1) cannot be verified: not ready, cleared for recomputation,
    and said once for all such artifacts."""
    monkeypatch.setattr(kit.manifest, "_said_unverified", False)
    arts = [file_artifact(tmp_path / "one"), dir_artifact(tmp_path / "two")]
    for art in arts:
        stored = art.manifest()
        del stored["files"]
        art.manifest_path.write_text(json.dumps({**stored, "format": "kit-manifest/1"}))
    assert not any(art.ready() for art in arts)
    assert not any(art.reusable() for art in arts)
    assert not any(art.path.exists() for art in arts)
    notes = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 1 and "recorded no content hash" in notes[0] and "recomputing" in notes[0]


def test_force_clears_a_ready_artifact(tmp_path):
    art = file_artifact(tmp_path)
    assert not art.reusable(force=True) and not art.path.exists() and not art.manifest_path.exists()


# ---- trained models --------------------------------------------------------------------------------------------------

@pytest.fixture
def trained(tmp_path, monkeypatch, scifact_dir):
    """``train_cached`` over a stand-in trainer that writes a small model folder (weights, config, checkpoints)."""
    import train.cache
    from train.recipe import TrainRecipe

    def fake_train(recipe, out, **options):
        (out / "checkpoints" / "checkpoint-1").mkdir(parents=True)
        (out / "checkpoints" / "checkpoint-1" / "optimizer.pt").write_bytes(b"o" * 32)
        (out / "model.safetensors").write_bytes(bytes(range(256)) * 4)
        (out / "config.json").write_text("{}")
        (out / "kit_model.json").write_text("{}")

    monkeypatch.setattr(train.cache, "train", fake_train)
    recipe = TrainRecipe(base_model="splade-tiny", data=write_training_file(tmp_path / "train.jsonl", scifact_dir),
                         variant="l0", lambda_d=0.01, threshold=150.0, warmup_T=1, max_steps=1, batch_size=2,
                         max_length=32, docs_per_query=2, save_steps=1, logging_steps=1)
    out = train.cache.train_cached("l0", recipe, tmp_path / "ablation")
    monkeypatch.setattr(train.cache, "train", lambda *a, **k: pytest.fail("trained again"))
    return recipe, out


def test_a_trained_model_is_reused_when_unchanged(trained, tmp_path):
    from train.cache import train_cached

    recipe, out = trained
    assert (out.parent / "model.manifest.json").is_file()
    (out / "checkpoints" / "checkpoint-1" / "optimizer.pt").write_bytes(b"")  # not part of the model
    assert train_cached("l0", recipe, tmp_path / "ablation") == out


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_changed_trained_model_stops_the_run_naming_the_file(trained, tmp_path, damage):
    """A trained model's weights truncated or deleted since it was trained: one error naming the file and how to
    train it again, never a silent reuse (before: any folder with kit_model.json was reused)."""
    from train.cache import train_cached

    recipe, out = trained
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100]) if damage == "truncate" else weights.unlink()
    with pytest.raises(InputError, match=r"changed since it was made \(model\.safetensors\).*fix: .*train it again"):
        train_cached("l0", recipe, tmp_path / "ablation")


def test_a_model_trained_before_hashes_were_recorded_is_recorded_once(trained, tmp_path, monkeypatch, capsys):
    import train.cache

    recipe, out = trained
    (out.parent / "model.manifest.json").unlink()
    monkeypatch.setattr(train.cache, "_said_unrecorded", False)
    capsys.readouterr()
    assert train.cache.train_cached("l0", recipe, tmp_path / "ablation") == out
    assert "recording them now" in capsys.readouterr().err
    assert (out.parent / "model.manifest.json").is_file()
    (out / "config.json").write_text('{"changed": 1}')
    with pytest.raises(InputError, match=r"\(config\.json\)"):
        train.cache.train_cached("l0", recipe, tmp_path / "ablation")
