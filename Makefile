# Two commands for a newcomer:  `make lab`  and  `make test`.
# Both build a local virtual environment in .venv on first use: `make lab` installs
# what the notebooks need, `make test` adds the test tools.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# JupyterLab refuses to start as root unless told to (containers often run as root).
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Where data sets are looked up (see README, "Data"). Set VAELIB_DATA to override.
# A copy of the fixed binarised MNIST in ../shared/data, beside the checkout, is used if present.
VAELIB_DATA ?= $(if $(wildcard ../shared/data/binarized_mnist.npz),$(abspath ../shared/data),)
export VAELIB_DATA

.PHONY: install lab test test-browser test-floors bench clean site app

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.lab-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	touch $@

$(VENV)/.site-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[site]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.lab-installed $(VENV)/.site-installed

install: $(VENV)/.dev-installed

# notebook_shim (a JupyterLab dependency, for extensions of the classic notebook server, which this project
# has none of) reads every setting of the server, the deprecated token too: off, so no DeprecationWarning.
lab: $(VENV)/.lab-installed
	$(BIN)/jupyter lab $(LAB_FLAGS) "--ServerApp.jpserver_extensions={'notebook_shim': False}" notebooks/

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest

test-browser: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m browser tests/test_browser_sliders.py

# The oldest versions we declare. pyproject.toml's ">=" floors of the runtime dependencies and of the
# test tools below, each pinned with "==" (tools/floor_requirements.py reads them on every run, so they
# cannot drift), installed from wheels into a separate environment: the unit tests and every notebook
# run there (not the browser tests; the site's tests skip, its tools not being installed).
FLOORS_VENV  ?= .venv-floors
FLOORS_TOOLS := ipykernel pytest hypothesis nbval playwright

$(FLOORS_VENV)/.floors-installed: pyproject.toml tools/floor_requirements.py
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python tools/floor_requirements.py $(FLOORS_TOOLS) > $(FLOORS_VENV)/floors.txt
	$(FLOORS_VENV)/bin/python -m pip install --quiet --only-binary :all: -r $(FLOORS_VENV)/floors.txt -e .
	$(FLOORS_VENV)/bin/python -m pip check
	touch $@

test-floors: $(FLOORS_VENV)/.floors-installed
	env -u VAELIB_REQUIRE_BROWSER NUMBA_CACHE_DIR=$(abspath $(FLOORS_VENV))/numba-cache \
		$(FLOORS_VENV)/bin/python -m pytest -m "not browser" --nbval-current-env

# The static site of the executed notebooks (their stored outputs; nothing is run): build/site/index.html
site: $(VENV)/.site-installed
	$(BIN)/python tools/build_site.py --out build/site

# The trade-off explorer (the sliders of notebooks 08 and 09) with Voila, on http://127.0.0.1:$(APP_PORT);
# its server's settings are in app/serve.py
APP_PORT ?= 8866
app: $(VENV)/.site-installed
	$(BIN)/python app/serve.py --port=$(APP_PORT)

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/bench_epoch.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
