"""Training: minibatch descent on the loss (the negative ELBO, or the negative IWAE bound), with checkpoints and history.

:class:`Trainer` holds everything a run needs to continue exactly where it
stopped: parameters, optimiser state, the random generator and the history.
Parameters live in one flat float32 vector (:mod:`vaelib.fast.flat`), which the
model reads through named views and the optimiser updates in one call.

Two engines compute the same step. ``"fast"`` (the default) uses
:mod:`vaelib.fast`: fused kernels and a compiled Adam. ``"core"`` uses only
:mod:`vaelib.core`, the plain NumPy a learner reads;
``tests/test_train.py`` checks that the two give the same loss curve.

The objective: ``"elbo"`` (the default) minimises the loss of
:mod:`vaelib.core.vae`, one sample per image; ``"iwae"`` minimises ``-L_K``, the
importance-weighted bound of :mod:`vaelib.core.iwae` with ``k`` samples per image
(``k = 1`` is the ELBO with a Monte Carlo KL, whatever ``config.kl`` says).

Threads: training runs its matrix products on ``threads`` BLAS threads, one
by default. One thread gives the same numbers on every run (OpenBLAS sums in
another order on two), and does not collapse when other programs share the
machine; ``benchmarks/README.md`` has the measurements behind this choice.

:func:`fit` runs epochs, writes ``model.npz`` and ``history.json`` after every
finished epoch (atomically), resumes from ``model.npz``, and leaves the last
good checkpoint untouched when interrupted or when the loss stops being finite.
Ctrl-C (and whatever signals the caller listens for, see :mod:`vaelib.machinery.stop`)
stops training between two batches, never inside the compiled code of a step.
"""

import json
import signal
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .atomic import atomic_write
from .batches import Minibatches, is_binary
from .checkpoint import Checkpoint, check_same_run, load_checkpoint, save_checkpoint
from .stop import StopSignals
from vaelib.core.evaluate import elbo_terms, importance_weighted_log_likelihood
from vaelib.core import optim
from vaelib.core.iwae import check_iwae_config, negative_iwae_backward, negative_iwae_forward
from vaelib.core.vae import VAEConfig, init_params, negative_elbo_backward, negative_elbo_forward, param_shapes
from vaelib.fast.adam import FastAdam
from vaelib.fast.flat import flat_views, flatten
from vaelib.fast.iwae import inplace_negative_iwae_and_grads
from vaelib.fast.vae import inplace_negative_elbo_and_grads

#: engine -> optimiser name -> class
OPTIMISERS = {"fast": {**optim.OPTIMISERS, "adam": FastAdam}, "core": optim.OPTIMISERS}

#: objective -> (the fast step, the core's forward and backward)
OBJECTIVES = {
    "elbo": (inplace_negative_elbo_and_grads, negative_elbo_forward, negative_elbo_backward),
    "iwae": (inplace_negative_iwae_and_grads, negative_iwae_forward, negative_iwae_backward),
}

CHECKPOINT_NAME = "model.npz"
HISTORY_NAME = "history.json"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite during training."""


def validate_data(x, config, name="data"):
    """Check a data matrix before training on it; raise ``ValueError`` saying what is wrong.

    Parameters
    ----------
    x : ndarray, shape (n, n_pixels)
    config : VAEConfig
    name : str
        Used in messages, e.g. ``"train"``.
    """
    if x.ndim != 2 or x.shape[1] != config.n_pixels or len(x) == 0:
        raise ValueError(f"{name} data must have shape (n > 0, {config.n_pixels}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise ValueError(f"{name} data holds {bad} NaN or infinite values; clean or drop those images")
    if config.likelihood == "bernoulli" and not is_binary(x):
        raise ValueError(
            f"{name} data is not binary, but a Bernoulli likelihood is a distribution on {{0, 1}}; "
            "binarise it (--binarize) or use --likelihood gaussian"
        )


def check_objective(config, objective, k):
    """Raise ``ValueError`` unless ``objective`` with ``k`` samples per image can train ``config``."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {sorted(OBJECTIVES)}")
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if objective == "elbo" and k != 1:
        raise ValueError(f"k = {k} samples per image is for objective 'iwae'; the ELBO is trained on one")
    if objective == "iwae":
        check_iwae_config(config)


