"""The cache of trained models: a hit returns what was trained; bad entries are never used."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import filelock
import numpy as np
import pytest

from vaelib.core.vae import VAEConfig
from vaelib.machinery.cache import ModelCache, TrainingProgress, cache_dir, training_code_version
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


def test_training_reports_each_epoch_and_records_the_model_in_the_training_log(cache, data):
    reports = []
    cache.progress = reports.append
    model = fit(cache, data, epochs=3, progress=True, label="toy")
    assert [(r.epoch, r.done, r.waiting) for r in reports] == [(0, False, False), (1, False, False),
                                                               (2, False, False), (3, False, False),
                                                               (3, True, False)]
    assert all(r.label == "toy" and r.epochs == 3 and r.pid == os.getpid() for r in reports)
    assert [(r["event"], r["entry"]) for r in cache.training_log()] == [("trained", model.path.name)]
    fit(cache, data, epochs=3, progress=True)  # read from the cache: no report, no record
    assert len(reports) == 5 and len(cache.training_log()) == 1


def test_the_time_left_is_the_mean_epoch_times_the_epochs_to_go():
    assert TrainingProgress("m", epochs=10, epoch=0, seconds=3.0).seconds_left is None
    assert TrainingProgress("m", epochs=10, epoch=4, seconds=8.0).seconds_left == pytest.approx(12.0)
    line = TrainingProgress("β = 1", epochs=10, epoch=4, seconds=8.0, waiting=True, pid=42).describe()
    assert line == "waiting for process 42, which trains β = 1: epoch 4 of 10, about 12 s left"
    assert "about 3 min left" in TrainingProgress("m", epochs=100, epoch=10, seconds=20.0).describe()


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


# ---------------------------------------------------------------- several processes at once
# A child process: waits for the file GO (if given), then asks the cache for a model of random
# 8x8 digits; writes every log line to LOG as it comes, and its result as JSON on stdout.
WORKER = r"""
import json, os, sys, time
import numpy as np
from vaelib.core.vae import VAEConfig
from vaelib.machinery.cache import ModelCache, array_checksum
from vaelib.machinery.data import Dataset

args = json.loads(sys.argv[1])
x = (np.random.default_rng(7).random((600, 64)) > 0.5).astype(np.float32)
data = Dataset("toy8x8", x[:500], x[500:], None, None, binary=True, image_shape=(8, 8))
reports = []
with open(args["log"], "a") as log_file:
    def log(line):
        log_file.write(line + "\n")
        log_file.flush()
    cache = ModelCache(args["cache"], log=log, progress=reports.append)
    open(args["ready"], "w").close()
    while args.get("go") and not os.path.exists(args["go"]):
        time.sleep(0.01)
    model = cache.fit(VAEConfig(n_pixels=64, hidden=(32,), n_latent=2), data, epochs=args["epochs"], batch_size=50,
                      label="toy model")
print(json.dumps({"pid": os.getpid(), "trained_now": model.trained_now,
                  "checksum": array_checksum(*(model.params[k] for k in sorted(model.params))),
                  "waiting_for": sorted({r.pid for r in reports if r.waiting}),
                  "done": [r.done for r in reports][-1:]}))
