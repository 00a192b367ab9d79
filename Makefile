# Two commands for a newcomer: `make run` (set up, materialize everything, open the UI)
# and `make test`. Every target installs what it needs into .venv by itself.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SMALL := data/raw/small
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: tools browser screenshots run serve materialize drift-today drift-demo experiment-demo terraform-schemas ablation search cold-start bless test lint bench bench-staging bench-embeddings bench-graphs bench-movielens bench-models bench-leakage bench-uncertainty bench-cost bench-gat-scale bench-serving bench-two-stage bench-drift bench-make-run data data-movielens install lock clean

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# checkov scans the Terraform; it pins libraries of its own, so it lives in a venv of its own.
TOOLS := .venv-tools
$(TOOLS)/.installed: Makefile
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet checkov==3.3.30
	touch $@

tools: $(TOOLS)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

$(SMALL)/manifest.json: $(VENV)/.installed recsys_assets/devdata/synthetic.py recsys_assets/devdata/formats.py recsys_assets/devdata/quirks.py recsys_assets/devdata/vocabulary.json
	$(PY) -m recsys_assets.devdata.synthetic --preset small --out $(SMALL) > /dev/null
	@echo "synthetic catalogue written to $(SMALL)"

data: $(SMALL)/manifest.json

materialize: install data $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m recsys_assets.defs.materialize

# BigQuery schemas Terraform reads, from recsys_assets/core/warehouse/tables.py.
terraform-schemas: install
	$(PY) -m recsys_assets.core.warehouse.tables terraform/schemas

# Drift end to end: replay shifted traffic through the API, drift metrics, sensor, retrain,
# the API on the new version (recsys_assets/devtools/drift_replay.py).
drift-demo: materialize
	$(PY) -m recsys_assets.devtools.drift_replay

# Online experiments end to end on planted versions: an A/B test the report finds better (and the
# demo promotes), then a worse treatment the sensor stops (recsys_assets/devtools/experiment_demo.py).
experiment-demo: install
	$(PY) -m recsys_assets.devtools.experiment_demo

# Train the GAT variants (features, loss, heads, layers) side by side: eval/ablation.json.
ablation: materialize
	$(PY) -m recsys_assets.defs.materialize --job ablation

# Hold items out entirely: popularity, content-only peers and the GAT on them: eval/cold_start.json.
cold-start: materialize
	$(PY) -m recsys_assets.defs.materialize --job cold_start

# Search one model's settings with Optuna (MODEL: gat, lightgcn, mf, ease, itemknn); its asset then uses them.
MODEL ?= gat
search: materialize
	$(PY) -m recsys_assets.defs.materialize --job search --partition $(MODEL)

# Make the current eval/eval.json the bar later candidates are gated against.
bless: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster job execute -m recsys_assets.definitions -j bless_eval_report

# MovieLens-100k (from the recbole wheel, not redistributed) as the 2014 dumps; prints the settings.
data-movielens: install
	$(PY) -c "from benchmarks.movielens import fetch_ml100k; print(fetch_ml100k())" | tail -1 \
	  | xargs -I{} $(PY) -m recsys_assets.devdata.movielens {} data/raw/ml-100k

# The Dagster UI (UI_PORT, 3000) and the API (API_PORT, 8000) start first; the whole graph is then
# one run of the UI's instance, followed here and in the UI (recsys_assets/devtools/live_run.py).
API_PORT ?= 8000
UI_PORT ?= 3000
run: install data $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m recsys_assets.devtools.live_run --ui-port $(UI_PORT) --api-port $(API_PORT)

# The README's pictures (docs/*.png) from a running `make run` (recsys_assets/devtools/screenshots.py).
screenshots: install browser
	$(PY) -m recsys_assets.devtools.screenshots --ui http://localhost:$(UI_PORT) --api http://localhost:$(API_PORT)

# Today's drift metrics from what the API has logged so far (the explorer's and any client's
# requests), into the same instance the UI shows; the daily schedule does yesterday's by itself.
drift-today: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster asset materialize -m recsys_assets.definitions --select drift_metrics --partition $$(date -u +%F)

# The API alone, over the last published serving version (data/artifacts/serving/manifest.json);
# API_WORKERS=N runs N processes (one per core serves the most; see the README); API_PORT=8001
# runs it beside `make run`'s.
API_WORKERS ?= 1
serve: install
	dir=$$(mktemp -d) && PROMETHEUS_MULTIPROC_DIR=$$dir \
	  RECSYS_REQUEST_ID_KEY=$${RECSYS_REQUEST_ID_KEY:-$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')} \
	  $(VENV)/bin/uvicorn --factory serving.app:create_app --host 0.0.0.0 --port $(API_PORT) --workers $(API_WORKERS)

# The explorer's browser tests and the screenshots drive Debian's chromium through Playwright
# (no browser download); installed here where apt-get can, else Playwright's own Chromium.
browser: install
	command -v chromium >/dev/null || apt-get install -y chromium || (apt-get update && apt-get install -y chromium) \
	  || $(PY) -m playwright install chromium

test: install tools browser
	$(PY) -m pytest -n 2 --dist loadgroup

lint: install tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint docker/*.Dockerfile
	$(TOOLS)/bin/checkov -d terraform --framework terraform --compact --quiet --skip-download

bench: bench-staging bench-embeddings bench-graphs bench-movielens bench-models bench-leakage bench-uncertainty bench-cost bench-gat-scale bench-serving bench-two-stage bench-drift bench-make-run

bench-staging: install
	$(PY) -m benchmarks.staging

bench-embeddings: materialize
	$(PY) -m benchmarks.embeddings all

bench-graphs: install
	$(PY) -m benchmarks.graphs

bench-movielens: install
	$(PY) -m benchmarks.movielens
	$(PY) -m benchmarks.movielens gat
	$(PY) -m benchmarks.movielens peers
	$(PY) -m benchmarks.movielens search ease itemknn mf

# The models group on a dense 1M-rating synthetic preset (the shape of MovieLens-1M).
bench-cost: install
	$(PY) -m benchmarks.cost

bench-gat-scale: install
	$(PY) -m benchmarks.gat_scale

# Needs wrk (Debian package): installed here when apt-get is usable.
bench-serving: install
	command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) -m benchmarks.serving

# The two-stage ranker's version (from bench-models' synthetic run) against its single-stage fallback.
bench-two-stage: install
	command -v wrk >/dev/null || apt-get install -y wrk
	$(PY) -m benchmarks.serving_two_stage

bench-drift: install
	$(PY) -m benchmarks.drift

# make run's wait, quiet and busy (benchmarks/make_run.py).
bench-make-run: install data
	$(PY) -m benchmarks.make_run

# Headline model numbers: 3 seeds for every model with a random initialisation.
bench-models: install data
	RECSYS_MODEL_SEEDS=3 $(PY) -m benchmarks.models synthetic
	RECSYS_MODEL_SEEDS=3 $(PY) -m benchmarks.models movielens

# The fusion's old split against the new on a sparse preset (most users 5 to 9 reviews).
bench-leakage: install
	RECSYS_MODEL_SEEDS=3 $(PY) -m benchmarks.leakage

# eval_report with and without intervals, and the bootstrap at the reference shape.
bench-uncertainty: materialize
	$(PY) -m benchmarks.uncertainty

lock: install
	head -2 requirements.lock > requirements.lock.new
	$(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/' >> requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(DAGSTER_HOME) data/artifacts
