"""Training: it learns, resumes bit for bit, survives Ctrl-C and NaN, and refuses bad data."""

import json
import signal
import threading

import numpy as np
import pytest

from vaelib.machinery import train as train_module
from vaelib.machinery.cache import ModelCache
from vaelib.machinery.checkpoint import load_checkpoint
from vaelib.machinery.data import Dataset
from vaelib.machinery.train import NonFiniteLossError, Trainer, fit, validate_data
from vaelib.core.vae import VAEConfig

CONFIG = VAEConfig(n_pixels=16, hidden=(12,), n_latent=2)


@pytest.fixture
def data(rng):
    # two prototypes with pixel noise: a latent code helps
    protos = (rng.random((2, 16)) > 0.5)
    x = protos[rng.integers(0, 2, 300)] ^ (rng.random((300, 16)) < 0.05)
    return x[:240].astype(np.float32), x[240:].astype(np.float32)


def quiet(**kw):
    return dict(progress=False, log=lambda line: None, **kw)


def test_training_lowers_the_test_loss(data, tmp_path):
    train_x, test_x = data
    trainer = fit(CONFIG, train_x, test_x, epochs=8, batch_size=16, lr=1e-2, out_dir=tmp_path, **quiet())
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert history[-1]["test_neg_elbo"] < 0.5 * history[0]["test_neg_elbo"]
    for h in history:
        assert h["train_neg_elbo"] == pytest.approx(h["train_reconstruction"] + h["train_kl"])
        assert h["seconds"] > 0 and h["test_kl"] >= 0
    assert load_checkpoint(tmp_path / "model.npz").epoch == 8 == trainer.epoch


@pytest.mark.parametrize("config", [CONFIG, VAEConfig(n_pixels=16, hidden=(12, 8), n_latent=2, kl="monte_carlo")])
def test_fast_and_core_engines_give_the_same_loss_curve(config, data):
    """Training with vaelib.fast and with vaelib.core alone: the same curve within float32 rounding.

    The two engines round differently (fused kernels, Adam's folded step size), and training
    amplifies differences a little; after 6 epochs of 15 steps the epoch means still agree
    to 1e-4 relative, while the curve itself falls by more than a fifth.
    """
    train_x, test_x = data
    runs = {engine: fit(config, train_x, test_x, epochs=6, batch_size=16, lr=1e-2, engine=engine, **quiet())
            for engine in ("fast", "core")}
    curves = {engine: np.array([[h["train_neg_elbo"], h["test_neg_elbo"]] for h in t.history])
              for engine, t in runs.items()}
    assert curves["core"][-1, 0] < 0.8 * curves["core"][0, 0]
    np.testing.assert_allclose(curves["fast"], curves["core"], rtol=1e-4)


def test_resume_gives_the_same_numbers_as_an_uninterrupted_run(data, tmp_path):
    train_x, test_x = data
    straight = fit(CONFIG, train_x, test_x, epochs=4, batch_size=32, out_dir=tmp_path / "a", **quiet())
    fit(CONFIG, train_x, test_x, epochs=2, batch_size=32, out_dir=tmp_path / "b", **quiet())
    resumed = fit(CONFIG, train_x, test_x, epochs=4, batch_size=32, out_dir=tmp_path / "b", resume=True, **quiet())
    np.testing.assert_array_equal(straight.theta, resumed.theta)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(straight.history) == strip(resumed.history)


