"""A static reproduction report: every stored table and figure beside the paper, with the command behind each number.

    python -m eval.report                                  # work/report/index.html
    python -m eval.report --screenshot docs/report.png     # ... and a headless-Chromium screenshot of it

In the spirit of Pyserini's two-click reproduction matrices: Table 1 of "Exploring ℓ0 Sparsification for Inference-free
Sparse Retrievers" (SIGIR 2025) with the measured rows and the paper's cells side by side (Δ = measured − paper), Tables 2
and 3 (the ablations), Figures 1-3, the benchmark records of ``results/bench`` and any other measured table in ``results/``
(e.g. the Li-LSR comparison); each row carries the command that regenerates it. Whatever is not produced yet is named at
the top with the command that produces it. Pure Python and HTML (one inline script marks each figure's decoded width for
the browser test); the figures are linked relative to the page, not copied.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from eval.claims import VERSUS_LABELS, stored_claims
from eval.docs import BENCHMARKS
from eval.paper import DATASET_LABELS, SUMMARY_ROWS, SYSTEMS, load_errata, load_paper_table
from eval.provenance import machine_line
from eval.schema import load_results
from eval.stats import ALPHA
from kit.errors import InputError, cli
from kit.io import atomic_write
from kit.paths import REPO, work_dir
from kit.argtypes import ArgumentParser

RESULTS = REPO / "results"
TABLE1_COMMAND = "make reproduce-table1"
ABLATION_COMMAND = "make ablation"
FIGURES_COMMAND = "make figures"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
td.measured { background: #eef6ff; } .pos { color: #0a6b0a; } .neg { color: #a11; }
code { background: #f6f6f6; padding: 1px 4px; font-size: 0.92em; } td code, td.l { white-space: nowrap; }
.missing { background: #fff4e0; border: 1px solid #e5b567; padding: 0.6em 1em; }
.fail { color: #a11; font-weight: bold; } .ok { color: #0a6b0a; }
figure { display: inline-block; margin: 0 1em 1em 0; } figure img { width: 440px; border: 1px solid #ddd; }
.note { color: #555; max-width: 1100px; }
"""

