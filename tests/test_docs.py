"""The README stays short and points at pages that exist; the pages that show results are what results/ says."""

import os
import re
import subprocess
import sys

import pytest

from kit.paths import REPO


def _table(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append(line)
    return block


def test_readme_is_short_and_every_link_resolves():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    targets = re.findall(r"\]\(([^)#]+)\)", readme)
    assert {"docs/table1.md", "docs/ablation.md", "docs/lilsr.md", "docs/stored-results.md",
            "docs/performance.md", "docs/released-models.md", "docs/training.md"} <= set(targets)
    for target in targets:
        assert (REPO / target).exists(), target
    for page in [*(REPO / "docs").glob("*.md"), *(REPO / "docs").glob("released/*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"


def test_readme_table1_matches_results():
    header = "| condition | seeds | scifact nDCG@10 |"
    readme = _table((REPO / "README.md").read_text(), header)
    stored = _table((REPO / "results" / "table1.md").read_text(), header)
    assert readme == stored


def test_generated_pages_are_current():
    """Every page with a template is exactly what its template and the stored results give (python -m report.docs)."""
    from report.docs import pages

    rendered = pages()
    assert {p.name for p in rendered} >= {"table1.md", "ablation.md", "lilsr.md", "performance.md"}
    for path, text in rendered.items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m report.docs"


def test_pages_show_every_stored_table():
    """Tables 1-3, the Li-LSR tables, the figure points and the benchmarks are each one link from the README."""
    from report.docs import include, render_bench

    docs = {p.name: p.read_text() for p in (REPO / "docs").glob("*.md")}
    for page, stored in (("table1.md", "results/table1.md"), ("ablation.md", "results/table2.md"),
                         ("ablation.md", "results/table3.md"), ("lilsr.md", "results/lilsr.md")):
        assert include(REPO / stored).strip() in docs[page], (page, stored)
    assert render_bench().strip() in docs["performance.md"]
    for n in (1, 2, 3):
        assert f"../results/figures/figure{n}.png" in docs["ablation.md"]


def test_the_check_notices_a_stale_page(tmp_path, monkeypatch):
    import report.docs as docs

    template = tmp_path / "templates" / "x.md"
    template.parent.mkdir()
    template.write_text("# X\n\n{{include results/table1.md}}\n")
    monkeypatch.setattr(docs, "TEMPLATES", template.parent)
    monkeypatch.setattr(docs, "DOCS", tmp_path)
    assert docs.main(["--check"]) == 1  # not written yet
    assert docs.main([]) == 0 and docs.main(["--check"]) == 0
    (tmp_path / "x.md").write_text("edited by hand\n")
    assert docs.main(["--check"]) == 1


def test_ablation_verdicts_are_generated_from_the_tests_not_written(tmp_path):
    """No hand-written verdict: the page's verdict lines are the stored study record's comparisons, and re-deriving the
    study from edited per-query values (``python -m eval.study table2 --replay``) changes the verdict."""
    import gzip
    import json
    import shutil

    import pandas as pd

    from eval.claims import summary

    page = (REPO / "docs" / "ablation.md").read_text()
    template = (REPO / "docs" / "templates" / "ablation.md").read_text()
    assert not re.search(r"\b(Agrees|Disagrees)\b", template)
    assert "{{include results/table2.md}}" in template and "{{include results/table3.md}}" in template
    assert "+ℓ0 mask** vs Baseline, nDCG@10 (paper: higher): SciFact" in page
    stored = json.loads((REPO / "results" / "table2.json").read_text())
    assert stored["claims"], "Table 2 is stored with the tests behind its verdicts"
    for line in summary(pd.DataFrame(stored["claims"])):
        assert line in page

    # each seed of the stored mask row lifted by 0.2 on every SciFact query: re-derived, its SciFact direction is
    # reproduced
    record = tmp_path / "table2.json"
    for name in ("table2.json", "table2.csv"):
        shutil.copy(REPO / "results" / name, tmp_path / name)
    (tmp_path / "per-query").mkdir()
    with gzip.open(REPO / "results" / "per-query" / "table2.csv.gz", "rt") as fh:
        lines = fh.read().splitlines()
    lifted = ("scifact,l0-mask,", "scifact,l0-mask@seed")  # the seed mean and each seed, nDCG@10 only
    edited = [line if not (line.startswith(lifted) and ",nDCG@10," in line) else
              ",".join([*line.split(",")[:-1], str(min(1.0, float(line.split(",")[-1]) + 0.2))]) for line in lines]
    with gzip.open(tmp_path / "per-query" / "table2.csv.gz", "wt") as fh:
        fh.write("\n".join(edited) + "\n")
    proc = subprocess.run([sys.executable, "-m", "eval.study", "table2", "--replay", str(record), "--out",
                           str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, env={**os.environ, "KIT_LOG": "0"})
    assert proc.returncode == 0, proc.stderr
    after = (tmp_path / "out" / "table2.md").read_text()
    mask = [line for line in after.splitlines() if line.startswith("- **+ℓ0 mask** vs Baseline, nDCG@10")][0]
    assert "SciFact +" in mask and "): reproduced;" in mask.split("Vaswani")[0]
    before = [line for line in page.splitlines() if line.startswith("- **+ℓ0 mask** vs Baseline, nDCG@10")][0]
    assert "): inconclusive;" in before.split("Vaswani")[0]

def test_machine_line_names_the_machine_kind_of_new_and_old_records():
    """Timings are only comparable within a machine kind (the CPU, its vector unit, whether the bf16 screen runs):
    new records name all of it; records stored before the CPU was recorded still render."""
    from eval.provenance import machine_line, provenance

    machine = provenance(command=["x"])["machine"]
    line = machine_line(machine)
    assert line.startswith(machine["cpu"]) and machine["cpu_capability"] in line and f"{machine['cpu_count']} CPUs" in line
    assert ("no bf16 matrix units" in line) != machine["bf16_matrix_units"]
    old = {"platform": "Linux", "processor": "x86_64", "python": "3.11.7", "torch_threads": 2, "accelerator": "cpu"}
    assert machine_line(old) == "x86_64, torch threads 2"
    assert machine_line(None) == "?, torch threads ?"


def test_every_kit_variable_the_code_reads_is_documented():
    """docs/environment.md lists every KIT_* environment variable the kit's code (or its Makefile) reads."""
    page = (REPO / "docs" / "environment.md").read_text()
    documented = set(re.findall(r"^\| `(KIT_[A-Z0-9_]+)` \|", page, re.M))
    sources = [p for folder in ("kit", "encode", "index", "train", "eval", "bench", "pipeline")
               for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".java", ".sh")]
    read = {name: path for path in [*sources, REPO / "Makefile"]
            for name in re.findall(r"\bKIT_[A-Z0-9_]+\b", path.read_text(encoding="utf-8"))}
    assert {"KIT_SHARED", "KIT_WORK", "KIT_JAVA_HEAP", "KIT_ANSERINI_SERVER"} <= set(read)
    missing = {name: str(path.relative_to(REPO)) for name, path in read.items() if name not in documented}
    assert not missing, f"read by the code, not in docs/environment.md: {missing}"
    assert not documented - set(read), f"documented, read nowhere: {documented - set(read)}"
    assert "docs/environment.md" in (REPO / "README.md").read_text()


def test_released_pages_one_per_dataset_generated_from_the_recipe(tmp_path):
    """docs/released/: one page per dataset of recipes/released.yaml with each model's command, the staging of its
    corpus and the ir-datasets counts to check an index against; a changed recipe changes the page."""
    import shutil

    import yaml

    from report.released_pages import facts, pages

    recipe = yaml.safe_load((REPO / "recipes" / "released.yaml").read_text())
    models = [s["doc"]["model"] for s in recipe["systems"] if s.get("doc")]
    rendered = {p.name: text for p, text in pages(REPO).items()}
    assert set(rendered) == {"README.md", *(f"{d}.md" for d in recipe["datasets"])} and len(recipe["datasets"]) == 13
    for d in recipe["datasets"]:
        page, f = rendered[f"{d}.md"], facts(d)
        assert (REPO / "docs" / "released" / f"{d}.md").read_text() == page
        for model in models:
            assert f"make reproduce-table1 DATASETS={d} MODEL={model} DEVICE=cuda" in page
        for heading in ("## Stage it for an offline cluster", "## Needs (estimated)", "## Index statistics to check"):
            assert heading in page
        assert f"| documents | {f['documents']:,} |" in page and f"| test queries | {f['queries']:,} |" in page
        assert (f["md5"] in page) != (d == "scifact")  # SciFact is read from $KIT_SHARED, the others downloaded
    assert facts("trec-covid")["documents"] == 171_332 and facts("fever")["documents"] == 5_416_568
    assert sum(facts(d)["documents"] for d in recipe["datasets"]) == 24_561_473  # as docs/released-models.md states

    (tmp_path / "recipes").mkdir()
    shutil.copytree(REPO / "results" / "paper", tmp_path / "results" / "paper")
    recipe["systems"][1]["expected"]["nfcorpus"]["nDCG@10"] = 0.1234
    (tmp_path / "recipes" / "released.yaml").write_text(yaml.safe_dump(recipe))
    changed = pages(tmp_path)[tmp_path / "docs" / "released" / "nfcorpus.md"]
    assert "| 0.1234 | ± 0.01 |" in changed and "| 0.1234 |" not in rendered["nfcorpus.md"]


_DOTTED = re.compile(r"(?<![\w/.\-])((?:kit|encode|index|train|pipeline|eval|bench)(?:\.[A-Za-z_]\w*)+)(?![\w/\-]|\.\w)")
_FILE_SUFFIXES = {"html", "py", "md", "json", "jsonl", "csv", "gz", "tsv", "yaml", "txt", "png", "trec", "log"}


def _resolves(name: str) -> bool:
    """Whether a dotted name is an importable module of the kit, or an attribute (at any depth) of one."""
    import importlib

    parts = name.split(".")
    if parts[-1] in _FILE_SUFFIXES:  # a file name such as index.html
        return True
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_dotted_names_in_docs_and_recipes_exist():
    """Every dotted kit name the README, docs/ and the recipes' comments mention (report.site.build_report,
    train.conditions.trained_model, ...) is a module or attribute that exists; a renamed one fails here."""
    files = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "recipes").rglob("*.yaml")]
    stale = [f"{path.relative_to(REPO)}:{n}: {name}" for path in files
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             for name in _DOTTED.findall(line if path.suffix == ".md" else line.partition("#")[2])
             if not _resolves(name)]
    assert not stale, "names that do not exist:\n" + "\n".join(stale)
    assert not _resolves("eval.ablation.trained_model") and _resolves("report.site.build_report")


def test_prose_numbers_are_read_from_the_stored_records(tmp_path):
    """``{{metric ...}}`` and ``{{claim ...}}`` inside a sentence print the stored value; a number the records do not
    hold is one line naming the template's line, never a guess."""
    import json

    from report.docs import render
    from kit.errors import InputError

    template = tmp_path / "page.md"
    template.write_text("BM25 reaches {{metric table1 bm25-flat scifact nDCG@10 .3f}} (×100: "
                        "{{metric table1 bm25-flat scifact nDCG@10 x100:.2f}}).\n"
                        "ℓ0 activation: {{claim table2 l0-act baseline nDCG@10 scifact}}; p "
                        "{{claim table2 l0-act baseline nDCG@10 scifact p_holm .2g}}.\n")
    page = render(template).splitlines()
    rows = json.loads((REPO / "results" / "table1.json").read_text())["rows"]
    bm25 = next(r for r in rows if r["system"] == "bm25-flat" and r["dataset"] == "scifact")["metrics"]["nDCG@10"]
    assert page[1] == f"BM25 reaches {bm25:.3f} (×100: {100 * bm25:.2f})."
    claim = next(c for c in json.loads((REPO / "results" / "table2.json").read_text())["claims"]
                 if (c["system"], c["versus"], c["measure"], c["dataset"]) == ("l0-act", "baseline", "nDCG@10", "scifact"))
    assert f"p_Holm {claim['p_holm']:.2g}: {claim['verdict']};" in page[2]
    assert page[2].startswith(f"ℓ0 activation: +{100 * claim['delta']:.2f} [")
    template.write_text("x\nBM25 at {{metric table1 bm25-flat scifact nDCG@11}}\n")
    with pytest.raises(InputError, match=r"page.md:2: .*no nDCG@11 of bm25-flat on scifact"):
        render(template)
