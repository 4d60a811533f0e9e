"""The ablation (Tables 2-3 as study files, Figures 1-3): row mapping, recipe overrides and cache keys, the tables'
cells, collapse markers, and one end-to-end smoke run on a tiny slice."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import stage_mined_file, write_training_file

from eval import ablation
from eval.ablator import Ablator, Scale, get_scale, slice_dataset
from eval.paper import load_paper_table
from eval.stats import EQUIVALENT, NO_EFFECT, NOT_DISTINGUISHABLE, ONE_SEED, holm
from eval.study.derive import Run, build_tables
from eval.study.runner import jobs, measured as study_measured, run_study
from eval.study.sweeps import draw_plots
from eval.study.spec import load_study
from kit.dataset import Dataset, Doc
from kit.errors import InputError
from train.cache import model_dir, recipe_hash
from train.conditions import condition_ids, load_condition
from train.recipe import TrainRecipe


def _recipe(data: Path = Path("/tmp/train.jsonl"), **changes) -> TrainRecipe:
    base = dict(base_model="splade-tiny", data=data, variant="l0", lambda_d=0.01, threshold=150.0, warmup_T=1,
                max_steps=1, batch_size=2, max_length=32, docs_per_query=2, save_steps=1, logging_steps=1)
    return TrainRecipe(**{**base, **changes})


# ---- conditions as data ------------------------------------------------------------------------------------------

def test_every_paper_row_of_tables_2_and_3_is_a_condition_file():
    for n in (2, 3):
        # Table 2 compares in comparable FLOPS: its ℓ0 rows are the conditions calibrated to the baseline (<row>-cf)
        rows = [r if n == 3 or r == "baseline" else f"{r}-cf" for r in load_paper_table(n)["system"]]
        assert sorted(rows) == condition_ids(table=n)
        for row in rows:
            c = load_condition(row)
            assert n in c.tables and c.evaluate == ("scifact", "vaswani", "cacm")
            assert set(c.expected) == {"scifact", "vaswani", "cacm"} and c.tolerance == 0.002
    assert set(condition_ids()) - set(condition_ids(2)) - set(condition_ids(3)) == {
        "lilsr", "lilsr-anchor", "lilsr-fit", "l0-fit", "authors-kd", "l0-mask"}  # l0-mask: λ_d 0.01, for the figures


@pytest.mark.parametrize("slug, variant, threshold", [
    ("baseline", "baseline", None), ("l0-mask", "baseline", 150.0), ("l0-act", "l0", None),
    ("l0-mask-l0-act", "l0", 150.0), ("de-l0-act", "de-l0", None), ("inv-de-l0-act", "inv-de-l0", None),
    ("l0-act-x2", "l0x2", None), ("l0-act-x3", "l0x3", None), ("l0-mask-de-l0-act", "de-l0", 150.0),
    ("l0-mask-inv-de-l0-act", "inv-de-l0", 150.0)])
def test_condition_sets_variant_and_mask(slug, variant, threshold):
    r = load_condition(slug).recipe()
    assert (r.variant, r.threshold) == (variant, threshold)
    assert r.lambda_d == 0.01 and r.max_steps == 60  # everything else is tiny.yaml's


def test_ranking_activation_follows_the_variant():
    assert load_condition("baseline").recipe().activation == "relu"
    assert load_condition("de-l0-act").recipe().activation == "relu"      # ℓ0 on FLOPS only
    assert load_condition("inv-de-l0-act").recipe().activation == "l0"    # ℓ0 on ranking only
    assert load_condition("l0-act-x3").recipe().activation == "l0x3"


def test_condition_changes_seeds_and_bad_files(tmp_path):
    r = load_condition("l0-mask").recipe(7, threshold=50.0, lambda_d=0.1)
    assert (r.threshold, r.lambda_d, r.seed) == (50.0, 0.1, 7)
    assert load_condition("l0-act").recipe(threshold=50.0).threshold is None  # no mask: t ignored
    assert load_condition("baseline").run_seeds() == (42, 43, 44)  # declared in its file
    assert load_condition("lilsr").run_seeds() == (42,)  # none declared: the training recipe's own
    assert load_condition("baseline").run_seeds((1, 2)) == (1, 2)  # SEEDS= overrides
    with pytest.raises(InputError, match="unknown condition 'l0-mask-x9'"):
        load_condition("l0-mask-x9")
    bad = tmp_path / "bad.yaml"
    for text, needle in (("id: bad\ntrain: recipes/train/tiny.yaml\nsett: {}\n", ":3: sett: unknown key"),
                         ("id: bad\ntrain: recipes/train/tiny.yaml\nset: {lamda_d: 1}\n", ":3: set: 'lamda_d' is not"),
                         ("id: bad\ntrain: recipes/train/tiny.yaml\nset: {lambda_d: -1}\n", ":3: set: must be"),
                         ("id: other\ntrain: recipes/train/tiny.yaml\n", ":1: id: 'other' differs"),
                         ("id: bad\ntrain: recipes/train/nope.yaml\n", ":2: train: recipes/train/nope.yaml not found"),
                         ("id: bad\ntrain: recipes/train/tiny.yaml\nseeds: [1, 1]\n", ":3: seeds: must be a list"),
                         ("id: bad\ntrain: recipes/train/tiny.yaml\nevaluate: [scifact]\nexpected: {cacm: {nDCG@10: 0.3}}\n",
                          ":4: expected: datasets ['cacm'] are not evaluated")):
        bad.write_text(text)
        with pytest.raises(InputError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            load_condition(bad)


def test_figure_points_are_conditions_with_one_field_changed():
    study = load_study("figures")
    points = [c for c in study.conditions.values() if c.swept]
    assert len(points) == len(study.conditions) == 26
    lam = [c for c in points if c.swept[0] == "lambda_d"]
    thr = [c for c in points if c.swept[0] == "threshold"]
    assert {c.base.id for c in lam} == {"baseline", "l0-mask", "l0-act", "l0-mask-l0-act"} and len(lam) == 20
    assert {c.base.id for c in thr} == {"l0-mask", "l0-mask-l0-act"} and len(thr) == 6
    assert all(set(c.expected) == {"scifact"} and c.seeds == (42, 43, 44) for c in points)
    assert all(len(c.changes) == 1 for c in lam) and all(c.changes["lambda_d"] == 1 for c in thr)
    # a point's model is its condition file's with one field set: the λ 0.01 point is the condition's own model, and
    # the t sweep's t 150 (at λ_d 1) is the λ sweep's λ_d 1 point
    assert study.conditions["lambda.l0-mask.0.01"].recipe(42) == load_condition("l0-mask").recipe(42)
    assert study.conditions["threshold.l0-mask.150"].recipe(43) == study.conditions["lambda.l0-mask.1"].recipe(43)
    smoke = jobs(study, get_scale("smoke"), None)
    assert {float(c.swept[1]) for c, _ in smoke} == {0.01, 0.1, 50.0, 150.0} and len(smoke) == 4 * 2 + 2 * 2


def test_scale_overrides_reach_the_effective_recipe():
    r = Ablator(get_scale("smoke")).recipe(load_condition("l0-mask-l0-act"), 42, lambda_d=0.1)
    assert (r.max_steps, r.max_length, r.warmup_T, r.lambda_d, r.threshold) == (3, 64, 1, 0.1, 150.0)
    full = Ablator(get_scale("full")).recipe(load_condition("baseline"), 42)
    assert (full.max_steps, full.max_length) == (60, 128)  # full keeps the recipe's steps
    with pytest.raises(ValueError, match="unknown scale"):
        get_scale("medium")


def test_hash_keys_the_effective_recipe(tmp_path):
    a = _recipe()
    assert recipe_hash(a) == recipe_hash(_recipe()) and len(recipe_hash(a)) == 12
    assert recipe_hash(a) == recipe_hash(a.replace(path=tmp_path / "elsewhere.yaml"))  # where the file lives: no
    assert recipe_hash(a) != recipe_hash(a.replace(lambda_d=0.02))
    assert recipe_hash(a) != recipe_hash(a.replace(threshold=None))


def test_trained_models_are_keyed_by_what_they_are_trained_from(tmp_path, scifact_dir):
    """The cache folder of a trained model changes with any recipe field *and* with the training file's content
    (a re-mined file never serves a stale model), but not with where the file or the recipe lives."""
    from train.cache import training_key

    data = write_training_file(tmp_path / "train.jsonl", scifact_dir)
    a = _recipe(data)
    key = training_key(a)
    assert model_dir("l0-act", a, tmp_path) == tmp_path / "l0-act" / key / "model"
    assert training_key(a.replace(lambda_d=0.02)) != key and training_key(a.replace(seed=7)) != key
    # a field added later is out of the key at the default that trains as before, in it at any other value
    assert training_key(a.replace(query_anchor=0.0)) == key and training_key(a.replace(query_anchor=0.5)) != key
    moved = tmp_path / "elsewhere" / "train.jsonl"
    moved.parent.mkdir()
    moved.write_bytes(data.read_bytes())
    assert training_key(a.replace(data=moved, path=tmp_path / "r.yaml")) == key
    write_training_file(data, scifact_dir, score=lambda q, i: 9.0 - i)  # same path, other teacher scores
    assert training_key(a) != key
    with pytest.raises(InputError, match="training file not found"):
        training_key(a.replace(data=tmp_path / "missing.jsonl"))


def test_finished_model_dir_is_reused_without_training(tmp_path, monkeypatch, scifact_dir):
    import train.cache
    import train.export

    recipe = _recipe(write_training_file(tmp_path / "train.jsonl", scifact_dir))
    done = model_dir("baseline", recipe, tmp_path)
    done.mkdir(parents=True)
    (done / train.export.MODEL_METADATA).write_text("{}")
    monkeypatch.setattr(train.cache, "train", lambda *a, **k: pytest.fail("retrained a finished model"))
    from train.cache import train_cached

    assert train_cached("baseline", recipe, tmp_path) == done


def test_a_model_another_process_is_training_is_waited_for_not_trained_twice(tmp_path, monkeypatch, scifact_dir):
    """Two runners needing the same model (make ablation beside make lilsr): the second waits on the first's lock and
    then reuses what it trained."""
    import fcntl
    import threading

    import train.cache
    import train.export

    recipe = _recipe(write_training_file(tmp_path / "train.jsonl", scifact_dir))
    out = model_dir("baseline", recipe, tmp_path)
    monkeypatch.setattr(train.cache, "train", lambda *a, **k: pytest.fail("trained a model another process trained"))
    out.parent.mkdir(parents=True)
    returned = []
    with open(out.parent / "train.lock", "a") as held:  # the other process, training
        fcntl.flock(held, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: returned.append(train.cache.train_cached("baseline", recipe, tmp_path)))
        waiter.start()
        waiter.join(timeout=2.0)
        assert waiter.is_alive() and not returned  # waiting, not training
        out.mkdir()
        (out / train.export.MODEL_METADATA).write_text("{}")  # the other process finishes
        fcntl.flock(held, fcntl.LOCK_UN)
    waiter.join(timeout=30)
    assert returned == [out]


# ---- tables and slices -----------------------------------------------------------------------------------------------

def test_table_puts_seed_means_beside_the_paper_and_bm25():
    """Table 2's cells: each condition's mean and sd over its seeds, Δ BM25 on each dataset in points, the paper's
    value as an annotation, and a FAIL where a checked mean misses its condition's expectation."""
    study = load_study("table2")
    datasets = ["scifact", "cacm"]
    runs = {c: [Run(c, seed, {"scifact": {"nDCG@10": 0.5 + i / 100 + d, "FLOPS": 1.0 + i, "Doc_Len": 10.0 * (i + 1)},
                               "cacm": {"nDCG@10": 0.25 + d}})
                for seed, d in ((42, 0.0), (43, 0.02))]
            for i, c in enumerate(study.tables[0].rows)}
    references = {(d, r): {"nDCG@10": v} for (d, r), v in {("scifact", "bm25-flat"): 0.6, ("cacm", "bm25-flat"): 0.3,
                                                         ("scifact", "minilm-l6.dense"): 0.62,
                                                         ("cacm", "minilm-l6.dense"): 0.2}.items()}
    seconds = {c: {"train_s": 0.0, "eval_s": 0.0} for c in runs}
    t = build_tables(study, runs, references, datasets, False, seconds).set_index("system")
    assert list(t.index) == ["baseline", "l0-mask", "l0-act", "l0-mask-l0-act"]
    assert t.at["l0-act", "scifact nDCG@10"] == pytest.approx(0.53)
    assert t.at["l0-act", "scifact nDCG@10 sd"] == pytest.approx(0.014142, abs=1e-6)
    assert t.at["l0-act", "seeds"] == "42 43" and t.at["l0-act", "scifact Doc_Len"] == 30.0
    assert t.at["l0-act", "cacm nDCG@10"] == pytest.approx(0.26) and t.at["l0-act", "cacm nDCG@10 Δ BM25"] == -4.0
    assert t.at["l0-act", "scifact nDCG@10 Δ BM25"] == -7.0
    assert t.at["l0-act", "paper nDCG@10"] == 49.97
    assert (t["check"] == "").all()
    checked = build_tables(study, runs, references, datasets, True, seconds).set_index("system")
    assert (checked["check"] == "FAIL").all() and "scifact: nDCG@10" in checked.at["baseline", "check_detail"]