class Trainer:
    """A VAE being trained: parameters, optimiser, random generator, history.

    Parameters
    ----------
    config : VAEConfig
    lr : float
    batch_size : int
    seed : int
        Seeds the one generator that initialises parameters, shuffles the
        data and draws ``eps``.
    optimizer : {"adam", "sgd"}
    dtype : numpy dtype
        float32 for speed; float64 if you want to gradient-check a trained model.
    engine : {"fast", "core"}
        Which implementation computes each step (see the module docstring).
    threads : int
        BLAS threads for the matrix products.
    objective : {"elbo", "iwae"}
    k : int
        Samples per image of the ``"iwae"`` objective (1 for ``"elbo"``).
    """

    def __init__(self, config, *, lr=1e-3, batch_size=128, seed=0, optimizer="adam", dtype=np.float32,
                 engine="fast", threads=1, objective="elbo", k=1):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        if engine not in OPTIMISERS:
            raise ValueError(f"unknown engine {engine!r}; choose one of {sorted(OPTIMISERS)}")
        if optimizer not in OPTIMISERS[engine]:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMISERS[engine])}")
        if threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads}")
        check_objective(config, objective, k)
        self.config = config
        self.settings = {"lr": lr, "batch_size": batch_size, "seed": seed, "optimizer": optimizer,
                         "dtype": np.dtype(dtype).name, "objective": objective, "k": int(k)}
        self.engine, self.threads = engine, threads
        self.rng = np.random.default_rng(seed)
        self.shapes = param_shapes(config)
        self.theta, self.params = flatten(init_params(config, self.rng, dtype), self.shapes, dtype)
        self.grad_vector = np.zeros_like(self.theta)
        self.grads = flat_views(self.shapes, self.grad_vector)
        self.optimizer = OPTIMISERS[engine][optimizer](lr=lr)
        self.epoch = 0
        self.history = []

    # ------------------------------------------------------------ one step, one epoch
    def step(self, x):
        """One descent step on a batch ``x`` of shape (batch, n_pixels); returns ``(loss, terms)``."""
        fast_step, forward, backward = OBJECTIVES[self.settings["objective"]]
        samples = (self.settings["k"],) if self.settings["objective"] == "iwae" else ()
        eps = self.rng.standard_normal((len(x), *samples, self.config.n_latent), dtype=self.theta.dtype)
        if self.engine == "fast":
            loss, terms = fast_step(self.grads, self.params, x, eps, self.config)
        else:
            loss, terms, cache = forward(self.params, x, eps, self.config)
            for name, grad in backward(cache).items():
                self.grads[name][...] = grad
        if not np.isfinite(loss):
            raise NonFiniteLossError(
                f"loss became {loss} (reconstruction {terms['reconstruction'].mean():.4g}, "
                f"kl {terms['kl'].mean():.4g} nats per image)"
            )
        self.optimizer.inplace_step({"theta": self.theta}, {"theta": self.grad_vector})
        return loss, terms

    def train_epoch(self, x, progress=True, stop=None):
        """One pass over ``x`` in a fresh random order.

        Parameters
        ----------
        x : ndarray, shape (n, n_pixels), or :class:`~vaelib.machinery.batches.Minibatches`
            Passing ``Minibatches`` (as :func:`fit` does) avoids re-packing the
            data every epoch.
        progress : bool
        stop : :class:`~vaelib.machinery.stop.StopSignals`, optional
            Checked before every batch: after a signal the epoch ends there,
            raising :class:`~vaelib.machinery.stop.StopRequested`, never inside a step.

        Returns
        -------
        dict : mean per-image ``neg_elbo``, ``reconstruction``, ``kl`` (nats) over the epoch,
            and ``neg_iwae`` for the ``"iwae"`` objective (the ``K``-sample terms, see
            :func:`~vaelib.core.iwae.negative_iwae_forward`).
        """
        batch_size = self.settings["batch_size"]
        if not isinstance(x, Minibatches):
            x = Minibatches(x, self.theta.dtype)
        order = self.rng.permutation(len(x))
        sums = {"neg_elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
        if self.settings["objective"] == "iwae":
            sums["neg_iwae"] = 0.0
        seen = 0
        bar = tqdm(x.iterate(order, batch_size), total=-(-len(x) // batch_size), desc=f"epoch {self.epoch + 1}",
                   unit="batch", disable=not progress, leave=False, mininterval=0.5)
        try:
            with threadpool_limits(self.threads, user_api="blas"):
                for i, xb in enumerate(bar):
                    if stop is not None:
                        stop.check()
                    try:
                        loss, terms = self.step(xb)
                    except NonFiniteLossError as e:
                        raise NonFiniteLossError(f"epoch {self.epoch + 1}, step {i + 1}: {e}") from None
                    for k in sums:
                        sums[k] += float(terms[k].sum())
                    seen += len(xb)
                    bar.set_postfix({"-ELBO so far": f"{sums['neg_elbo'] / seen:.2f}"}, refresh=False)
        finally:
            bar.close()  # also when stopped: the bar is gone before the line that says so
        self.epoch += 1
        return {k: v / len(x) for k, v in sums.items()}

    def evaluate(self, x):
        """Mean one-sample ``neg_elbo``, ``reconstruction``, ``kl`` on ``x`` (nats per image).

        For the ``"iwae"`` objective also ``neg_iwae``, ``-L_K`` at the training ``K``.
        Uses its own generator seeded by ``(seed, epoch)``, so evaluating never
        changes the training stream.
        """
        rng = np.random.default_rng([self.settings["seed"], self.epoch, 1])
        with threadpool_limits(self.threads, user_api="blas"):
            terms = elbo_terms(self.params, x, self.config, rng)
            if self.settings["objective"] == "iwae":
                terms["neg_iwae"] = -importance_weighted_log_likelihood(self.params, x, self.config, rng,
                                                                         n_samples=self.settings["k"])
        return {k: float(v.mean()) for k, v in terms.items()}

    # ------------------------------------------------------------ checkpoints
    def to_checkpoint(self):
        """The whole state as a :class:`~vaelib.machinery.checkpoint.Checkpoint`."""
        return Checkpoint(
            params=dict(self.params),
            optimizer_state=self.optimizer.state_dict(),
            config=self.config.to_dict(),
            training={**self.settings, "history": self.history},
            epoch=self.epoch,
            rng_state=self.rng.bit_generator.state,
        )

    @classmethod
    def from_checkpoint(cls, checkpoint, **options):
        """Rebuild a trainer that continues exactly where the checkpoint left off.

        ``options`` (``engine``, ``threads``) are passed to the constructor. A
        checkpoint that records no objective was trained on the ELBO.
        """
        settings = {"objective": "elbo", "k": 1, **{k: v for k, v in checkpoint.training.items() if k != "history"}}
        trainer = cls(VAEConfig(**checkpoint.config), **settings, **options)
        for name in trainer.shapes:
            if name not in checkpoint.params or checkpoint.params[name].shape != trainer.params[name].shape:
                raise ValueError(f"checkpoint parameter {name!r} is missing or has the wrong shape")
            trainer.params[name][...] = checkpoint.params[name]
        trainer.optimizer.load_state_dict(checkpoint.optimizer_state)
        trainer.rng.bit_generator.state = checkpoint.rng_state
        trainer.epoch = checkpoint.epoch
        trainer.history = list(checkpoint.training.get("history", []))
        return trainer


def fit(config, train_x, test_x=None, *, epochs, lr=1e-3, batch_size=128, seed=0, out_dir=None,
        resume=False, progress=True, log=print, engine="fast", threads=1, stop=None, objective="elbo", k=1):
    """Train a VAE for ``epochs`` epochs in total.

    Parameters
    ----------
    config : VAEConfig
    train_x : ndarray, shape (n_train, n_pixels)
    test_x : ndarray, shape (n_test, n_pixels), optional
        Evaluated after every epoch.
    epochs : int
        Total number of epochs; a resumed run trains only the missing ones.
    out_dir : str or Path, optional
        Where ``model.npz`` and ``history.json`` are written after every epoch.
    resume : bool
        Continue from ``out_dir/model.npz`` if it exists.
    progress : bool
        Show a tqdm progress bar per epoch.
    log : callable
        Receives one line per epoch.
    engine, threads
        See :class:`Trainer`.
    stop : :class:`~vaelib.machinery.stop.StopSignals`, optional
        The signals that stop training; fit listens for them while it runs,
        unless the caller listens already (the command line listens for SIGINT
        and SIGTERM from its start). By default: SIGINT (Ctrl-C, Jupyter's
        interrupt). Outside the main thread nothing listens.
    objective, k
        What is minimised: ``"elbo"``, or ``"iwae"`` with ``k`` samples per image
        (see the module docstring). A resumed run must use the checkpoint's.

    Returns
    -------
    Trainer
        After a stop signal, ``trainer.interrupted`` is True and
        ``out_dir/model.npz`` holds the last finished epoch. Training stops
        before the next batch, never inside a step; an epoch whose last batch
        has run is evaluated and saved first. A second signal stops at once
        (see :mod:`vaelib.machinery.stop`); the files on disk then still agree.

    Raises
    ------
    NonFiniteLossError
        With the epoch and step, when the loss becomes NaN or infinite. The last
        good checkpoint is left as it was.
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be a positive integer, got {epochs}")
    check_objective(config, objective, k)
    stop = StopSignals(signal.SIGINT) if stop is None else stop
    with stop:
        validate_data(train_x, config, "train")
        if test_x is not None:
            validate_data(test_x, config, "test")
        ckpt_path = history_path = None
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            ckpt_path, history_path = Path(out_dir) / CHECKPOINT_NAME, Path(out_dir) / HISTORY_NAME

        if resume and ckpt_path is not None and ckpt_path.exists():
            checkpoint = load_checkpoint(ckpt_path)
            checkpoint.training = {"objective": "elbo", "k": 1, **checkpoint.training}  # older runs: the ELBO
            check_same_run(checkpoint, config.to_dict(), {"lr": lr, "batch_size": batch_size, "seed": seed,
                                                          "objective": objective, "k": k}, ckpt_path)
            trainer = Trainer.from_checkpoint(checkpoint, engine=engine, threads=threads)
            log(f"resumed from {ckpt_path} after epoch {trainer.epoch}")
        else:
            trainer = Trainer(config, lr=lr, batch_size=batch_size, seed=seed, engine=engine, threads=threads,
                              objective=objective, k=k)
        trainer.interrupted = False
        train_batches = Minibatches(train_x, trainer.theta.dtype)

        try:
            while trainer.epoch < epochs:
                _run_epoch(trainer, train_batches, test_x, progress, log, ckpt_path, history_path, stop)
            stop.check()  # a signal during the last epoch's evaluation or save
        except KeyboardInterrupt:  # a stop signal at a batch boundary, or a second signal anywhere
            trainer.interrupted = True
            when = f"during epoch {trainer.epoch + 1}" if trainer.epoch < epochs else f"after epoch {trainer.epoch}"
            log(f"interrupted {when}; {_settle_after_interrupt(ckpt_path, history_path)}")
        except NonFiniteLossError as e:
            kept = f"; {ckpt_path} still holds epoch {trainer.epoch}" if ckpt_path and ckpt_path.exists() else ""
            raise NonFiniteLossError(f"{e}{kept}. Try a smaller --lr.") from None
    return trainer


def _run_epoch(trainer, train_batches, test_x, progress, log, ckpt_path, history_path, stop):
    """Train one epoch, evaluate, log, and save checkpoint and history."""
    start = time.perf_counter()
    train_terms = trainer.train_epoch(train_batches, progress=progress, stop=stop)
    record = {"epoch": trainer.epoch, "seconds": time.perf_counter() - start}
    record.update({f"train_{k}": v for k, v in train_terms.items()})
    if test_x is not None:
        record.update({f"test_{k}": v for k, v in trainer.evaluate(test_x).items()})
    trainer.history.append(record)
    log(_epoch_line(record))
    if ckpt_path is not None:
        save_checkpoint(ckpt_path, trainer.to_checkpoint())
        _write_history(history_path, trainer.history)


def _write_history(path, history):
    with atomic_write(path, "w") as f:
        json.dump(history, f, indent=1)


def _settle_after_interrupt(ckpt_path, history_path):
    """After a stop, make history.json agree with the checkpoint on disk; say what is saved.

    A stop signal stops training between batches, where the two files agree.
    A second signal can land anywhere, even between writing the checkpoint and
    the history; both writes are atomic, and the checkpoint carries the
    history, so the checkpoint decides.
    """
    if ckpt_path is None or not ckpt_path.exists():
        return "nothing was saved"
    held = load_checkpoint(ckpt_path)
    _write_history(history_path, held.training.get("history", []))
    return f"{ckpt_path} holds epoch {held.epoch}"


def _epoch_line(record):
    line = f"epoch {record['epoch']:3d}  {record['seconds']:6.2f} s  train -ELBO {record['train_neg_elbo']:8.3f}"
    if "train_neg_iwae" in record:
        line += f"  -IWAE {record['train_neg_iwae']:8.3f}"
    if "test_neg_elbo" in record:
        line += f"  test -ELBO {record['test_neg_elbo']:8.3f} (rec {record['test_reconstruction']:.3f}, KL {record['test_kl']:.3f})"
    if "test_neg_iwae" in record:
        line += f"  -IWAE {record['test_neg_iwae']:8.3f}"
    return line + "  nats/image"
