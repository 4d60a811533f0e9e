"""Stored-results format, comparison with significance, and the regression check (eval.schema, report.compare)."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
from conftest import write_table1_record

from eval.schema import load_results, main as schema_main
from eval.stats import NOT_DISTINGUISHABLE, holm, paired_tests, verdict, win_tie_loss
from kit.errors import InputError
from kit.paths import REPO
from report.compare import check, compare, main as compare_main

VERSIONS = {"torch": None, "transformers": None, "pyserini": None, "anserini": None, "java": None}


# ---- statistics, by hand -------------------------------------------------------------------------------------------

def test_paired_t_test_matches_the_closed_form():
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt(3)) = sqrt(12); with 2 degrees of freedom the t CDF is
    # 1/2 + t / (2 sqrt(t^2 + 2)), so the two-sided p-value is 1 - t / sqrt(t^2 + 2) = 1 - sqrt(12/14) = 0.0741799...
    res = paired_tests([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert res["t"] == pytest.approx(math.sqrt(12))
    assert res["p_t"] == pytest.approx(1 - math.sqrt(12 / 14))
    # Wilcoxon signed-rank, exact: all 3 differences positive, W+ = 6 is the largest of 2^3 equally likely sign patterns,
    # so p = 2 * 1/8
    assert res["p_wilcoxon"] == pytest.approx(0.25)


def test_paired_tests_on_identical_and_swapped_sides():
    assert paired_tests([0.5, 0.2], [0.5, 0.2]) == {"t": 0.0, "p_t": 1.0, "p_wilcoxon": 1.0}
    a, b = [0.9, 0.1, 0.7, 0.4], [0.3, 0.2, 0.5, 0.4]
    fwd, back = paired_tests(a, b), paired_tests(b, a)
    assert fwd["t"] == pytest.approx(-back["t"]) and fwd["p_t"] == pytest.approx(back["p_t"])
    assert win_tie_loss(a, b) == (2, 1, 1)
    with pytest.raises(ValueError):
        paired_tests([1.0], [0.0])


def test_holm_matches_the_step_down_by_hand():
    # sorted 0.01 < 0.02 < 0.04 < 0.30 (m = 4): 4·0.01 = 0.04, 3·0.02 = 0.06, 2·0.04 = 0.08, 1·0.30 = 0.30, each
    # at least the previous one (monotone), capped at 1; returned in the input order
    assert holm([0.04, 0.30, 0.01, 0.02]) == pytest.approx([0.08, 0.30, 0.04, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


@pytest.mark.parametrize("sign, delta, p, expected", [
    (1, 0.02, 0.01, "reproduced"), (1, -0.02, 0.01, "opposite"), (1, 0.02, 0.2, NOT_DISTINGUISHABLE),
    (-1, -5.0, 0.049, "reproduced"), (-1, -5.0, 0.05, NOT_DISTINGUISHABLE),
    (0, 0.01, 0.5, NOT_DISTINGUISHABLE), (0, -0.3, 0.001, "differs (significantly lower)")])
def test_a_direction_is_reproduced_only_when_significant_its_way(sign, delta, p, expected):
    assert verdict(sign, delta, p) == expected


# ---- fixtures: stored results in the schema ------------------------------------------------------------------------

QUERIES = ["1", "2", "3", "4", "5"]
STORED = {"bm25": [0.5, 0.0, 1.0, 0.25, 0.75], "dense": [0.6, 0.1, 0.9, 0.25, 0.8]}


def _stored(tmp_path, recipe_tolerance: float = 0.002, expected_shift: float = 0.0):
    """A results folder as make reproduce-table1 writes it (the study runner's table, Markdown and writer):
    table1.{json,csv,md} + per-query file + its recipe, whose expected scores are the stored ones +
    ``expected_shift``."""
    return write_table1_record(tmp_path, STORED, expected_shift=expected_shift, tolerance=recipe_tolerance)


def _hand_written(tmp_path, values: dict[str, float]) -> str:
    doc = {"format": "kit-results/1", "command": "my own system", "commit": None, "date": "2026-11-22", "machine": None,
           "versions": VERSIONS,
           "rows": [{"dataset": "toy", "system": "mine", "metrics": {"nDCG@10": sum(values.values()) / len(values)},
                     "per_query": {"nDCG@10": values}}]}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc, indent=2))
    return str(path)


# ---- schema ---------------------------------------------------------------------------------------------------------

def test_schema_check_accepts_a_hand_written_file(tmp_path, capsys):
    path = _hand_written(tmp_path, {"1": 1.0, "2": 0.0, "3": 1.0, "4": 0.5, "5": 0.5})
    assert schema_main(["check", path]) == 0
    assert "ok:" in capsys.readouterr().out


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.pop("versions"), "'versions' is a required property"),
    (lambda d: d["rows"][0]["metrics"].update({"nDCG@10": "high"}), "rows[0].metrics.nDCG@10"),
    (lambda d: d["rows"][0]["metrics"].update({"nDCG@1O": 0.3}), "unknown measure 'nDCG@1O'"),
    (lambda d: d.update({"format": "kit-results/0"}), "field format"),
    (lambda d: d["rows"][0]["metrics"].update({"nDCG@10": float("nan")}), "NaN is not a finite number"),
    (lambda d: d["rows"][0]["per_query"]["nDCG@10"].update({"2": float("nan")}), "NaN is not a finite number"),
    (lambda d: d["rows"][0]["per_query"]["nDCG@10"].update({"3": float("inf")}), "Infinity is not a finite number"),
])
def test_schema_check_names_the_bad_field(tmp_path, capsys, edit, expected):
    path = _hand_written(tmp_path, {"1": 1.0, "2": 0.0})
    doc = json.loads(open(path).read())
    edit(doc)
    open(path, "w").write(json.dumps(doc))
    assert schema_main(["check", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path in err and expected in err and "fix:" in err


def test_validate_document_refuses_non_finite_numbers_built_in_python(tmp_path):
    """A document assembled in Python (not parsed from a file) is checked too: NaN anywhere is a named field."""
    from eval.schema import validate_document

    doc = json.loads(open(_hand_written(tmp_path, {"1": 1.0, "2": 0.0})).read())
    doc["rows"][0]["per_query"]["nDCG@10"]["2"] = float("nan")
    with pytest.raises(InputError, match=r"field rows\[0\].per_query.nDCG@10.2: not a finite number"):
        validate_document(doc, "mine.json")


def test_per_query_csv_errors_name_the_line(tmp_path):
    bad = tmp_path / "pq.csv"
    bad.write_text("dataset,system,query_id,measure,value\ntoy,a,1,nDCG@10,0.5\ntoy,a,2,nDCG@10,abc\n")
    with pytest.raises(InputError, match=r"pq.csv:3: value 'abc' is not a number"):
        load_results(bad)
    bad.write_text("dataset,system,query_id,measure,value\ntoy,a,1,nDCG@10,0.5\ntoy,a,1,nDCG@10,0.7\n")
    with pytest.raises(InputError, match=r"pq.csv:3: .*repeats line 2"):
        load_results(bad)


def test_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{\n  "format": "kit-results/1",\n  "rows": [,]\n}\n')
    with pytest.raises(InputError, match=r"x.json:3: malformed JSON"):
        load_results(path)


# ---- compare --------------------------------------------------------------------------------------------------------

def test_compare_hand_written_metrics_prints_deltas_and_p_values(tmp_path, capsys):
    stored = _stored(tmp_path)
    mine = _hand_written(tmp_path, dict(zip(QUERIES, [1.0, 0.0, 1.0, 0.5, 0.5])))
    assert compare_main(["--metrics", mine, "--against", str(stored), "--out", str(tmp_path / "cmp.csv")]) == 0
    out = capsys.readouterr().out
    assert "t-test" in out and "Wilcoxon" in out
    table = pd.read_csv(tmp_path / "cmp.csv").set_index("baseline")
    # by hand: mine - bm25 = [0.5, 0, 0, 0.25, -0.25] -> mean 0.1, wins 2, ties 2, losses 1
    assert table.at["bm25", "delta"] == pytest.approx(0.1)
    assert (table.at["bm25", "wins"], table.at["bm25", "ties"], table.at["bm25", "losses"]) == (2, 2, 1)
    assert table.at["bm25", "p_t"] == pytest.approx(paired_tests([0.5, 0, 0, 0.25, -0.25], [0] * 5)["p_t"])
    assert "| toy | mine | bm25 | nDCG@10 | 5 | 0.6000 | 0.5000 | +0.1000 |" in out
    # one family of two comparisons (against bm25 and dense), Holm-corrected together
    assert table["p_holm"].tolist() == pytest.approx(holm(table["p_t"].tolist()))
    assert "Holm" in out and "2 comparisons" in out


def test_within_compares_a_stored_files_systems_with_its_first(tmp_path, capsys):
    stored = _stored(tmp_path)
    assert compare_main(["--within", str(stored), "--out", str(tmp_path / "w.csv")]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "w.csv")
    # dense - bm25 = [0.1, 0.1, -0.1, 0, 0.05]: mean 0.03, 3 wins, 1 tie, 1 loss; one comparison, so p_holm = p_t
    assert table[["system", "baseline"]].values.tolist() == [["dense", "bm25"]]
    assert table.at[0, "delta"] == pytest.approx(0.03)
    assert (table.at[0, "wins"], table.at[0, "ties"], table.at[0, "losses"]) == (3, 1, 1)
    assert table.at[0, "p_holm"] == pytest.approx(table.at[0, "p_t"])
    assert "| toy | dense | bm25 | nDCG@10 | 5 |" in out
    assert compare_main(["--within", str(stored), "--baseline", "nope"]) == 2
    assert "--baseline 'nope' is not a system of this file" in capsys.readouterr().err


def test_compare_refuses_different_queries_in_one_line(tmp_path, capsys):
    stored = _stored(tmp_path)
    mine = _hand_written(tmp_path, {"1": 1.0, "2": 0.0, "3": 1.0, "4": 0.5, "99": 0.5})
    assert compare_main(["--metrics", mine, "--against", str(stored)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "do not cover the same queries (1 only new, 1 only stored; e.g. '99' only in" in err


def test_compare_refuses_a_new_side_covering_a_subset_of_the_stored_queries(tmp_path, capsys):
    """Guards ``_same_queries``: only a ``--run`` with ``--missing restrict`` compares on fewer queries than stored; a
    file of 4 of the 5 stored queries (no query of its own) is refused, not compared on the 4."""
    stored = _stored(tmp_path)
    mine = _hand_written(tmp_path, {"1": 1.0, "2": 0.0, "3": 1.0, "4": 0.5})
    assert compare_main(["--metrics", mine, "--against", str(stored)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "do not cover the same queries (0 only new, 1 only stored; e.g. '5' only in" in err


def test_compare_refuses_an_unknown_dataset(tmp_path):
    stored = load_results(_stored(tmp_path))
    other = load_results(_hand_written(tmp_path, {"1": 1.0, "2": 0.5}))
    other.rows[0]["dataset"] = "nfcorpus"
    other.per_query["dataset"] = "nfcorpus"
    with pytest.raises(InputError, match="dataset 'nfcorpus' is not in the stored results .*stored: toy"):
        compare(other, stored)


def test_a_run_on_a_folder_compares_with_a_record_naming_the_folder_by_its_path(tmp_path):
    """A run's dataset is keyed by its folder's name (``toy``), a Table 1 record by the path it was run with
    (``--datasets /x/toy``): the comparison takes them as one dataset and names it as the record does."""
    folder = tmp_path / "toy"
    folder.mkdir()
    stored = load_results(_stored(tmp_path))
    for r in stored.rows:
        r["dataset"] = str(folder)
    stored.per_query["dataset"] = str(folder)
    mine = load_results(_hand_written(tmp_path, dict(zip(QUERIES, [1.0, 0.0, 1.0, 0.5, 0.5]))))
    table = compare(mine, stored)
    assert set(table["dataset"]) == {str(folder)} and table.set_index("baseline").at["bm25", "delta"] == pytest.approx(0.1)


# ---- regression check -----------------------------------------------------------------------------------------------

def test_check_passes_then_fails_on_an_edited_number(tmp_path, capsys):
    stored = _stored(tmp_path)
    assert compare_main(["--check", "--against", str(stored)]) == 0
    table = pd.read_csv(tmp_path / "table1.csv")
    table.loc[1, "toy nDCG@10"] = 0.6  # stored dense 0.53 -> 0.6: beyond the recipe's 0.002 and the per-query mean
    table.to_csv(tmp_path / "table1.csv", index=False)
    capsys.readouterr()
    assert compare_main(["--check", "--against", str(stored)]) == 1
    err = capsys.readouterr().err
    assert f"FAIL {tmp_path / 'table1.csv'}:3: differs from its rendering from table1.json and its per-query values" in err
    assert "stored 'table1,dense,dense,,0.6," in err and "rendered 'table1,dense,dense,,0.53," in err


def test_check_names_a_drift_in_the_json(tmp_path):
    stored = _stored(tmp_path)
    doc = json.loads(stored.read_text())
    doc["rows"][0]["metrics"]["nDCG@10"] += 0.01
    stored.write_text(json.dumps(doc))
    failures = check([stored])
    assert any("rows[0].metrics.nDCG@10: toy bm25 nDCG@10 = 0.51, but its per-query values average 0.5" in f
               and "its expectation is 0.5 ± 0.002" in f for f in failures), failures
    assert any("differs from the record its runner wrote (sha256.record)" in f for f in failures), failures


@pytest.mark.parametrize("shift, code", [(0.0015, 0), (-0.0015, 0), (0.0025, 1), (-0.0025, 1)])
def test_check_fails_just_outside_the_recipe_tolerance(tmp_path, shift, code):
    """Stored numbers 1.5 or 2.5 thousandths from the recipe's expectation, tolerance 0.002: only the latter fail
    (a check with a looser tolerance than the recipe's would let them through)."""
    stored = _stored(tmp_path, recipe_tolerance=0.002, expected_shift=shift)
    assert compare_main(["--check", "--against", str(stored)]) == code


def _brute_force_wilcoxon(diffs: list[float]) -> float:
    """Exact two-sided Wilcoxon signed-rank p-value by enumerating every sign pattern: zero differences dropped
    (Wilcoxon's original treatment), ranks of the non-zero |d| (all distinct here)."""
    import itertools

    nonzero = [d for d in diffs if d != 0]
    ranks = {abs(d): r for r, d in enumerate(sorted(nonzero, key=abs), start=1)}
    observed = sum(ranks[abs(d)] for d in nonzero if d > 0)
    n = len(nonzero)
    total = n * (n + 1) // 2
    extreme = min(observed, total - observed)
    count = sum(1 for signs in itertools.product((0, 1), repeat=n)
                if min(w := sum(r * s for r, s in zip(range(1, n + 1), signs)), total - w) <= extreme)
    return min(1.0, count / 2 ** n)


def test_wilcoxon_drops_zero_differences():
    """Three tied-at-zero queries among ten: the p-value is the exact one over the seven non-zero differences (zeros
    kept or split, as other zero treatments do, give another p-value)."""
    old = [0.5, 0.2, 0.4, 0.1, 0.3, 0.6, 0.25, 0.05, 0.35, 0.45]
    diffs = [0.0, 0.0, 0.1, -0.2, 0.3, 0.4, -0.05, 0.6, 0.7, 0.0]
    new = [o + d for o, d in zip(old, diffs)]
    exact = _brute_force_wilcoxon([n - o for n, o in zip(new, old)])
    assert paired_tests(new, old)["p_wilcoxon"] == pytest.approx(exact, abs=1e-12)
    from scipy import stats

    assert abs(stats.wilcoxon(new, old, zero_method="pratt").pvalue - exact) > 0.01  # the test can tell them apart


# ---- the repository's own stored results ----------------------------------------------------------------------------

def _repo_table():
    path = REPO / "results" / "table1.json"
    assert json.loads(path.read_text()).get("format") == "kit-results/1"
    return path


def test_repository_results_conform_and_pass_the_check(capsys):
    path = _repo_table()
    res = load_results(path)
    assert {"torch", "transformers", "pyserini", "anserini", "java"} <= set(res.meta["versions"])
    assert res.meta["study"] == "recipes/studies/table1.yaml" and res.meta["commit"]
    assert res.meta["command"].startswith("python -m eval.study table1")
    assert check([path]) == []


def test_the_check_covers_every_stored_table_the_li_lsr_table_and_the_figure_points(capsys):
    """make compare CHECK=1 re-verifies Tables 1-3, the Li-LSR table, the figure points, the regime and the teacher
    report: each is kit-results/1 with per-query values, a kind the check re-renders, and a recipe whose expectations
    it is checked against; every other JSON file is pinned by results/SHA256SUMS."""
    from report.rerender import KINDS
    from eval.results import read_sealed

    sealed = set(read_sealed())
    stored = {p.relative_to(REPO / "results").as_posix(): json.loads(p.read_text()).get("kind")
              for p in (REPO / "results").rglob("*.json") if p.relative_to(REPO / "results").as_posix() not in sealed}
    kinds = {"table1.json": "study", "table2.json": "study", "table3.json": "study", "lilsr.json": "study",
             "figures.json": "study", "regime.json": "study", "teachers.json": "study",
             "learning-curve.json": "study", "why-training-hurts.json": "study",
             "choose-recipe.json": "study", "architecture-gap.json": "study", "lilsr-anchor-dev.json": "study"}
    assert stored == kinds
    assert set(stored.values()) == set(KINDS)  # every kind the check knows has a stored record
    figures = load_results(REPO / "results" / "figures.json")
    assert figures.meta["study"] == "recipes/studies/figures.yaml" and figures.per_query is not None
    assert sum("expected" in r for r in figures.rows) == 26  # each point's expectation, from the study file
    lilsr = load_results(REPO / "results" / "lilsr.json")
    assert lilsr.meta["study"] == "recipes/studies/lilsr.yaml" and lilsr.per_query is not None
    assert set(map(tuple, lilsr.meta["seeds"].values())) == {(42, 43, 44)} and lilsr.meta["claims"]  # seeds, tests
    assert sum("expected" in r for r in lilsr.rows) == 15  # 5 conditions x 3 datasets, their seed means
    assert check([REPO / "results" / "lilsr.json"]) == []
    assert "lilsr.json: 306 numbers checked, 0 failures" in capsys.readouterr().out
    for table in ("table2.json", "table3.json"):  # every Table 2-3 condition at three seeds
        stored_table = load_results(REPO / "results" / table)
        assert stored_table.per_query is not None and stored_table.meta["claims"]
        assert stored_table.meta["seeds"] and all(s == [42, 43, 44] for s in stored_table.meta["seeds"].values())


def test_edited_repository_number_fails_the_check(tmp_path):
    src = _repo_table()
    (tmp_path / "per-query").mkdir()
    shutil.copy(src.parent / "per-query" / "table1.csv.gz", tmp_path / "per-query")
    shutil.copy(src, tmp_path / "table1.json")
    shutil.copy(src.with_suffix(".md"), tmp_path / "table1.md")
    table = pd.read_csv(src.with_suffix(".csv"))
    table.loc[0, "scifact nDCG@10"] += 0.01
    table.to_csv(tmp_path / "table1.csv", index=False)
    failures = check([tmp_path / "table1.json"], expected_from=REPO / "recipes" / "studies" / "table1.yaml")
    assert len(failures) == 1 and f"{tmp_path / 'table1.csv'}:2: differs from its rendering" in failures[0]
    edited = (tmp_path / "table1.csv").read_text().splitlines()[1]
    assert edited.startswith("table1,bm25-flat,BM25 (flat),,0.6889") and f"stored '{edited}'" in failures[0]


def test_run_file_errors_name_the_line(tmp_path):
    run = tmp_path / "x.trec"
    run.write_text("1 Q0 d1 1 2.5 t\n1 Q0 d2 2 high t\n")
    with pytest.raises(InputError, match=r"x.trec:2: score 'high' is not a number"):
        compare_main.__wrapped__(["--run", str(run), "--dataset", "scifact", "--against", str(_stored(tmp_path))])


def test_schema_md_example_is_a_valid_file():
    """The hand-written example in results/SCHEMA.md passes the validator (the documentation cannot drift)."""
    from eval.schema import validate_document

    text = (REPO / "results" / "SCHEMA.md").read_text()
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    validate_document(json.loads(example), "results/SCHEMA.md")


def _copy_record(stem: str, folder) -> "Path":
    """A stored record and its per-query file, copied as a rerun would write them under ``folder``."""
    record = json.loads((REPO / "results" / f"{stem}.json").read_text())
    (folder / "per-query").mkdir(parents=True)
    shutil.copy(REPO / "results" / record["per_query"], folder / record["per_query"])
    return folder / f"{stem}.json"


def _run_same(path, capsys) -> tuple[int, str]:
    rc = compare_main(["--same", str(path)])
    return rc, capsys.readouterr().out


def test_same_says_whether_a_rerun_holds_the_stored_numbers_bit_for_bit(tmp_path, capsys):
    """``--same``: another date, commit, machine and model folder is the same record; one per-query value off in its
    last digit, a row mean or a claim's p-value is not, and each is named."""
    path = _copy_record("architecture-gap", tmp_path / "rerun")
    record = json.loads((REPO / "results" / "architecture-gap.json").read_text())
    moved = {**record, "date": "2030-01-01T00:00:00+00:00", "commit": "0" * 40, "total_seconds": 1.0,
             "models": {k: "/elsewhere/model" for k in record["models"]}, "machine": {**record["machine"], "cpu": "x"}}
    path.write_text(json.dumps(moved))
    rc, out = _run_same(path, capsys)
    assert rc == 0 and "bit for bit: 22 rows" in out and "2 claims" in out, out

    pq = path.parent / record["per_query"]
    frame = pd.read_csv(pq, dtype={"query_id": str})
    value = frame.loc[0, "value"]
    frame.loc[0, "value"] = math.nextafter(value, math.inf)
    frame.to_csv(pq, index=False)
    rc, out = _run_same(path, capsys)
    first = frame.loc[0]
    assert rc == 1 and f"per-query {first['dataset']}/{first['system']}/{first['query_id']}/{first['measure']}" in out
    assert "differs from" in out and "in 1 numbers" in out, out

    shutil.copy(REPO / "results" / record["per_query"], pq)
    edited = json.loads(json.dumps(moved))
    edited["rows"][0]["metrics"]["nDCG@10"] += 1e-12
    edited["claims"][0]["p"] *= 1.0000001
    path.write_text(json.dumps(edited))
    rc, out = _run_same(path, capsys)
    row = edited["rows"][0]
    assert rc == 1 and f"row {row['dataset']}/{row['system']} metrics.nDCG@10" in out and "claim 1 (" in out, out
