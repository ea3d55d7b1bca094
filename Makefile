# Everything a fresh machine needs: `make demo` runs the end-to-end job, `make test` the tests.
# Both create the virtual environment themselves. torch is pinned to the CPU build first, so no
# later resolver step can pull a multi-GB CUDA wheel; the rest of the stack is pinned by constraints/demo.txt
# (pyproject's [train] extra holds ranges). `make test-tf4` runs the plugin's tests on transformers 4.57.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := constraints/demo.txt
VENV_TF4 := .venv-tf4
STAMP_TF4 := $(VENV_TF4)/.installed
# The tests that run the torch-sft plugin: its own modules, plugin discovery, the run lifecycle (train, eval, LoRA,
# FSDP and DDP under torchrun, the model card).
PLUGIN_TESTS := tests/test_torch_sft_config.py tests/test_torch_sft_data.py tests/test_torch_sft_packing.py \
	tests/test_torch_sft_run.py tests/test_torch_sft_scale.py tests/test_torch_sft_card.py tests/test_plugins.py \
	tests/test_runs.py

.PHONY: setup demo test test-fast test-tf4 bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[train,dev]"
	touch $(STAMP)

# transformers 4.x, the lower half of the [train] range: torch first (same pin), then the extra with 4.57 and only
# the test runner (the plugin's tests need no browser, MLflow or linters).
$(STAMP_TF4): pyproject.toml
	test -x $(VENV_TF4)/bin/python || $(PYTHON) -m venv $(VENV_TF4)
	$(VENV_TF4)/bin/pip install -q --upgrade pip
	$(VENV_TF4)/bin/pip install -q torch==2.13.0
	$(VENV_TF4)/bin/pip install -q -e ".[train]" "transformers==4.57.*" "pytest>=8" "pytest-xdist>=3.5"
	touch $(STAMP_TF4)

demo: setup
	$(BIN)/python scripts/demo.py

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-fast: setup
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

test-tf4: $(STAMP_TF4)
	$(VENV_TF4)/bin/python -m pytest -q -n 2 --dist loadgroup -p no:cacheprovider $(PLUGIN_TESTS)

bench: setup
	$(BIN)/python bench/run_all.py

lint: setup
	$(BIN)/python -m ruff check tunix_rt plugins
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) $(VENV_TF4) .pytest_cache demo-output
