"""Benchmark: one training epoch against its matrix multiplications alone; memory; quality.

Run with ``make bench`` (or ``python benchmarks/bench_epoch.py``), with the
fixed binarised MNIST reachable through ``--data-dir`` or ``VAELIB_DATA``.

What it measures, on binarized-mnist's 50,000 training images, 784-400-20,
batch 128, Adam, float32, in one process:

1. ``matmul``: the same 11 matrix products one epoch of training computes
   (4 forward; 4 weight gradients; 3 input gradients — the first layer's
   input gradient is never needed), with the same shapes and dtype;
2. ``epoch``: one real training epoch (``vaelib.machinery.train.Trainer.train_epoch``).

The two are interleaved finely: the epoch is cut into blocks of 20 batches
(2,560 images), and each block is timed as matrix products alone and then as
real training (``train_epoch`` on that block), so a noisy shared machine
affects both sides alike; the block times are summed to whole epochs. This
is repeated ``--repeats`` times; the ratio reported is the median of the
per-repeat ratios.

Both are measured twice: with OpenBLAS on one thread, and on all cores (its
default). One thread is the scale the issue states ("those multiplications
take about 1.7 s per epoch" on this machine). With two threads the products
run about 1.8 times faster, but the element-wise work and the optimiser
still run on one core: between products OpenBLAS's idle worker spins on the
other core (it never yields), so no other thread can use it.

Then, unless ``--skip-run``, it trains with the command line (``python -m
vaelib train``) for ``--epochs`` epochs, seed 0, and reports the child's peak
resident memory and the test negative ELBO after each epoch.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from vaelib.machinery.batches import Minibatches
from vaelib.machinery.data import load_dataset
from vaelib.machinery.train import Trainer
from vaelib.core.vae import VAEConfig


def matmul_epoch(n_images, batch_size=128, n_pixels=784, hidden=400, latent=20, seed=0):
    """Seconds for the matrix products of one epoch, alone."""
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    W_enc0, W_enc1, W_dec0, W_dec1 = f32(n_pixels, hidden), f32(hidden, 2 * latent), f32(latent, hidden), f32(hidden, n_pixels)
    full = {b: (f32(b, n_pixels), f32(b, hidden), f32(b, 2 * latent), f32(b, latent))
            for b in {batch_size, n_images % batch_size} if b}
    start = time.perf_counter()
    for s in range(0, n_images, batch_size):
        x, h, d_enc, z = full[min(batch_size, n_images - s)]
        # forward
        x @ W_enc0; h @ W_enc1; z @ W_dec0; h @ W_dec1
        # backward: dW for all four, dx for all but the first
        h.T @ x; x @ W_dec1.T; z.T @ h; h @ W_dec0.T
        h.T @ d_enc; d_enc @ W_enc1.T; x.T @ h
    return time.perf_counter() - start


def paired_epoch(blocks, trainer):
    """(matmul seconds, training seconds) for one epoch, timed block by block.

    ``blocks`` are :class:`Minibatches` of 2,560 images each, prepared once as
    :func:`vaelib.machinery.train.fit` prepares its data.
    """
    matmul = training = 0.0
    for block in blocks:
        matmul += matmul_epoch(len(block))
        start = time.perf_counter()
        trainer.train_epoch(block, progress=False)
        training += time.perf_counter() - start
    return matmul, training


def paired_repeats(blocks, repeats, label):
    """Median epoch/matmul ratio over ``repeats`` paired epochs of a fresh trainer."""
    trainer = Trainer(VAEConfig(), lr=1e-3, batch_size=128, seed=0)
    paired_epoch(blocks[:2], trainer)  # warm up BLAS, Numba's cache and the allocator
    matmul, epoch = [], []
    for r in range(repeats):
        m, e = paired_epoch(blocks, trainer)
        matmul.append(m)
        epoch.append(e)
        print(f"{label}, repeat {r + 1}: matmul {m:.3f} s, epoch {e:.3f} s, ratio {e / m:.3f}", file=sys.stderr)
    return {
        "matmul_seconds": matmul, "epoch_seconds": epoch,
        "median_matmul_seconds": float(np.median(matmul)), "median_epoch_seconds": float(np.median(epoch)),
        "median_ratio": float(np.median(np.array(epoch) / np.array(matmul))),
    }


def cli_run(data_dir, epochs):
    """Train with the command line in a child process; return its history and peak RSS in MB."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "vaelib", "train", "--data", "binarized-mnist", "--epochs", str(epochs),
               "--seed", "0", "--out", out, "--no-progress"]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        history = json.loads((Path(out) / "history.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return history, peak_mb


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAELIB_DATA"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the command-line run")
    parser.add_argument("--skip-run", action="store_true", help="only the epoch-versus-matmul timing")
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args()

    train_x = load_dataset("binarized-mnist", args.data_dir).train
    blocks = [Minibatches(train_x[s : s + 2560]) for s in range(0, len(train_x), 2560)]
    all_cores = max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}}
    for threads in sorted({1, all_cores}):
        with threadpool_limits(threads, user_api="blas"):
            report[f"blas_threads_{threads}"] = paired_repeats(blocks, args.repeats, label=f"{threads} BLAS thread(s)")
    if not args.skip_run:
        history, peak_mb = cli_run(args.data_dir, args.epochs)
        report.update({
            "cli_epochs": args.epochs, "cli_peak_rss_mb": peak_mb,
            "cli_seconds_per_epoch": [h["seconds"] for h in history],
            "cli_test_neg_elbo": [h["test_neg_elbo"] for h in history],
        })
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