"""
TOY_CONFIG = VAEConfig(n_pixels=64, hidden=(32,), n_latent=2)


def toy_key(cache, epochs):
    x = (np.random.default_rng(7).random((600, 64)) > 0.5).astype(np.float32)
    data = Dataset("toy8x8", x[:500], x[500:], None, None, binary=True, image_shape=(8, 8))
    return cache.key(TOY_CONFIG, data, epochs=epochs, batch_size=50)


def start_worker(tmp_path, name, epochs, go=None):
    args = {"cache": str(tmp_path / "models"), "epochs": epochs, "log": str(tmp_path / f"{name}.log"),
            "ready": str(tmp_path / f"{name}.ready"), "go": go}
    proc = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(args)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    proc.name, proc.ready, proc.log = name, tmp_path / f"{name}.ready", tmp_path / f"{name}.log"
    return proc


def wait_until(condition, what, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def result_of(proc):
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{proc.name} exited with {proc.returncode}; its log:\n{proc.log.read_text()}"
    return json.loads(out.strip().splitlines()[-1])


def test_processes_asking_at_once_train_the_model_once_and_the_others_wait(tmp_path):
    """Three processes ask for one missing model at the same moment: one trains it, two wait and read it."""
    cache = ModelCache(tmp_path / "models", log=lambda line: None)
    key = toy_key(cache, epochs=150)
    cache.path.mkdir(parents=True)
    gate = filelock.FileLock(cache.entry_path(key).with_suffix(".lock"))
    gate.acquire()  # held by this process until all three children are blocked on it
    go = tmp_path / "go"
    procs = [start_worker(tmp_path, f"worker{i}", 150, go=str(go)) for i in range(3)]
    wait_until(lambda: all(p.ready.exists() for p in procs), "the workers to start")
    go.touch()
    time.sleep(3.0)  # each computes the key, then blocks on the lock
    gate.release()
    results = [result_of(p) for p in procs]

    trainers = [r for r in results if r["trained_now"]]
    assert len(trainers) == 1, results
    assert len({r["checksum"] for r in results}) == 1  # all three have the same parameters
    trainer = trainers[0]["pid"]
    records = cache.training_log()
    assert [(r["event"], r["pid"]) for r in records if r["event"] == "trained"] == [("trained", trainer)]
    waiters = sorted(r["pid"] for r in records if r["event"] == "waited")
    assert len(waiters) == 3  # the two that read the model, and the trainer, which first waited for this test
    for r in results:
        if r["pid"] != trainer:
            assert r["waiting_for"] == [trainer], r  # they showed whose training they waited for ...
            assert r["done"] == [True]
            log = next(p.log for p in procs if p.pid == r["pid"]).read_text()
            assert f"waiting for process {trainer}, which trains toy model: epoch" in log  # ... and said so
    assert cache.load(key) is not None
    assert not cache.entry_path(key).with_suffix(".progress.json").exists()


def test_a_killed_trainer_leaves_no_entry_and_the_waiting_process_trains_the_model(tmp_path):
    cache = ModelCache(tmp_path / "models", log=lambda line: None)
    key = toy_key(cache, epochs=300)
    progress_file = cache.entry_path(key).with_suffix(".progress.json")
    first = start_worker(tmp_path, "first", 300)
    wait_until(lambda: progress_file.exists() and json.loads(progress_file.read_text())["epoch"] >= 1,
               "the first worker's first epoch")
    second = start_worker(tmp_path, "second", 300)
    wait_until(lambda: second.log.exists() and f"waiting for process {first.pid}" in second.log.read_text(),
               "the second worker to wait")
    first.send_signal(signal.SIGKILL)  # mid-training: the OS releases its lock
    first.wait(timeout=60)
    assert not cache.entry_path(key).exists()  # no half entry
    result = result_of(second)
    assert result["trained_now"] and result["pid"] == second.pid
    assert [(r["event"], r["pid"]) for r in cache.training_log()] == [("waited", second.pid),
                                                                      ("trained", second.pid)]
    assert cache.load(key) is not None
    leftovers = [p.name for p in cache.path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_the_temporary_files_of_a_killed_writer_are_removed_by_the_next_trainer(cache, data):
    """A process killed while writing its progress file or its entry leaves a temporary file beside it.

    The next process to hold the entry's lock removes those of that entry, and no others.
    """
    key = cache.key(CONFIG, data, epochs=2, batch_size=16, seed=0)
    entry, progress = cache.entry_path(key), cache.entry_path(key).with_suffix(".progress.json")
    cache.path.mkdir(parents=True)
    leftovers = [cache.path / f".{entry.name}.k1ll3d.tmp", cache.path / f".{progress.name}.k1ll3d.tmp"]
    someone_elses = cache.path / ".0123456789abcdef.npz.wr1t1ng.tmp"
    for path in leftovers + [someone_elses]:
        path.write_text("half written")
    assert fit(cache, data).trained_now
    assert [p.exists() for p in leftovers] == [False, False]
    assert someone_elses.exists()


def test_the_objective_is_in_the_key_only_when_it_is_not_the_elbo(cache, data):
    elbo_key = cache.key(CONFIG, data, epochs=2)
    assert cache.key(CONFIG, data, epochs=2, objective="elbo", k=1) == elbo_key
    assert "objective" not in elbo_key["training"] and "k" not in elbo_key["training"]  # older entries keep keys
    iwae_keys = [cache.key(CONFIG, data, epochs=2, objective="iwae", k=k) for k in (1, 5)]
    assert iwae_keys[0]["training"]["objective"] == "iwae" and iwae_keys[1]["training"]["k"] == 5
    paths = {cache.entry_path(key) for key in [elbo_key, *iwae_keys]}
    assert len(paths) == 3


def test_a_model_trained_on_the_iwae_bound_is_trained_on_it_and_kept_under_its_own_key(cache, data):
    from vaelib.machinery.train import fit as train_fit

    elbo = fit(cache, data)
    iwae = fit(cache, data, objective="iwae", k=3)
    again = fit(cache, data, objective="iwae", k=3)
    assert iwae.trained_now and not again.trained_now and iwae.path != elbo.path
    direct = train_fit(CONFIG, data.train, data.test, epochs=2, batch_size=16, seed=0, progress=False,
                       log=lambda *_: None, threads=1, objective="iwae", k=3)
    for name, value in direct.params.items():
        np.testing.assert_array_equal(iwae.params[name], value)
    assert any(np.any(iwae.params[n] != elbo.params[n]) for n in elbo.params)
    assert any("iwae" in name for name in iwae.history[-1]) and not any("iwae" in n for n in elbo.history[-1])
