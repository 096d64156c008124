"""Train a VAE on the fixed binarised MNIST and measure its test NLL as the literature does.

    python benchmarks/reproduce.py --data-dir DIR --out build/reproduce      # or `make reproduce`
    python benchmarks/reproduce.py --data-dir DIR --out build/reproduce --evaluate-now

Data: ``binarized-mnist`` (Larochelle & Murray, 2011), 50,000 train / 10,000
valid / 10,000 test images, read by :func:`vaelib.machinery.data.load_dataset`
from ``DIR/binarized_mnist.npz`` (``--data-dir``, else ``$VAELIB_DATA``).

Training drives :class:`vaelib.machinery.train.Trainer` one epoch at a time on
one BLAS thread. Every ``--eval-every`` epochs the one-sample bound that is
trained (the ELBO, or ``L_K`` for ``--objective iwae``) is measured on the
validation split with the same noise every time (common random numbers, so two
evaluations differ by the model only); the best parameters are kept. Training
stops at the first of: ``--budget-minutes`` of CPU time (``time.process_time``,
training and validation, summed over resumed sessions), ``--max-epochs``, or
``--patience`` epochs without a better validation bound (early stopping, never
during the warm-up).
An optional KL warm-up (``--warmup-epochs W``) weighs the KL term by
``min(1, epoch / W)`` while training, as Tomczak & Welling (2018) did; the
validation bound is always the true ELBO (weight 1).

Then the best parameters are evaluated on the test split in float64: the
importance-weighted estimate of ``log p(x)`` with ``--samples`` (5,000) samples
per image (its negative is the NLL, with the standard error of the mean over
images), in nats per image and bits per dimension; the one-sample test ELBO; the
active units (Burda et al., 2016). ``OUT/report.json`` holds these with the
architecture, the schedule, the CPU and wall time, and the data's checksums.

Files in ``OUT`` (all written atomically):

- ``model.npz``: the last finished epoch, a :mod:`vaelib.machinery.checkpoint`
  with the optimiser and generator state and, in ``training["reproduce"]``,
  this script's settings and progress (validation curve, best epoch, CPU time).
  Written after every epoch: a crash or Ctrl-C loses at most the epoch running.
  Running the same command again resumes; a different setting that defines the
  run is refused (``--budget-minutes`` and ``--max-epochs`` may grow).
- ``best/model.npz`` (with ``best/run.json``): the best validated parameters,
  readable by ``vaelib evaluate OUT/best``.
- ``report.json``: the measurements.

``--evaluate-now`` trains nothing: it evaluates the best model so far (of a run
still training in another process, or one that was stopped) and writes the
report with ``"finished": false`` if training has not ended.
"""

import argparse
import dataclasses
import hashlib
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from vaelib.core.evaluate import active_units, elbo_terms, importance_weighted_log_likelihood
from vaelib.core.vae import VAEConfig
from vaelib.machinery.atomic import atomic_write
from vaelib.machinery.batches import Minibatches
from vaelib.machinery.checkpoint import load_checkpoint, save_checkpoint
from vaelib.machinery.data import BINARIZED_MNIST_FILE, BINARIZED_MNIST_SHA256, resolve_data_dir, load_dataset
from vaelib.machinery.stop import StopSignals
from vaelib.machinery.train import Trainer

