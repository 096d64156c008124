# Two commands for a newcomer:  `make lab`  and  `make test`.
# Both build a local virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Where data sets are looked up (see README, "Data"). Set VAELIB_DATA to override.
# In this team's checkouts the fixed binarised MNIST lives in ../shared/data.
VAELIB_DATA ?= $(if $(wildcard ../shared/data/binarized_mnist.npz),$(abspath ../shared/data),)
export VAELIB_DATA

.PHONY: install lab test test-browser bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

lab: install
	$(BIN)/jupyter lab notebooks/

test: install
	$(BIN)/python -m pytest

test-browser: install
	$(BIN)/python -m pytest -m browser tests/test_browser_sliders.py

bench: install
	$(BIN)/python benchmarks/bench_epoch.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
