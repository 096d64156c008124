"""The command line: train, evaluate, download.

    vaelib train --data mnist5k --binarize --epochs 10 --out runs/demo
    vaelib train --data mnist5k --binarize --objective iwae --k 5 --out runs/iwae
    vaelib evaluate runs/demo --samples 5000
    vaelib download binarized-mnist --data-dir ~/data

(``python -m vaelib`` is the same program.) Exit codes: 0 done; 1 an error,
explained in one line on stderr; 130 training stopped by Ctrl-C and 143 by
SIGTERM, in both cases with the last finished epoch saved.

``train`` listens for Ctrl-C (SIGINT) and SIGTERM from the moment its
arguments are parsed until it returns (:mod:`vaelib.machinery.stop`). Meanwhile
(the data loading, the kernels compiling, the epochs) a signal stops it at the
next safe moment, never inside a computation: before the run directory is
touched, or before the next batch, an epoch whose last batch has run being
evaluated and saved first. A second signal stops it at once. Outside that span
a signal acts as on any Python program. While Python starts and imports NumPy
and Numba (one to two seconds) nothing has been written yet; after ``train``
returns the run is complete on disk. There SIGTERM ends the process, and Ctrl-C
prints Python's ``KeyboardInterrupt`` (during the imports, or in the few
milliseconds before Python's shutdown gives SIGINT its default action back).
``evaluate`` and ``download`` stop at Ctrl-C straight away.
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from vaelib.core.evaluate import active_units, elbo_terms, importance_weighted_log_likelihood
from vaelib.core.vae import VAEConfig, param_shapes

from .checkpoint import load_checkpoint
from .data import BINARIZED_MNIST_URL, KNOWN_DATASETS, download_binarized_mnist, load_dataset
from .stop import StopSignals
from .train import CHECKPOINT_NAME, HISTORY_NAME, OBJECTIVES, NonFiniteLossError, check_objective, fit

RUN_NAME = "run.json"  # how the run was asked for: data set, binarisation, training settings
MAX_IMPORTANCE_SAMPLES = 5000

DESCRIPTION = """Train and evaluate a variational autoencoder (vaelib).

  train      train a VAE; writes RUN_DIR/model.npz, history.json and run.json after every epoch
  evaluate   test ELBO, importance-weighted log p(x) (NLL in nats and bits per dimension), KL and
             active units of a run, as JSON
  download   fetch the fixed binarised MNIST (50,000/10,000/10,000 images)