def test_ctrl_c_keeps_the_last_finished_epoch(data, tmp_path, monkeypatch):
    """A KeyboardInterrupt from inside a step (a second Ctrl-C raises one wherever it lands)."""
    train_x, _ = data
    calls = {"n": 0}
    original = Trainer.step

    def step_then_interrupt(self, x):
        calls["n"] += 1
        if calls["n"] == 12:  # inside epoch 2 (8 steps per epoch)
            raise KeyboardInterrupt
        return original(self, x)

    monkeypatch.setattr(Trainer, "step", step_then_interrupt)
    lines = []
    trainer = fit(CONFIG, train_x, epochs=5, batch_size=32, out_dir=tmp_path, progress=False, log=lines.append)
    assert trainer.interrupted
    assert "interrupted during epoch 2" in lines[-1] and "holds epoch 1" in lines[-1]
    assert load_checkpoint(tmp_path / "model.npz").epoch == 1
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NumPy's own warning about the NaN
def test_non_finite_loss_stops_with_step_and_keeps_checkpoint(data, tmp_path, monkeypatch):
    train_x, _ = data
    fit(CONFIG, train_x, epochs=1, batch_size=32, out_dir=tmp_path, **quiet())
    good = (tmp_path / "model.npz").read_bytes()
    original = Trainer.step

    def poisoned(self, x):
        self.params["dec.b1"][3] = np.nan
        return original(self, x)

    monkeypatch.setattr(Trainer, "step", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 1: loss became nan.*still holds epoch 1"):
        fit(CONFIG, train_x, epochs=3, batch_size=32, out_dir=tmp_path, resume=True, **quiet())
    assert (tmp_path / "model.npz").read_bytes() == good


def test_resume_refuses_a_different_architecture(data, tmp_path):
    train_x, _ = data
    fit(CONFIG, train_x, epochs=1, batch_size=32, out_dir=tmp_path, **quiet())
    other = VAEConfig(n_pixels=16, hidden=(10,), n_latent=2)
    with pytest.raises(ValueError, match="other settings.*hidden"):
        fit(other, train_x, epochs=2, batch_size=32, out_dir=tmp_path, resume=True, **quiet())


@pytest.mark.parametrize("name, value", [("beta", 4.0), ("kl", "monte_carlo"), ("lr", 0.5), ("batch_size", 16),
                                         ("seed", 3)])
def test_resume_refuses_other_loss_or_training_settings(data, tmp_path, name, value):
    train_x, _ = data
    fit(CONFIG, train_x, epochs=1, batch_size=32, out_dir=tmp_path, **quiet())
    config, settings = CONFIG, {"batch_size": 32}
    if name in ("beta", "kl"):
        config = VAEConfig(**{**CONFIG.to_dict(), name: value})
    else:
        settings[name] = value
    with pytest.raises(ValueError, match=rf"other settings \({name}: checkpoint .*, requested {value!r}\)"):
        fit(config, train_x, epochs=2, out_dir=tmp_path, resume=True, **settings, **quiet())
    assert load_checkpoint(tmp_path / "model.npz").epoch == 1


@pytest.mark.parametrize("make_bad, message", [
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), "NaN"),
    (lambda x: x * 0.5, "not binary"),
    (lambda x: x[:, :10], "shape"),
    (lambda x: x[:0], "shape"),
])
def test_bad_data_is_refused(data, make_bad, message):
    with pytest.raises(ValueError, match=message):
        validate_data(make_bad(data[0]), CONFIG, "train")


def test_gaussian_model_accepts_grey_data(data):
    validate_data(data[0] * 0.5, VAEConfig(n_pixels=16, likelihood="gaussian"), "train")


@pytest.mark.parametrize("kwargs, message", [(dict(epochs=0), "epochs"), (dict(epochs=1, batch_size=0), "batch_size")])
def test_bad_sizes_are_refused(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(CONFIG, data[0], **quiet(**kwargs))


def test_float32_training_and_float64_checks_share_one_model(data):
    t32, t64 = Trainer(CONFIG, seed=3), Trainer(CONFIG, seed=3, dtype=np.float64)
    assert t32.theta.dtype == np.float32 and t64.theta.dtype == np.float64
    np.testing.assert_allclose(t32.theta, t64.theta, rtol=1e-6)


def test_ctrl_c_between_checkpoint_and_history_leaves_them_in_agreement(data, tmp_path, monkeypatch):
    from vaelib.machinery import train as train_module

    train_x, _ = data
    real_save, calls = train_module.save_checkpoint, {"n": 0}

    def save_then_interrupt(path, checkpoint):
        real_save(path, checkpoint)
        calls["n"] += 1
        if calls["n"] == 2:  # epoch 2's checkpoint is on disk, its history not yet
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_interrupt)
    lines = []
    trainer = fit(CONFIG, train_x, epochs=5, batch_size=32, out_dir=tmp_path, progress=False, log=lines.append)
    assert trainer.interrupted and "holds epoch 2" in lines[-1]
    assert load_checkpoint(tmp_path / "model.npz").epoch == 2
    assert [r["epoch"] for r in json.loads((tmp_path / "history.json").read_text())] == [1, 2]


