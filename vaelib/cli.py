"""``python -m vaelib``: train, evaluate, download.

::

    python -m vaelib train --data mnist5k --epochs 10 --out runs/demo
    python -m vaelib evaluate runs/demo --samples 5000
    python -m vaelib download binarized-mnist --data-dir ~/data

Exit codes: 0 done; 1 an error, explained in one line on stderr; 130 training
interrupted with Ctrl-C (the last finished epoch is saved).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint
from .data import KNOWN_DATASETS, download_binarized_mnist, load_dataset
from .evaluate import active_units, elbo_terms, importance_weighted_log_likelihood
from .train import CHECKPOINT_NAME, NonFiniteLossError, fit
from .vae import VAEConfig


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


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m vaelib", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a VAE; writes RUN_DIR/model.npz and RUN_DIR/history.json")
    t.add_argument("--data", default="mnist5k", help=f"data set: {', '.join(KNOWN_DATASETS)} (default mnist5k)")
    t.add_argument("--data-dir", help="where data sets are looked up (default: $VAELIB_DATA, else ~/.cache/vaelib)")
    t.add_argument("--binarize", action="store_true", help="threshold grey pixels at 0.5 (for a Bernoulli likelihood)")
    t.add_argument("--latent", type=positive_int, default=20)
    t.add_argument("--hidden", type=positive_int, nargs="+", default=[400], help="hidden widths, e.g. --hidden 400")
    t.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli")
    t.add_argument("--sigma", type=positive_float, default=None,
                   help="Gaussian likelihood: fixed standard deviation; omit to learn one shared sigma")
    t.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (1 = the ELBO)")
    t.add_argument("--kl", choices=["closed_form", "monte_carlo"], default="closed_form")
    t.add_argument("--epochs", type=positive_int, default=10)
    t.add_argument("--batch-size", type=positive_int, default=128)
    t.add_argument("--lr", type=positive_float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/model.npz")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="print test ELBO, importance-weighted log p(x), KL and active units as JSON")
    e.add_argument("run_dir")
    e.add_argument("--samples", type=positive_int, default=1000, help="importance samples K per image (up to 5000)")
    e.add_argument("--data-dir")
    e.add_argument("--limit", type=positive_int,
                   help="evaluate N test images drawn at random (with --seed); the test set is ordered, so its first N are not typical")
    e.add_argument("--seed", type=int, default=0)

    d = sub.add_parser("download", help="fetch a data set that is not embedded")
    d.add_argument("name", choices=["binarized-mnist"])
    d.add_argument("--data-dir")
    return parser


def config_from_args(args, n_pixels):
    gaussian = args.likelihood == "gaussian"
    return VAEConfig(
        n_pixels=n_pixels, hidden=tuple(args.hidden), n_latent=args.latent, likelihood=args.likelihood,
        sigma=args.sigma if args.sigma is not None else 1.0,
        learn_sigma=gaussian and args.sigma is None, beta=args.beta, kl=args.kl,
    )


def run_train(args):
    data = load_dataset(args.data, args.data_dir, binarize=args.binarize)
    config = config_from_args(args, data.train.shape[1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.json").write_text(json.dumps({"data": args.data, "binarize": args.binarize}))
    log = lambda line: print(line, flush=True)
    trainer = fit(config, data.train, data.test, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                  seed=args.seed, out_dir=out, resume=args.resume, progress=not args.no_progress, log=log)
    return 130 if trainer.interrupted else 0


def run_evaluate(args):
    run = Path(args.run_dir)
    checkpoint = load_checkpoint(run / CHECKPOINT_NAME)
    config = VAEConfig(**checkpoint.config)
    data_info = json.loads((run / "data.json").read_text()) if (run / "data.json").exists() else {"data": "mnist5k"}
    data = load_dataset(data_info["data"], args.data_dir, binarize=data_info.get("binarize", False))
    rng = np.random.default_rng(args.seed)
    x = data.test
    if args.limit and args.limit < len(x):
        x = x[np.sort(rng.choice(len(x), args.limit, replace=False))]
    params = {k: v.astype(np.float64) for k, v in checkpoint.params.items()}
    terms = elbo_terms(params, x, config, rng)
    log_px = importance_weighted_log_likelihood(params, x, config, rng, n_samples=args.samples, progress=True)
    count, _ = active_units(params, x, config)
    report = {
        "run_dir": str(run), "data": data_info["data"], "test_images": len(x), "epoch": checkpoint.epoch,
        "test_elbo": float(-terms["neg_elbo"].mean()),
        "test_neg_elbo": float(terms["neg_elbo"].mean()),
        "test_reconstruction": float(terms["reconstruction"].mean()),
        "test_kl": float(terms["kl"].mean()),
        "test_log_likelihood_iw": float(log_px.mean()),
        "importance_samples": args.samples,
        "active_units": count, "n_latent": config.n_latent,
        "units": "nats per image; elbo and log_likelihood_iw are log-densities (higher is better), "
                 "neg_elbo, reconstruction and kl are loss terms (lower is better)",
    }
    print(json.dumps(report, indent=1))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return run_train(args)
        if args.command == "evaluate":
            return run_evaluate(args)
        path = download_binarized_mnist(args.data_dir)
        print(f"saved {path}")
        return 0
    except (ValueError, FileNotFoundError, NonFiniteLossError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside an epoch (training handles its own): nothing to save
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
