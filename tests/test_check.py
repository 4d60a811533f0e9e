"""The regression check of everything stored (``python -m report.compare --check``, ``make compare CHECK=1``).

Every number of every file under ``results/`` and of the generated ``docs/`` pages is re-derived from the records and
their per-query values, checked against an expectation, or pinned by the digest written with it (:mod:`report.check`).
The faults run the real command line on a copy of the repository (its code, recipes, results and pages), so that the
copy's own ``REPO`` is what is checked. Each of them passed the check of 3e81cfe (exit 0, or a skip); the class-8
guards at the end pin behaviour that was right there and fail when the one-line bug named in their docstring is put
back in.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from report.docs import page_of
from conftest import write_table1_record
from test_faults import Result

from kit.paths import REPO

pytestmark = pytest.mark.integration

CODE = ("eval", "kit", "train", "encode", "index", "bench")
SMALL = ("table1.json", "table1.csv", "table1.md", "per-query/table1.csv.gz", "SCHEMA.md", "schema", "paper", "bench")
"""What the small copy keeps of results/: Table 1 and the files SHA256SUMS pins (its pages: table1, performance)."""


def _copy(dst: Path, keep: tuple[str, ...] | None = None, pages: tuple[str, ...] | None = None) -> Path:
    """The repository's code, recipes, results (``keep``: only these) and generated pages (``pages``: only these)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in CODE:
        shutil.copytree(REPO / name, dst / name, ignore=ignore)
    shutil.copytree(REPO / "recipes", dst / "recipes")
    if keep is None:
        shutil.copytree(REPO / "results", dst / "results")
    else:
        for name in keep:
            src, out = REPO / "results" / name, dst / "results" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy)(src, out)
        sealed = REPO / "results" / "SHA256SUMS"
        if sealed.is_file():  # the list of what is kept
            lines = [line for line in sealed.read_text().splitlines() if (dst / "results" / line.split("  ", 1)[1]).exists()]
            (dst / "results" / "SHA256SUMS").write_text("".join(line + "\n" for line in lines))
    (dst / "docs" / "templates").mkdir(parents=True)
    for template in sorted((REPO / "docs" / "templates").glob("*.md")):
        if pages is None or template.stem in pages:
            shutil.copy(template, dst / "docs" / "templates" / template.name)
            shutil.copy(page_of(template), page_of(template, dst))
    return dst


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return _copy(tmp_path_factory.mktemp("small"), SMALL, ("table1", "performance"))


@pytest.fixture
def repo(small, tmp_path) -> Path:
    """A fresh copy of the small repository for one test to edit."""
    dst = tmp_path / "repo"
    shutil.copytree(small, dst)
    return dst


def check(root: Path, *args) -> Result:
    """``python -m report.compare --check ARGS`` run by the copy at ``root`` on itself."""
    proc = subprocess.run([sys.executable, "-m", "report.compare", "--check", *map(str, args)], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=600)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def fails(result: Result, *needles: str) -> None:
    """Exit 1, no traceback, and a FAIL line on stderr holding every needle."""
    assert result.rc == 1, (result.rc, result.out[-2000:], result.err[-3000:])
    assert "Traceback" not in result.err, result.err[-3000:]
    lines = [line for line in result.err.splitlines() if line.startswith("FAIL ")]
    assert any(all(n in line for n in needles) for line in lines), (needles, result.err[-3000:])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def _row_metric(root: Path, system: str, measure: str, value) -> None:
    """Table 1's ``system`` row with ``metrics[measure] = value`` (None: removed), written as the kit writes JSON."""
    path = root / "results" / "table1.json"
    doc = json.loads(path.read_text())
    row = next(r for r in doc["rows"] if r["system"] == system)
    if value is None:
        row["metrics"].pop(measure)
    else:
        row["metrics"][measure] = value
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


# ---- faults of the stored files -----------------------------------------------------------------------------------------

def test_the_stored_results_pass(small):
    result = check(small)
    assert result.rc == 0, result.err[-3000:]
    assert "every stored number re-derived or within its expectation" in result.out


