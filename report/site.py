"""A static reproduction report: every stored table and figure beside the paper, with the command behind each number.

    python -m report.site                          # work/report/index.html
    python -m report.site --screenshot             # ... and a headless-Chromium screenshot, work/report/report.png
    python -m report.site --readme-screenshot      # ... and replace docs/report.png, the tracked image of the docs

In the spirit of Pyserini's two-click reproduction matrices: Table 1 of "Exploring ℓ0 Sparsification for Inference-free
Sparse Retrievers" (SIGIR 2025) with the measured SciFact rows beside the paper's SciFact cells, then every other stored
study (Tables 2-3, Figures 1-3, Li-LSR, the teachers, the regime) rendered from its ``kit-results/1`` record by
:func:`report.html.study_table` (mean ± sd over seeds, expectation and check, BM25 of the same dataset beside; the
paper's 13-dataset averages only as an annotation), and the benchmark records of ``results/bench``. Each section names
the command that regenerates it; whatever is not produced yet is named at the top with the command that produces it.
Everything is written under ``work/report/`` (git-ignored). Pure Python and HTML (one inline script marks each figure's decoded width for
the browser test); the figures are linked relative to the page, not copied.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import pandas as pd

from eval.claims import COLUMNS as CLAIM_COLUMNS, effect, p_text, versus_label
from eval.paper import DATASET_LABELS, SUMMARY_ROWS, SYSTEMS, load_errata, load_paper_table
from eval.schema import FORMAT, load_results
from eval.stats import ALPHA, SEED_TESTS
from kit.argtypes import ArgumentParser
from kit.errors import InputError, cli
from kit.io import atomic_write
from kit.paths import REPO, work_dir
from report.docs import BENCHMARKS
from report.html import (IMAGE_PROBE, STYLE, code, delta, esc, num, provenance as _provenance,
                              study_table, table)

RESULTS = REPO / "results"
TABLE1_COMMAND = "make reproduce-table1"
ABLATION_COMMAND = "make ablation"
FIGURES_COMMAND = "make figures"
STUDIES = {"lilsr.json": "make lilsr", "teachers.json": "make teachers", "regime.json": "make regime"}
"""The stored studies other than Tables 1-3, with the command that produces each."""
STUDY_TITLES = {"lilsr": "Li-LSR: learned query weights vs BoW × IDF",
                "teachers": "The teacher ceiling: teachers, their fusions and the ℓ0 student",
                "regime": "A FLOPS-dominated regime (λ_d 1)", "figures": "Figures 1–3: the points"}
ANCHORS = {"figures": "figure-points"}
"""A study's anchor where its name is a section of its own (the figures' PNGs)."""
README_SCREENSHOT = REPO / "docs" / "report.png"
"""The tracked screenshot docs/stored-results.md shows; replaced only with ``--readme-screenshot``."""
OWN_SECTIONS = {"table1.json", "table2.json", "table3.json"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")

def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc.msg})", exc.lineno, fix="regenerate the file") from None


def _is_record(path: Path) -> bool:
    """Whether ``path`` is a ``kit-results/1`` record (the schema and other JSON files are not)."""
    return path.parent.name != "schema" and _read_json(path).get("format") == FORMAT


# ---- sections --------------------------------------------------------------------------------------------------------

class Report:
    """Collects the sections and the names of what is missing."""

    def __init__(self, results: Path, out_dir: Path):
        self.results, self.out_dir = results, out_dir
        self.missing: list[tuple[str, str]] = []
        self.sections: list[str] = []

    def rel(self, path: Path) -> str:
        """``path`` relative to the page (figures are linked, not copied)."""
        import os

        return Path(os.path.relpath(path, self.out_dir)).as_posix()

    # -- Table 1
    def table1(self) -> None:
        paper = load_paper_table(1).set_index("dataset")
        errata = {(e["dataset"], e["column"]): e["corrected"] for e in load_errata().to_dict("records")}
        csv, meta_path = self.results / "table1.csv", self.results / "table1.json"
        out = ["<h2 id='table1'>Table 1: nDCG@10 on BEIR, measured beside the paper</h2>"]
        measured: dict[tuple[str, str], tuple[float, str]] = {}
        if csv.is_file() and meta_path.is_file():
            results = load_results(meta_path)
            df = pd.read_csv(csv)
            for r in df.to_dict("records"):  # the study's layout: one row per system, "<dataset> <measure>" columns
                col = r.get("paper column") if isinstance(r.get("paper column"), str) else ""
                for ds in results.meta["datasets"]:
                    if col and pd.notna(r.get(f"{ds} nDCG@10")):
                        measured[(ds, col)] = (float(r[f"{ds} nDCG@10"]), r["label"])
            out.append(f'<p class="note">Regenerate: {code(TABLE1_COMMAND)} (the study recipes/studies/table1.yaml). '
                       f'Check: each row\'s expected scores within its tolerance '
                       f'({code("python -m report.compare --check")} re-verifies every stored number against its per-query '
                       f'file and the study file). Compare a new system with these rows: '
                       f'{code("python -m report.compare --run RUN --dataset scifact")}.</p>')
            out += [study_table(results), _provenance(results.meta)]
        else:
            self.missing.append(("results/table1.csv", TABLE1_COMMAND))
        # the paper's grid, with measured cells filled in beside the printed value
        headers = ["dataset", *(esc(SYSTEMS[c]["name"]) for c in paper.columns)]
        grid = []
        for ds, row in paper.iterrows():
            cells = [esc(DATASET_LABELS.get(ds, ds))]
            for col, value in row.items():
                fixed = errata.get((ds, col))
                if (ds, col) in measured:
                    mine, label = measured[(ds, col)]
                    ref = value if fixed is None else fixed
                    cells.append(f'<td class="measured" title="{esc(label)}: {esc(TABLE1_COMMAND)}">{100 * mine:.1f} vs '
                                 f'{ref:.1f} {delta(100 * mine - ref, 1)}</td>')
                elif fixed is not None:
                    cells.append(f'<td title="printed {value:.1f}; erratum (results/paper/table1-errata.csv)">'
                                 f'<s>{value:.1f}</s> {fixed:.1f}</td>')
                else:
                    cells.append(f"{value:.2f}" if ds in SUMMARY_ROWS else f"{value:.1f}")
            grid.append(cells)
        out.append("<h3>The paper's Table 1 (nDCG@10 ×100)</h3>")
        out.append('<p class="note">Shaded: measured by the kit (a different, much smaller model: a reference point, not a '
                   "target) vs the paper's cell, Δ in points. Hover for the system and the command. Struck out: a cell "
                   "the paper prints wrongly, with its correction (Contriever's column is shifted by one row from "
                   "DBPedia-entity down; sources in results/paper/table1-errata.csv).</p>")
        out.append(table(headers, grid))
        self.sections.append("\n".join(out))

    # -- Tables 2 and 3
    def ablation_table(self, n: int) -> None:
        titles = {2: "Table 2: ablation in comparable FLOPS", 3: "Table 3: variants of the ℓ0 activation"}
        out = [f"<h2 id='table{n}'>{titles[n]}</h2>"]
        paper = load_paper_table(n)
        path = self.results / f"table{n}.json"
        metrics = ("nDCG@10", "FLOPS", "Doc_Len")
        if path.is_file():
            results = load_results(path)
            notes = {r["system"]: {f"paper {m}": float(r[m]) for m in metrics} for r in paper.to_dict("records")}
            out.append(f'<p class="note">Regenerate: {code(results.meta.get("command", ABLATION_COMMAND))}. The '
                       "paper's columns (greyed, right) are its averages over 13 BEIR datasets for BERT-base models "
                       "trained on MS MARCO: a reference for the direction of each effect, not a value to subtract.</p>")
            out.append(study_table(results, notes, [f"paper {m}" for m in metrics]))
            if results.meta.get("caveat"):
                out.append(f'<p class="note">{esc(results.meta["caveat"])}</p>')
            out.append(self.claims(path, n))
            out.append(_provenance(results.meta))
        else:
            self.missing.append((f"results/table{n}.json", ABLATION_COMMAND))
            out.append(f'<p class="missing">Not measured yet: run {code(ABLATION_COMMAND)}. The paper\'s values:</p>')
            out.append(table(["system", *metrics], ([esc(r["label"]), *(num(r[m], 2) for m in metrics)]
                                                    for r in paper.to_dict("records"))))
        self.sections.append("\n".join(out))

    def claims(self, path: Path, n: int) -> str:
        """The verdicts of a stored table's comparisons (``claims`` in its record, re-derived by ``compare --check``)."""
        stored = _read_json(path).get("claims") if path.is_file() else None
        if not stored:
            return ""
        claims = pd.DataFrame(stored, columns=CLAIM_COLUMNS)
        rows = [[esc(r["label"]), esc(r["measure"]), esc(r["dataset"]), esc(versus_label(r)),
                 delta(r["paper_delta"], 2), esc(effect(r)), esc(f"{r['seeds'] or '–'} v {r['seeds_versus'] or '–'}"),
                 esc(p_text(r["p_holm"])), esc(r["verdict"])]
                for r in claims.to_dict("records")]
        return table(["row", "measure", "dataset", "versus", "paper Δ", "kit Δ [95% CI]", "seeds", "p (Holm)",
                      "verdict"], rows) + (
            f"<p class='note'>{esc(SEED_TESTS)}; Holm-corrected per family; a direction is reproduced only when "
            f"significant at α = {ALPHA}, a difference is none only when equivalent (TOST), otherwise inconclusive."
            "</p>")

    # -- Figures 1-3
    def figures(self) -> None:
        captions = {1: "Figure 1: nDCG@10 vs FLOPS, varying λ_d", 2: "Figure 2: Doc_Len vs λ_d",
                    3: "Figure 3: nDCG@10 vs Doc_Len, varying the threshold t"}
        folder = self.results / "figures"  # the PNGs of the figures study, beside its record results/figures.json
        meta = _read_json(self.results / "figures.json") if (self.results / "figures.json").is_file() else {}
        command = meta.get("command", FIGURES_COMMAND)
        out = ["<h2 id='figures'>Figures 1–3</h2>"]
        for n, caption in captions.items():
            png = folder / f"figure{n}.png"
            if png.is_file():
                out.append(f'<figure><img src="{esc(self.rel(png))}" alt="{esc(caption)}">'
                           f"<figcaption>{esc(caption)}<br>{code(command)}</figcaption></figure>")
            else:
                self.missing.append((f"results/figures/figure{n}.png", FIGURES_COMMAND))
                out.append(f'<p class="missing">{esc(caption)}: not produced yet ({code(FIGURES_COMMAND)}).</p>')
        if meta:
            out.append(_provenance(meta))
        self.sections.append("\n".join(out))

    # -- the other studies, each from its record
    def studies(self) -> None:
        for path in sorted(self.results.rglob("*.json")):
            if path.parent.name == "bench" or path.name in OWN_SECTIONS or not _is_record(path):
                continue
            results = load_results(path)
            study = results.meta.get("study") if results.meta.get("kind") == "study" else None
            name = Path(study).stem if study else results.meta.get("kind") or path.stem
            title, anchor = STUDY_TITLES.get(name, name), esc(ANCHORS.get(name, name))
            self.sections.append("\n".join([
                f"<h2 id='{anchor}'>{esc(title)} <small><code>{esc(path.relative_to(self.results).as_posix())}</code>"
                "</small></h2>", f'<p class="note">Regenerate: {code(results.meta.get("command", "?"))}</p>',
                study_table(results), _provenance(results.meta)]))
        for name, command in STUDIES.items():
            if not (self.results / name).is_file():
                self.missing.append((f"results/{name}", command))

    # -- benchmarks
    def benchmarks(self) -> None:
        out = ["<h2 id='bench'>Benchmarks</h2>", f'<p class="note">All: {code("make bench")}. Each measured in one run on '
               "the machine named; the targets are the kit's own.</p>"]
        for name in BENCHMARKS:
            path = self.results / "bench" / f"{name}.json"
            if not path.is_file():
                self.missing.append((f"results/bench/{name}.json", f"python -m bench.{name}"))
                continue
            rec = _read_json(path)
            rows = rec["rows"]
            cols = rec.get("columns") or list(dict.fromkeys(k for r in rows for k in r))
            cols = sorted(cols, key=lambda c: not any(isinstance(r.get(c), str) for r in rows))
            fmt = [[esc(r.get(c, "")) if isinstance(r.get(c), str) else num(r.get(c), 3) for c in cols] for r in rows]
            labels = sum(any(isinstance(r.get(c), str) for r in rows) for c in cols)
            out.append(f"<h3>{esc(name)} — {code(f'python -m bench.{name}')}, {esc(rec['date'][:10])}, "
                       f"commit <code>{esc((rec.get('commit') or '?')[:8])}</code></h3>")
            out.append(table([esc(c) for c in cols], fmt, left=labels))
            for t in rec.get("targets", []):
                out.append(f'<p class="note">Target: {esc(t["target"])} — measured {esc(t["measured"])}: '
                           f'<span class="{"ok" if t["met"] else "fail"}">{"met" if t["met"] else "missed"}</span></p>')
        self.sections.append("\n".join(out))

    def render(self, command: str) -> str:
        missing = ""
        if self.missing:
            items = "".join(f"<li><code>{esc(p)}</code> — {code(c) if c.startswith(('make', 'python')) else esc(c)}</li>"
                            for p, c in self.missing)
            missing = f'<div class="missing" id="missing"><b>Not produced yet</b><ul>{items}</ul></div>'
        nav = " · ".join(f'<a href="#{a}">{t}</a>' for a, t in (
            ("table1", "Table 1"), ("table2", "Table 2"), ("table3", "Table 3"), ("figures", "Figures"),
            ("lilsr", "Li-LSR"), ("teachers", "Teachers"), ("regime", "Regime"), ("bench", "Benchmarks")))
        return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                "<title>l0-sparse-kit: reproduction report</title>"
                f"<style>{STYLE}</style></head><body>\n"
                "<h1>Reproducing “Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers” (SIGIR 2025)</h1>\n"
                f'<p class="note">Generated by {code(command)} from <code>results/</code>. Every row names the command that '
                f"regenerates it; the stored files follow <code>results/SCHEMA.md</code> (kit-results/1). {nav}</p>\n"
                + missing + "\n" + "\n".join(self.sections) + "\n" + IMAGE_PROBE + "\n</body></html>\n")


