"""The README shows what the stored results say (regenerate with `make reproduce-table1`, then copy the table)."""

from kit.paths import REPO


def _table(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(header))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append(line)
    return block


def test_readme_table1_matches_results():
    header = "| dataset | system |"
    readme = _table((REPO / "README.md").read_text(), header)
    stored = _table((REPO / "results" / "table1.md").read_text(), header)
    assert readme == stored


def test_readme_performance_matches_bench_summary():
    from bench.summary import render

    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- bench:start -->\n", 1)[1].split("\n<!-- bench:end -->", 1)[0]
    assert block.strip() == render().strip()