@pytest.mark.parametrize("system, measure, value, needle", [
    ("splade-tiny.bow-idf.relu", "FLOPS", 0.01, "FLOPS = 0.01, but its expectation is 2 ± 0.004"),
    ("splade-tiny.siamese", "Doc_Len", 12.3, "Doc_Len = 12.3, but its expectation is 283.53"),
    ("bm25-flat", "FLOPS", 2.0, "bm25-flat FLOPS = 2, but no expectation for it"),
])
def test_an_edited_or_added_flops_or_doc_len_fails(repo, system, measure, value, needle):
    """FLOPS 2.00 -> 0.01, Doc_Len 283.5 -> 12.3, FLOPS on the BM25 row: each passed (no expectation was checked)."""
    _row_metric(repo, system, measure, value)
    fails(check(repo, "--against", repo / "results" / "table1.json"), "table1.json", needle)


def test_a_number_edited_in_a_markdown_table_fails(repo):
    edit(repo / "results" / "table1.md", "| 62.39 | -5.50 |", "| 62.93 | -5.50 |")
    fails(check(repo), "table1.md:17: differs from its rendering", "62.93")


def test_a_number_edited_in_the_display_table_of_table_2_fails(tmp_path):
    """Tables 2-3's CSVs (a study's table: every cell re-derived from the record) are checked, not skipped."""
    root = _copy(tmp_path, ("table2.json", "table2.csv", "table2.md", "per-query/table2.csv.gz", "schema", "paper"), ())
    edit(root / "results" / "table2.csv", "0.644822,0.006232", "0.648422,0.006232")
    fails(check(root, "--against", root / "results" / "table2.json"), "table2.csv:2: differs from its rendering")


def test_an_edited_expected_copy_fails(repo):
    path = repo / "results" / "table1.json"
    doc = json.loads(path.read_text())
    doc["rows"][0]["expected"]["nDCG@10"] = 0.7
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    fails(check(repo, "--against", path), "rows[0].expected: scifact bm25-flat: the copy", "is not the expectation")


def test_a_table_replaced_by_garbage_fails(repo):
    (repo / "results" / "table1.json").write_text("not json at all\n")
    fails(check(repo), "table1.json:1: not a kit-results/1 record")


def test_a_table_without_its_format_key_fails(repo):
    edit(repo / "results" / "table1.json", '  "format": "kit-results/1",\n', "")
    fails(check(repo), "table1.json: not a kit-results/1 record (no format field)")


def test_a_study_field_naming_a_missing_file_fails(repo):
    edit(repo / "results" / "table1.json", '"study": "recipes/studies/table1.yaml"',
         '"study": "recipes/studies/table1-old.yaml"')
    fails(check(repo), "table1.json: field study: recipes/studies/table1-old.yaml does not exist")


def test_a_recipe_field_naming_a_missing_file_fails(tmp_path):
    """A record measured with ``--recipe`` names that recipe (its systems and expectations): it must exist."""
    path = _toy_record(tmp_path)
    edit(path, f'"recipe": "{tmp_path / "toy.yaml"}"', f'"recipe": "{tmp_path / "toy-old.yaml"}"')
    fails(check(REPO, "--against", path), f"table1.json: field recipe: {tmp_path / 'toy-old.yaml'} does not exist")


def test_an_unknown_stored_file_fails(repo):
    (repo / "results" / "notes.csv").write_text("system,nDCG@10\nmine,0.9\n")
    fails(check(repo), "notes.csv: a stored file the check does not know")


def test_an_edited_generated_page_fails(repo):
    edit(repo / "docs" / "table1.md", "| 67.89 | +0.00 | 92.53 |", "| 67.98 | +0.00 | 92.53 |")
    fails(check(repo), "docs/table1.md:", "differs from its rendering", "67.98")


def test_an_edited_benchmark_record_fails(repo):
    path = repo / "results" / "bench" / "encode_docs.json"
    path.write_text(re.sub(r'"ratio": (\d+)', lambda m: f'"ratio": {int(m.group(1)) + 1}', path.read_text(), count=1))
    fails(check(repo), "bench/encode_docs.json: differs from the file SHA256SUMS pins")


