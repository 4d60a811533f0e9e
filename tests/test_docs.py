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


def _blocks(text: str) -> list[str]:
    """Every Markdown table of ``text`` (consecutive lines starting with ``|``), as one string each."""
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks


def test_readme_ablation_and_lilsr_tables_match_results():
    """Tables 2-3 (make ablation) and the Li-LSR tables (make lilsr), when stored, appear in the README as stored."""
    readme = (REPO / "README.md").read_text()
    shown = 0
    for name in ("table2.md", "table3.md", "lilsr.md"):
        path = REPO / "results" / name
        if path.exists():
            for block in _blocks(path.read_text()):
                assert block in readme, f"README is missing the table of results/{name}; copy it from there"
                shown += 1
    assert shown in (0, 2, 4)
