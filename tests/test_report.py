"""The static report (eval.report): built from a results folder, opened in headless Chromium, tables and figures rendered."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from eval.report import build_report, find_browser, headless
from kit.paths import REPO


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The repository's Table 1 and benchmarks, plus a measured Table 2 and three figures made up for the test."""
    from PIL import Image

    root = tmp_path_factory.mktemp("results")
    for name in ("table1.csv", "table1.json"):
        shutil.copy(REPO / "results" / name, root / name)
    shutil.copytree(REPO / "results" / "bench", root / "bench")
    pd.DataFrame([{"system": "baseline", "label": "Baseline", "nDCG@10": 60.0, "FLOPS": 2.0, "Doc_Len": 300.0,
                   "paper_nDCG@10": 49.52, "paper_FLOPS": 2.39, "paper_Doc_Len": 327.23}]).to_csv(root / "table2.csv",
                                                                                                 index=False)
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
    assert "results/table1.csv" in names and "results/table3.csv" in names and "results/figures/figure2.png" in names
    page = path.read_text()
    assert "Not produced yet" in page and "make reproduce-table1" in page and "make ablation" in page
    # the paper's tables are shown even when nothing is measured
    assert "50.43" in page and "327.23" in page


def test_report_has_measured_vs_paper_cells_and_commands(results):
    path, missing = build_report(results, results / "report")
    page = path.read_text()
    assert path == results / "report" / "index.html"
    assert [m for m, _ in missing if "table" in m or "figure" in m] == ["results/table3.csv"]
    # Table 1: SciFact BM25 measured 0.6789 beside the paper's 69.0 (Δ -1.1 points), with its command
    assert re.search(r"67\.9 vs 69\.0 <span class=\"neg\">-1\.1</span>", page)
    assert page.count("<code>make reproduce-table1</code>") >= 4
    # Table 2: measured 60.00 vs the paper's 49.52 -> +10.48
    assert "+10.48" in page
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
    assert "not distinguishable at this scale" in table2 and "reproduced" in table2
