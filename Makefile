VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup lint bench bench-qwen clean

run: setup
	$(VENV)/bin/lector serve

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy -p lector
	$(VENV)/bin/pytest -q

bench-qwen: setup
	bash bench/setup_qwen_agent.sh
	$(PY) -m bench.vs_qwen_agent

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
