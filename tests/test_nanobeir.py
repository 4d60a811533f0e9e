"""NanoBEIR loader, offline: the download is faked with local parquet files whose md5 sums the test computes."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from kit.data import load_dataset
from kit.nanobeir import (NANOBEIR_DATASETS, NANOBEIR_PARTS, fetch_nanobeir, load_nanobeir,
                          read_nanobeir_manifest)
from kit.errors import InputError


def test_shared_manifest_lists_the_13_subsets_by_their_hub_ids():
    entries = read_nanobeir_manifest()
    assert len(NANOBEIR_DATASETS) == 13 and set(entries) == {(n, p) for n in NANOBEIR_DATASETS for p in NANOBEIR_PARTS}
    for (name, _), entry in entries.items():
        assert entry.url.startswith(f"https://huggingface.co/datasets/{NANOBEIR_DATASETS[name]}/resolve/")
    assert NANOBEIR_DATASETS["scifact"] == "zeta-alpha-ai/NanoSciFact"


@pytest.fixture
def fake_hub(tmp_path):
    """Three parquet files for 'scifact', a manifest with their md5 sums, and a download function serving them."""
    frames = {
        "docs": pd.DataFrame({"_id": ["d1", "d2", "d3"], "text": ["alpha beta", "gamma", "delta epsilon"]}),
        "queries": pd.DataFrame({"_id": ["q1", "q2", "q3"], "text": ["alpha?", " gamma ", "unjudged"]}),
        "qrels": pd.DataFrame({"query-id": ["q1", "q2", "q2"], "corpus-id": ["d1", "d2", "d3"]}),
    }
    served, lines = {}, ["dataset\tpart\turl\tmd5\tbytes"]
    for part, frame in frames.items():
        path = tmp_path / f"{part}.parquet"
        frame.to_parquet(path)
        url = f"https://huggingface.co/datasets/zeta-alpha-ai/NanoSciFact/resolve/main/{part}/train-00000-of-00001.parquet"
        served[url] = path
        data = path.read_bytes()
        lines.append(f"scifact\t{part}\t{url}\t{hashlib.md5(data).hexdigest()}\t{len(data)}")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    calls = []

    def download(url):
        calls.append(url)
        return served[url]

    return manifest, download, served, calls


def test_load_nanobeir_from_verified_files(fake_hub):
    manifest, download, _, calls = fake_hub
    ds = load_nanobeir("scifact", manifest, download)
    assert len(calls) == 3
    assert ds.name == "nanobeir/scifact" and ds.num_docs == 3
    assert ds.queries == {"q1": "alpha?", "q2": "gamma"}  # judged queries only (BEIR's convention), stripped
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}}  # every listed pair relevant
    assert [d.text for d in ds.docs()] == ["alpha beta", "gamma", "delta epsilon"]


def test_md5_mismatch_is_one_line_naming_the_file(fake_hub):
    manifest, download, served, _ = fake_hub
    qrels = next(p for u, p in served.items() if "/qrels/" in u)
    pd.DataFrame({"query-id": ["q1"], "corpus-id": ["d9"]}).to_parquet(qrels)  # a changed upload
    with pytest.raises(InputError) as err:
        fetch_nanobeir("scifact", manifest, download)
    line = str(err.value)
    assert "\n" not in line and str(qrels) in line and "does not match" in line and "fix: delete the file" in line


def test_bad_manifest_and_unknown_subset(tmp_path, fake_hub):
    manifest, download, _, _ = fake_hub
    with pytest.raises(ValueError, match="unknown NanoBEIR subset 'trec-covid'"):
        fetch_nanobeir("trec-covid", manifest, download)
    bad = tmp_path / "bad.tsv"
    bad.write_text(manifest.read_text().replace("\tdocs\t", "\tcorpus\t"))
    with pytest.raises(InputError, match=r"bad.tsv:2: bad entry 'scifact' 'corpus'"):
        fetch_nanobeir("scifact", bad, download)


def test_load_dataset_and_reproduce_name_the_subsets(monkeypatch, fake_hub):
    import kit.nanobeir
    from eval.reproduce import resolve_datasets

    manifest, download, _, _ = fake_hub
    monkeypatch.setattr(kit.nanobeir, "_hub_download", download)
    monkeypatch.setattr(kit.nanobeir, "nanobeir_manifest_path", lambda: manifest)
    assert load_dataset("nanobeir/scifact").qrels["q1"] == {"d1": 1}
    names = resolve_datasets(["nanobeir"])
    assert len(names) == 13 and "nanobeir/scifact" in names
