"""The command line, end to end, on the embedded mnist5k data set."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vaelib.checkpoint import load_checkpoint
from vaelib.cli import main

SMALL = ["--hidden", "32", "--latent", "4", "--batch-size", "100", "--no-progress"]


def test_train_then_evaluate(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "mnist5k", "--binarize", "--epochs", "2", "--out", str(run), *SMALL]) == 0
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 2 and history[1]["test_neg_elbo"] < history[0]["test_neg_elbo"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--samples", "50", "--limit", "100"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["test_images"] == 100 and report["importance_samples"] == 50
    # the importance-weighted estimate of log p(x) lies above the ELBO
    assert report["test_log_likelihood_iw"] > -report["test_neg_elbo"]
    assert 0 <= report["active_units"] <= 4


def test_gaussian_with_learned_sigma(tmp_path):
    run = tmp_path / "g"
    assert main(["train", "--likelihood", "gaussian", "--epochs", "1", "--out", str(run), *SMALL]) == 0
    assert "log_sigma" in load_checkpoint(run / "model.npz").params


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "cifar", "--out", "x"], "unknown data set"),
    (["train", "--data", "mnist5k", "--out", "x"], "not binary"),
    (["train", "--data", "binarized-mnist", "--data-dir", "/nonexistent/dir", "--out", "x"], "download"),
    (["evaluate", "/nonexistent/run"], "no checkpoint"),
])
def test_errors_are_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err.lower() and "Traceback" not in err


@pytest.mark.parametrize("flag", ["--epochs=0", "--latent=-2", "--lr=0", "--batch-size=0"])
def test_non_positive_sizes_are_refused_by_the_parser(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", "x", flag])
    assert exit_info.value.code == 2 and "must be a positive" in capsys.readouterr().err


def test_ctrl_c_saves_the_last_finished_epoch_and_exits_130(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "vaelib", "train", "--binarize", "--epochs", "200", "--out", str(run), *SMALL]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "history.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted during epoch" in out
    saved = load_checkpoint(run / "model.npz")
    assert saved.epoch >= 1 and len(json.loads((run / "history.json").read_text())) == saved.epoch