"""

#: train's settings that define a run; --resume refuses a flag that contradicts the saved value
RUN_SETTINGS = {
    "data": "mnist5k", "binarize": False, "latent": 20, "hidden": [400], "likelihood": "bernoulli",
    "sigma": None, "beta": 1.0, "kl": "closed_form", "batch_size": 128, "lr": 1e-3, "seed": 0,
    "objective": "elbo", "k": 1,
}


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def importance_samples(text):
    value = positive_int(text)
    if value > MAX_IMPORTANCE_SAMPLES:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_IMPORTANCE_SAMPLES} (1,000 test images of MNIST take about 2 minutes of CPU time at "
            f"K = 5000, and the time grows linearly with K), got {text}")
    return value


def build_parser(prog=None, defaults=True):
    """The argument parser. With ``defaults=False`` no option has a default, which tells given flags apart."""
    d = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,download}")

    t = sub.add_parser("train", help="train a VAE", formatter_class=formatter,
                       description="Train a VAE. Writes RUN_DIR/model.npz (a checkpoint), history.json and "
                                   "run.json after every epoch.")
    t.add_argument("--data", default=d("mnist5k"), choices=KNOWN_DATASETS, help="data set")
    t.add_argument("--data-dir", default=d(None),
                   help="where binarized-mnist is looked up (unset: $VAELIB_DATA, else ~/.cache/vaelib)")
    t.add_argument("--binarize", action="store_true", default=d(False),
                   help="threshold grey pixels at 0.5 (for a Bernoulli likelihood)")
    t.add_argument("--latent", type=positive_int, default=d(20), help="latent dimensions")
    t.add_argument("--hidden", type=positive_int, nargs="+", default=d([400]), help="hidden layer widths")
    t.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default=d("bernoulli"), help="decoder")
    t.add_argument("--sigma", type=positive_float, default=d(None),
                   help="Gaussian decoder: fixed standard deviation (unset: learn one shared sigma)")
    t.add_argument("--beta", type=non_negative_float, default=d(1.0), help="weight of the KL term (1: the ELBO)")
    t.add_argument("--kl", choices=["closed_form", "monte_carlo"], default=d("closed_form"),
                   help="how the KL term is computed (elbo only)")
    t.add_argument("--objective", choices=sorted(OBJECTIVES), default=d("elbo"),
                   help="what training maximises: the ELBO, or the importance-weighted bound L_K (IWAE)")
    t.add_argument("--k", type=positive_int, default=d(1), metavar="K",
                   help="importance samples per image for --objective iwae (K = 1: the ELBO with a "
                        "Monte Carlo KL)")
    t.add_argument("--epochs", type=positive_int, default=d(10), help="epochs in total (a resumed run adds the rest)")
    t.add_argument("--batch-size", type=positive_int, default=d(128), help="images per step")
    t.add_argument("--lr", type=positive_float, default=d(1e-3), help="Adam's learning rate")
    t.add_argument("--seed", type=int, default=d(0), help="seeds initialisation, shuffling and noise")
    t.add_argument("--threads", type=positive_int, default=d(1),
                   help="BLAS threads (1 gives the same numbers on every run)")
    t.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    t.add_argument("--resume", action="store_true", default=d(False),
                   help="continue the run in RUN_DIR with the settings it was started with")
    t.add_argument("--overwrite", action="store_true", default=d(False), help="replace the run in RUN_DIR")
    t.add_argument("--no-progress", action="store_true", default=d(False), help="no progress bar")

    e = sub.add_parser("evaluate", help="evaluate a trained run", formatter_class=formatter,
                       description="Print the test ELBO, the importance-weighted bound on log p(x) (and the "
                                   "negative log-likelihood it gives, in nats per image and bits per dimension, "
                                   "with its standard error over images), the KL and the active units of a "
                                   "run, as JSON.")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--samples", type=importance_samples, default=d(MAX_IMPORTANCE_SAMPLES),
                   help=f"importance samples K per image for log p(x) (at most {MAX_IMPORTANCE_SAMPLES}; "
                        "about 2 minutes of CPU time per 1,000 MNIST images at 5000)")
    e.add_argument("--data-dir", default=d(None), help="as for train")
    e.add_argument("--limit", type=positive_int, default=d(None),
                   help="evaluate N test images drawn at random (with --seed); the binarized-mnist test set "
                        "is ordered, so its first N are not typical")
    e.add_argument("--seed", type=int, default=d(0), help="seeds the subset and the importance samples")

    dl = sub.add_parser("download", help="fetch a data set that is not embedded", formatter_class=formatter,
                        description="Fetch the fixed binarised MNIST, check it by SHA-256 and store it as "
                                    "DATA_DIR/binarized_mnist.npz.")
    dl.add_argument("name", choices=["binarized-mnist"])
    dl.add_argument("--data-dir", default=d(None), help="as for train")
    dl.add_argument("--source", default=d(BINARIZED_MNIST_URL),
                    help="a URL, or a local folder holding binarized_mnist_{train,valid,test}.amat")
    return parser


def config_from_settings(s, n_pixels):
    gaussian = s["likelihood"] == "gaussian"
    return VAEConfig(
        n_pixels=n_pixels, hidden=tuple(s["hidden"]), n_latent=s["latent"], likelihood=s["likelihood"],
        sigma=s["sigma"] if s["sigma"] is not None else 1.0,
        learn_sigma=gaussian and s["sigma"] is None, beta=s["beta"], kl=s["kl"],
    )


def training_bytes(config, batch_size, itemsize=4, k=1):
    """Memory training needs, roughly: parameters, gradient and Adam's two moments, plus one batch's activations.

    With ``k`` samples per image the decoder's activations are ``k`` times as many.
    """
    n_params = sum(int(np.prod(s, dtype=np.int64)) for s in param_shapes(config).values())
    widths = sum(config.encoder_sizes) + k * sum(config.decoder_sizes)
    return itemsize * (4 * n_params + 6 * batch_size * widths)


def available_bytes():
    """Memory available to a new allocation (Linux: MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(config, batch_size, k=1):
    need, have = training_bytes(config, batch_size, k=k), available_bytes()
    if have is not None and need > 0.8 * have:
        raise ValueError(f"this model needs about {need / 2**30:.1f} GiB to train (parameters, gradient, Adam's "
                         f"two moments and one batch), more than the {have / 2**30:.1f} GiB available; "
                         "choose smaller --hidden or --latent")


def _saved_settings(out):
    """The settings the run in ``out`` was started with."""
    checkpoint = load_checkpoint(out / CHECKPOINT_NAME)
    c, t = checkpoint.config, checkpoint.training
    saved = {"latent": c["n_latent"], "hidden": list(c["hidden"]), "likelihood": c["likelihood"],
             "sigma": None if c.get("learn_sigma") else c["sigma"], "beta": c["beta"], "kl": c["kl"],
             "batch_size": t["batch_size"], "lr": t["lr"], "seed": t["seed"],
             "objective": t.get("objective", "elbo"), "k": t.get("k", 1)}  # runs that record none: the ELBO
    recorded = _recorded_data(out)
    if recorded is None:
        raise ValueError(f"{out} has a checkpoint but no {RUN_NAME} saying which data it was trained on; "
                         "start a new run with --out")
    return {**saved, **recorded}


def _recorded_data(run):
    """``{"data": ..., "binarize": ...}`` as recorded in the run directory ``run``, or None if nothing is."""
    for name in (RUN_NAME, "data.json"):  # data.json: runs made before run.json existed
        if (run / name).exists():
            recorded = json.loads((run / name).read_text())
            return {k: recorded[k] for k in ("data", "binarize") if k in recorded}
    return None


def _settings_for(args, given):
    """The run's settings: saved ones when resuming (a contradicting flag is an error), else the flags."""
    out = Path(args.out)
    has_run = (out / CHECKPOINT_NAME).exists() or (out / HISTORY_NAME).exists()
    if has_run and not (args.resume or args.overwrite):
        held = ""
        if (out / CHECKPOINT_NAME).exists():
            held = f" (trained for {load_checkpoint(out / CHECKPOINT_NAME).epoch} epochs)"
        raise ValueError(f"{out} already holds a run{held}; continue it with --resume, "
                         "or replace it with --overwrite, or choose another --out")
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other; choose one")
    requested = {k: getattr(args, k) for k in RUN_SETTINGS}
    if not (args.resume and (out / CHECKPOINT_NAME).exists()):
        return requested
    saved = _saved_settings(out)
    for k in RUN_SETTINGS:
        if k in given and requested[k] != saved[k]:
            flag = "--" + k.replace("_", "-")
            raise ValueError(f"{flag} {requested[k]} contradicts the run being resumed ({saved[k]}); "
                             f"drop {flag}, or start a new run with another --out")
    return saved


def run_train(args, given, stop):
    """Train as asked; ``stop`` is the :class:`~vaelib.machinery.stop.StopSignals` already listening."""
    settings = _settings_for(args, given)
    data = load_dataset(settings["data"], args.data_dir, binarize=settings["binarize"])
    config = config_from_settings(settings, data.train.shape[1])
    check_objective(config, settings["objective"], settings["k"])
    check_fits_in_memory(config, settings["batch_size"], k=settings["k"])
    stop.check()  # a signal while the data loaded: stop before the run directory is touched
    out = Path(args.out)
    if args.overwrite:
        for name in (CHECKPOINT_NAME, HISTORY_NAME, RUN_NAME, "data.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    run_record = {k: settings[k] for k in ("data", "binarize", "objective", "k")}
    (out / RUN_NAME).write_text(json.dumps(run_record))
    log = lambda line: print(line, flush=True)
    trainer = fit(config, data.train, data.test, epochs=args.epochs, lr=settings["lr"],
                  batch_size=settings["batch_size"], seed=settings["seed"], out_dir=out, resume=args.resume,
                  progress=not args.no_progress, log=log, threads=args.threads, stop=stop,
                  objective=settings["objective"], k=settings["k"])
    if stop.received:  # also a signal that came after the last epoch was saved
        return _exit_code(stop.received)
    return 130 if trainer.interrupted else 0


def _exit_code(signum):
    """130 for SIGINT, 143 for SIGTERM: the status a shell reports for a process that signal ended."""
    return 128 + signum


def run_evaluate(args):
    run = Path(args.run_dir)
    checkpoint = load_checkpoint(run / CHECKPOINT_NAME)
    config = VAEConfig(**checkpoint.config)
    recorded = _recorded_data(run) or {"data": "mnist5k"}
    data = load_dataset(recorded["data"], args.data_dir, binarize=recorded.get("binarize", False))
    rng = np.random.default_rng(args.seed)
    x = data.test
    if args.limit and args.limit < len(x):
        x = x[np.sort(rng.choice(len(x), args.limit, replace=False))]
    params = {k: v.astype(np.float64) for k, v in checkpoint.params.items()}
    terms = elbo_terms(params, x, config, rng)
    log_px = importance_weighted_log_likelihood(params, x, config, rng, n_samples=args.samples, progress=True)
    nll = float(-log_px.mean())
    nll_se = float(log_px.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else None  # over test images
    per_dim = config.n_pixels * np.log(2)  # nats per image -> bits per dimension
    count, _ = active_units(params, x, config)
    report = {
        "run_dir": str(run), "data": recorded["data"], "test_images": len(x), "epoch": checkpoint.epoch,
        "test_elbo": float(-terms["neg_elbo"].mean()),
        "test_neg_elbo": float(terms["neg_elbo"].mean()),
        "test_reconstruction": float(terms["reconstruction"].mean()),
        "test_kl": float(terms["kl"].mean()),
        "test_log_likelihood_iw": float(log_px.mean()),
        "test_nll_iw": nll, "test_nll_iw_stderr": nll_se,
        "test_nll_iw_bits_per_dim": nll / per_dim,
        "test_nll_iw_bits_per_dim_stderr": None if nll_se is None else nll_se / per_dim,
        "importance_samples": args.samples,
        "objective": checkpoint.training.get("objective", "elbo"), "k": checkpoint.training.get("k", 1),
        "active_units": count, "n_latent": config.n_latent,
        "units": "nats per image; elbo and log_likelihood_iw are log-densities (higher is better), "
                 "neg_elbo, reconstruction and kl are loss terms (lower is better); nll_iw = -log_likelihood_iw, "
                 "its stderr the standard error of the mean over test images; bits_per_dim = nll / (n_pixels ln 2)",
    }
    print(json.dumps(report, indent=1))
    return 0


def run_download(args):
    source = args.source
    if "://" not in source:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise ValueError(f"--source {source}: no such folder (give a URL or a folder holding the .amat files)")
        source = folder.resolve().as_uri()
    path = download_binarized_mnist(args.data_dir, base_url=source)
    print(f"saved {path}")
    return 0


def main(argv=None, prog=None):
    """Run the command line; returns the exit code."""
    prog = prog or Path(sys.argv[0]).name
    if prog == "__main__.py":
        prog = "python -m vaelib"
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(argv)
    # SIGTERM: a scheduler, `timeout`, a closed terminal. Only training listens; the others stop at once.
    stop = StopSignals(signal.SIGINT, signal.SIGTERM)
    try:
        if args.command == "train":
            with stop:
                given = set(vars(build_parser(prog, defaults=False).parse_args(argv)))
                return run_train(args, given, stop)
        if args.command == "evaluate":
            return run_evaluate(args)
        return run_download(args)
    except (ValueError, FileNotFoundError, NonFiniteLossError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before training began (training reports its own stop), or a second signal
        print("interrupted", file=sys.stderr)
        return _exit_code(stop.received or signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
