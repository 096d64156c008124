"""Benchmark: an IWAE training epoch (K samples per image) against the ELBO's, and where an IWAE step spends its time.

Run with ``python benchmarks/bench_iwae.py`` (add ``--data-dir DIR``, or set
``VAELIB_DATA``, for the 50,000 images of ``binarized-mnist``; without them only
``mnist5k`` is timed). Model 784-400-20, ReLU, Bernoulli, batch 128, Adam,
float32, the fast engine, on one BLAS thread (``OPENBLAS_NUM_THREADS=1`` is set
before NumPy loads, and training pins itself with threadpoolctl).

1. ``epochs``: for each data set, an ELBO trainer and an IWAE trainer (``--k``,
   5 by default) train epochs in turn, in the order ELBO, IWAE, IWAE, ELBO,
   ... so that a drift in the machine's speed falls on both alike, after one
   warm-up epoch each (Numba's cache, BLAS, the allocator). The ratio is the
   median IWAE epoch over the median ELBO epoch, in wall time and in the
   process's CPU time (which a busy machine inflates less).
2. ``profile``: ``--steps`` training steps of each objective on ``mnist5k``
   batches, with every stage of :func:`vaelib.fast.iwae.inplace_negative_iwae_and_grads`
   (and of the ELBO's step, for comparison) timed by wrapping the functions
   the step calls, so the step timed is the step that trains. "the rest" is
   the step's time outside the wrapped calls: drawing ``eps``, ``np.repeat``,
   the row scaling by the normalised weights, the sums over samples.
3. ``subnormal``: the decoder's backward pass of one IWAE step, after
   ``--subnormal-steps`` steps of training, fed the gradient at its output as
   training computes it (products below the smallest normal float32 set to 0)
   and as the plain product ``dout * weight`` leaves it (subnormal numbers
   kept); CPU milliseconds, medians of 10 rounds of 20 calls each, the two
   alternated.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from vaelib.core.vae import VAEConfig  # noqa: E402
from vaelib.fast import iwae as fast_iwae, vae as fast_vae  # noqa: E402
from vaelib.machinery.batches import Minibatches  # noqa: E402
from vaelib.machinery.data import load_dataset  # noqa: E402
from vaelib.machinery.train import Trainer  # noqa: E402


def trainers(k):
    return {"elbo": Trainer(VAEConfig(), seed=0), "iwae": Trainer(VAEConfig(), seed=0, objective="iwae", k=k)}


def epoch_ratio(train_x, k, repeats, label):
    """Seconds per epoch of each objective, alternated ELBO, IWAE, IWAE, ELBO, ...; and the ratio of medians."""
    batches = Minibatches(train_x)
    runs = trainers(k)
    for t in runs.values():
        t.train_epoch(batches, progress=False)
    seconds, cpu = ({name: [] for name in runs} for _ in range(2))
    for r in range(repeats):
        for name in (("elbo", "iwae") if r % 2 == 0 else ("iwae", "elbo")):
            start, start_cpu = time.perf_counter(), time.process_time()
            runs[name].train_epoch(batches, progress=False)
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
        print(f"{label}, repeat {r + 1}: ELBO {seconds['elbo'][-1]:.3f} s ({cpu['elbo'][-1]:.3f} s CPU), "
              f"IWAE {seconds['iwae'][-1]:.3f} s ({cpu['iwae'][-1]:.3f} s CPU)", file=sys.stderr)
    medians = {name: float(np.median(s)) for name, s in seconds.items()}
    cpu_medians = {name: float(np.median(s)) for name, s in cpu.items()}
    return {"images": len(train_x), "k": k, "seconds": seconds, "cpu_seconds": cpu, "median_seconds": medians,
            "median_cpu_seconds": cpu_medians, "ratio": medians["iwae"] / medians["elbo"],
            "cpu_ratio": cpu_medians["iwae"] / cpu_medians["elbo"],
            "ratio_per_repeat": [i / e for e, i in zip(seconds["elbo"], seconds["iwae"])]}


# ---------------------------------------------------------------- the profile
LATENT = "latent block: reparameterisation and KL, forward and backward"
STAGES = {  # module attribute -> stage name (None: named by its "enc"/"dec" prefix argument)
    "_mlp_forward": None, "_mlp_backward_into": None,
    "bernoulli_nll_and_grad": "likelihood, forward and backward (fused kernel)",
    "log_mean_exp_forward": "log-mean-exp and its backward", "log_mean_exp_backward": "log-mean-exp and its backward",
    "reparam_forward": LATENT, "reparam_backward": LATENT,
    "kl_monte_carlo_forward": LATENT, "kl_monte_carlo_backward": LATENT,
}


def _timed(fn, name, wall, cpu):
    """``fn``, adding its wall time to ``wall[stage]`` and its thread's CPU time to ``cpu[stage]``."""
    def wrapper(*args, **kwargs):
        prefix = next(a for a in args if isinstance(a, str)) if name is None else None
        stage = name or {"enc": "encoder ", "dec": "decoder "}[prefix] + (
            "forward" if fn.__name__ == "_mlp_forward" else "backward")
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            wall[stage] += time.perf_counter() - start
            cpu[stage] += time.thread_time() - start_cpu
    return wrapper


