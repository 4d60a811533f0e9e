"""The static report (report.site): built from a results folder, opened in headless Chromium, tables and figures rendered."""

from __future__ import annotations

import re
import shutil

import os
import subprocess
import sys

import pytest

from kit.paths import REPO
from report.site import build_report, find_browser, headless


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The repository's Table 1 and Table 2 (their records and per-query files) and benchmarks, and three figures
    made up for the test."""
    from PIL import Image

    root = tmp_path_factory.mktemp("results")
    for name in ("table1.csv", "table1.json", "table2.json"):
        shutil.copy(REPO / "results" / name, root / name)
    (root / "per-query").mkdir()
    for name in ("table1.csv.gz", "table2.csv.gz"):
        shutil.copy(REPO / "results" / "per-query" / name, root / "per-query" / name)
    shutil.copytree(REPO / "results" / "bench", root / "bench")
    (root / "figures").mkdir()
    for n in (1, 2, 3):
        img = Image.new("RGB", (120, 80), "white")
        img.paste((30 * n, 90, 200), (10, 10, 110, 70))
        img.save(root / "figures" / f"figure{n}.png")
    return root


def test_report_names_what_is_missing(tmp_path):
    (tmp_path / "results").mkdir()
    path, missing = build_report(tmp_path / "results", tmp_path / "report")
    names = [m for m, _ in missing]
    assert "results/table1.csv" in names and "results/table3.json" in names and "results/figures/figure2.png" in names
    page = path.read_text()
    assert "Not produced yet" in page and "make reproduce-table1" in page and "make ablation" in page
    # the paper's tables are shown even when nothing is measured
    assert "50.43" in page and "327.23" in page


def test_report_has_measured_vs_paper_cells_and_commands(results):
    path, missing = build_report(results, results / "report")
    page = path.read_text()
    assert path == results / "report" / "index.html"
    assert [m for m, _ in missing if "table" in m or "figure" in m] == ["results/table3.json"]
    # Table 1: SciFact BM25 measured 0.6789 beside the paper's 69.0 (Δ -1.1 points), with its command
    assert re.search(r"67\.9 vs 69\.0 <span class=\"neg\">-1\.1</span>", page)
    # the command above the table, and in the title of each measured cell of the paper's grid (5 columns: the two
    # l0-mask-l0-act rows share one)
    assert "Regenerate: <code>make reproduce-table1</code>" in page and page.count(': make reproduce-table1"') == 5
    # Table 2: the stored seed mean ± sd over its three seeds, the paper's cell beside it as an annotation only
    table2 = page[page.index("id='table2'"):page.index("id='figures'")]
    assert "0.6448 ± 0.0062 <small>(3)</small>" in table2 and '<td class="ann">49.52</td>' in table2
    assert page.count('<img src="../figures/figure') == 3
    assert "python -m bench.e2e" in page


@pytest.mark.skipif(find_browser() is None, reason="chromium not installed (make setup installs it as root via apt-get)")
def test_report_renders_in_headless_chromium(results, tmp_path):
    from PIL import Image

    path, _ = build_report(results, results / "report")
    shot = tmp_path / "report.png"
    dom = headless(path.resolve().as_uri(), dump_dom=True, screenshot=shot, window=(1600, 1200))
    assert len(re.findall(r"<table", dom)) >= 8  # Table 1, paper grid, Table 2, paper Table 3, 5 benchmarks
    widths = re.findall(r'data-natural-width="(\d+)"', dom)
    assert widths == ["120", "120", "120"]  # every figure decoded by the browser
    assert 'data-images="3/3"' in dom
    img = Image.open(shot).convert("L")
    assert img.size == (1600, 1200)
    lo, hi = img.getextrema()
    assert hi - lo > 100 and len(img.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20  # text and tables, not blank


def test_report_shows_the_tested_verdicts_of_the_stored_ablation(tmp_path):
    page = build_report(REPO / "results", tmp_path)[0].read_text()
    table2 = page[page.index("id='table2'"):page.index("id='table3'")]
    assert "p (Holm)" in table2 and "verdict" in table2
    assert "inconclusive" in table2 and "reproduced" in table2


def _section(page: str, anchor: str) -> str:
    start = page.index(f"id='{anchor}'")
    end = page.find("<h2 id=", start + 1)
    return page[start:end if end > 0 else len(page)]


def test_studies_are_tables_of_their_records_not_csv_dumps(tmp_path):
    """Li-LSR, the teachers and the regime: one line per condition and dataset, nDCG@10 as mean ± sd over seeds, the
    expectation and its check, read from the stored records (never the CSV's raw columns)."""
    from eval.schema import load_results

    page = build_report(REPO / "results", tmp_path)[0].read_text()
    for anchor, record in (("lilsr", "lilsr.json"), ("teachers", "teachers.json"), ("regime", "regime.json")):
        section = _section(page, anchor)
        heads = re.findall(r"<th[^>]*>([^<]*)</th>", section[:section.index("</thead>")])
        assert heads[:3] == ["condition", "dataset", "nDCG@10"] and {"expected", "check"} <= set(heads), (anchor, heads)
        assert not {"check_detail", "nDCG@10_std", "seeds", "part"} & set(heads), (anchor, heads)
        rows = [r for r in load_results(REPO / "results" / record).rows if "@seed" not in r["system"]]
        assert section.count("<tr") - 1 == len(rows), anchor  # one line per condition and dataset
        assert "FAIL" not in section and section.count(">OK<") == sum("expected" in r for r in rows)
    assert "0.5676 ± 0.0040 <small>(3)</small>" in _section(page, "regime")  # the regime baseline over seeds 42-44
    assert "0.6071 ± 0.0058 <small>(3)</small>" in _section(page, "lilsr")


def test_table2_shows_bm25_beside_and_the_paper_only_as_annotation(tmp_path):
    """No measured − paper difference (a SciFact mini model against a 13-dataset average): the paper's cells are greyed
    annotations; BM25 of each dataset is a row of the table and each condition's difference from it a column."""
    section = _section(build_report(REPO / "results", tmp_path)[0].read_text(), "table2")
    table2 = section[:section.index("</table>")]
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", table2)
    assert "Δ" not in heads and heads[-3:] == ["paper nDCG@10", "paper FLOPS", "paper Doc_Len"]
    assert "nDCG@10 Δ BM25 (points)" in heads
    assert table2.count('<tr class="ref">') == 3  # BM25 on SciFact, Vaswani and CACM
    assert re.search(r"0\.6448 ± 0\.0062.*?<span class=\"neg\">-3\.41</span>", table2)  # baseline vs BM25 0.6789
    assert '<td class="ann">49.52</td>' in table2 and "+15" not in table2  # 64.48 − 49.52 is not shown


def test_report_cli_writes_under_work_only(tmp_path):
    """``python -m report.site --screenshot`` writes the page and its screenshot under $KIT_WORK/report; the tracked
    docs/report.png changes only with --readme-screenshot."""
    if find_browser() is None:
        pytest.skip("chromium not installed")
    tracked = REPO / "docs" / "report.png"
    before = tracked.stat().st_mtime_ns if tracked.exists() else None
    proc = subprocess.run([sys.executable, "-m", "report.site", "--screenshot", "--window", "800x600"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), "KIT_WORK": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wrote = [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("wrote ")]
    assert wrote == [str(tmp_path / "report" / "index.html"), str(tmp_path / "report" / "report.png")]
    assert (tracked.stat().st_mtime_ns if tracked.exists() else None) == before


def test_make_report_writes_no_tracked_file():
    """The Makefile's report recipe names no tracked output (its screenshot goes to work/report/)."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^report:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "report.site" in recipe and "docs/" not in recipe and "results/" not in recipe, recipe
