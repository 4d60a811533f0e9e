"""The published numbers: Tables 1-3 of "Exploring ℓ0 Sparsification for Inference-free Sparse Retrievers" (SIGIR 2025).

The tables live, transcribed cell for cell, in ``results/paper/table{1,2,3}.csv`` (provenance and the paper's own
inconsistencies: ``results/paper/README.md``). This module gives them stable ids:

- ``SYSTEMS``: slug -> :class:`PaperSystem` dict (printed name, retriever type, tables it appears in, the paper's citation);
- ``DATASETS``: the 13 BEIR ids of Table 1 in the paper's row order (Anserini / ir-datasets ids), with
  ``DATASET_LABELS`` giving the printed names;
- :func:`load_paper_table`: one table as a DataFrame, checked against the expected layout.

Table 1 is nDCG@10 x 100 (as printed, e.g. ``71.5``) with one row per dataset plus the summary rows ``aver-rank`` (mean rank
over the 13 datasets, lower is better) and ``average`` (mean nDCG@10 x 100). Tables 2 and 3 have one row per system with the
columns ``system``, ``label`` (as printed, ℓ0 written "ℓ0"), ``nDCG@10`` (BEIR average x 100), ``FLOPS`` and ``Doc_Len``
(Section 5.1.3).
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping, TypedDict

from kit.errors import InputError
from kit.paths import REPO

if TYPE_CHECKING:
    import pandas as pd

TABLES = (1, 2, 3)
RETRIEVER_TYPES = ("inference-free-sparse", "sparse", "dense")
"""Table 1's three groups: inference-free sparse (no query encoder), Siamese sparse, dense."""

_FIX = "restore results/paper/ from the repository; the CSVs are a verbatim transcription of the paper"


class PaperSystem(TypedDict):
    """A system of the paper's tables (a plain dict, read it as ``SYSTEMS[slug]["name"]``).

    ``name`` is the printed name (ℓ0 written "ℓ0"), ``retriever_type`` one of :data:`RETRIEVER_TYPES`, ``tables`` the tables
    it has a row or column in, ``cite`` the reference the paper gives for it (Section 5.1.2; ``None`` for the paper's own).
    """

    name: str
    retriever_type: str
    tables: tuple[int, ...]
    cite: str | None


def _system(name: str, retriever_type: str, tables: tuple[int, ...], cite: str | None = None) -> PaperSystem:
    return PaperSystem(name=name, retriever_type=retriever_type, tables=tables, cite=cite)


_IF, _SP, _DE = RETRIEVER_TYPES

# Table 1 columns first, in printed order; then the ablation-only variants of Tables 2 and 3.
SYSTEMS: Mapping[str, PaperSystem] = MappingProxyType({
    "l0-mask": _system("ℓ0 Mask", _IF, (1, 2)),
    "l0-mask-l0-act": _system("ℓ0 Mask-ℓ0 Activation", _IF, (1, 2, 3)),
    "idf-splade-doc-distill": _system("IDF-SPLADE-doc-distill", _IF, (1,), "Geng et al., 2024"),
    "bm25": _system("BM25", _IF, (1,), "Robertson and Jones, 1976; Robertson and Zaragoza, 2009"),
    "splade-doc-distill": _system("SPLADE-doc-distill", _IF, (1,), "Geng et al., 2024; Formal et al., 2021a"),
    "splade-v3-doc": _system("SPLADE-v3-Doc", _IF, (1,), "Lassance et al., 2024"),
    "splade-pp-selfdistil": _system("SPLADE++SelfDistil", _SP, (1,), "Formal et al., 2022a"),
    "splade-v3-distil": _system("SPLADE-v3-Distil", _SP, (1,), "Lassance et al., 2024"),
    "colbertv2": _system("ColBERTv2", _DE, (1,), "Santhanam et al., 2022"),
    "contriever": _system("Contriever", _DE, (1,), "Izacard et al., 2021"),
    "tas-b": _system("TAS-B", _DE, (1,), "Hofstätter et al., 2021"),
    # Tables 2-3. "Baseline" has the nDCG@10 of IDF-SPLADE-doc-distill in Table 1 (49.52) but keeps its printed name.
    "baseline": _system("Baseline", _IF, (2, 3)),
    "l0-act": _system("ℓ0 Activation", _IF, (2, 3)),
    "de-l0-act": _system("de-ℓ0 Activation", _IF, (3,)),
    "inv-de-l0-act": _system("inv-de-ℓ0 Activation", _IF, (3,)),
    "l0-act-x2": _system("2-ℓ0 Activation", _IF, (3,)),
    "l0-act-x3": _system("3-ℓ0 Activation", _IF, (3,)),
    "l0-mask-de-l0-act": _system("ℓ0 mask + de-ℓ0 Activation", _IF, (3,)),
    "l0-mask-inv-de-l0-act": _system("ℓ0 mask + inv-de-ℓ0 Activation", _IF, (3,)),
})

TABLE1_SYSTEMS: tuple[str, ...] = tuple(slug for slug, s in SYSTEMS.items() if 1 in s["tables"])
"""Table 1's columns, in printed order."""

DATASET_LABELS: Mapping[str, str] = MappingProxyType({
    "trec-covid": "TREC-COVID",
    "nfcorpus": "NFCorpus",
    "nq": "NQ",
    "hotpotqa": "HotpotQA",
    "fiqa": "FiQA-2018",
    "arguana": "ArguAna",
    "webis-touche2020": "Touche-2020",
    "dbpedia-entity": "DBPedia-entity",
    "scidocs": "SCIDOCS",
    "fever": "FEVER",
    "climate-fever": "Climate-FEVER",
    "scifact": "SciFact",
    "quora": "Quora",
})
"""BEIR id (as in Anserini's ``beir-v1.0.0-<id>`` and ir-datasets' ``beir/<id>``) -> name printed in Table 1."""