def test_edited_per_query_values_fail(repo):
    """The last digit of one query's nDCG@10 (its mean moves by 1e-10, below any rounding): nothing pinned the
    per-query values themselves."""
    path = repo / "results" / "per-query" / "table1.csv.gz"
    text = gzip.decompress(path.read_bytes()).decode()
    value = re.search(r",nDCG@10,(0\.\d{8,})\n", text)
    edited = value.group(1)[:-1] + str((int(value.group(1)[-1]) + 1) % 10)
    path.write_bytes(gzip.compress((text[:value.start(1)] + edited + text[value.end(1):]).encode(), mtime=0))
    fails(check(repo), "per-query/table1.csv.gz: its per-query values differ from those table1.json was written with")


def test_the_report_is_written_outside_results(repo, tmp_path, monkeypatch):
    """make report rewrote results/report/index.html, a stored file nothing checks; it now writes work/report/."""
    from report.site import build_report

    monkeypatch.setenv("KIT_WORK", str(tmp_path / "work"))
    path, _ = build_report(repo / "results")
    assert path == tmp_path / "work" / "report" / "index.html" and path.is_file()
    assert not (repo / "results" / "report").exists() and not (REPO / "results" / "report").exists()


# ---- every number of every stored file -----------------------------------------------------------------------------

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _read(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text(encoding="utf-8")


def _write(path: Path, text: str) -> None:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), compresslevel=1, mtime=0))
    else:
        path.write_text(text, encoding="utf-8")


def _edits(path: Path, k: int, rng: random.Random) -> list[tuple[str, str]]:
    """``k`` edits of ``path``'s text, each one digit of one number (JSON: of a number value) changed."""
    text = _read(path)
    if path.suffix == ".json":
        spans = [m.span(1) for m in _JSON_TOKEN.finditer(text) if m.group(1)]
    else:
        spans = [m.span() for m in _NUMBER.finditer(text)]
    out = []
    for start, end in rng.sample(spans, min(k, len(spans))):
        digits = [i for i in range(start, end) if text[i].isdigit()]
        i = rng.choice(digits)
        new = str((int(text[i]) + rng.randint(1, 9)) % 10)
        out.append((text[i - 12:i] + text[i] + text[i + 1:i + 12], text[:i] + new + text[i + 1:]))
    return out


def _sampled(root: Path) -> list[Path]:
    """Every stored JSON, CSV and Markdown file (per-query files too) and every generated page of ``root``."""
    files = [p for p in sorted((root / "results").rglob("*")) if p.name.endswith((".json", ".csv", ".md", ".csv.gz"))]
    return files + [page_of(t, root) for t in sorted((root / "docs" / "templates").glob("*.md"))]


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """A copy of the whole repository, its stored results and pages checked clean once (in-process)."""
    from report.check import check as check_tree

    root = _copy(tmp_path_factory.mktemp("full"))
    assert check_tree(root=root, quiet=True) == []
    return root


def test_one_edited_digit_anywhere_fails_the_check(full):
    """Two numbers of every stored file and generated page, chosen at random (fixed seed), each with one digit
    changed: the check (in-process, on the copy) fails naming that file. On 3e81cfe most passed: Markdown, the
    display tables, FLOPS and Doc_Len, the claims, provenance and the benchmark records were never compared."""
    from report.check import check as check_tree

    rng = random.Random(29)
    missed = []
    files = _sampled(full)
    assert len(files) >= 40
    for path in files:
        original = path.read_bytes()
        for where, text in _edits(path, 2, rng):
            _write(path, text)
            try:
                found = check_tree(root=full, quiet=True)
            finally:
                path.write_bytes(original)
            if not any(str(path) in line for line in found):
                missed.append(f"{path.relative_to(full)} near {where!r}: {found[:2]}")
    assert not missed, "\n".join(missed)


@pytest.mark.parametrize("name", ["table1.json", "table1.csv", "per-query/table1.csv.gz"])
def test_one_edited_digit_fails_the_real_command(repo, name):
    """Samples of the test above through ``python -m report.compare --check`` (a copy holding Table 1)."""
    path = repo / "results" / name
    ((_, text),) = _edits(path, 1, random.Random(name))
    _write(path, text)
    fails(check(repo), str(path))


# ---- class 8: one-line bugs the check must not let through ---------------------------------------------------------