IMAGE_PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute('data-natural-width', imgs[i].naturalWidth);
    if (imgs[i].naturalWidth > 0) ok++;
  }
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>"""


# ---- HTML helpers ----------------------------------------------------------------------------------------------------

def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def code(command: str) -> str:
    return f"<code>{esc(command)}</code>"


def num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return esc(value)


def delta(value: Any, digits: int = 4) -> str:
    if value is None or pd.isna(value):
        return "–"
    v = round(float(value), digits) + 0.0
    cls = "pos" if v > 0 else "neg" if v < 0 else ""
    return f'<span class="{cls}">{v:+.{digits}f}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1, cls: str = "") -> str:
    """An HTML table; cells are already-escaped HTML; the first ``left`` columns are left-aligned."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f'<td class="{"l" if i < left else ""}">{c}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _provenance(meta: dict) -> str:
    versions = meta.get("versions") or {}
    parts = [f"command {code(meta.get('command', '?'))}", f"commit <code>{esc((meta.get('commit') or '?')[:12])}</code>",
             f"date {esc(meta.get('date', '?'))}"]
    machine = meta.get("machine") or {}
    if machine:
        parts.append(esc(machine_line(machine)))
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if k in ("torch", "transformers", "pyserini", "anserini", "java"))
    if shown:
        parts.append(esc(shown))
    return '<p class="note">Provenance: ' + "; ".join(parts) + ".</p>"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc.msg})", exc.lineno, fix="regenerate the file") from None


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
        if csv.is_file():
            meta = _read_json(meta_path) if meta_path.is_file() else {}
            df = pd.read_csv(csv)
            measures = [m for m in meta.get("measures", ["nDCG@10", "R@100", "R@1000"]) if m in df.columns]
            rows = []
            for r in df.to_dict("records"):
                check = r.get("check") if isinstance(r.get("check"), str) else ""
                check_html = f'<span class="{"fail" if check == "FAIL" else "ok"}">{esc(check)}</span>' if check else "–"
                col = r.get("paper_column") if isinstance(r.get("paper_column"), str) else ""
                cmd = TABLE1_COMMAND + ("" if r["dataset"] == "scifact" else f" DATASETS={r['dataset']}")
                rows.append([esc(r["dataset"]), esc(r["label"]), *(num(r[m]) for m in measures), num(r.get("FLOPS"), 2),
                             num(r.get("Doc_Len"), 1), check_html, delta(r.get("delta_expected")),
                             esc(SYSTEMS[col]["name"]) if col in SYSTEMS else "–", num(r.get("paper_nDCG@10"), 3),
                             delta(r.get("delta_paper")), code(cmd)])
                if col:
                    measured[(r["dataset"], col)] = (float(r["nDCG@10"]), r["label"])
            out.append(table(["dataset", "system", *measures, "FLOPS", "Doc_Len", "check", "Δ expected", "paper column",
                              "paper nDCG@10", "Δ paper", "reproduce"], rows, left=2))
            out.append(f'<p class="note">Check: the recipe\'s regression value within its tolerance '
                       f'({code("python -m eval.compare --check")} re-verifies every stored number against its per-query '
                       f'file and the recipe). Compare a new system with these rows: '
                       f'{code("python -m eval.compare --run RUN --dataset scifact")}.</p>')
            if meta:
                out.append(_provenance(meta))
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
        csv, meta_path = self.results / f"table{n}.csv", self.results / f"table{n}.json"
        metrics = ("nDCG@10", "FLOPS", "Doc_Len")
        if csv.is_file():
            meta = _read_json(meta_path) if meta_path.is_file() else {}
            command = meta.get("command", ABLATION_COMMAND)
            df = pd.read_csv(csv)
            rows = []
            for r in df.to_dict("records"):
                cells = [esc(r.get("label", r["system"]))]
                for m in metrics:
                    mine, ref = r.get(m), r.get(f"paper_{m}")
                    d = None if mine is None or ref is None or pd.isna(mine) or pd.isna(ref) else float(mine) - float(ref)
                    cells += [f'<td class="measured">{num(mine, 2)}</td>', num(ref, 2), delta(d, 2)]
                cells.append(code(command))
                if "Δ_bm25" in df.columns:
                    cells.insert(-1, delta(r.get("Δ_bm25"), 2))
                rows.append(cells)
            heads = [h for m in metrics for h in (f"{m} measured", f"{m} paper", "Δ")]
            bm25 = ["nDCG@10 Δ BM25"] if "Δ_bm25" in df.columns else []
            out.append(table(["system", *heads, *bm25, "reproduce"], rows))
            if meta.get("caveat"):
                out.append(f'<p class="note">{esc(meta["caveat"])}</p>')
            out.append(self.claims(meta_path, n))
            out.append(_provenance(meta) if meta else "")
        else:
            self.missing.append((f"results/table{n}.csv", ABLATION_COMMAND))
            out.append(f'<p class="missing">Not measured yet: run {code(ABLATION_COMMAND)}. The paper\'s values:</p>')
            out.append(table(["system", *metrics], ([esc(r["label"]), *(num(r[m], 2) for m in metrics)]
                                                    for r in paper.to_dict("records"))))
        self.sections.append("\n".join(out))

    def claims(self, path: Path, n: int) -> str:
        """The paper's directions tested on a stored ablation table (:func:`eval.claims.stored_claims`)."""
        if not path.is_file():
            return ""
        claims, untested = stored_claims(load_results(path), n)
        if claims.empty:
            return ""
        rows = [[esc(r["label"]), esc(r["measure"]), esc(r["dataset"]), esc(VERSUS_LABELS.get(r["versus"], r["versus"])),
                 delta(r["paper_delta"], 2), delta(100 * r["delta"] if r["measure"] == "nDCG@10" else r["delta"], 2),
                 f"{r['wins']}/{r['ties']}/{r['losses']}", esc(f"{r['p_holm']:.2g}"), esc(r["verdict"])]
                for r in claims.to_dict("records")]
        note = (f"<p class='note'>Paired tests over the per-item (seed-mean) values, Holm-corrected per family; a direction "
                f"is reproduced only when significant at α = {ALPHA}.")
        note += (" Not tested from this file: " + esc("; ".join(untested)) + ".</p>") if untested else "</p>"
        return table(["row", "measure", "dataset", "versus", "paper Δ", "kit Δ", "W/T/L", "p (Holm)", "verdict"],
                     rows) + note

    # -- Figures 1-3
    def figures(self) -> None:
        captions = {1: "Figure 1: nDCG@10 vs FLOPS, varying λ_d", 2: "Figure 2: Doc_Len vs λ_d",
                    3: "Figure 3: nDCG@10 vs Doc_Len, varying the threshold t"}
        folder = self.results / "figures"
        meta = _read_json(folder / "figures.json") if (folder / "figures.json").is_file() else {}
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

    # -- other measured tables (e.g. results/lilsr.csv)
    def other_tables(self) -> None:
        known = {"table1.csv", "table2.csv", "table3.csv"}
        tables = [*self.results.glob("*.csv"), *self.results.glob("regime/*.csv")]  # lilsr, teachers, the regime
        for csv in sorted(p for p in tables if p.name not in known):
            meta_path = csv.with_suffix(".json")
            meta = _read_json(meta_path) if meta_path.is_file() else {}
            df = pd.read_csv(csv)
            command = meta.get("command", "(command not recorded)")
            rows = [[num(v) if isinstance(v, float) else esc(v) for v in r] for r in df.itertuples(index=False)]
            self.sections.append("\n".join([f"<h2 id='{esc(csv.stem)}'>{esc(csv.name)}</h2>",
                                            f'<p class="note">Regenerate: {code(command)}</p>',
                                            table([esc(c) for c in df.columns], rows), _provenance(meta) if meta else ""]))
        if not (self.results / "lilsr.csv").is_file():
            self.missing.append(("results/lilsr.csv", "make lilsr"))

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
        nav = " · ".join(f'<a href="#{a}">{t}</a>' for a, t in (("table1", "Table 1"), ("table2", "Table 2"),
                                                                ("table3", "Table 3"), ("figures", "Figures"),
                                                                ("bench", "Benchmarks")))
        return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                "<title>l0-sparse-kit: reproduction report</title>"
                f"<style>{STYLE}</style></head><body>\n"
                "<h1>Reproducing “Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers” (SIGIR 2025)</h1>\n"
                f'<p class="note">Generated by {code(command)} from <code>results/</code>. Every row names the command that '
                f"regenerates it; the stored files follow <code>results/SCHEMA.md</code> (kit-results/1). {nav}</p>\n"
                + missing + "\n" + "\n".join(self.sections) + "\n" + IMAGE_PROBE + "\n</body></html>\n")