def build_report(results: str | Path = RESULTS, out_dir: str | Path | None = None,
                 command: str = "python -m report.site") -> tuple[Path, list[tuple[str, str]]]:
    """Write ``<out_dir>/index.html`` (default ``work/report``: a page generated from ``results/``, not stored there);
    returns its path and the missing items."""
    results = Path(results)
    out_dir = Path(out_dir) if out_dir is not None else work_dir() / "report"
    report = Report(results, out_dir)
    report.table1()
    report.ablation_table(2)
    report.ablation_table(3)
    report.figures()
    report.studies()
    report.benchmarks()
    path = out_dir / "index.html"
    with atomic_write(path) as fh:
        fh.write(report.render(command))
    return path, report.missing


# ---- headless Chromium -----------------------------------------------------------------------------------------------

def find_browser() -> str | None:
    """Path of a Chromium-family browser (Debian's ``chromium``, installed by ``make setup``), or None."""
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    return None


def headless(url: str, *, screenshot: str | Path | None = None, dump_dom: bool = False,
             window: tuple[int, int] = (1400, 1800), timeout: float = 120) -> str:
    """Run headless Chromium on ``url``: ``--dump-dom`` returns the DOM after the load handlers ran; ``screenshot`` a PNG."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no chromium found; run `make setup` (installs Debian's chromium via apt-get as root)")
    with tempfile.TemporaryDirectory(prefix="kit-chromium-") as profile:
        args = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
                "--virtual-time-budget=5000"]
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            args.append(f"--screenshot={Path(screenshot).resolve()}")
        if dump_dom:
            args.append("--dump-dom")
        proc = subprocess.run([*args, url], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


@cli
def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m report.site", description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(RESULTS), help="results folder to render (default: results/)")
    p.add_argument("--out", default=None, help="output folder (default: work/report)")
    p.add_argument("--screenshot", nargs="?", const="", default=None, metavar="PNG",
                   help="also write a PNG screenshot of the page (needs chromium; default: <out>/report.png)")
    p.add_argument("--readme-screenshot", action="store_true",
                   help=f"also replace {README_SCREENSHOT.relative_to(REPO)}, the tracked image docs/stored-results.md shows")
    p.add_argument("--window", default="1600x1200", help="screenshot size WIDTHxHEIGHT")
    args = p.parse_args(argv)
    try:
        width, height = (int(v) for v in args.window.lower().split("x"))
    except ValueError:
        raise InputError(None, f"--window {args.window!r}: expected WIDTHxHEIGHT, e.g. 1400x1800") from None
    command = " ".join(["python -m report.site", *(argv if argv is not None else sys.argv[1:])])
    path, missing = build_report(args.results, args.out, command)
    print(f"wrote {path}")
    for item, how in missing:
        print(f"missing: {item} ({how})")
    targets = ([Path(args.screenshot) if args.screenshot else path.parent / "report.png"]
               if args.screenshot is not None else []) + ([README_SCREENSHOT] if args.readme_screenshot else [])
    if targets:
        with tempfile.TemporaryDirectory() as tmp:  # atomic: the PNG appears complete or not at all
            shot = Path(tmp) / "shot.png"
            headless(path.resolve().as_uri(), screenshot=shot, window=(width, height))
            for target in targets:
                with atomic_write(target, mode="wb", encoding=None) as fh:
                    fh.write(shot.read_bytes())
                print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