def test_progress_bar_shows_the_running_mean_of_the_epoch(data, monkeypatch):
    """The bar's loss moves with every batch and ends at the epoch's mean -ELBO."""
    import vaelib.machinery.train as train_module

    shown = []

    class RecordingBar:
        def __init__(self, iterable, **kw):
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable)

        def set_postfix(self, values, refresh=True):
            shown.append(float(next(iter(values.values()))))

        def close(self):
            pass

    monkeypatch.setattr(train_module, "tqdm", RecordingBar)
    train_x, _ = data
    trainer = Trainer(CONFIG, batch_size=16, seed=0)
    means = trainer.train_epoch(train_x)
    assert len(shown) == 15 and len(set(shown)) > 10  # one update per batch, and it moves
    assert shown[-1] == pytest.approx(means["neg_elbo"], abs=0.01)


def saved_run(out_dir):
    """The epoch model.npz holds, after checking that history.json is the history it carries."""
    held = load_checkpoint(out_dir / "model.npz")
    history = json.loads((out_dir / "history.json").read_text())
    assert history == held.training["history"] and [r["epoch"] for r in history] == list(range(1, held.epoch + 1))
    return held.epoch


def test_ctrl_c_during_a_step_lets_it_finish_and_starts_no_other(data, tmp_path, monkeypatch, sigint_as_python_sets_it):
    """The signal arrives while a step runs (in its compiled code, say): nothing is raised there."""
    train_x, _ = data
    started, finished = [], []
    original = Trainer.step

    def step_with_ctrl_c(self, x):
        started.append(len(started) + 1)
        if len(started) == 12:  # inside epoch 2 (8 steps per epoch)
            signal.raise_signal(signal.SIGINT)
        result = original(self, x)
        finished.append(started[-1])
        return result

    monkeypatch.setattr(Trainer, "step", step_with_ctrl_c)
    lines = []
    trainer = fit(CONFIG, train_x, epochs=5, batch_size=32, out_dir=tmp_path, progress=False, log=lines.append)
    assert trainer.interrupted and started == finished == list(range(1, 13))
    assert lines[-1] == f"interrupted during epoch 2; {tmp_path / 'model.npz'} holds epoch 1"
    assert saved_run(tmp_path) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


@pytest.mark.parametrize("target, at_epoch, epochs, said", [
    ("evaluate", 1, 3, "during epoch 2"),
    ("save_checkpoint", 1, 3, "during epoch 2"),
    ("save_checkpoint", 2, 2, "after epoch 2"),  # the end of training
])
def test_ctrl_c_after_an_epochs_last_batch_keeps_that_epoch(data, tmp_path, monkeypatch, sigint_as_python_sets_it,
                                                            target, at_epoch, epochs, said):
    """A signal during an epoch's evaluation or checkpoint: both finish, and training stops before the next batch."""
    train_x, test_x = data
    owner = Trainer if target == "evaluate" else train_module
    original, calls = getattr(owner, target), []

    def with_ctrl_c(*args):
        calls.append(None)
        if len(calls) == at_epoch:
            signal.raise_signal(signal.SIGINT)
        return original(*args)

    monkeypatch.setattr(owner, target, with_ctrl_c)
    lines = []
    trainer = fit(CONFIG, train_x, test_x, epochs=epochs, batch_size=32, out_dir=tmp_path, progress=False,
                  log=lines.append)
    assert trainer.interrupted and trainer.epoch == at_epoch
    assert lines[-1] == f"interrupted {said}; {tmp_path / 'model.npz'} holds epoch {at_epoch}"
    assert saved_run(tmp_path) == at_epoch