def build_report(results: str | Path = RESULTS, out_dir: str | Path | None = None,
                 command: str = "python -m eval.report") -> tuple[Path, list[tuple[str, str]]]:
    """Write ``<out_dir>/index.html`` (default ``work/report``: a page generated from ``results/``, not stored there);
    returns its path and the missing items."""
    results = Path(results)
    out_dir = Path(out_dir) if out_dir is not None else work_dir() / "report"
    report = Report(results, out_dir)
    report.table1()
    report.ablation_table(2)
    report.ablation_table(3)
    report.figures()
    report.other_tables()
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
    p = ArgumentParser(prog="python -m eval.report", description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(RESULTS), help="results folder to render (default: results/)")
    p.add_argument("--out", default=None, help="output folder (default: work/report)")
    p.add_argument("--screenshot", default=None, help="also write a PNG screenshot of the page (needs chromium)")
    p.add_argument("--window", default="1600x1200", help="screenshot size WIDTHxHEIGHT")
    args = p.parse_args(argv)
    try:
        width, height = (int(v) for v in args.window.lower().split("x"))
    except ValueError:
        raise InputError(None, f"--window {args.window!r}: expected WIDTHxHEIGHT, e.g. 1400x1800") from None
    command = " ".join(["python -m eval.report", *(argv if argv is not None else sys.argv[1:])])
    path, missing = build_report(args.results, args.out, command)
    print(f"wrote {path}")
    for item, how in missing:
        print(f"missing: {item} ({how})")
    if args.screenshot:
        with tempfile.TemporaryDirectory() as tmp:  # atomic: the PNG appears complete or not at all
            shot = Path(tmp) / "shot.png"
            headless(path.resolve().as_uri(), screenshot=shot, window=(width, height))
            with atomic_write(args.screenshot, mode="wb", encoding=None) as fh:
                fh.write(shot.read_bytes())
        print(f"wrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
