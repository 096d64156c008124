"""The command line, end to end, on the embedded mnist5k data set."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from vaelib.machinery import cli as cli_module, train as train_module
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


# ------------------------------------------------------------------ a stop at any moment
# When the signal is sent: (epochs saved, seconds), that many seconds after `train` starts listening for
# signals (0 epochs: just after parsing its arguments) or after history.json holds that many epochs. A run
# loads its data, then takes its first batch (in a fresh process Numba loads its compiled kernels from disk,
# or compiles them: about half a second on a quiet 2-core machine), then epochs of 20 batches, each
# evaluated and saved (about 50 ms). Under load each phase stretches, and the moments fall elsewhere.
SIGNAL_MOMENTS = ((0, 0), (0, 0.01), (0, 0.02), (0, 0.04), (0, 0.07), (0, 0.12), (0, 0.25), (0, 0.5),
                  (1, 0), (1, 0.02), (2, 0.05), (4, 0.1))
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status (Linux)")


def binary_data_dir(tmp_path, n_train=2000, n_test=500):
    """A data directory whose binarized_mnist.npz holds noisy copies of ten random binary images: it loads at once."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((10, 784)) < 0.2

    def packed(n):
        return np.packbits(prototypes[rng.integers(0, 10, n)] ^ (rng.random((n, 784)) < 0.05), axis=1)

    folder = tmp_path / "data"
    folder.mkdir()
    np.savez(folder / "binarized_mnist.npz", train=packed(n_train), test=packed(n_test))
    return folder