def _toy_record(folder: Path, shift: float = 0.0, drop: str | None = None) -> Path:
    """A Table 1 record written by the kit's own writer (sealed): two systems on five queries; ``shift`` moves
    bm25's stored nDCG@10 away from its per-query mean, ``drop`` leaves that query out of dense's values."""
    values = {"bm25": [0.5, 0.0, 1.0, 0.25, 0.76323], "dense": [0.6, 0.1, 0.9, 0.25, 0.8]}  # bm25: 0.502646
    return write_table1_record(folder, values, shift=shift, drop=drop)


@pytest.mark.parametrize("shift, failed", [(0.0, False), (0.0001, True), (0.0003, True), (-0.0004, True)])
def test_a_stored_number_beyond_rounding_of_its_per_query_mean_fails(tmp_path, shift, failed):
    """Guards ROUNDING (half a unit of the 4th decimal): bm25's mean 0.502646 is stored as 0.5026 (4.6e-5 off,
    passes); 0.5027 (5.4e-5 off), 0.5029 and 0.5022 fail, though all are within the recipe's default tolerance
    0.0005. Grown x10 the allowance would pass them; halved, it would fail 0.5026."""
    from report.check import check

    found = check([_toy_record(tmp_path, shift)], quiet=True)
    assert bool(found) == failed, found
    if failed:
        assert "rows[0].metrics.nDCG@10: toy bm25 nDCG@10" in found[0] and "per-query values average" in found[0]


def test_a_system_missing_queries_of_its_dataset_fails(tmp_path):
    """A record whose dense row and table were computed on 4 of the 5 queries the other system has (consistently:
    the mean matches its values) passed; every system of a dataset must cover the same items."""
    from report.check import check

    found = check([_toy_record(tmp_path, drop="5")], quiet=True)
    assert any("toy nDCG@10: dense has values for 4 items and bm25 for 5" in line for line in found), found


def test_check_expected_fails_a_missing_or_non_finite_score():
    """Guards ``check_expected``: a score the run did not produce, or NaN, is a FAIL, never "OK"."""
    from eval.results import check_expected, within

    assert check_expected({"nDCG@10": 0.5}, 0.002, {"nDCG@10": 0.501}) == ("OK", "")
    for scores in ({}, {"nDCG@10": math.nan}, {"nDCG@10": math.inf}, {"nDCG@10": None}, {"R@100": 0.5}):
        assert check_expected({"nDCG@10": 0.5}, 0.002, scores)[0] == "FAIL", scores
    assert not within(math.nan, "FLOPS", 2.0, 0.002) and within(2.003, "FLOPS", 2.0, 0.002)
    assert not within(2.005, "FLOPS", 2.0, 0.002)


DEFAULTS = {"table recipe": 0.0005, "condition": 0.002,
            "study reference": 0.002}
"""The documented default tolerances (docs/stored-results.md, "Default tolerances")."""


def test_default_tolerances_are_the_documented_ones(tmp_path):
    """Guards the defaults: a recipe without ``tolerance`` is checked at the value the documentation states; a
    changed default would move every such check silently."""
    from eval.recipe import load_recipe
    from eval.results import check_expected
    from eval.study.spec import load_study
    from train.conditions import load_condition

    doc = (REPO / "docs" / "stored-results.md").read_text()
    for what, value in DEFAULTS.items():
        assert f"{what} {value:g}" in doc, what

    def without_tolerance(src: Path) -> Path:
        out = tmp_path / src.name
        out.write_text("".join(line for line in src.read_text().splitlines(keepends=True)
                               if not line.strip().startswith("tolerance:")))
        return out

    (tmp_path / "conditions").mkdir()
    condition = REPO / "recipes" / "conditions" / "baseline.yaml"
    got = {"table recipe": {s.tolerance for s in load_recipe(without_tolerance(REPO / "recipes" / "table1.yaml")).systems},
           "condition": {load_condition(shutil.copy(without_tolerance(condition), tmp_path / "conditions")).tolerance},
           "study reference": {r.tolerance for r in load_study(without_tolerance(REPO / "recipes" / "studies" /
                                                                                 "teachers.yaml")).references}}
    assert got == {what: {value} for what, value in DEFAULTS.items()}
    assert check_expected({"nDCG@10": 0.5}, DEFAULTS["table recipe"], {"nDCG@10": 0.5004})[0] == "OK"
    assert check_expected({"nDCG@10": 0.5}, DEFAULTS["table recipe"], {"nDCG@10": 0.5006})[0] == "FAIL"
