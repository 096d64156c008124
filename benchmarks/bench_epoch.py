"""Benchmark: a training epoch against its matrix products alone; the thread policy under load; memory; quality.

Run with ``make bench`` (or ``python benchmarks/bench_epoch.py``), with the
fixed binarised MNIST reachable through ``--data-dir`` or ``VAELIB_DATA``.
Model 784-400-20, ReLU, Bernoulli, batch 128, Adam, float32, on the 50,000
training images of ``binarized-mnist``. Everything is timed in one process,
side by side, because this machine's absolute speed swings by 40 % and more.

1. ``ratio``: the epoch against its matrix products alone. The products are
   the 11 an epoch computes (4 forward; 4 weight gradients; 3 input
   gradients, the first layer's never being needed), with the same shapes and
   dtype. The two are interleaved finely: the epoch is cut into blocks of 20
   batches, and each block is timed as products alone and then as real
   training (``Trainer.train_epoch``), so that a noisy machine affects both
   alike. Medians over ``--repeats`` epochs, for each engine (``fast``, the
   default, and ``core``) and for one and two BLAS threads.
2. ``contention``: epochs of 10 blocks with the machine quiet, then with two
   CPU-bound processes beside it (busy loops), for one and for two BLAS
   threads, alternated; the slowdown is the median loaded time over the
   median quiet time.
3. Unless ``--skip-run``: ``python -m vaelib train`` for ``--epochs`` epochs,
   seed 0, reporting the child's peak resident memory and the test negative
   ELBO after each epoch.
"""

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from vaelib.core.vae import VAEConfig
from vaelib.machinery.batches import Minibatches
from vaelib.machinery.data import load_dataset
from vaelib.machinery.train import Trainer

BLOCK = 20 * 128  # images per timing block


def matmul_block(n_images, batch_size=128, n_pixels=784, hidden=400, latent=20, seed=0):
    """Seconds for the matrix products of training on ``n_images`` images, alone."""
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    W_enc0, W_enc1, W_dec0, W_dec1 = f32(n_pixels, hidden), f32(hidden, 2 * latent), f32(latent, hidden), f32(hidden, n_pixels)
    full = {b: (f32(b, n_pixels), f32(b, hidden), f32(b, 2 * latent), f32(b, latent))
            for b in {batch_size, n_images % batch_size} if b}
    start = time.perf_counter()
    for s in range(0, n_images, batch_size):
        x, h, d_enc, z = full[min(batch_size, n_images - s)]
        x @ W_enc0; h @ W_enc1; z @ W_dec0; h @ W_dec1          # forward
        h.T @ x; x @ W_dec1.T; z.T @ h; h @ W_dec0.T             # backward: dW for all four,
        h.T @ d_enc; d_enc @ W_enc1.T; x.T @ h                   # dx for all but the first layer
    return time.perf_counter() - start


def paired_epoch(blocks, trainer):
    """(matmul seconds, training seconds) for one epoch, block by block, on the trainer's thread count."""
    matmul = training = 0.0
    for block in blocks:
        with threadpool_limits(trainer.threads, user_api="blas"):
            matmul += matmul_block(len(block))
        start = time.perf_counter()
        trainer.train_epoch(block, progress=False)
        training += time.perf_counter() - start
    return matmul, training


def ratios(blocks, repeats, engine, threads):
    """Median epoch/matmul ratio over ``repeats`` paired epochs of a fresh trainer."""
    trainer = Trainer(VAEConfig(), lr=1e-3, batch_size=128, seed=0, engine=engine, threads=threads)
    paired_epoch(blocks[:2], trainer)  # warm up BLAS, Numba's cache and the allocator
    matmul, epoch = [], []
    for r in range(repeats):
        m, e = paired_epoch(blocks, trainer)
        matmul.append(m)
        epoch.append(e)
        print(f"{engine}, {threads} thread(s), repeat {r + 1}: matmul {m:.3f} s, epoch {e:.3f} s, "
              f"ratio {e / m:.3f}", file=sys.stderr)
    return {"matmul_seconds": matmul, "epoch_seconds": epoch,
            "median_matmul_seconds": float(np.median(matmul)), "median_epoch_seconds": float(np.median(epoch)),
            "median_ratio": float(np.median(np.array(epoch) / np.array(matmul))),
            "ratio_range": [float(min(np.array(epoch) / np.array(matmul))),
                            float(max(np.array(epoch) / np.array(matmul)))]}


def _busy_loop(stop):
    while not stop.is_set():
        pass


def contention(blocks, rounds):
    """Seconds per 10 blocks, quiet and beside two busy processes, for 1 and 2 BLAS threads, alternated."""
    trainers = {t: Trainer(VAEConfig(), seed=0, threads=t) for t in (1, 2)}
    for trainer in trainers.values():
        trainer.train_epoch(blocks[0], progress=False)
    times = {(t, load): [] for t in trainers for load in ("quiet", "loaded")}
    for r in range(rounds):
        for load in ("quiet", "loaded"):
            stop = multiprocessing.Event()
            busy = [multiprocessing.Process(target=_busy_loop, args=(stop,)) for _ in range(2 if load == "loaded" else 0)]
            for p in busy:
                p.start()
            time.sleep(0.5 if busy else 0.0)
            for t, trainer in trainers.items():
                start = time.perf_counter()
                for block in blocks[:10]:
                    trainer.train_epoch(block, progress=False)
                times[(t, load)].append(time.perf_counter() - start)
            stop.set()
            for p in busy:
                p.join()
        print(f"contention round {r + 1}: " + ", ".join(f"{t} thread(s) {load} {v[-1]:.2f} s"
                                                        for (t, load), v in times.items()), file=sys.stderr)
    report = {}
    for t in trainers:
        quiet, loaded = np.median(times[(t, "quiet")]), np.median(times[(t, "loaded")])
        report[f"blas_threads_{t}"] = {"quiet_seconds": times[(t, "quiet")], "loaded_seconds": times[(t, "loaded")],
                                       "slowdown": float(loaded / quiet)}
    report["loaded_1_thread_over_quiet_2_threads"] = float(
        np.median(times[(1, "loaded")]) / np.median(times[(2, "quiet")]))
    return report


def cli_run(data_dir, epochs):
    """Train with the command line in a child process; return its history and peak RSS in MB."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "vaelib", "train", "--data", "binarized-mnist", "--epochs", str(epochs),
               "--seed", "0", "--out", out, "--overwrite", "--no-progress"]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        history = json.loads((Path(out) / "history.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return history, peak_mb


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAELIB_DATA"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--contention-rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the command-line run")
    parser.add_argument("--skip-run", action="store_true", help="no command-line run")
    parser.add_argument("--only", choices=["ratio", "contention"], help="only one of the measurements")
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args()

    train_x = load_dataset("binarized-mnist", args.data_dir).train
    blocks = [Minibatches(train_x[s : s + BLOCK]) for s in range(0, len(train_x), BLOCK)]
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                          "date": time.strftime("%Y-%m-%d")}}
    if args.only in (None, "ratio"):
        for engine in ("fast", "core"):
            for threads in (1, 2):
                report[f"ratio_{engine}_{threads}_thread"] = ratios(blocks, args.repeats, engine, threads)
    if args.only in (None, "contention"):
        report["contention"] = contention(blocks, args.contention_rounds)
    if not args.skip_run and args.only is None:
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
