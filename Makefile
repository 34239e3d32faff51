# Two entry points that work on a fresh machine with Python 3.11+:
#   make demo   set up and run the main job on the embedded default (SQLite + local sink)
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test bench bench-observability clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/connectorctl demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/pipeline_overhead.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/bulk_send.py
	$(BIN)/python benchmarks/ratelimit_acquire.py

bench-observability: setup
	$(BIN)/python benchmarks/observability.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
