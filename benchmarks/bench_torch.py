"""PyTorch CPU reference of the vaelib VAE, for comparing speed and quality.

torch is NOT a project dependency: this script is optional and only used for
benchmarking. Install it in a separate environment, e.g.

    python3 -m venv ../torchenv
    ../torchenv/bin/pip install torch==2.13.0 numpy tqdm
    VAELIB_DATA=/path/to/data ../torchenv/bin/python benchmarks/bench_torch.py \
        --epochs 10 --out /tmp/torch_ref.json

The data directory (--data-dir, else $VAELIB_DATA) must hold binarized_mnist.npz
with uint8 arrays train/valid/test of 784 pixels packed by np.packbits(axis=1).

Model: encoder 784-400(ReLU)-40 -> (mu, log_var) of 20 latents; decoder
20-400(ReLU)-784 Bernoulli logits. Loss: negative ELBO per image (pixel-summed
BCE-with-logits + closed-form KL), averaged over the batch. Adam(1e-3), float32.
Per-epoch times cover training only. `--matmul-only` instead times just the
11 matrix products of one epoch (4 forward, 4 weight grads, 3 input grads).

`--alternate N` compares speed the fair way: vaelib (installed in the same
environment with its dependencies: `../torchenv/bin/pip install -e .`) and PyTorch, both pinned to ONE
thread, train alternately in this one process, N epochs each, one vaelib epoch
then one PyTorch epoch, so that the machine's load falls on both alike.
"""
import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

D, H, Z = 784, 400, 20


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1, self.enc2 = nn.Linear(D, H), nn.Linear(H, 2 * Z)
        self.dec1, self.dec2 = nn.Linear(Z, H), nn.Linear(H, D)

    def neg_elbo(self, x, gen):
        """Negative ELBO per image, averaged over the batch (one eps sample)."""
        mu, log_var = self.enc2(F.relu(self.enc1(x))).split(Z, dim=1)
        eps = torch.randn(mu.shape, generator=gen)
        z = mu + torch.exp(0.5 * log_var) * eps
        logits = self.dec2(F.relu(self.dec1(z)))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
        return (rec + kl) / x.shape[0]


def load_data(data_dir):
    path = Path(data_dir) / "binarized_mnist.npz"
    if not path.is_file():
        sys.exit(f"error: {path} not found (set --data-dir or VAELIB_DATA)")
    with np.load(path) as f:
        return {k: torch.from_numpy(np.unpackbits(f[k], axis=1)[:, :D].astype(np.float32))
                for k in ("train", "test")}


def batches(n, batch_size, gen):
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]  # last partial kept


@torch.no_grad()
def evaluate(model, x, seed, batch_size=1000):
    gen = torch.Generator().manual_seed(seed)  # same eps every evaluation
    total = sum(model.neg_elbo(x[i:i + batch_size], gen).item() * len(x[i:i + batch_size])
                for i in range(0, len(x), batch_size))
    return total / len(x)


@torch.no_grad()
def time_matmuls(n, batch_size, gen):
    """Time the matrix products of one training epoch on random float32 data."""
    W = [torch.randn(o, i, generator=gen) for i, o in ((D, H), (H, 2 * Z), (Z, H), (H, D))]
    sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
    acts = {b: [torch.randn(b, k, generator=gen) for k in (D, H, Z, H)] for b in set(sizes)}
    grads = {b: [torch.randn(b, k, generator=gen) for k in (H, 2 * Z, H, D)] for b in set(sizes)}
    t0 = time.perf_counter()
    for b in sizes:
        a, g = acts[b], grads[b]
        for Wl, al in zip(W, a):           # forward: a @ W^T
            al @ Wl.T
        for gl, al in zip(g, a):           # weight grads: g^T @ a
            gl.T @ al
        for Wl, gl in zip(W[1:], g[1:]):   # input grads (not the first layer): g @ W
            gl @ Wl
    return time.perf_counter() - t0


def torch_epoch(model, opt, train, batch_size, gen):
    """Seconds for one PyTorch training epoch."""
    t0 = time.perf_counter()
    for idx in batches(len(train), batch_size, gen):
        loss = model.neg_elbo(train[idx], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def alternate(train, rounds, batch_size=128, lr=1e-3, seed=0):
    """Epoch seconds of vaelib and PyTorch, each on one thread, alternated in one process."""
    from vaelib.core.vae import VAEConfig
    from vaelib.machinery.batches import Minibatches
    from vaelib.machinery.train import Trainer

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(seed)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    trainer = Trainer(VAEConfig(), lr=lr, batch_size=batch_size, seed=seed, threads=1)
    vaelib_data = Minibatches(train.numpy())
    times = {"vaelib": [], "pytorch": []}
    for r in range(rounds):
        t0 = time.perf_counter()
        trainer.train_epoch(vaelib_data, progress=False)
        times["vaelib"].append(time.perf_counter() - t0)
        times["pytorch"].append(torch_epoch(model, opt, train, batch_size, gen))
        print(f"round {r + 1}: vaelib {times['vaelib'][-1]:.2f} s, pytorch {times['pytorch'][-1]:.2f} s",
              file=sys.stderr)
    ratio = np.array(times["vaelib"]) / np.array(times["pytorch"])
    return {"mode": "alternate, one thread each", "threads": torch.get_num_threads(), "seconds_per_epoch": times,
            "median_vaelib": float(np.median(times["vaelib"])), "median_pytorch": float(np.median(times["pytorch"])),
            "median_ratio_vaelib_over_pytorch": float(np.median(ratio)),
            "ratio_range": [float(ratio.min()), float(ratio.max())]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=os.environ.get("VAELIB_DATA"))
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--matmul-only", action="store_true",
                   help="time only one epoch's matrix multiplications")
    p.add_argument("--alternate", type=int, metavar="N",
                   help="N epochs each of vaelib and PyTorch, one thread each, alternated")
    args = p.parse_args()
    if not args.data_dir:
        p.error("no data directory: pass --data-dir or set VAELIB_DATA")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # default layer init
    gen = torch.Generator().manual_seed(args.seed)  # shuffling and training eps
    data = load_data(args.data_dir)
    train, test = data["train"], data["test"]
    result = {"framework": "pytorch", "torch_version": torch.__version__,
              "threads": torch.get_num_threads()}

    if args.alternate:
        result.update(alternate(train, args.alternate, args.batch_size, args.lr, args.seed))
    elif args.matmul_only:
        result.update(mode="matmul-only", batch_size=args.batch_size,
                      seconds=time_matmuls(len(train), args.batch_size, gen))
    else:
        model = VAE()
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
        seconds, test_elbo = [], []
        for epoch in range(1, args.epochs + 1):
            model.train()
            losses = []
            t0 = time.perf_counter()
            for idx in tqdm(batches(len(train), args.batch_size, gen),
                            desc=f"epoch {epoch}", file=sys.stderr, leave=False):
                loss = model.neg_elbo(train[idx], gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            seconds.append(time.perf_counter() - t0)
            model.eval()
            test_elbo.append(evaluate(model, test, args.seed))
            print(f"epoch {epoch:3d}  {seconds[-1]:7.2f} s  train -ELBO {np.mean(losses):8.3f}"
                  f"  test -ELBO {test_elbo[-1]:8.3f}", file=sys.stderr)
        result.update(epochs=args.epochs, seconds_per_epoch=seconds,
                      median_seconds_per_epoch=float(np.median(seconds)),
                      test_neg_elbo=test_elbo)

    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
