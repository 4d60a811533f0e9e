"""kit.io: atomic outputs that never lose the old file, stale temporaries, locks, strict UTF-8, one-line faults."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kit.errors import InputError
from kit.io import atomic_dir, atomic_write, clean_stale, exclusive, lock_path, open_text, temp_name, write_json
from kit.paths import REPO


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_partial_one(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old,complete\n")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_write(target) as fh:
            fh.write("new,half")
            fh.flush()
            assert target.read_text() == "old,complete\n"  # nothing reaches the final name before the end
            raise RuntimeError("midway")
    assert target.read_text() == "old,complete\n" and _hidden(tmp_path) == []


def test_a_full_disk_while_writing_is_one_line_and_keeps_the_old_file(tmp_path):
    """A real write failure (the file-size limit, as on a full disk) in a child process: InputError naming the file,
    the old file intact, no temporary left."""
    target = tmp_path / "results.json"
    target.write_text('{"old": true}\n')
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
            f"from kit.io import write_json\nfrom kit.errors import InputError\n"
            f"try:\n    write_json({str(target)!r}, {{'rows': ['x' * 100] * 100}})\n"
            f"except InputError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.strip() == f"error: {target}: file too large for this file system or the process's " \
                                  "file-size limit (fix: raise the limit (ulimit -f) or write to another disk)"
    assert target.read_text() == '{"old": true}\n' and _hidden(tmp_path) == []


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / "old").write_text("x")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "new").write_text("y")
            raise RuntimeError
    assert sorted(p.name for p in target.iterdir()) == ["old"] and _hidden(tmp_path) == []
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new"] and _hidden(tmp_path) == []


def test_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"nDCG@10": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_stale_temporaries_of_dead_processes_only(tmp_path):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    mine = temp_name(tmp_path / "run.trec")
    theirs = tmp_path / mine.name.replace(f"-{os.getpid()}.", f"-{dead}.")
    mine.write_text("in use")
    theirs.write_text("left behind by a killed run")
    (tmp_path / ".unrelated.tmp").write_text("not ours to judge")
    assert clean_stale(tmp_path) == [theirs]
    assert mine.exists() and not theirs.exists() and (tmp_path / ".unrelated.tmp").exists()


def test_a_held_lock_stops_a_second_process_and_is_removed_after(tmp_path):
    out = tmp_path / "vectors"
    code = (f"from kit.io import exclusive\nfrom kit.errors import InputError\n"
            f"try:\n    with exclusive({str(out)!r}, 'encoding'):\n        print('acquired')\n"
            f"except InputError as e:\n    print(e)\n")

    def second() -> str:
        return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.strip()

    with exclusive(out, "encoding"):
        with exclusive(out, "encoding"):  # nested in the same process: fine
            pass
        message = second()
        assert message.startswith(f"error: {out}: is being written by another encoding: pid {os.getpid()}")
    assert not lock_path(out).exists()
    assert second() == "acquired"


def test_non_utf8_input_names_file_and_line(tmp_path):
    path = tmp_path / "queries.tsv"
    path.write_bytes(b"1\tok\n2\tstill ok\n3\tcaf\xe9\n")
    with pytest.raises(InputError, match=r"queries.tsv:3: not UTF-8 text \(byte 0xe9\)"):
        list(open_text(path))
    with pytest.raises(InputError, match=r"queries.tsv:3: not UTF-8"):
        open_text(path).read()


def test_read_only_folder_is_one_line(tmp_path):
    """os_fault turns the operating system's refusal into the kit's one-line error naming the path."""
    from kit.errors import os_fault

    err = os_fault(tmp_path / "x", PermissionError(13, "Permission denied"))
    assert str(err) == f"error: {tmp_path / 'x'}: permission denied (fix: make it writable, or choose another folder " \
                       "(--out or KIT_WORK))"
