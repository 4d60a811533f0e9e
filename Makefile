# Thin wrapper: each target is one `python -m <stage>` call. See README.md.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.setup-$(shell cat requirements.txt pyproject.toml | md5sum | cut -c1-12)

.PHONY: setup chromium class-archive test reproduce-table1 bench ablation figures regime teachers compare report lilsr study adapt regenerate

setup: $(STAMP) chromium class-archive

# Debian's chromium for the report's browser test and screenshot (report.site); idempotent, skipped with a note when
# it cannot be installed (not root, no apt-get, no network): the test then skips itself.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } || \
	    echo "note: apt-get could not install chromium; the report's browser test will be skipped"; \
	  else echo "note: chromium not installed (needs root and apt-get); the report's browser test will be skipped"; fi; }

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (fix: install Python 3.11 or run make PY=python3)"; exit 2; }
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PYTHON) -c "import kit.java as j; print('java:', j.java_executable()); print('anserini:', j.anserini_jar())"
	rm -f $(VENV)/.setup-* && touch $@

# The JVM class-data archive of the Anserini jar (kit/java.py): every Anserini call starts in about half the time.
# Kept in the environment, rebuilt when the runtime or the jar changes; without it everything runs, only slower.
class-archive: $(STAMP)
	@$(PYTHON) -m index class-archive || echo "note: no class-data archive; Anserini calls start slower"
	@$(PYTHON) -m index server || echo "note: no Anserini server (needs javac); long targets start a JVM per Anserini call"

# The suite in TEST_WORKERS processes (pytest-xdist), one test module each, so the module's fixtures are built once:
# most tests wait on a JVM or a subprocess, and two workers keep both cores busy. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: setup
	$(PYTHON) -m pytest -q $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

# make reproduce-table1 [DATASETS=all|nanobeir|scifact,nfcorpus] [MODEL=<hub id or dir>] [ACTIVATION=relu|l0] [IDF=corpus]
#                       [DEVICE=cuda] [FORCE=1] [UPDATE=1] [DRY_RUN=1]
# The study recipes/studies/table1.yaml (python -m eval.study table1; systems in recipes/table1.yaml).
# Writes work/results/table1.*; UPDATE=1 writes the stored reference results/table1.* instead.
reproduce-table1: setup
	$(PYTHON) -m eval.study table1 \
	  $(if $(DATASETS),--datasets $(DATASETS)) $(if $(MODEL),--model $(MODEL)) \
	  $(if $(ACTIVATION),--activation $(ACTIVATION)) $(if $(IDF),--idf $(IDF)) $(if $(DEVICE),--device $(DEVICE)) \
	  $(if $(FORCE),--force) $(if $(UPDATE),--update) $(if $(DRY_RUN),--dry-run)

# Benchmarks print ratios measured in one run and write results/bench/*.json (not part of `make test`).
bench: setup
	$(PYTHON) -m bench.encode_docs
	$(PYTHON) -m bench.query_encoding
	$(PYTHON) -m bench.retrieval
	$(PYTHON) -m bench.jvm_start
	$(PYTHON) -m bench.seismic
	$(PYTHON) -m bench.train_step
	$(PYTHON) -m bench.e2e
	$(PYTHON) -m bench.summary

# Paper Tables 2-3 and Figures 1-3 (Section 5.3), the study files recipes/studies/{table2,table3,figures}.yaml: one
# SPLADE-tiny per condition (recipes/conditions/*.yaml, or a sweep's point) and seed, trained and cached under
# work/ablation/ (the SciFact training file is mined first when missing). SCALE=smoke: a few steps on a SciFact slice, to
# check the pipeline; SCALE=full: the recipe's steps, SciFact + vaswani + cacm. Results go to work/results/ (UPDATE=1:
# the stored results/).
SCALE ?= full
COMMA := ,
# their Anserini calls go to one JVM per process when `make setup` compiled the server (kit/java.py); KIT_ANSERINI_SERVER=0 turns it off
SERVER = KIT_ANSERINI_SERVER=$(or $(KIT_ANSERINI_SERVER),auto)
# the work directory (KIT_WORK when set, as kit/paths.py reads it) and the training file mined into it
WORK = $(or $(KIT_WORK),work)
TRAIN_FILE = $(WORK)/train/scifact-train.bm25-neg7.minilm+splade-tiny.jsonl

$(TRAIN_FILE): | setup
	$(PYTHON) -m train.data mine-offline

# Tables 2-3 are the study files recipes/studies/table2.yaml and table3.yaml (TABLES=2 or TABLES=3: one of them).
TABLES ?= 2 3
ablation: setup $(TRAIN_FILE)
	@for n in $(subst $(COMMA), ,$(TABLES)); do \
	  case $$n in 2|3) ;; *) echo "error: TABLES=$(TABLES): the ablation tables are 2 and 3 (fix: TABLES=2, 3 or \"2 3\")" >&2; exit 2;; esac; \
	  $(SERVER) $(PYTHON) -m eval.study table$$n --scale $(SCALE) $(if $(SEEDS),--seeds $(SEEDS)) \
	    $(if $(UPDATE),--update) $(if $(DRY_RUN),--dry-run) || exit $$?; \
	done

figures: setup $(TRAIN_FILE)
	$(SERVER) $(PYTHON) -m eval.study figures --scale $(SCALE) $(if $(UPDATE),--update) $(if $(DRY_RUN),--dry-run)

