# Everything a fresh machine needs: `make demo` runs the end-to-end job, `make test` the tests.
# Both create the virtual environment themselves. torch is pinned to the CPU build first, so no
# later resolver step can pull a multi-GB CUDA wheel.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[train,dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/python scripts/demo.py

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-fast: setup
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

bench: setup
	$(BIN)/python bench/run_all.py

lint: setup
	$(BIN)/python -m ruff check tunix_rt plugins
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .pytest_cache demo-output