def test_a_second_ctrl_c_stops_at_once_and_the_files_still_agree(data, tmp_path, monkeypatch,
                                                                sigint_as_python_sets_it):
    train_x, _ = data
    started, finished = [], []
    original = Trainer.step

    def step_with_two_ctrl_c(self, x):
        started.append(len(started) + 1)
        if len(started) == 12:
            signal.raise_signal(signal.SIGINT)  # noted
            signal.raise_signal(signal.SIGINT)  # Python's handler again: KeyboardInterrupt, here
        result = original(self, x)
        finished.append(started[-1])
        return result

    monkeypatch.setattr(Trainer, "step", step_with_two_ctrl_c)
    lines = []
    trainer = fit(CONFIG, train_x, epochs=5, batch_size=32, out_dir=tmp_path, progress=False, log=lines.append)
    assert trainer.interrupted and started == list(range(1, 13)) and finished == list(range(1, 12))
    assert "holds epoch 1" in lines[-1] and saved_run(tmp_path) == 1


def test_training_outside_the_main_thread_touches_no_signal_handler(data, monkeypatch, sigint_as_python_sets_it):
    train_x, _ = data
    seen, results = set(), []
    original = Trainer.step

    def step_noting_the_handler(self, x):
        seen.add(signal.getsignal(signal.SIGINT))
        return original(self, x)

    monkeypatch.setattr(Trainer, "step", step_noting_the_handler)
    worker = threading.Thread(target=lambda: results.append(fit(CONFIG, train_x, epochs=2, batch_size=32,
                                                                    progress=False, log=lambda line: None)))
    worker.start()
    worker.join()
    assert seen == {signal.default_int_handler} and results[0].epoch == 2 and not results[0].interrupted