# Any study file (recipes/studies/<id>.yaml or a path; format in docs/studies.md): its conditions x seeds trained
# (cached, resumable), its tables and comparisons -> work/results/<id>.* (UPDATE=1: results/). REPLAY=<record>: re-derive
# from that record's measurements instead of training.
study: setup $(TRAIN_FILE)
	@test -n "$(STUDY)" || { echo "error: make study needs STUDY=<id or file> (fix: python -m eval.study --list)"; exit 2; }
	$(SERVER) $(PYTHON) -m eval.study $(STUDY) --scale $(SCALE) $(if $(SEEDS),--seeds $(SEEDS)) \
	  $(if $(REPLAY),--replay $(REPLAY)) $(if $(UPDATE),--update) $(if $(DRY_RUN),--dry-run)

# A FLOPS-dominated regime (recipes/studies/regime.yaml: Table 2's conditions at lambda_d 1, seeds 42-44, SciFact test):
# are the l0 rows sparser than the baseline there? Loss terms, seed means and paired tests -> work/results/regime.*
# (UPDATE=1: results/).
regime: setup $(TRAIN_FILE)
	$(SERVER) $(PYTHON) -m eval.study regime --scale $(SCALE) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(UPDATE),--update) $(if $(DRY_RUN),--dry-run)

# The teacher ceiling (recipes/studies/teachers.yaml): each teacher, min-max fusions of them and the kit's l0 student on
# SciFact train and test, with the student's paired differences -> work/results/teachers.* (UPDATE=1: results/).
teachers: setup $(TRAIN_FILE)
	$(PYTHON) -m eval.study teachers $(if $(SEEDS),--seeds $(SEEDS)) $(if $(UPDATE),--update) $(if $(DRY_RUN),--dry-run)

# Every stored study run again from its study file into work/regenerate/ (KIT_WORK's when set; models trained on demand
# and cached), then compared with its stored record number by number (python -m report.compare --same); results/ is
# not written. STUDIES=table1,regime: some of them. Exits 1 naming each study that failed or differs.
STUDIES ?= $(sort $(basename $(notdir $(wildcard recipes/studies/*.yaml))))
REGENERATED = $(WORK)/regenerate
regenerate: setup $(TRAIN_FILE)
	@failed=; for s in $(subst $(COMMA), ,$(STUDIES)); do \
	  echo "== $$s"; \
	  $(SERVER) $(PYTHON) -m eval.study $$s --out $(REGENERATED) && \
	  $(PYTHON) -m report.compare --same $(REGENERATED)/$$s.json || failed="$$failed $$s"; \
	done; test -z "$$failed" || { echo "regenerate: failed or differs from results/:$$failed" >&2; exit 1; }

# Compare a new system with the stored results (deltas, paired t-test + Wilcoxon, Holm, win/tie/loss), or re-verify them:
# make compare RUN=my.trec DATASET=scifact | METRICS=my-system.json | RECIPE=recipes/x.yaml | WITHIN=results/table2.json
# | CHECK=1 (every number of every file in results/ and docs/, report/check.py) | SAME=work/results/x.json (whether a
# rerun holds the stored record's numbers bit for bit, report/same.py). Without a side: the check, then Tables
# 2-3's conditions against their Baseline row. A failed check: python -m report.compare --check exits 1, make says Error 1
# and exits 2.
COMPARE_SIDE = $(or $(RUN),$(METRICS),$(RECIPE),$(WITHIN),$(CHECK),$(SAME))
compare: setup
ifeq ($(strip $(COMPARE_SIDE)),)
	$(PYTHON) -m report.compare --check
	$(PYTHON) -m report.compare --within results/table2.json
	$(PYTHON) -m report.compare --within results/table3.json
else
	$(PYTHON) -m report.compare $(if $(RUN),--run $(RUN) --dataset $(or $(DATASET),scifact)) \
	  $(if $(METRICS),--metrics $(METRICS)) $(if $(RECIPE),--recipe $(RECIPE)) $(if $(WITHIN),--within $(WITHIN)) \
	  $(if $(BASELINE),--baseline $(BASELINE)) $(if $(CHECK),--check) $(if $(SAME),--same $(SAME))
endif

# Static HTML report of everything in results/ (work/report/index.html and a screenshot, not stored);
# README_SCREENSHOT=1 also replaces the README's docs/report.png.
report: setup
	$(PYTHON) -m report.site --screenshot $(if $(README_SCREENSHOT),--readme-screenshot)

# Li-LSR learned query weights vs BoW x IDF (the study recipes/studies/lilsr.yaml: SciFact test, vaswani, cacm); the
# models are the conditions l0-mask-l0-act, lilsr and lilsr-anchor at each of the study's seeds (SEEDS=42,43 overrides;
# cached and resumable per condition-seed); writes work/results/lilsr.* (UPDATE=1: results/). Seismic vs Anserini on
# the same vectors: python -m bench.seismic (make bench).
lilsr: setup $(TRAIN_FILE)
	$(SERVER) $(PYTHON) -m eval.study lilsr $(if $(SEEDS),--seeds $(SEEDS)) $(if $(UPDATE),--update) $(if $(DRY_RUN),--dry-run)

# An l0 student for a corpus alone (train.adapt; docs/adapt.md): pseudo-queries cut from its documents, labelled by the
# BM25 + MiniLM + SPLADE-tiny ensemble, recipes/train/adapt.yaml. CORPUS: a BEIR-layout folder holding corpus.jsonl, or
# vaswani / cacm; OUT: the model folder to write (default: the cached one, printed); SCALE=smoke: a few steps.
adapt: setup
	@test -n "$(CORPUS)" || { echo "error: make adapt needs CORPUS=<folder holding corpus.jsonl> (fix: make adapt CORPUS=path/to/corpus)" >&2; exit 2; }
	$(PYTHON) -m train.adapt --corpus $(CORPUS) --scale $(SCALE) $(if $(OUT),--out $(OUT)) $(if $(SEED),--seed $(SEED))
