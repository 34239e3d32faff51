# Two entry points that work on a fresh machine with Python 3.11+:
#   make demo   set up and run the main job on the embedded default (SQLite + local sink)
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# System packages the tests need, installed with apt-get (as root, else through sudo) when a command is missing:
#   gnome-keyring, dbus, libsecret-tools: the credential tests run the real Secret Service on a private D-Bus
#   postgresql: the storage tests also run on a PostgreSQL server they start (initdb/pg_ctl live in
#     /usr/lib/postgresql/<v>/bin, off PATH; the package's pg_ctlcluster is on PATH, so it is the check)
# Add a service here as "command:package" (e.g. a database server the tests start themselves).
TEST_SYSTEM_DEPS := gnome-keyring-daemon:gnome-keyring dbus-daemon:dbus secret-tool:libsecret-tools pg_ctlcluster:postgresql

.PHONY: setup system-deps lint demo test bench bench-observability clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/connectorctl demo

system-deps:
	@missing=""; for dep in $(TEST_SYSTEM_DEPS); do \
	  command -v "$${dep%%:*}" >/dev/null 2>&1 || missing="$$missing $${dep#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then echo "make: please install:$$missing (the tests need them)" >&2; exit 1; fi; \
	  echo "installing system packages the tests need:$$missing" >&2; \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

test: setup system-deps lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check connectorctl
	$(BIN)/ruff format --check connectorctl
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/pipeline_overhead.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/bulk_send.py
	$(BIN)/python benchmarks/ratelimit_acquire.py

bench-observability: setup
	$(BIN)/python benchmarks/observability.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