def profile(train_x, objective, k, steps, batch_size=128):
    """Milliseconds per step in each stage, over ``steps`` steps (after 20 untimed ones), in wall time and in
    the thread's CPU time (one BLAS thread computes on the calling thread)."""
    module = fast_iwae if objective == "iwae" else fast_vae
    trainer = trainers(k)[objective]
    wall, cpu = defaultdict(float), defaultdict(float)
    originals = {a: getattr(module, a) for a in STAGES if hasattr(module, a)}
    adam = trainer.optimizer.inplace_step
    rng = np.random.default_rng(0)
    xs = [train_x[rng.choice(len(train_x), batch_size, replace=False)].astype(np.float32) for _ in range(steps + 20)]
    try:
        for a, fn in originals.items():
            setattr(module, a, _timed(fn, STAGES[a], wall, cpu))
        trainer.optimizer.inplace_step = _timed(adam, "Adam", wall, cpu)
        with threadpool_limits(1, user_api="blas"):
            for x in xs[:20]:
                trainer.step(x)
            wall.clear()
            cpu.clear()
            start, start_cpu = time.perf_counter(), time.thread_time()
            for x in xs[20:]:
                trainer.step(x)
            total, total_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
    finally:
        for a, fn in originals.items():
            setattr(module, a, fn)
        del trainer.optimizer.inplace_step
    report = {}
    for label, clock, seconds in (("wall", wall, total), ("cpu", cpu, total_cpu)):
        ms = {stage: 1e3 * s / steps for stage, s in sorted(clock.items(), key=lambda item: -item[1])}
        ms["the rest"] = 1e3 * seconds / steps - sum(ms.values())
        report[label] = {"ms_per_step": 1e3 * seconds / steps, "stages_ms": ms}
    return report


def subnormal_cost(train_x, k, steps, batch_size=128):
    """Decoder backward in CPU ms with the weighted output gradient flushed and not; and the share of subnormals."""
    trainer = trainers(k)["iwae"]
    with threadpool_limits(1, user_api="blas"):
        for s in range(steps):
            trainer.step(train_x[s * batch_size % len(train_x):][:batch_size].astype(np.float32))
        seen = {}
        scale, backward = fast_iwae.inplace_scale_rows_flush, fast_iwae._mlp_backward_into

        def keep_scale(a, w, tiny):
            seen["unscaled"], seen["w"] = a.copy(), w.copy()
            return scale(a, w, tiny)

        def keep_backward(*args, **kwargs):
            if "dec" in [a for a in args if isinstance(a, str)]:
                seen["backward_args"] = args, kwargs
            return backward(*args, **kwargs)

        fast_iwae.inplace_scale_rows_flush, fast_iwae._mlp_backward_into = keep_scale, keep_backward
        try:
            trainer.step(train_x[:batch_size].astype(np.float32))
        finally:
            fast_iwae.inplace_scale_rows_flush, fast_iwae._mlp_backward_into = scale, backward
        (grads, flushed, params, inputs, acts, *rest), kwargs = seen["backward_args"]
        with np.errstate(under="ignore"):
            plain = seen["unscaled"] * seen["w"][:, None]
        share = float(np.mean((plain != 0) & (np.abs(plain) < np.finfo(np.float32).tiny)))
        assert np.array_equal(np.where(np.abs(plain) < np.finfo(np.float32).tiny, 0, plain), flushed)
        ms = {}
        for name, dout in (("flushed", flushed), ("subnormals kept", plain)) * 2:
            rounds = []
            for _ in range(5):
                start = time.thread_time()
                for _ in range(20):
                    backward(grads, dout.copy(), params, inputs, [a.copy() for a in acts], *rest, **kwargs)
                rounds.append(1e3 * (time.thread_time() - start) / 20)
            ms.setdefault(name, []).extend(rounds)
    return {"after_steps": steps, "subnormal_share_of_dout": share,
            "decoder_backward_cpu_ms": {name: float(np.median(v)) for name, v in ms.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAELIB_DATA"))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7, help="epochs of each objective on mnist5k")
    parser.add_argument("--full-repeats", type=int, default=3, help="epochs of each objective on binarized-mnist")
    parser.add_argument("--steps", type=int, default=200, help="steps of each objective in the profile")
    parser.add_argument("--subnormal-steps", type=int, default=10, help="training steps before the subnormal check")
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args()

    blas = [(p["internal_api"], p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"]
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                          "blas_threads": blas, "date": time.strftime("%Y-%m-%d %H:%M"),
                          "load_average_at_start": os.getloadavg()}}
    mnist5k = load_dataset("mnist5k", binarize=True).train
    report["mnist5k"] = epoch_ratio(mnist5k, args.k, args.repeats, "mnist5k")
    try:
        full = load_dataset("binarized-mnist", args.data_dir).train
    except FileNotFoundError as e:
        print(f"binarized-mnist not timed: {e}", file=sys.stderr)
    else:
        report["binarized_mnist"] = epoch_ratio(full, args.k, args.full_repeats, "binarized-mnist")
    report["profile"] = {name: profile(mnist5k, name, args.k, args.steps) for name in ("elbo", "iwae")}
    report["subnormal"] = subnormal_cost(mnist5k, args.k, args.subnormal_steps)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
