"""The command line, end to end, on the embedded mnist5k data set."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vaelib.machinery.checkpoint import load_checkpoint
from vaelib.machinery.cli import main

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
    assert report["active_units"] in range(4 + 1)  # none to all of the 4 latent dimensions


def test_gaussian_with_learned_sigma(tmp_path):
    run = tmp_path / "g"
    assert main(["train", "--likelihood", "gaussian", "--epochs", "1", "--out", str(run), *SMALL]) == 0
    assert "log_sigma" in load_checkpoint(run / "model.npz").params


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "mnist5k", "--out", "x"], "not binary"),
    (["train", "--data", "binarized-mnist", "--data-dir", "/nonexistent/dir", "--out", "x"], "download"),
    (["evaluate", "/nonexistent/run"], "no checkpoint"),
])
def test_errors_are_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err.lower() and "Traceback" not in err


@pytest.mark.parametrize("flag, message", [("--epochs=0", "must be a positive"), ("--latent=-2", "must be a positive"),
                                           ("--lr=0", "must be a positive"), ("--batch-size=0", "must be a positive"),
                                           ("--beta=-1", "must be a number >= 0"), ("--data=cifar", "invalid choice")])
def test_bad_values_are_refused_by_the_parser(flag, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", "x", flag])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def train_in_a_child(tmp_path, *extra):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "vaelib", "train", "--binarize", "--epochs", "200", "--out", str(run), *SMALL, *extra]
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored: give the
    # child Ctrl-C's default action, as a terminal would, whatever this test process inherited.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (run / "history.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return run, proc


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_saves_the_last_finished_epoch(tmp_path, sig, code):
    run, proc = train_in_a_child(tmp_path)
    assert proc.poll() is None, "training ended before it could be interrupted"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "interrupted during epoch" in out
    saved = load_checkpoint(run / "model.npz")
    assert saved.epoch >= 1 and len(json.loads((run / "history.json").read_text())) == saved.epoch


def train(run, *extra, epochs=1):
    return main(["train", "--binarize", "--epochs", str(epochs), "--out", str(run), *SMALL, *extra])


def test_an_existing_run_is_never_overwritten_silently(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, epochs=2) == 0
    before = (run / "history.json").read_text()
    capsys.readouterr()
    assert train(run) == 1
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and "2 epochs" in err and err.count("\n") == 1
    assert (run / "history.json").read_text() == before
    assert train(run, "--overwrite") == 0
    assert len(json.loads((run / "history.json").read_text())) == 1


def test_resume_takes_the_settings_the_run_was_started_with(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--binarize", "--epochs", "1", "--out", str(run), "--latent", "3", "--hidden", "16",
                 "--beta", "0.5", "--no-progress"]) == 0
    # neither --binarize nor the architecture repeated
    assert main(["train", "--resume", "--epochs", "2", "--out", str(run), "--no-progress"]) == 0
    saved = load_checkpoint(run / "model.npz")
    assert saved.epoch == 2 and saved.config["n_latent"] == 3 and saved.config["beta"] == 0.5
    capsys.readouterr()
    assert main(["train", "--resume", "--epochs", "3", "--out", str(run), "--beta", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "--beta 2.0 contradicts" in err and "0.5" in err
    assert load_checkpoint(run / "model.npz").epoch == 2


def test_run_files_follow_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert train(tmp_path / "run") == 0
    finally:
        os.umask(old)
    for name in ("model.npz", "history.json", "run.json"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o644, name


def test_a_model_too_big_for_memory_is_refused_before_anything_is_made(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--binarize", "--latent", "100000000", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "GiB" in err and err.count("\n") == 1
    assert not run.exists()


def test_importance_samples_are_capped(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "somewhere", "--samples", "100000"])
    assert exit_info.value.code == 2 and "at most 5000" in capsys.readouterr().err


def test_download_without_a_network_names_the_url_and_the_way_round(tmp_path, capsys):
    assert main(["download", "binarized-mnist", "--data-dir", str(tmp_path), "--source", "http://127.0.0.1:9/x"]) == 1
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9/x/binarized_mnist_train.amat" in err and "--source FOLDER" in err
    assert "Traceback" not in err and not (tmp_path / "binarized_mnist.npz").exists()


def test_a_file_that_is_not_a_checkpoint_never_suggests_allow_pickle(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "model.npz", "wb") as f:
        np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["evaluate", str(run)]) == 1
    err = capsys.readouterr().err
    assert "cannot be read as a vaelib checkpoint" in err and "pickle" not in err.lower()


def test_help_shows_defaults_and_the_programs_own_name():
    script = os.path.join(os.path.dirname(sys.executable), "vaelib")
    out = subprocess.run([script, "train", "--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: vaelib train") and "(default: 20)" in out and "``" not in out
    out = subprocess.run([sys.executable, "-m", "vaelib", "--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: python -m vaelib") and "``" not in out


def test_evaluate_leaves_no_progress_bar_line_behind(tmp_path):
    """The bar over the importance-sampled images is erased when it ends (its last line used to be printed
    a second time when it closed, and stayed above the report)."""
    run = tmp_path / "run"
    assert train(run) == 0
    proc = subprocess.run([sys.executable, "-m", "vaelib", "evaluate", str(run), "--samples", "20", "--limit", "50"],
                          capture_output=True, check=True)  # bytes: text mode would turn each \r into \n
    stderr = proc.stderr.decode()
    assert "log p(x), K=20" in stderr  # the bar was shown
    assert stderr.rsplit("\r", 1)[-1].strip() == ""  # and erased at the end
