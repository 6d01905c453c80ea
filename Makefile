VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast check setup bench-qwen bench-bfcl clean

run: setup
	$(VENV)/bin/lector serve

test: check
	$(VENV)/bin/pytest -q --durations=15

# Everything but the tests that load a model, drive a browser, use the sandbox or build the wheel.
test-fast: check
	$(VENV)/bin/pytest -q -m "not model and not browser and not sandbox and not install"

# Lint, format, types (the package and its tests) and the layers contract (.importlinter).
check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy -p lector -p tests
	$(VENV)/bin/lint-imports

bench-qwen: setup
	bash bench/setup_qwen_agent.sh
	$(PY) -m bench.vs_qwen_agent

bench-bfcl: setup
	bash bench/setup_bfcl.sh
	$(PY) -m bench.bfcl

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/system-deps.sh
	bash scripts/system-deps.sh
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[models,transformers,dev]'
	$(VENV)/bin/lector sandbox setup
	touch $(STAMP)

clean:
	rm -rf $(VENV)