CHECKPOINT, BEST_DIR, REPORT = "model.npz", "best", "report.json"
#: settings that define a run: a resumed run must use the same
RUN_KEYS = ("hidden", "latent", "activation", "objective", "k", "lr", "batch_size", "seed", "warmup_epochs",
            "eval_every", "patience")


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", default=None, help="folder holding binarized_mnist.npz (unset: $VAELIB_DATA)")
    p.add_argument("--out", default="build/reproduce", help="run directory (resumed if it holds this run)")
    p.add_argument("--hidden", type=int, nargs="+", default=[300, 300], help="hidden widths (decoder mirrors)")
    p.add_argument("--latent", type=int, default=40, help="latent dimensions")
    p.add_argument("--activation", default="relu", choices=["relu", "tanh", "softplus", "sigmoid"])
    p.add_argument("--objective", default="elbo", choices=["elbo", "iwae"])
    p.add_argument("--k", type=int, default=1, help="samples per image for --objective iwae")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam's learning rate")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup-epochs", type=int, default=100,
                   help="KL weight min(1, epoch / W) while training; 0: none (required for --objective iwae)")
    p.add_argument("--eval-every", type=int, default=5, help="epochs between validation evaluations")
    p.add_argument("--patience", type=int, default=50, help="stop after this many epochs without a better "
                                                             "validation bound")
    p.add_argument("--budget-minutes", type=float, default=60.0, help="CPU minutes of training (process_time)")
    p.add_argument("--max-epochs", type=int, default=10000)
    p.add_argument("--samples", type=int, default=5000, help="importance samples per test image")
    p.add_argument("--test-limit", type=int, default=None,
                   help="evaluate this many test images drawn at random (seeded); unset: all")
    p.add_argument("--eval-dtype", default="float32", choices=["float32", "float64"],
                   help="precision of the test evaluation (float32: 2.5x faster; see --precision-check)")
    p.add_argument("--precision-check", type=int, default=20,
                   help="test images on which log p(x) is also computed in float64, to bound the difference")
    p.add_argument("--evaluate-now", action="store_true", help="train nothing; evaluate the best model so far")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    return p


# ------------------------------------------------------------------ data
def data_checksums(data_dir):
    """sha256 of the npz file, and of each packed split compared with the published fixed binarisation."""
    path = resolve_data_dir(data_dir) / BINARIZED_MNIST_FILE
    with np.load(path) as arrays:
        splits = {name: hashlib.sha256(np.ascontiguousarray(arrays[name]).tobytes()).hexdigest()
                  for name in ("train", "valid", "test") if name in arrays.files}
    return {"file": str(path), "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "split_sha256": splits,
            "is_the_published_fixed_binarisation": splits == BINARIZED_MNIST_SHA256}


# ------------------------------------------------------------------ training
def settings_of(args):
    return {"hidden": list(args.hidden), "latent": args.latent, "activation": args.activation,
            "objective": args.objective, "k": args.k, "lr": args.lr, "batch_size": args.batch_size,
            "seed": args.seed, "warmup_epochs": args.warmup_epochs, "eval_every": args.eval_every,
            "patience": args.patience}


def kl_weight(epoch, warmup_epochs):
    """The KL weight of training epoch ``epoch`` (1-based): ``min(1, epoch / W)``, 1 without warm-up."""
    return 1.0 if warmup_epochs <= 0 else min(1.0, epoch / warmup_epochs)


def validation_bound(params, x, config, settings):
    """Mean one-sample negative bound on ``x`` (nats): the ELBO, or ``-L_K`` for the IWAE objective.

    The noise is drawn from a generator seeded the same way at every call (common random numbers).
    """
    rng = np.random.default_rng([settings["seed"], 2])
    if settings["objective"] == "iwae":
        return float(-importance_weighted_log_likelihood(params, x, config, rng, n_samples=settings["k"]).mean())
    return float(elbo_terms(params, x, config, rng)["neg_elbo"].mean())


def save_state(out, trainer, progress, best_improved, base_config):
    """Write the best model first (if it improved), then the checkpoint that records it."""
    ckpt = trainer.to_checkpoint()
    ckpt.config = base_config.to_dict()  # the KL weight of warm-up is a training schedule, not the model
    if best_improved:
        (out / BEST_DIR).mkdir(exist_ok=True)
        save_checkpoint(out / BEST_DIR / CHECKPOINT, ckpt)
        with atomic_write(out / BEST_DIR / "run.json", "w") as f:  # what `vaelib evaluate OUT/best` reads
            json.dump({"data": "binarized-mnist", "binarize": False}, f)
    ckpt.training = {**ckpt.training, "reproduce": progress}
    save_checkpoint(out / CHECKPOINT, ckpt)