def test_slice_keeps_judged_queries_their_relevant_docs_and_a_prefix():
    docs = [Doc(f"d{i}", f"text {i}") for i in range(10)]
    ds = Dataset("toy", queries={"q1": "a", "q2": "b", "q3": "c"},
                 qrels={"q1": {"d8": 1}, "q2": {"d9": 0}, "q3": {"d5": 2, "d1": 0}}, docs=lambda: iter(docs))
    s = slice_dataset(ds, queries=5, docs=2)
    assert list(s.queries) == ["q1", "q3"]  # q2 has no relevant document
    assert [d.doc_id for d in s.docs()] == ["d0", "d1", "d5", "d8"] and s.num_docs == 4
    assert s.name == "toy-q5-d2"  # the size is in the name: slices never share cached artifacts
    assert slice_dataset(ds, None, None) is ds


# ---- end to end ------------------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_smoke_run_writes_tables_and_figures(tmp_path, scifact_dir, monkeypatch, capsys):
    """The condition files at a one-step scale on a SciFact slice, through the same code make ablation runs: the Table 2
    study (four conditions, two seeds) and the figures; every file kit-results/1, every stored number re-derived."""
    from train.conditions import load_condition as lc

    monkeypatch.setenv("KIT_WORK", str(tmp_path / "work"))
    data = lc("baseline").recipe().data
    stage_mined_file(data, scifact_dir, n_queries=4, docs_each=3, score=lambda q, i: 9.0 - 3 * i)
    scale = Scale("test", max_steps=1, max_length=32, batch_size=2, eval_max_length=32, queries=3, docs=20,
                  zero_shot=(), lambdas=(0.01,), thresholds=(50.0, 150.0), checked=False, seeds=(42,))
    study = load_study("table2")
    ablator = Ablator(scale, root=tmp_path / "work" / "ablation", in_domain=study.in_domain, measures=study.measures)
    out = tmp_path / "results"
    code = run_study(study, study_measured(study, ablator, (42, 7)), out, "python -m eval.study table2 --scale test",
                     ablator.timer)
    assert code == 0
    table = pd.read_csv(out / "table2.csv")
    assert list(table["system"]) == ["baseline", "l0-mask", "l0-act", "l0-mask-l0-act"]
    assert (table["seeds"] == "42 7").all() and table["scifact nDCG@10 sd"].notna().all()
    assert table[["scifact nDCG@10", "scifact FLOPS", "scifact Doc_Len", "paper nDCG@10",
                  "scifact nDCG@10 Δ BM25"]].notna().all().all()
    assert "4.4M-parameter" in (out / "table2.md").read_text() and "BM25" in (out / "table2.md").read_text()
    prov = json.loads((out / "table2.json").read_text())
    assert prov["scale"] == "test" and "commit" in prov and prov["seeds"]["baseline"] == [42, 7]
    # where the run's time went: training, encoding, indexing and search, printed and stored
    assert {"train (mine data, train; cached)", "encode docs", "index", "search"} <= set(prov["stage_seconds"])
    assert "stage wall time (s): " in capsys.readouterr().out
    # ... and on which machine kind: the CPU, its vector unit and its cores, in the JSON and beside the wall times
    from eval.provenance import machine_line

    machine = prov["machine"]
    assert machine["cpu"] and machine["cpu_capability"] and machine["cpu_count"] >= 1
    assert isinstance(machine["bf16_matrix_units"], bool) and machine_line(machine)
    from report.compare import check
    from eval.schema import load_results

    stored = load_results(out / "table2.json")  # kit-results/1 with per-query values, so compare can use it
    systems = {r["system"] for r in stored.rows}
    assert {"baseline", "baseline@seed42", "baseline@seed7", "bm25-flat", "minilm-l6.dense"} <= systems
    pq = stored.per_query
    assert set(pq.loc[pq["measure"] == "nDCG@10", "query_id"]) == set(ablator.dataset("scifact").queries)
    # FLOPS per query and Doc_Len per document (the seeds' mean only), so sparsity is tested item by item too
    assert set(pq.loc[pq["measure"] == "FLOPS", "query_id"]) == set(ablator.dataset("scifact").queries)
    docs = {d.doc_id for d in ablator.dataset("scifact").docs()}
    assert set(pq.loc[(pq["measure"] == "Doc_Len") & (pq["system"] == "l0-act"), "query_id"]) == docs
    assert pq.loc[pq["measure"] == "Doc_Len", "system"].str.contains("@seed").sum() == 0
    assert check([out / "table2.json"]) == []  # every stored number (FLOPS and Doc_Len too) is its per-item mean
    # the verdicts come from the tests: the table's claims and Section 5.2's sentences on SciFact, 4 rows against BM25
    claims = pd.DataFrame(prov["claims"])
    assert claims.groupby("family").size().to_dict() == {"table2 (comparable FLOPS)": 10, "table2 vs BM25": 4}
    for _, family in claims.groupby("family"):
        assert family["p_holm"].tolist() == pytest.approx(holm(family["p"].tolist()))
    assert set(claims["verdict"]) <= {"reproduced", "opposite", NOT_DISTINGUISHABLE, ONE_SEED, NO_EFFECT, EQUIVALENT,
                                      "differs (significantly higher)", "differs (significantly lower)"}
    assert sum(prov["claim_counts"].values()) == 14
    assert "## Comparisons" in (out / "table2.md").read_text()
    # run again from the caches alone (a resumed `make ablation`): the same per-query file, row for row, as the run
    # that computed everything (Doc_Len per document once came back in corpus order fresh, sorted from the cache)
    again = tmp_path / "again"
    resumed = Ablator(scale, root=tmp_path / "work" / "ablation", in_domain=study.in_domain, measures=study.measures)
    assert run_study(study, study_measured(study, resumed, (42, 7)), again, "again") == 0
    assert gzip.decompress((again / "per-query" / "table2.csv.gz").read_bytes()) == \
        gzip.decompress((out / "per-query" / "table2.csv.gz").read_bytes())

    # the λ sweep at the recipe's λ and t reuses the table's seed-42 baseline; its ℓ0 rows are calibrated to other
    # λ_d, so the sweep trains its three ℓ0 points, and the t sweep (at λ_d 1) four more
    import train.cache

    trained = []
    real = train.cache.train
    monkeypatch.setattr(train.cache, "train", lambda r, o, **k: trained.append(o) or real(r, o, **k))
    fig = load_study("figures")
    sweeper = Ablator(scale, root=tmp_path / "work" / "ablation", in_domain=fig.in_domain, measures=fig.measures)
    assert run_study(fig, study_measured(fig, sweeper, None), out, "python -m eval.study figures --scale test") == 0
    assert len(trained) == 7
    for n in (1, 2, 3):
        assert (out / "figures" / f"figure{n}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = pd.read_csv(out / "figures.csv")
    assert len(points) == 4 + 4 and set(points["table"]) == {"lambda", "threshold"}
    bm25 = json.loads((out / "figures.json").read_text())
    bm25 = next(r["metrics"]["nDCG@10"] for r in bm25["rows"] if r["system"] == "bm25-flat")
    assert points["scifact nDCG@10 Δ BM25"].tolist() == pytest.approx(
        [round(100 * (v - bm25), 2) for v in points["scifact nDCG@10"]])
    assert "| scifact nDCG@10 Δ BM25 |" in (out / "figures.md").read_text()
    assert check([out / "figures.json"]) == []


def test_figures_draw_a_collapsed_run_with_an_x(tmp_path, monkeypatch):
    """The figures study's plots: one line per method, BM25 and MiniLM as reference lines on the nDCG@10 plots only,
    a collapsed point (Doc_Len < 1) drawn as an x."""
    from matplotlib.axes import Axes

    study = load_study("figures")
    base = {"lambda": {0.01: (0.5, 120.0), 0.1: (0.5, 120.0), 1: (0.5, 120.0), 10: (0.5, 120.0), 100: (0.5, 0.25)},
            "threshold": {50: (0.45, 1.0), 100: (0.5, 75.0), 150: (0.55, 150.0)}}  # Doc_Len 1: not collapsed
    runs = {}
    for sweep in study.sweeps:
        for pid, method, value in sweep.points():
            ndcg, doc_len = base[sweep.id][value]
            runs[pid] = [Run(pid, 42, {"scifact": {"nDCG@10": ndcg, "FLOPS": 1.0 / float(value), "Doc_Len": doc_len}})]
    drawn: list[tuple[float, str]] = []  # (y, marker) of every single-point marker drawn
    real_plot = Axes.plot

    def spy(self, *args, **kwargs):
        if "marker" in kwargs:
            drawn.append((float(args[1][0]), kwargs["marker"]))
        return real_plot(self, *args, **kwargs)

    lines: list[tuple[float, str]] = []  # (y, label) of every reference line
    real_axhline = Axes.axhline
    monkeypatch.setattr(Axes, "plot", spy)
    monkeypatch.setattr(Axes, "axhline", lambda self, y, **kw: lines.append((y, kw["label"])) or
                        real_axhline(self, y, **kw))
    references = {("scifact", "bm25-flat"): {"nDCG@10": 0.6789}, ("scifact", "minilm-l6.dense"): {"nDCG@10": 0.6239}}
    paths = draw_plots(study, runs, references, tmp_path)
    assert [p.name for p in paths] == ["figure1.png", "figure2.png", "figure3.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    # BM25 and MiniLM beside the learned points on both nDCG@10 figures (1 and 3), not on Figure 2 (Doc_Len)
    labels = [r.label for r in study.references]
    assert lines == [(0.6789, f"{labels[0]} 0.6789"), (0.6239, f"{labels[1]} 0.6239")] * 2
    # Figure 1: 20 points at 0.5; Figure 2: 4 methods x (4 at Doc_Len 120, one collapsed at 0.25); Figure 3: 6. A
    # collapsed model is an x wherever it is drawn (λ_d 100: at nDCG@10 0.5 in Figure 1, at Doc_Len 0.25 in Figure 2)
    assert sorted(d for d in drawn if d[1] == "x") == [(0.25, "x")] * 4 + [(0.5, "x")] * 4
    assert len(drawn) == 20 + 20 + 6 and sorted(y for y, _ in drawn[40:]) == [0.45, 0.45, 0.5, 0.5, 0.55, 0.55]


def test_measure_overrides_are_validated_recipe_fields():
    from kit.errors import InputError

    assert ablation.parse_changes(["lambda_d=0.1", "threshold=null", "max_steps=150"]) == \
        {"lambda_d": 0.1, "threshold": None, "max_steps": 150}
    with pytest.raises(InputError, match="expected FIELD=VALUE"):
        ablation.parse_changes(["lamda_d=0.1"])
    with pytest.raises(InputError, match="teacher_scale"):
        ablation.parse_changes(["teacher_scale=-1"])


def test_measure_without_a_row_is_one_line_exit_2(capsys):
    assert ablation.main(["measure", "--scale", "smoke"]) == 2
    assert "measure needs a condition" in capsys.readouterr().err


def test_list_conditions_and_dry_run_print_the_commands(capsys, tmp_path, monkeypatch):
    from eval.study.__main__ import main as study

    monkeypatch.setenv("KIT_WORK", str(tmp_path))
    assert study(["table3", "--list-conditions", "--seeds", "42,43"]) == 0
    out = capsys.readouterr().out
    assert out.count("seeds 42, 43;") == 9 and "l0-mask-inv-de-l0-act: l0-mask-inv-de-l0-act;" in out
    assert study(["figures", "--list-conditions"]) == 0
    assert "threshold.l0-mask.50: l0-mask with {'lambda_d': 1.0, 'threshold': 50.0}; seeds 42, 43, 44;" in capsys.readouterr().out
    # make ablation TABLES=2: Table 2's four conditions only; the smoke scale trains one seed unless SEEDS= says otherwise
    assert study(["table2", "--dry-run", "--seeds", "42,43,44"]) == 0
    out = capsys.readouterr().out
    assert out.count("[to train]") + out.count("[cached]") == 12 and "de-l0-act" not in out
    assert study(["table2", "--scale", "smoke", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("seed 43") == 0
    assert study(["table4"]) == 2
    assert "unknown study 'table4'" in capsys.readouterr().err
    assert ablation.main(["measure", "l0-mask", "--dry-run"]) == 0
    assert "python -m eval.ablation measure l0-mask --seed 42 --scale full" in capsys.readouterr().out
