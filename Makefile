# Fanout: the two commands a newcomer needs are `make demo` and `make test` (see README.md).
# Both set everything up from scratch: a .venv with the pinned Python packages, and Azurite from npm.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: setup demo test lint format clean bench

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The main job: the example pipeline, end to end, on Azurite and local agents.
demo: setup
	rm -rf fanout-outputs
	$(BIN)/fanout run examples/iris-batch-prediction/pipeline.yml --outputs-dir fanout-outputs
	@test -s fanout-outputs/batch_prediction/outputs/job_output_file/predictions.csv \
		|| { echo "make demo: the run wrote no predictions" >&2; exit 1; }
	@echo "Predictions: fanout-outputs/batch_prediction/outputs/job_output_file/predictions.csv"
	@echo "Model:       fanout-outputs/train_model/outputs/model_output/"
	@echo "Logs:        fanout-outputs/<job>/logs/ (start with job_result.txt)"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The whole suite: lint, types, then every test (the session starts its own Azurite).
test: lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks run on demand only (never in CI); each prints its figure next to a baseline.
bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .fanout .mypy_cache .ruff_cache .pytest_cache