def load_state(out, settings, threads):
    """``(trainer, progress)`` from ``out/model.npz``, or ``(None, None)``; refuses another run's checkpoint."""
    path = out / CHECKPOINT
    if not path.exists():
        return None, None
    ckpt = load_checkpoint(path)
    progress = ckpt.training.pop("reproduce")
    diffs = [f"{k}: saved {progress['settings'][k]!r}, asked {settings[k]!r}" for k in RUN_KEYS
             if progress["settings"][k] != settings[k]]
    if diffs:
        raise ValueError(f"{path} holds another run ({'; '.join(diffs)}); use its settings or another --out")
    return Trainer.from_checkpoint(ckpt, threads=threads), progress


def train(args, data, log=print):
    """Train (or resume) until the budget, the epoch limit or early stopping; returns the progress record."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings_of(args)
    config = VAEConfig(n_pixels=data.train.shape[1], hidden=tuple(args.hidden), n_latent=args.latent,
                       activation=args.activation)
    if args.warmup_epochs and args.objective != "elbo":
        raise ValueError("--warmup-epochs weighs the KL term of the ELBO; the IWAE objective has none")
    trainer, progress = load_state(out, settings, args.threads)
    if trainer is None:
        trainer = Trainer(config, lr=args.lr, batch_size=args.batch_size, seed=args.seed, threads=args.threads,
                          objective=args.objective, k=args.k)
        progress = {"settings": settings, "epochs": 0, "cpu_seconds": 0.0, "wall_seconds": 0.0, "curve": [],
                    "best_epoch": None, "best_valid_neg_bound": None, "stopped": None}
    else:
        log(f"resumed from {out / CHECKPOINT} after epoch {trainer.epoch} "
            f"({progress['cpu_seconds'] / 60:.1f} CPU minutes so far)")
    budget = args.budget_minutes * 60
    batches = Minibatches(data.train, trainer.theta.dtype)
    stop = StopSignals(signal.SIGINT, signal.SIGTERM)
    cpu0, wall0 = time.process_time() - progress["cpu_seconds"], time.perf_counter() - progress["wall_seconds"]
    progress["stopped"] = None
    with stop, threadpool_limits(args.threads, user_api="blas"):
        try:
            while True:
                if (progress["best_epoch"] is not None and trainer.epoch >= args.warmup_epochs
                        and trainer.epoch - progress["best_epoch"] >= args.patience):
                    progress["stopped"] = f"early stopping: no better validation bound for {args.patience} epochs"
                elif trainer.epoch >= args.max_epochs:
                    progress["stopped"] = f"--max-epochs {args.max_epochs}"
                elif time.process_time() - cpu0 >= budget:
                    progress["stopped"] = f"CPU budget of {args.budget_minutes:g} minutes"
                if progress["stopped"]:
                    break
                trainer.config = dataclasses.replace(config, beta=kl_weight(trainer.epoch + 1, args.warmup_epochs))
                terms = trainer.train_epoch(batches, progress=False, stop=stop)
                line = f"epoch {trainer.epoch:4d}  train -ELBO {terms['neg_elbo']:8.3f}"
                improved = False
                if trainer.epoch % args.eval_every == 0:
                    valid = validation_bound(trainer.params, data.valid, config, settings)
                    progress["curve"].append({"epoch": trainer.epoch, "cpu_seconds": time.process_time() - cpu0,
                                              "train_neg_elbo": terms["neg_elbo"], "valid_neg_bound": valid})
                    improved = progress["best_valid_neg_bound"] is None or valid < progress["best_valid_neg_bound"]
                    if improved:
                        progress["best_epoch"], progress["best_valid_neg_bound"] = trainer.epoch, valid
                    line += f"  valid -bound {valid:8.3f}  best {progress['best_valid_neg_bound']:8.3f} " \
                            f"(epoch {progress['best_epoch']})"
                progress.update(epochs=trainer.epoch, cpu_seconds=time.process_time() - cpu0,
                                wall_seconds=time.perf_counter() - wall0)
                save_state(out, trainer, progress, improved, config)
                log(f"{line}  CPU {progress['cpu_seconds'] / 60:6.2f} min  "
                    f"wall {progress['wall_seconds'] / 60:6.2f} min")
        except KeyboardInterrupt:
            log(f"stopped during epoch {trainer.epoch + 1}; {out / CHECKPOINT} holds epoch {trainer.epoch}; "
                "run the same command to resume")
            raise
    save_state(out, trainer, progress, False, config)  # records why training stopped
    log(f"training stopped after epoch {trainer.epoch}: {progress['stopped']}")
    return progress


# ------------------------------------------------------------------ evaluation
def evaluate(args, data, progress, log=print):
    """Evaluate ``OUT/best`` on the test split; returns the report (also written to ``OUT/report.json``).

    The one-sample ELBO is measured on every test image. The importance-weighted
    ``log p(x)`` (``K = --samples``) on all of them, or on ``--test-limit`` drawn at
    random; then ``test_nll_iw_all_test`` estimates the NLL of the whole test split
    with the ELBO as a control variate: ``mean_all(-ELBO) - mean_subset(-ELBO - NLL)``,
    whose spread is mostly that of the small gap ``-ELBO - NLL`` (equal to the direct
    mean when every image is evaluated).
    """
    out = Path(args.out)
    best = load_checkpoint(out / BEST_DIR / CHECKPOINT)
    config = VAEConfig(**best.config)
    params = {k: v.astype(args.eval_dtype) for k, v in best.params.items()}
    rng = np.random.default_rng([progress["settings"]["seed"], 3])
    x_all = data.test
    subset = np.arange(len(x_all))
    if args.test_limit and args.test_limit < len(x_all):
        subset = np.sort(rng.choice(len(x_all), args.test_limit, replace=False))
    x = x_all[subset]
    log(f"evaluating epoch {best.epoch}: ELBO on {len(x_all)} test images, log p(x) on {len(x)} with "
        f"K = {args.samples} importance samples ({args.eval_dtype})")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with threadpool_limits(args.threads, user_api="blas"):
        terms = elbo_terms(params, x_all, config, rng)
        log_px = importance_weighted_log_likelihood(params, x, config, rng, n_samples=args.samples,
                                                    progress=sys.stderr.isatty())  # no bar in a log file
        n_active, _ = active_units(params, x_all, config)
        precision = precision_check(best.params, x_all[: args.precision_check], config, args)
    nll_i, neg_elbo_all = -log_px, terms["neg_elbo"]
    nll, nll_se = float(nll_i.mean()), float(nll_i.std(ddof=1) / np.sqrt(len(x)))
    gap = neg_elbo_all[subset] - nll_i  # -ELBO - NLL per image, >= 0 in expectation
    n_all, n = len(x_all), len(x)
    var_all = (neg_elbo_all.var(ddof=1) / n_all + gap.var(ddof=1) / n
               - 2 * np.cov(neg_elbo_all[subset], gap)[0, 1] / n_all)
    per_dim = config.n_pixels * np.log(2)
    report = {
        "data": "binarized-mnist", "checksums": data_checksums(args.data_dir),
        "test_images": n_all, "test_images_importance_sampled": n, "importance_samples": args.samples,
        "eval_dtype": args.eval_dtype,
        "test_nll_iw": nll, "test_nll_iw_stderr": nll_se,
        "test_nll_iw_bits_per_dim": nll / per_dim, "test_nll_iw_bits_per_dim_stderr": nll_se / per_dim,
        "test_nll_iw_all_test": float(neg_elbo_all.mean() - gap.mean()),
        "test_nll_iw_all_test_stderr": float(np.sqrt(max(var_all, 0.0))),
        "test_elbo": float(-neg_elbo_all.mean()),
        "test_neg_elbo_stderr": float(neg_elbo_all.std(ddof=1) / np.sqrt(n_all)),
        "test_neg_elbo_on_sampled": float(neg_elbo_all[subset].mean()),
        "test_gap_on_sampled": float(gap.mean()),
        "test_reconstruction": float(terms["reconstruction"].mean()), "test_kl": float(terms["kl"].mean()),
        "active_units": n_active, "n_latent": config.n_latent,
        "precision_check": precision,
        "architecture": {"n_pixels": config.n_pixels, "hidden": list(config.hidden), "n_latent": config.n_latent,
                         "activation": config.activation, "likelihood": config.likelihood,
                         "posterior": "diagonal Gaussian (log-variance)", "prior": "standard normal"},
        "schedule": {**progress["settings"], "optimizer": best.training["optimizer"],
                     "dtype": best.training["dtype"], "budget_minutes": args.budget_minutes,
                     "max_epochs": args.max_epochs, "threads": args.threads},
        "best_epoch": best.epoch, "best_valid_neg_bound": progress["best_valid_neg_bound"],
        "epochs_trained": progress["epochs"], "training_cpu_minutes": progress["cpu_seconds"] / 60,
        "training_wall_minutes": progress["wall_seconds"] / 60,
        "finished": progress["stopped"] is not None, "stopped": progress["stopped"],
        "validation_curve": progress["curve"],
        "evaluation_cpu_minutes": (time.process_time() - cpu0) / 60,
        "evaluation_wall_minutes": (time.perf_counter() - wall0) / 60,
        "units": "nats per image unless named bits_per_dim; test_nll_iw = -(1/n) sum log p_K(x) over the "
                 "importance-sampled images, its stderr over those images; bits_per_dim = nats / (n_pixels ln 2)",
    }
    with atomic_write(out / REPORT, "w") as f:
        json.dump(report, f, indent=1)
    log(f"test NLL {nll:.2f} +- {nll_se:.2f} nats ({nll / per_dim:.4f} bits/dim) on {n} images; whole test split "
        f"{report['test_nll_iw_all_test']:.2f} +- {report['test_nll_iw_all_test_stderr']:.2f}; test ELBO "
        f"{report['test_elbo']:.2f}; {n_active} active units; report in {out / REPORT}")
    return report


def precision_check(params, x, config, args):
    """The largest difference per image of log p(x) in ``--eval-dtype`` and in float64, same noise (nats)."""
    if len(x) == 0:
        return None
    estimates = {}
    for dtype in (args.eval_dtype, "float64"):
        p = {k: v.astype(dtype) for k, v in params.items()}
        estimates[dtype] = importance_weighted_log_likelihood(p, x, config, np.random.default_rng(7),
                                                              n_samples=args.samples)
    return {"images": len(x), "max_abs_difference_nats": float(np.max(np.abs(estimates["float64"]
                                                                          - estimates[args.eval_dtype])))}


def main(argv=None, log=print):
    args = build_parser().parse_args(argv)
    try:
        data = load_dataset("binarized-mnist", args.data_dir)
        if data.valid is None:
            raise ValueError("binarized_mnist.npz has no 'valid' split, which early stopping needs")
        if args.evaluate_now:
            _, progress = load_state(Path(args.out), settings_of(args), args.threads)
            if progress is None or progress["best_epoch"] is None:
                raise ValueError(f"{args.out} holds no validated model yet")
        else:
            progress = train(args, data, log)
        evaluate(args, data, progress, log)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(log=lambda *a, **k: print(*a, **{"flush": True, **k})))