def test_ctrl_c_while_the_model_cache_trains_stores_nothing(data, tmp_path, monkeypatch, sigint_as_python_sets_it):
    """The model cache (a notebook's kernel: Jupyter's interrupt is SIGINT) reads trainer.interrupted."""
    train_x, test_x = data
    steps = []
    original = Trainer.step

    def step_with_ctrl_c(self, x):
        steps.append(None)
        if len(steps) == 5:
            signal.raise_signal(signal.SIGINT)
        return original(self, x)

    monkeypatch.setattr(Trainer, "step", step_with_ctrl_c)
    cache = ModelCache(tmp_path / "models", log=lambda line: None)
    with pytest.raises(KeyboardInterrupt):
        cache.fit(CONFIG, Dataset("two prototypes", train_x, test_x, None, None, binary=True), epochs=2,
                  batch_size=32, progress=False)
    assert len(steps) == 5 and not list(tmp_path.glob("models/*.npz"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ------------------------------------------------------------------ the importance-weighted objective
def test_iwae_training_lowers_the_test_bound_and_records_it(data, tmp_path):
    """-L_K falls on the test set; train and test -L_K lie below the K-sample -ELBO of the same epoch
    (L_K >= the ELBO in expectation; here by more than 0.05 nats at every epoch)."""
    train_x, test_x = data
    lines = []
    trainer = fit(CONFIG, train_x, test_x, epochs=6, batch_size=16, lr=1e-2, out_dir=tmp_path, progress=False,
                  log=lines.append, objective="iwae", k=5)
    history = json.loads((tmp_path / "history.json").read_text())
    assert history[-1]["test_neg_iwae"] < 0.6 * history[0]["test_neg_iwae"]
    for h in history:
        assert h["train_neg_iwae"] < h["train_neg_elbo"] - 0.05 and h["test_neg_iwae"] < h["test_neg_elbo"] - 0.05
        assert h["train_neg_elbo"] == pytest.approx(h["train_reconstruction"] + h["train_kl"])
    saved = load_checkpoint(tmp_path / "model.npz").training
    assert (saved["objective"], saved["k"]) == ("iwae", 5) == (trainer.settings["objective"], trainer.settings["k"])
    assert "-IWAE" in lines[-1]


def test_iwae_fast_and_core_engines_give_the_same_loss_curve(data):
    """As for the ELBO: 6 epochs of 15 steps at K = 4, epoch means within 1e-4 relative."""
    train_x, test_x = data
    runs = {engine: fit(CONFIG, train_x, test_x, epochs=6, batch_size=16, lr=1e-2, engine=engine,
                        objective="iwae", k=4, **quiet()) for engine in ("fast", "core")}
    curves = {engine: np.array([[h["train_neg_iwae"], h["test_neg_iwae"]] for h in t.history])
              for engine, t in runs.items()}
    assert curves["core"][-1, 0] < 0.8 * curves["core"][0, 0]
    np.testing.assert_allclose(curves["fast"], curves["core"], rtol=1e-4)


@pytest.mark.parametrize("engine", ["fast", "core"])
def test_iwae_with_one_sample_trains_the_monte_carlo_elbo(data, engine):
    """K = 1 draws the same noise as the ELBO and weighs each image by 1/batch: the same parameters,
    bit for bit, as training the ELBO with kl="monte_carlo"."""
    train_x, _ = data
    mc = VAEConfig(**{**CONFIG.to_dict(), "kl": "monte_carlo"})
    iwae = fit(CONFIG, train_x, epochs=2, batch_size=16, engine=engine, objective="iwae", k=1, **quiet())
    elbo = fit(mc, train_x, epochs=2, batch_size=16, engine=engine, **quiet())
    np.testing.assert_array_equal(iwae.theta, elbo.theta)


def test_iwae_resume_gives_the_same_numbers_as_an_uninterrupted_run(data, tmp_path):
    train_x, test_x = data
    kw = dict(batch_size=32, objective="iwae", k=3, **quiet())
    straight = fit(CONFIG, train_x, test_x, epochs=3, out_dir=tmp_path / "a", **kw)
    fit(CONFIG, train_x, test_x, epochs=1, out_dir=tmp_path / "b", **kw)
    resumed = fit(CONFIG, train_x, test_x, epochs=3, out_dir=tmp_path / "b", resume=True, **kw)
    np.testing.assert_array_equal(straight.theta, resumed.theta)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(straight.history) == strip(resumed.history)


@pytest.mark.parametrize("first, then, name", [
    (dict(), dict(objective="iwae", k=5), "objective"),
    (dict(objective="iwae", k=5), dict(objective="iwae", k=2), "k"),
    (dict(objective="iwae", k=5), dict(), "objective"),
])
def test_resume_refuses_another_objective(data, tmp_path, first, then, name):
    train_x, _ = data
    fit(CONFIG, train_x, epochs=1, batch_size=32, out_dir=tmp_path, **first, **quiet())
    with pytest.raises(ValueError, match=rf"other settings \(.*{name}: checkpoint"):
        fit(CONFIG, train_x, epochs=2, batch_size=32, out_dir=tmp_path, resume=True, **then, **quiet())
    assert load_checkpoint(tmp_path / "model.npz").epoch == 1


def test_a_checkpoint_that_records_no_objective_resumes_as_the_elbo(data, tmp_path):
    """Checkpoints written before the objective was recorded were trained on the ELBO."""
    from vaelib.machinery.checkpoint import save_checkpoint

    train_x, _ = data
    straight = fit(CONFIG, train_x, epochs=2, batch_size=32, **quiet())
    fit(CONFIG, train_x, epochs=1, batch_size=32, out_dir=tmp_path, **quiet())
    old = load_checkpoint(tmp_path / "model.npz")
    old.training = {k: v for k, v in old.training.items() if k not in ("objective", "k")}
    save_checkpoint(tmp_path / "model.npz", old)
    resumed = fit(CONFIG, train_x, epochs=2, batch_size=32, out_dir=tmp_path, resume=True, **quiet())
    np.testing.assert_array_equal(straight.theta, resumed.theta)
    with pytest.raises(ValueError, match="objective: checkpoint 'elbo', requested 'iwae'"):
        fit(CONFIG, train_x, epochs=3, batch_size=32, out_dir=tmp_path, resume=True, objective="iwae", k=2, **quiet())


@pytest.mark.parametrize("config, kwargs, message", [
    (CONFIG, dict(objective="vimco"), "unknown objective"),
    (CONFIG, dict(objective="iwae", k=0), "positive integer"),
    (CONFIG, dict(k=5), "for objective 'iwae'"),
    (VAEConfig(n_pixels=16, hidden=(12,), n_latent=2, beta=0.5), dict(objective="iwae", k=5), "bound on log p"),
])
def test_bad_objectives_are_refused(data, config, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(config, data[0], epochs=1, **kwargs, **quiet())
