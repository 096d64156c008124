"""benchmarks/reproduce.py end to end, on a tiny data set in the binarized-mnist npz format."""

import hashlib
import importlib.util
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from vaelib.machinery.checkpoint import load_checkpoint
from vaelib.machinery.train import Trainer

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce.py"
spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)

TINY = ["--hidden", "16", "--latent", "3", "--batch-size", "50", "--eval-every", "1", "--warmup-epochs", "2",
        "--samples", "50", "--precision-check", "5"]


@pytest.fixture
def data_dir(tmp_path):
    """200 train, 60 valid, 60 test images: noisy copies of 10 random binary prototypes, packed as in the npz."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((10, 784)) < 0.3

    def packed(n):
        return np.packbits(prototypes[rng.integers(0, 10, n)] ^ (rng.random((n, 784)) < 0.05), axis=1)

    folder = tmp_path / "data"
    folder.mkdir()
    np.savez(folder / "binarized_mnist.npz", train=packed(200), valid=packed(60), test=packed(60))
    return folder


def run(data_dir, out, *extra):
    return reproduce.main(["--data-dir", str(data_dir), "--out", str(out), *TINY, *extra], log=lambda *a: None)


def test_report_fields_are_finite_and_consistent(data_dir, tmp_path):
    out = tmp_path / "run"
    assert run(data_dir, out, "--max-epochs", "4") == 0
    r = json.loads((out / "report.json").read_text())
    numbers = ["test_nll_iw", "test_nll_iw_stderr", "test_nll_iw_bits_per_dim", "test_elbo", "test_kl",
               "test_neg_elbo_stderr", "training_cpu_minutes", "training_wall_minutes", "test_nll_iw_all_test"]
    assert all(np.isfinite(r[k]) for k in numbers)
    assert r["test_images"] == 60 == r["test_images_importance_sampled"] and r["importance_samples"] == 50
    assert r["epochs_trained"] == 4 and r["finished"] and r["stopped"] == "--max-epochs 4"
    # the importance-weighted bound lies above the ELBO: NLL <= -ELBO, within three standard errors
    assert r["test_nll_iw"] <= -r["test_elbo"] + 3 * r["test_neg_elbo_stderr"]
    assert 0 < r["test_nll_iw"] < 784 * np.log(2)  # better than chance: an untrained decoder costs D ln 2
    assert r["test_nll_iw_bits_per_dim"] == pytest.approx(r["test_nll_iw"] / (784 * np.log(2)), rel=1e-12)
    # every image evaluated: the control-variate estimate is the direct mean
    assert r["test_nll_iw_all_test"] == pytest.approx(r["test_nll_iw"], abs=1e-9)
    assert r["test_nll_iw_all_test_stderr"] == pytest.approx(r["test_nll_iw_stderr"], rel=1e-6)
    assert r["precision_check"]["max_abs_difference_nats"] < 1e-3  # float32 against float64, same noise
    assert 0 <= r["active_units"] <= 3 and r["architecture"]["hidden"] == [16]
    assert r["schedule"]["lr"] == 5e-4 and r["schedule"]["warmup_epochs"] == 2 and r["schedule"]["threads"] == 1
    curve = r["validation_curve"]
    assert [c["epoch"] for c in curve] == [1, 2, 3, 4]
    best = min(curve, key=lambda c: c["valid_neg_bound"])
    assert (r["best_epoch"], r["best_valid_neg_bound"]) == (best["epoch"], best["valid_neg_bound"])
    assert load_checkpoint(out / "best" / "model.npz").epoch == best["epoch"]
    digest = hashlib.sha256((data_dir / "binarized_mnist.npz").read_bytes()).hexdigest()
    assert r["checksums"]["file_sha256"] == digest and not r["checksums"]["is_the_published_fixed_binarisation"]


def test_a_subset_of_the_test_split_is_evaluated_with_the_elbo_as_control_variate(data_dir, tmp_path):
    out = tmp_path / "run"
    assert run(data_dir, out, "--max-epochs", "2", "--test-limit", "20") == 0
    r = json.loads((out / "report.json").read_text())
    assert r["test_images"] == 60 and r["test_images_importance_sampled"] == 20
    # mean over all of -ELBO, minus the mean gap on the subset
    expected = -r["test_elbo"] - r["test_gap_on_sampled"]
    assert r["test_nll_iw_all_test"] == pytest.approx(expected, abs=1e-9)
    assert r["test_nll_iw"] == pytest.approx(r["test_neg_elbo_on_sampled"] - r["test_gap_on_sampled"], abs=1e-9)


def _same_models(a, b):
    for name in ("model.npz", "best/model.npz"):
        x, y = load_checkpoint(a / name), load_checkpoint(b / name)
        assert x.epoch == y.epoch
        for key in x.params:
            np.testing.assert_array_equal(x.params[key], y.params[key])
    ca = [{k: v for k, v in c.items() if k != "cpu_seconds"}
          for c in load_checkpoint(a / "model.npz").training["reproduce"]["curve"]]
    cb = [{k: v for k, v in c.items() if k != "cpu_seconds"}
          for c in load_checkpoint(b / "model.npz").training["reproduce"]["curve"]]
    assert ca == cb


def test_resuming_gives_the_run_that_never_stopped(data_dir, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run(data_dir, straight, "--max-epochs", "4") == 0
    assert run(data_dir, resumed, "--max-epochs", "2") == 0
    assert load_checkpoint(resumed / "model.npz").epoch == 2
    assert run(data_dir, resumed, "--max-epochs", "4") == 0
    _same_models(straight, resumed)


def test_ctrl_c_loses_only_the_epoch_running(data_dir, tmp_path, monkeypatch, sigint_as_python_sets_it):
    # (SIGINT with Python's own handler: CI runs a suite as a background job, which inherits it ignored)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert run(data_dir, straight, "--max-epochs", "4") == 0
    original, steps = Trainer.step, []

    def step_then_interrupt(self, x):
        steps.append(1)
        if len(steps) == 4 * 3 + 2:  # during the second batch of epoch 4 (4 batches of 50 per epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, x)

    monkeypatch.setattr(Trainer, "step", step_then_interrupt)
    assert run(data_dir, stopped, "--max-epochs", "4") == 130
    assert load_checkpoint(stopped / "model.npz").epoch == 3 and not (stopped / "report.json").exists()
    monkeypatch.setattr(Trainer, "step", original)
    assert run(data_dir, stopped, "--max-epochs", "4") == 0
    _same_models(straight, stopped)


def test_early_stopping_keeps_the_best_validated_epoch(data_dir, tmp_path, monkeypatch):
    bounds = iter([100.0, 90.0, 95.0, 96.0, 97.0, 98.0, 99.0])  # best at epoch 2, then worse
    monkeypatch.setattr(reproduce, "validation_bound", lambda *args: next(bounds))
    out = tmp_path / "run"
    assert run(data_dir, out, "--max-epochs", "20", "--patience", "3") == 0
    r = json.loads((out / "report.json").read_text())
    assert r["best_epoch"] == 2 and r["epochs_trained"] == 5 and r["stopped"].startswith("early stopping")
    assert load_checkpoint(out / "best" / "model.npz").epoch == 2


def test_early_stopping_waits_for_the_end_of_the_warm_up(data_dir, tmp_path, monkeypatch):
    bounds = iter([90.0, 95.0, 96.0, 97.0, 98.0, 99.0, 99.5])  # best at epoch 1
    monkeypatch.setattr(reproduce, "validation_bound", lambda *args: next(bounds))
    out = tmp_path / "run"
    assert run(data_dir, out, "--max-epochs", "20", "--patience", "2", "--warmup-epochs", "6") == 0
    r = json.loads((out / "report.json").read_text())
    assert r["best_epoch"] == 1 and r["epochs_trained"] == 6 and r["stopped"].startswith("early stopping")


def test_a_budget_of_zero_trains_nothing_more(data_dir, tmp_path):
    out = tmp_path / "run"
    assert run(data_dir, out, "--max-epochs", "2") == 0
    assert run(data_dir, out, "--max-epochs", "9", "--budget-minutes", "0") == 0
    r = json.loads((out / "report.json").read_text())
    assert r["epochs_trained"] == 2 and r["stopped"].startswith("CPU budget")


def test_resuming_with_other_settings_is_refused(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(data_dir, out, "--max-epochs", "1") == 0
    assert run(data_dir, out, "--max-epochs", "2", "--lr", "1e-3") == 1
    assert "lr: saved 0.0005, asked 0.001" in capsys.readouterr().err


def test_warm_up_weighs_the_kl_from_small_to_one():
    assert [reproduce.kl_weight(e, 4) for e in (1, 2, 4, 5, 100)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert reproduce.kl_weight(1, 0) == 1.0