DATASETS: tuple[str, ...] = tuple(DATASET_LABELS)
"""The 13 BEIR datasets of Table 1, in the paper's row order."""

SUMMARY_ROWS = ("aver-rank", "average")
"""Table 1's last two rows, in printed order: mean rank (lower is better) and mean nDCG@10 x 100."""

TABLE_METRICS = ("nDCG@10", "FLOPS", "Doc_Len")
"""Value columns of Tables 2 and 3 (ir-measures name for nDCG@10; the paper prints "NCDG@10")."""


PAPER_DIR = REPO / "results" / "paper"


def table_path(n: int, directory: str | Path | None = None) -> Path:
    """``table{n}.csv`` under ``directory`` (default :data:`PAPER_DIR`); ValueError unless ``n`` is 1, 2 or 3."""
    if isinstance(n, bool) or not isinstance(n, int) or n not in TABLES:
        raise ValueError(f"the paper has Tables 1, 2 and 3; got {n!r}")
    return Path(directory if directory is not None else PAPER_DIR) / f"table{n}.csv"


ERRATA = "table1-errata.csv"
"""Cells of Table 1 the paper prints wrongly, with their corrected values and sources (``results/paper/``)."""
ERRATA_COLUMNS = ["dataset", "column", "printed", "corrected", "source"]


def load_errata(directory: str | Path | None = None) -> "pd.DataFrame":
    """The Table 1 errata: one row per wrongly printed cell (``printed`` must be what the transcription holds)."""
    import pandas as pd

    path = Path(directory) if directory is not None else PAPER_DIR
    path = path / ERRATA
    if not path.is_file():
        raise InputError(path, "errata file not found", fix=_FIX)
    errata = pd.read_csv(path, encoding="utf-8", dtype={"printed": float, "corrected": float})
    if list(errata.columns) != ERRATA_COLUMNS:
        raise InputError(path, f"header is {','.join(errata.columns)}; expected {','.join(ERRATA_COLUMNS)}", 1, fix=_FIX)
    return errata


def load_paper_table(n: int, directory: str | Path | None = None, corrected: bool = False) -> "pd.DataFrame":
    """Table ``n`` of the paper as printed (ValueError unless ``n`` is 1, 2 or 3); with ``corrected`` (Table 1 only)
    the cells of :data:`ERRATA` hold their corrected values instead (what a measurement is compared with).

    Table 1: columns ``dataset`` then :data:`TABLE1_SYSTEMS`; rows :data:`DATASETS` then :data:`SUMMARY_ROWS`
    (``df.set_index("dataset")`` for lookups). Tables 2 and 3: columns ``system``, ``label``, then :data:`TABLE_METRICS`.
    A file that does not have that layout raises :class:`~kit.errors.InputError` naming the file and line. ``directory``
    defaults to :data:`PAPER_DIR` (``results/paper``).
    """
    import pandas as pd

    path = table_path(n, directory)
    if not path.is_file():
        raise InputError(path, "paper table not found", fix=_FIX)
    df = pd.read_csv(path, encoding="utf-8", dtype=str, keep_default_na=False)
    key, values = ("dataset", list(TABLE1_SYSTEMS)) if n == 1 else ("system", list(TABLE_METRICS))
    columns = [key, *values] if n == 1 else [key, "label", *values]
    if list(df.columns) != columns:
        raise InputError(path, f"header is {','.join(df.columns)}; expected {','.join(columns)}", 1, fix=_FIX)
    _check_rows(path, n, list(df[key]))
    for col in values:
        parsed = pd.to_numeric(df[col], errors="coerce")
        bad = parsed.isna()
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise InputError(path, f"column {col!r} holds {df[col].iloc[i]!r}, not a number", i + 2, fix=_FIX)
        df[col] = parsed.astype(float)
    if corrected and n == 1:
        table = df.set_index("dataset")
        for i, e in enumerate(load_errata(directory).to_dict("records")):
            if table.at[e["dataset"], e["column"]] != e["printed"]:
                raise InputError(PAPER_DIR / ERRATA, f"{e['dataset']} {e['column']}: the transcription holds "
                                                     f"{table.at[e['dataset'], e['column']]}, not {e['printed']}",
                                 i + 2, fix=_FIX)
            table.at[e["dataset"], e["column"]] = e["corrected"]
        df = table.reset_index()
    return df


def _check_rows(path: Path, n: int, row_ids: list[str]) -> None:
    """Table 1 rows must be exactly DATASETS + SUMMARY_ROWS in order; Tables 2-3 rows distinct systems of that table."""
    expected = list(DATASETS + SUMMARY_ROWS) if n == 1 else None
    seen: set[str] = set()
    for i, row_id in enumerate(row_ids):
        if expected is not None:
            ok = i < len(expected) and row_id == expected[i]
        else:
            ok = row_id in SYSTEMS and n in SYSTEMS[row_id]["tables"] and row_id not in seen
        if not ok:
            raise InputError(path, f"unexpected row {row_id!r}", i + 2, fix=_FIX)
        seen.add(row_id)
    if expected is not None and len(row_ids) != len(expected):
        raise InputError(path, f"{len(row_ids)} rows; expected {len(expected)} ({', '.join(expected)})", fix=_FIX)
