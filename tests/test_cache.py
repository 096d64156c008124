"""The cache of trained models: a hit returns what was trained; bad entries are never used."""

import json
import zipfile

import numpy as np
import pytest

from vaelib.core.vae import VAEConfig
from vaelib.machinery.cache import ModelCache, cache_dir, training_code_version
from vaelib.machinery.data import Dataset

CONFIG = VAEConfig(n_pixels=16, hidden=(8,), n_latent=2)


@pytest.fixture
def data(rng):
    x = (rng.random((96, 16)) > 0.5).astype(np.float32)
    return Dataset("toy", x[:64], x[64:], None, None, binary=True, image_shape=(4, 4))


@pytest.fixture
def cache(tmp_path):
    lines = []
    cache = ModelCache(tmp_path / "models", log=lines.append)
    cache.lines = lines
    return cache


def fit(cache, data, **kw):
    return cache.fit(CONFIG, data, **{"epochs": 2, "batch_size": 16, "progress": False, "seed": 0, **kw})


def test_a_second_call_reads_the_same_model_without_training(cache, data):
    first = fit(cache, data)
    second = fit(cache, data)
    assert first.trained_now and not second.trained_now
    assert sum("training" in line for line in cache.lines) == 1
    for k in first.params:
        np.testing.assert_array_equal(second.params[k], first.params[k])
    assert second.history == json.loads(json.dumps(first.history))


@pytest.mark.parametrize("change", [dict(seed=1), dict(epochs=3), dict(lr=2e-3), dict(engine="core")])
def test_any_setting_that_changes_the_model_changes_the_key(cache, data, change):
    first = fit(cache, data)
    other = fit(cache, data, **change)
    assert other.trained_now and other.path != first.path


def test_other_data_is_another_entry(cache, data):
    first = fit(cache, data)
    flipped = Dataset("toy", 1 - data.train, data.test, None, None, binary=True)
    assert fit(cache, flipped).path != first.path


def corrupt_truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_flip_a_parameter_byte(path):
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in members if n.startswith("param/"))
    data = bytearray(members[name])
    data[-1] ^= 0x01
    members[name] = bytes(data)
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)


def corrupt_swap_in_another_models_file(path, other):
    path.write_bytes(other.read_bytes())


@pytest.mark.parametrize("corrupt, reason", [
    (corrupt_truncate, "bad entry"),
    (corrupt_flip_a_parameter_byte, "checksum"),
    (lambda p: p.write_text("not a zip"), "bad entry"),
])
def test_a_bad_entry_is_reported_in_one_line_and_retrained(cache, data, corrupt, reason):
    first = fit(cache, data)
    corrupt(first.path)
    cache.lines.clear()
    again = fit(cache, data)
    assert again.trained_now
    bad = [line for line in cache.lines if "bad entry" in line]
    assert len(bad) == 1 and reason in bad[0] and "\n" not in bad[0]
    for k in first.params:
        np.testing.assert_array_equal(again.params[k], first.params[k])
    assert not fit(cache, data).trained_now  # the retrained entry is good


def test_an_entry_holding_another_key_is_never_used(cache, data):
    """A stale entry: the file at this key's name holds a model trained with other settings."""
    first = fit(cache, data)
    other = fit(cache, data, seed=5)
    corrupt_swap_in_another_models_file(first.path, other.path)
    cache.lines.clear()
    again = fit(cache, data)
    assert again.trained_now
    assert any("other settings" in line for line in cache.lines)


def test_an_unwritable_cache_still_returns_the_model(tmp_path, data):
    blocker = tmp_path / "file"
    blocker.write_text("")
    lines = []
    model = ModelCache(blocker / "models", log=lines.append).fit(CONFIG, data, epochs=1, batch_size=16,
                                                                 progress=False)
    assert model.path is None and any("cannot write" in line for line in lines)


def test_cache_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VAELIB_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("VAELIB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "vaelib" / "models"


def test_code_version_ignores_docstrings_but_not_code(tmp_path, monkeypatch):
    import shutil

    import vaelib.machinery.cache as cache_module

    package = tmp_path / "vaelib"
    shutil.copytree(cache_module.Path(cache_module.__file__).resolve().parent.parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_module, "__file__", str(package / "machinery" / "cache.py"))
    base = training_code_version()
    layers = package / "core" / "layers.py"
    text = layers.read_text()
    docstring, code = '"""Layers, each a forward/backward pair.', "return 0.5 + 0.5 * np.tanh(0.5 * a)"
    assert docstring in text and code in text
    layers.write_text(text.replace(docstring, '"""Layers (edited docstring).'))
    assert training_code_version() == base
    gradcheck = package / "core" / "gradcheck.py"  # not imported by training: its code is not in the version
    gradcheck.write_text(gradcheck.read_text() + "\nUNUSED = 1\n")
    assert training_code_version() == base
    layers.write_text(text.replace(code, code + " + 0"))
    assert training_code_version() != base