def start_training(run, data_dir, env=None):
    cmd = [sys.executable, "-m", "vaelib", "train", "--data", "binarized-mnist", "--data-dir", str(data_dir),
           "--epochs", "100", "--out", str(run), *SMALL]
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored: give the
    # child Ctrl-C's default action, as a terminal would, whatever this test process inherited.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def catches(pid, sig):
    """Whether process ``pid`` has a handler for ``sig`` (the SigCgt mask of /proc/PID/status); False once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) >> (sig - 1) & 1)


def wait_until(condition, proc, timeout=300):
    """Poll ``condition`` until it holds or ``proc`` ends (the timeout only keeps a broken run from hanging)."""
    deadline = time.monotonic() + timeout
    while not condition() and proc.poll() is None:
        assert time.monotonic() < deadline, f"still waiting after {timeout} s"
        time.sleep(0.002)


def epochs_saved(run):
    try:
        return len(json.loads((run / "history.json").read_text()))  # written whole, by a rename
    except FileNotFoundError:
        return 0


def signal_training(run, data_dir, sig, moment):
    """Start `vaelib train` and send ``sig`` at ``moment`` (see SIGNAL_MOMENTS); returns (exit code, stdout, stderr)."""
    after_epochs, delay = moment
    proc = start_training(run, data_dir)
    try:
        wait_until(lambda: catches(proc.pid, signal.SIGTERM), proc)  # Python leaves SIGTERM alone; train does not
        wait_until(lambda: epochs_saved(run) >= after_epochs, proc)
        time.sleep(delay)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def what_was_saved(run, out, err):
    """What a stopped run left, after checking that it is one whole finished epoch, or nothing, as one line says."""
    last_line = (out.splitlines() or [""])[-1]
    if not (run / "model.npz").exists():
        assert not (run / "history.json").exists()
        assert last_line.endswith("nothing was saved") or err.strip() == "interrupted", (out, err)
        return "nothing, stopped in epoch 1" if run.exists() else "nothing, stopped before the run directory"
    held = load_checkpoint(run / "model.npz")
    history = json.loads((run / "history.json").read_text())
    assert history == held.training["history"] and [r["epoch"] for r in history] == list(range(1, held.epoch + 1))
    assert last_line.endswith(f"holds epoch {held.epoch}"), out
    return f"epoch {held.epoch}"


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_moment_of_training_stops_it_cleanly(tmp_path, sig):
    """Exit 130 (SIGINT) or 143 (SIGTERM), no traceback, and on disk the last finished epoch as history.json
    has it, or nothing; at every moment, from loading the data through the first batch to the epochs, with
    a CPU-bound process beside two trainings on a 2-core machine."""
    data_dir = binary_data_dir(tmp_path)
    runs = [tmp_path / f"run{i}" for i in range(len(SIGNAL_MOMENTS))]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda run, moment: signal_training(run, data_dir, sig, moment), runs,
                                    SIGNAL_MOMENTS))
    finally:
        busy.kill()
        busy.wait()
    failures, saved = [], []
    for run, (after_epochs, delay), (code, out, err) in zip(runs, SIGNAL_MOMENTS, results):
        moment = f"{delay} s after {f'epoch {after_epochs} was saved' if after_epochs else 'train listened'}"
        try:
            assert code == 128 + sig, f"exit code {code}"
            assert "Traceback" not in err and "Exception ignored" not in err, err
            saved.append(f"{moment}: {what_was_saved(run, out, err)}")
        except AssertionError as failure:
            failures.append(f"signal {moment}: {failure}\n{err[-2000:]}")
    print("\n".join(saved))  # shown with -rP: what the moments met this time
    assert not failures, "\n".join(failures)


@needs_proc
def test_a_second_sigterm_ends_training_at_once_even_inside_a_compile(tmp_path):
    """A first SIGTERM waits for the next batch; a process stuck before it (here compiling the kernels into
    an empty Numba cache, seconds long) ends at the second, at once: killed by the signal, nothing written."""
    numba_cache = tmp_path / "numba"
    proc = start_training(tmp_path / "run", binary_data_dir(tmp_path), env={**os.environ, "NUMBA_CACHE_DIR": str(numba_cache)})
    try:
        wait_until(lambda: any(numba_cache.rglob("*.nbi")), proc)  # inside the first batch: a kernel is compiled
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not catches(proc.pid, signal.SIGTERM), proc)  # noted: SIGTERM's default action is back
        assert proc.poll() is None, "training stopped before the second signal could be sent"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM  # ended by the signal itself; a shell reports 143
    assert "interrupted" not in out  # the first had not stopped it: it was still compiling
    assert not (tmp_path / "run" / "model.npz").exists()


def train(run, *extra, epochs=1):
    return main(["train", "--binarize", "--epochs", str(epochs), "--out", str(run), *SMALL, *extra])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_data_loads_leaves_the_run_directory_alone(tmp_path, monkeypatch, capsys, sig,
                                                                      sigint_as_python_sets_it):
    run = tmp_path / "run"
    assert train(run) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    real_load = cli_module.load_dataset

    def load_with_a_signal(*args, **kwargs):
        assert signal.getsignal(sig) not in (signal.SIG_DFL, signal.SIG_IGN), "nothing listens: it would end pytest"
        signal.raise_signal(sig)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(cli_module, "load_dataset", load_with_a_signal)
    capsys.readouterr()
    assert train(run, "--overwrite") == 128 + sig  # --overwrite: the old run would be deleted next
    assert capsys.readouterr().err == "interrupted\n"
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_last_save_keeps_every_epoch_and_says_so(tmp_path, monkeypatch, capsys, sig,
                                                                    sigint_as_python_sets_it):
    run = tmp_path / "run"
    sigterm_before = signal.getsignal(signal.SIGTERM)
    real_save = train_module.save_checkpoint

    def save_with_a_signal(path, checkpoint):
        if checkpoint.epoch == 2:
            assert signal.getsignal(sig) not in (signal.SIG_DFL, signal.SIG_IGN), "nothing listens"
            signal.raise_signal(sig)
        real_save(path, checkpoint)

    monkeypatch.setattr(train_module, "save_checkpoint", save_with_a_signal)
    assert train(run, epochs=2) == 128 + sig
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"interrupted after epoch 2; {run / 'model.npz'} holds epoch 2"
    assert what_was_saved(run, out, "") == "epoch 2"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # both given back
    assert signal.getsignal(signal.SIGTERM) == sigterm_before


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


# ------------------------------------------------------------------ the importance-weighted objective
def test_train_on_the_iwae_bound_records_it_and_resume_keeps_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, "--objective", "iwae", "--k", "3") == 0
    assert json.loads((run / "run.json").read_text()) == {"data": "mnist5k", "binarize": True,
                                                          "objective": "iwae", "k": 3}
    history = json.loads((run / "history.json").read_text())
    assert history[0]["test_neg_iwae"] < history[0]["test_neg_elbo"]
    assert train(run, "--resume", epochs=2) == 0  # neither flag repeated: the run's own
    saved = load_checkpoint(run / "model.npz")
    assert saved.epoch == 2 and (saved.training["objective"], saved.training["k"]) == ("iwae", 3)
    capsys.readouterr()
    for flags, said in ((["--k", "5"], "--k 5 contradicts the run being resumed (3)"),
                        (["--objective", "elbo"], "--objective elbo contradicts the run being resumed (iwae)")):
        assert train(run, "--resume", *flags, epochs=3) == 1
        assert said in capsys.readouterr().err
    assert load_checkpoint(run / "model.npz").epoch == 2


def test_an_elbo_run_records_its_objective_too(tmp_path):
    run = tmp_path / "run"
    assert train(run) == 0
    assert json.loads((run / "run.json").read_text())["objective"] == "elbo"
    assert load_checkpoint(run / "model.npz").training["k"] == 1


@pytest.mark.parametrize("flags, message", [
    (["--k", "5"], "for objective 'iwae'"),
    (["--objective", "iwae", "--k", "5", "--beta", "0.5"], "bound on log p(x)"),
])
def test_a_contradictory_objective_is_refused_before_anything_is_made(tmp_path, capsys, flags, message):
    run = tmp_path / "run"
    assert train(run, *flags) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not run.exists()


def test_evaluate_reports_the_nll_in_nats_and_bits_per_dimension_with_its_standard_error(tmp_path, capsys):
    """The report's NLL against the same computation done here: the subset, the ELBO's draws and the
    importance samples come from one generator seeded by --seed, in that order."""
    from vaelib.core.evaluate import elbo_terms, importance_weighted_log_likelihood
    from vaelib.core.vae import VAEConfig
    from vaelib.machinery.data import load_dataset

    run = tmp_path / "run"
    assert train(run) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--samples", "30", "--limit", "40", "--seed", "5"]) == 0
    report = json.loads(capsys.readouterr().out)

    saved = load_checkpoint(run / "model.npz")
    config, params = VAEConfig(**saved.config), {k: v.astype(np.float64) for k, v in saved.params.items()}
    test_x = load_dataset("mnist5k", binarize=True).test
    rng = np.random.default_rng(5)
    x = test_x[np.sort(rng.choice(len(test_x), 40, replace=False))]
    elbo_terms(params, x, config, rng)
    log_px = importance_weighted_log_likelihood(params, x, config, rng, n_samples=30)
    nll, se = -log_px.mean(), log_px.std(ddof=1) / np.sqrt(40)
    assert report["test_nll_iw"] == pytest.approx(nll, rel=1e-12) == -report["test_log_likelihood_iw"]
    assert report["test_nll_iw_stderr"] == pytest.approx(se, rel=1e-12) and 0 < se < 0.2 * nll
    assert report["test_nll_iw_bits_per_dim"] == pytest.approx(nll / (784 * np.log(2)), rel=1e-12)
    assert report["test_nll_iw_bits_per_dim_stderr"] == pytest.approx(se / (784 * np.log(2)), rel=1e-12)
    assert (report["objective"], report["k"]) == ("elbo", 1)


def test_evaluate_uses_5000_importance_samples_by_default():
    assert cli_module.build_parser().parse_args(["evaluate", "somewhere"]).samples == 5000
