"""The 13 NanoBEIR subsets (online): a manifest of their parquet files, a checked download and :func:`load_nanobeir`.

Every file is checked against the md5 sum and size in ``shared_dir()/data/nanobeir_manifest.tsv`` before it is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, NamedTuple

from kit.dataset import Dataset, Doc
from kit.errors import InputError
from kit.fingerprint import file_sha256
from kit.formats import _collect_qrels, _columns, _judged
from kit.paths import shared_dir

#: The 13 NanoBEIR subsets (zeta-alpha-ai; 50 queries and up to ~5k documents each, BEIR ids as in Table 1 where they
#: exist; NanoBEIR has MS MARCO instead of TREC-COVID) -> their Hugging Face dataset ids.
NANOBEIR_DATASETS: dict[str, str] = {
    "arguana": "zeta-alpha-ai/NanoArguAna",
    "climate-fever": "zeta-alpha-ai/NanoClimateFEVER",
    "dbpedia-entity": "zeta-alpha-ai/NanoDBPedia",
    "fever": "zeta-alpha-ai/NanoFEVER",
    "fiqa": "zeta-alpha-ai/NanoFiQA2018",
    "hotpotqa": "zeta-alpha-ai/NanoHotpotQA",
    "msmarco": "zeta-alpha-ai/NanoMSMARCO",
    "nfcorpus": "zeta-alpha-ai/NanoNFCorpus",
    "nq": "zeta-alpha-ai/NanoNQ",
    "quora": "zeta-alpha-ai/NanoQuoraRetrieval",
    "scidocs": "zeta-alpha-ai/NanoSCIDOCS",
    "scifact": "zeta-alpha-ai/NanoSciFact",
    "webis-touche2020": "zeta-alpha-ai/NanoTouche2020",
}
NANOBEIR_PARTS = ("docs", "queries", "qrels")
_MANIFEST_HEADER = ["dataset", "part", "url", "md5", "bytes"]
_HUB_URL = re.compile(r"https://huggingface\.co/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)")


class ManifestEntry(NamedTuple):
    """One file of a NanoBEIR subset: where to get it and what it must hash to."""

    url: str
    md5: str
    bytes: int


def nanobeir_manifest_path() -> Path:
    return shared_dir() / "data" / "nanobeir_manifest.tsv"


def read_nanobeir_manifest(path: str | Path | None = None) -> dict[tuple[str, str], ManifestEntry]:
    """``{(dataset, part): ManifestEntry}`` from ``dataset<TAB>part<TAB>url<TAB>md5<TAB>bytes`` (with that header)."""
    path = Path(path) if path is not None else nanobeir_manifest_path()
    layout = "<TAB>".join(_MANIFEST_HEADER)
    entries: dict[tuple[str, str], ManifestEntry] = {}
    for lineno, fields in _columns(path, 5, layout, tab=True):
        if lineno == 1 and fields == _MANIFEST_HEADER:
            continue
        name, part, url, md5, size = fields
        if name not in NANOBEIR_DATASETS or part not in NANOBEIR_PARTS or not _HUB_URL.fullmatch(url) \
                or not re.fullmatch(r"[0-9a-f]{32}", md5) or not size.isdigit():
            raise InputError(path, f"bad entry {name!r} {part!r}", lineno,
                             fix=f"each line is '{layout}': a NanoBEIR subset, docs|queries|qrels, a huggingface.co "
                                 "resolve URL, a 32-hex md5 and a byte count")
        entries[name, part] = ManifestEntry(url, md5, int(size))
    return entries


def _hub_download(url: str) -> Path:
    """Download (or reuse from the Hugging Face cache) one ``huggingface.co/datasets/.../resolve/...`` file; online."""
    from huggingface_hub import hf_hub_download

    repo_id, revision, filename = _HUB_URL.fullmatch(url).groups()
    return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision, repo_type="dataset"))


def _md5(path: Path) -> str:
    import hashlib

    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_nanobeir(name: str, manifest: str | Path | None = None,
                   download: Callable[[str], Path] | None = None) -> dict[str, Path]:
    """The three parquet files of a NanoBEIR subset, checked against the manifest's md5 sums.

    ``download(url) -> local path`` defaults to the Hugging Face hub (online; files are cached by huggingface_hub).
    """
    download = download or _hub_download
    if name not in NANOBEIR_DATASETS:
        raise ValueError(f"unknown NanoBEIR subset {name!r}; choose from {', '.join(NANOBEIR_DATASETS)}")
    manifest_path = Path(manifest) if manifest is not None else nanobeir_manifest_path()
    entries = read_nanobeir_manifest(manifest_path)
    files = {}
    for part in NANOBEIR_PARTS:
        if (name, part) not in entries:
            raise InputError(manifest_path, f"no {part} entry for {name}", fix="restore the manifest from ../shared")
        entry = entries[name, part]
        path = Path(download(entry.url))
        size, md5 = path.stat().st_size, _md5(path)
        if (size, md5) != (entry.bytes, entry.md5):
            raise InputError(path, f"{NANOBEIR_DATASETS[name]} {part}: md5 {md5} ({size} bytes) does not match "
                                   f"{entry.md5} ({entry.bytes} bytes) in {manifest_path}",
                             fix="delete the file (a partial download or a changed upload) and run again")
        files[part] = path
    return files


def _parquet_columns(path: Path, required: tuple[str, ...]):
    import pandas as pd

    frame = pd.read_parquet(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(path, f"parquet columns {list(frame.columns)} lack {missing}",
                         fix="NanoBEIR files have _id/text (corpus, queries) and query-id/corpus-id (qrels)")
    return frame


def load_nanobeir(name: str, manifest: str | Path | None = None,
                  download: Callable[[str], Path] | None = None) -> Dataset:
    """A NanoBEIR subset (online on first use, then from the Hugging Face cache); every listed pair is relevant (1)."""
    files = fetch_nanobeir(name, manifest, download)
    corpus = _parquet_columns(files["docs"], ("_id", "text"))
    titles = corpus["title"] if "title" in corpus.columns else [""] * len(corpus)
    docs = tuple(Doc(str(i), f"{t or ''} {x or ''}".strip()) for i, t, x in zip(corpus["_id"], titles, corpus["text"]))
    queries = _parquet_columns(files["queries"], ("_id", "text"))
    qrels_frame = _parquet_columns(files["qrels"], ("query-id", "corpus-id"))
    scores = qrels_frame["score"] if "score" in qrels_frame.columns else [1] * len(qrels_frame)
    pairs = zip(qrels_frame["query-id"], qrels_frame["corpus-id"], scores)
    qrels, first_line = _collect_qrels(files["qrels"], ((i + 1, str(q), str(d), str(r)) for i, (q, d, r) in enumerate(pairs)))
    topics = {str(q): str(t).strip() for q, t in zip(queries["_id"], queries["text"])}
    return Dataset(name=f"nanobeir/{name}", queries=_judged(topics, qrels, first_line, files["qrels"], files["queries"]),
                   qrels=qrels, docs=lambda: iter(docs), num_docs=len(docs), source=NANOBEIR_DATASETS[name],
                   corpus_key="file:" + file_sha256(files["docs"]))
