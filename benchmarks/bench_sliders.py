"""Benchmark: how long a slider move takes in each view, from the new value to a rendered PNG.

Run with ``python benchmarks/bench_sliders.py``. For every view it builds the
view as its notebook does (with smaller trained sweeps where a notebook
trains, since only the figure's cost is measured here), renders once to warm
up fonts, then moves one slider through a list of values. After each move it
renders the figure to PNG as the notebook does (``SliderView.png``: the whole
figure, or only its moving artists over a kept background for a view that
names them), and records two times:

- ``update``: the view's own update of its artists (``view.last_update_seconds``);
- ``update_and_render``: the move plus the PNG rendering, wall clock and CPU.

Medians and the range are printed as JSON. On a shared machine wall time
counts other programs too; the CPU time counts only this one.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np


def time_moves(view, name, values, repeats=3):
    """Move slider ``name`` through ``values`` ``repeats`` times; seconds per move."""
    view.png()  # the first render loads fonts (and keeps a blitting view's background): not counted
    update, wall, cpu = [], [], []
    for _ in range(repeats):
        for value in values:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            view.sliders[name].value = value
            view.png()  # as a notebook renders it (SliderView.refresh)
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.process_time() - start_cpu)
            update.append(view.last_update_seconds)
    summary = lambda t: {"median_ms": 1e3 * float(np.median(t)), "min_ms": 1e3 * min(t), "max_ms": 1e3 * max(t)}
    return {"moves": len(wall), "update": summary(update), "update_and_render_wall": summary(wall),
            "update_and_render_cpu": summary(cpu)}


def build_views():
    """(notebook, view, slider name, values to move through) for every slider view."""
    from vaelib.teaching import tradeoff
    from vaelib.teaching.views import elbo_sign, sigma_tradeoff
    from vaelib.teaching.views.elbo_gap import make_elbo_gap_view
    from vaelib.teaching.views.gradient_estimators import make_gradient_estimators_view
    from vaelib.core.vae import VAEConfig

    x = (np.random.default_rng(0).random((8, 16)) > 0.5).astype(float)
    table = elbo_sign.trade_off_table((0.25, 1.0, 4.0), VAEConfig(n_pixels=16, hidden=(8,), n_latent=2), x, n_steps=50)
    sweep = tradeoff.sigma_sweep((0.1, 0.4, 1.6), base=tradeoff.GREY_10D)  # notebook 03's models, from the cache
    yield "01 beta", elbo_sign.make_elbo_sign_view(table), "beta", (4.0, 0.25, 1.0)
    gap = make_elbo_gap_view()
    yield "02 q mean", gap, "mu", [value for _, value in gap.sliders["mu"].options][::-2]  # values it has
    yield "03 sigma", sigma_tradeoff.make_sigma_tradeoff_view(sweep), "sigma", (0.4, 1.6, 0.1)
    yield "04 sigma (N = 1000)", _estimators_view(make_gradient_estimators_view), "sigma", (0.2, 0.5, 2.0)
    yield from _app_views()


def _app_views():
    """Notebook 08's beta and sigma views and notebook 09's digit view, built as the app builds them
    (from the model cache; a first run trains the models)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("app_views", Path(__file__).resolve().parents[1] / "app" / "app_views.py")
    app_views = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_views)
    for key, build in (("08 beta", app_views.beta_view), ("08 sigma", app_views.sigma_view),
                       ("09 digit", app_views.posterior_view)):
        view = build()
        name, slider = next(iter(view.sliders.items()))
        values = [value for _, value in slider.options][:4] if hasattr(slider, "options") else None
        yield key, view, name, values


def _estimators_view(make):
    view = make()
    view.sliders["n_samples"].value = 1000
    return view


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    report = {name: time_moves(view, slider, values) for name, view, slider, values in build_views()}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
