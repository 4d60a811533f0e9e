"""The dev split: a fixed part of SciFact train's queries held out from training (kit.data.DERIVED_SPLITS), what every
recipe choice is measured on; fit is the rest, what a dev-selected recipe trains on."""

from __future__ import annotations

import hashlib

import pytest
from test_faults import one_line_error, run

from eval.ablator import Ablator, get_scale
from eval.study.spec import STUDIES, load_study
from kit import validate as V
from kit.data import DEV_SHARE, in_dev, load_dataset
from kit.errors import InputError


def test_dev_and_fit_partition_scifact_train_by_query_id():
    train, dev, fit = (load_dataset("scifact", s) for s in ("train", "dev", "fit"))
    assert set(dev.queries).isdisjoint(fit.queries) and set(dev.queries) | set(fit.queries) == set(train.queries)
    assert (len(dev.queries), len(fit.queries)) == (156, 653)  # one in DEV_SHARE of 809, by the hash of the id
    assert all(dev.qrels[q] == train.qrels[q] for q in dev.queries)
    assert (dev.name, fit.name) == ("scifact/dev", "scifact/fit")
    # the same documents: the corpus key is the collection's, so document vectors are shared with test
    assert dev.corpus_key == fit.corpus_key == load_dataset("scifact").corpus_key
    # the rule is the id's sha256, nothing else (no file order, seed or machine)
    q = next(iter(dev.queries))
    assert int(hashlib.sha256(f"dev:{q}".encode()).hexdigest(), 16) % DEV_SHARE == 0 and in_dev(q)
    assert not set(dev.queries) & set(load_dataset("scifact").queries)  # test is another split altogether


def test_a_split_is_named_like_a_dataset_and_a_wrong_one_is_refused():
    assert V.dataset_or_split("scifact/dev") == "scifact/dev" and V.dataset_or_split("scifact/fit") == "scifact/fit"
    with pytest.raises(ValueError, match="scifact has no 'devv' split .*dev, fit"):
        V.dataset_or_split("scifact/devv")
    with pytest.raises(ValueError, match="has only a test split"):
        load_dataset("vaswani", "dev")


def test_conditions_are_evaluated_on_splits_at_a_scale_that_slices_them():
    ablator = Ablator(get_scale("smoke"))
    dev = ablator.dataset("scifact/dev")
    assert dev.name.startswith("scifact/dev-q8-") and len(dev.queries) <= 8
    assert set(dev.queries) <= set(load_dataset("scifact", "dev").queries)
    with pytest.raises(InputError, match="evaluate: split 'nope' not found .*choose from test, train, dev, fit"):
        ablator.dataset("scifact/nope")


def test_the_learning_curve_study_sweeps_steps_on_fit_and_plots_each_split(tmp_path):
    study = load_study("learning-curve")
    assert [c.swept for c in study.conditions.values()] == [("max_steps", v) for v in (30, 60, 120, 240)]
    assert all(c.recipe(42).data.name.startswith("scifact-fit.") for c in study.conditions.values())
    assert study.plots[0].datasets == ("scifact/fit", "scifact/dev", "scifact")
    path = tmp_path / "bad.yaml"
    text = (STUDIES / "learning-curve.yaml").read_text().replace("study: learning-curve", "study: bad")
    path.write_text(text.replace("x: max_steps, y: nDCG@10", "x: Doc_Len, y: nDCG@10"))
    one_line_error(run("eval.study", path, "--dry-run"), "plots[0].datasets: a plot over datasets draws")
