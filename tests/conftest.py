import shutil
import signal
import tempfile

import numpy as np
import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def sigint_as_python_sets_it():
    """SIGINT with Python's own handler, whatever this process inherited (a background job ignores it)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# tests/browser/ holds notebooks that the browser tests open, not tests.
collect_ignore = ["browser"]

# Hypothesis keeps no example database: every run starts clean.
settings.register_profile("vaelib", database=None)
settings.load_profile("vaelib")


def pytest_configure(config):
    """Hypothesis's other files (a cache of constants) go to a temporary directory, not the working tree."""
    config.hypothesis_home = tempfile.mkdtemp(prefix="vaelib-hypothesis-")
    set_hypothesis_home_dir(config.hypothesis_home)


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "hypothesis_home", ""), ignore_errors=True)
