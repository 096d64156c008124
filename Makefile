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

.PHONY: install lab test test-browser test-floors bench clean site app reproduce

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

# The oldest versions we declare, tested. tools/floor_requirements.py reads pyproject.toml's ">=" floors
# (of the runtime dependencies, and of the test tools below) on every run and pins each with "==", so the
# pins cannot drift; pip installs exactly those, from wheels (what a learner without a compiler gets), or
# stops. (A resolver's "lowest" mode would quietly take a newer version where a floor cannot be had.)
# The unit tests and every notebook run there, the notebooks in the floors' Python (--nbval-current-env);
# the browser tests are left out, and the site's tests skip (its tools are not installed). nbval still
# compares the "# NBVAL_CHECK_OUTPUT" cells: they print the same under the floors.
# OpenBLAS picks its matrix-product kernel by CPU, and its versions pick differently (on AMD EPYC, NumPy
# 1.26's OpenBLAS 0.3.23 takes "Cooperlake" where NumPy 2's takes "SkylakeX"). Another kernel sums in
# another order, and training ends in other models, as on another machine (with those, two checks of
# notebook 09 fail today: cells 8 and 17). So the floors run with the main environment's kernel and train
# its models bit for bit: their checks test the floors, not a kernel. FLOORS_OPENBLAS_CORETYPE= (empty)
# leaves the choice to OpenBLAS.
FLOORS_VENV  ?= .venv-floors
FLOORS_TOOLS := ipykernel pytest hypothesis nbval playwright colorspacious
FLOORS_OPENBLAS_CORETYPE ?= $(shell $(BIN)/python -c 'import numpy; from threadpoolctl import threadpool_info; \
	print(*(i["architecture"] for i in threadpool_info() if i["internal_api"] == "openblas"))' 2>/dev/null)
FLOORS_ENV = env -u VAELIB_REQUIRE_BROWSER NUMBA_CACHE_DIR=$(abspath $(FLOORS_VENV))/numba-cache \
	$(if $(FLOORS_OPENBLAS_CORETYPE),OPENBLAS_CORETYPE=$(FLOORS_OPENBLAS_CORETYPE))

$(FLOORS_VENV)/.floors-installed: pyproject.toml tools/floor_requirements.py
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python tools/floor_requirements.py $(FLOORS_TOOLS) > $(FLOORS_VENV)/floors.txt
	$(FLOORS_VENV)/bin/python -m pip install --quiet --only-binary :all: -r $(FLOORS_VENV)/floors.txt -e .
	$(FLOORS_VENV)/bin/python -m pip check
	touch $@

test-floors: $(FLOORS_VENV)/.floors-installed $(VENV)/.dev-installed
	$(FLOORS_ENV) $(FLOORS_VENV)/bin/python -c 'import numpy, threadpoolctl; \
		kernels = [i["architecture"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]; \
		print("floors: NumPy", numpy.__version__, "with the OpenBLAS kernel", *kernels); \
		assert not "$(FLOORS_OPENBLAS_CORETYPE)" or kernels == ["$(FLOORS_OPENBLAS_CORETYPE)"], "not the kernel asked for"'
	$(FLOORS_ENV) $(FLOORS_VENV)/bin/python -m pytest -m "not browser" --nbval-current-env

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

# A VAE trained on the fixed binarised MNIST (VAELIB_DATA must hold binarized_mnist.npz), its test NLL by
# IWAE with 5,000 samples, against the published one: benchmarks/README.md, "Test NLL against the literature".
# At most 60 CPU minutes of training on one thread, then the evaluation; run it again to resume.
REPRODUCE_OUT ?= build/reproduce
reproduce: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/reproduce.py --out $(REPRODUCE_OUT)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
