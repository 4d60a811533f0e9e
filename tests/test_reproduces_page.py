"""docs/reproduces.md: one line per stored comparison whose source is the paper, read from the records."""

from __future__ import annotations

import json

from kit.paths import REPO
from report.docs import render


def test_every_paper_claim_of_the_records_is_one_line_with_its_ci_and_verdict(tmp_path):
    template = tmp_path / "page.md"
    template.write_text("# Claims\n\n{{paper-claims}}\n")
    lines = [line for line in render(template).splitlines() if line.startswith("| ")][1:]  # header dropped
    claims = [(path.stem, c) for path in sorted((REPO / "results").glob("*.json"))
              for c in json.loads(path.read_text()).get("claims") or [] if c["source"].startswith("paper")]
    assert len(claims) > 0 and len(lines) == len(claims)
    for line, (stem, c) in zip(lines, claims):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[0] == c["source"] and cells[1] == stem and cells[-1] == c["verdict"]
        assert c["ci_low"] is None or "[" in cells[5]
