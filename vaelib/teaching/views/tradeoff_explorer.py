"""The sliders of notebook 08: a sweep of trained VAEs on the rate-distortion plane.

A sweep (:func:`vaelib.teaching.tradeoff.beta_sweep` or
:func:`~vaelib.teaching.tradeoff.sigma_sweep`) holds one trained model per value of
the KL weight ``beta`` or of the decoder's ``sigma``. The slider picks one model;
the view shows

- the rate-distortion plane: rate ``R`` (mean KL, nats) across, distortion down the
  side, every model of the sweep on the training images (filled circles, joined) and
  on the test images (open squares); the chosen model ringed; and the line of constant loss
  ``D + w R`` through its training point, ``w`` the weight the model was trained
  with. A model trained with weight ``w`` is trained to minimise ``D + w R`` on its
  training images, so, up to training noise, no other model of the sweep lies below
  that line (notebook 08 measures that noise and checks it);
- the KL of each latent dimension (test images), largest first, active units
  (:func:`vaelib.core.evaluate.active_units`) solid blue, the others hatched grey;
- test digits, the model's reconstructions and its samples (decoder means), dark ink on
  white (:data:`~vaelib.teaching.digit_figures.DIGIT_CMAP`), as every figure of digits.

For the beta sweep the distortion is ``D = -E_q[log p(x|z)]`` and ``w = beta``.
For the sigma sweep it is half the squared error ``|x - m|^2 / 2`` and ``w = sigma^2``:
the Gaussian loss is ``(|x - m|^2 / 2 + sigma^2 R) / sigma^2 + const`` (notebook 03).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.layout_engine import TightLayoutEngine
from matplotlib.ticker import FixedLocator, MaxNLocator

from vaelib.teaching import figures
from vaelib.teaching.digit_figures import DIGIT_CMAP, mosaic
from .slider_view import SliderView, value_slider

ROW_LABELS = ("test digits", "reconstructions", "samples")
#: Figure size (inches): the full width of :mod:`vaelib.teaching.figures`, the digits below the two panels.
FIGSIZE = (figures.WIDTH, 6.4)
#: An inactive unit's bar: light grey, hatched (told apart from an active unit's solid blue without colour).
INACTIVE_FACE, INACTIVE_EDGE, INACTIVE_HATCH = "0.88", "0.45", "////"


def loss_line(rate, distortion, weight, rate_range):
    """The points of ``D + weight * R = distortion + weight * rate`` at the two ends of ``rate_range``.

    Returns
    -------
    xs, ys : ndarray, shape (2,)
    """
    xs = np.asarray(rate_range, dtype=float)
    return xs, distortion + weight * (rate - xs)


def readout(table, i, symbol, weight_symbol, distortion_key, distortion_label, distortion_unit):
    """The numbers the view shows for model ``i`` of ``table`` (with its ``"weights"``), as text."""
    w = table["weights"][i]
    n_latent = table["kl_per_dim"].shape[1]
    lines = [f"{symbol} = {table['values'][i]:g}: loss = {distortion_label} + {weight_symbol}·R with {weight_symbol} = {w:g}"
             f"   (R in nats, {distortion_label} in {distortion_unit}; per image)",
             f"{'':17s}{'rate R':>10s}{distortion_label:>14s}{'loss':>12s}"]
    for label, suffix in (("training images", "_train"), ("test images", "")):
        r, d = table["rate" + suffix][i], table[distortion_key + suffix][i]
        lines.append(f"{label:17s}{r:10.2f}{d:14.2f}{d + w * r:12.2f}")
    lines.append(f"active units: {table['active_units'][i]} of {n_latent}; "
                 f"largest KL of one dimension {table['kl_per_dim'][i].max():.2f} nats")
    return "\n".join(lines)


def figure_words(table, name, *, symbol, distortion_key, distortion_words, weight_words):
    """What the view's figure shows, in words (its alt text), with the numbers of ``table``.

    The same words describe every setting: :meth:`SliderView.alt_text` adds the chosen value,
    and the chosen model's numbers are in the readout.

    Parameters
    ----------
    table : dict
        A sweep table (see :func:`make_tradeoff_view`).
    name : str
        The sweep's quantity, a key of ``table``.
    symbol : str
        How to write it (``"β"``).
    distortion_key : str
        ``"distortion"`` or ``"half_squared_error"``.
    distortion_words : str
        The distortion axis in words, with its unit.
    weight_words : str
        The constant-loss line in words.
    """
    values, rate, dist = np.asarray(table[name]), table["rate"], table[distortion_key]
    n_models, n_latent = np.shape(table["kl_per_dim"])
    n_images = len(table["originals"])
    active = table["active_units"]
    return (
        f"Top left, the rate-distortion plane: rate R in nats across, {distortion_words} up. Each of the "
        f"{n_models} models of the {symbol} sweep, {symbol} from {values[0]:g} to {values[-1]:g}, is a filled "
        f"circle on the training digits, the circles joined by a solid line, and an open square on the test "
        f"digits. On the test digits the models run from R = {rate[0]:.1f} nats and {dist[0]:.1f} at "
        f"{symbol} = {values[0]:g} to R = {rate[-1]:.2f} nats and {dist[-1]:.1f} at {symbol} = {values[-1]:g}. "
        f"The chosen model is ringed, and a dashed line of constant loss, {weight_words}, passes through its "
        f"training point; up to training noise no other training point lies below it. Top right, bars of the "
        f"KL in nats of each of the {n_latent} latent dimensions on the test digits, largest first, on a log "
        f"scale: solid blue for an active unit, hatched grey for an inactive one ({active[0]} active units at "
        f"{symbol} = {values[0]:g}, {active[-1]} at {symbol} = {values[-1]:g}). Bottom, {n_images} test digits, "
        f"their reconstructions by the chosen model, and {n_images} of its samples: look for the "
        f"reconstructions blurring and the samples turning into one average digit as {symbol} grows."
    )


def make_tradeoff_view(table, name, weights, *, symbol, weight_symbol, distortion_key, distortion_label,
                       distortion_unit, tex, words, value=None):
    """A slider over the models of a sweep table; see the module docstring.

    Drawn in the style of :mod:`vaelib.teaching.figures` whatever the caller's Matplotlib
    settings: :data:`~vaelib.teaching.figures.WIDTH` wide at its dpi, 10-pt text or larger.
    No series is told by colour alone: training points are filled blue circles on a solid line,
    test points open vermillion squares; active units' bars solid blue, the others hatched grey.

    Parameters
    ----------
    table : dict from :func:`vaelib.teaching.tradeoff.measure_sweep`, with the key ``name``
    name : str
        The slider's quantity, a key of ``table`` (``"beta"`` or ``"sigma"``).
    weights : ndarray, shape (n_models,)
        Each model's weight on the rate in the loss it minimised, for the constant-loss line.
    symbol, weight_symbol : str
        How the slider's label and the readout write the slider's quantity and the weight (``"β"``, ``"σ"``,
        ``"σ²"``).
    distortion_key : str
        ``"distortion"`` or ``"half_squared_error"`` (with ``"..._train"`` alongside).
    distortion_label, distortion_unit : str
        The distortion's name, for the readout, and its unit.
    tex : dict of str -> str
        The figure's maths type (Matplotlib mathtext, without dollars) for ``"symbol"``, ``"weight"`` and
        ``"distortion"``, e.g. ``{"symbol": r"\beta", "weight": r"\beta", "distortion": "D"}``.
    words : dict of str -> str
        ``"distortion"`` and ``"line"``: the distortion axis and the constant-loss line in words, for
        :func:`figure_words`.
    value : float, optional
        The initial slider value (one of ``table[name]``; default the first).

    Returns
    -------
    SliderView
        Slider ``name``, labelled ``symbol``; figure described by :func:`figure_words` (``alt``).
        Artists: ``fig.axes[0]`` the plane, with ``lines[0]`` training points,
        ``lines[1]`` test points, ``lines[2]`` the ring on the chosen training point, ``lines[3]``
        on its test point, ``lines[4]`` the constant-loss line; ``fig.axes[1].patches`` the KL bars
        (largest first); ``fig.axes[2].images[0]`` the picture: test digits, reconstructions and samples
        in three rows (:func:`~vaelib.teaching.digit_figures.mosaic` without padding), clipped to [0, 1].
    """
    values = np.asarray(table[name], dtype=float)
    table = {**table, "values": values, "weights": np.asarray(weights, dtype=float)}
    n_models, n_latent = table["kl_per_dim"].shape
    n_images = len(table["originals"])
    counts = (n_images, np.shape(table["reconstructions"])[1], np.shape(table["samples"])[1])
    if len(set(counts)) != 1:
        raise ValueError(f"every row needs the same number of images, got {list(counts)}")
    pictures = [np.clip(mosaic(np.concatenate([table["originals"], table["reconstructions"][i], table["samples"][i]]),
                               n_images, table["image_shape"], pad=0), 0.0, 1.0) for i in range(n_models)]
    rate_tr, dist_tr = table["rate_train"], table[distortion_key + "_train"]
    rate_te, dist_te = table["rate"], table[distortion_key]
    blue, vermillion = figures.PALETTE["blue"], figures.PALETTE["vermillion"]

    with plt.rc_context(figures.STYLE):
        fig = plt.figure(figsize=FIGSIZE)
        grid = fig.add_gridspec(2, 2, height_ratios=[1.5, 1], width_ratios=[1.4, 1])
        ax_plane, ax_kl, ax_img = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])

        sym, dis = f"${tex['symbol']}$", f"${tex['distortion']}$"
        ax_plane.plot(rate_tr, dist_tr, color=blue, ls="-", marker=figures.MARKERS[0], ms=5, label="training digits")
        ax_plane.plot(rate_te, dist_te, color=vermillion, ls="none", marker=figures.MARKERS[1], ms=5,
                      fillstyle="none", label="test digits")
        (ring_tr,) = ax_plane.plot([], [], "o", color="k", ms=13, fillstyle="none", markeredgewidth=1.5)
        (ring_te,) = ax_plane.plot([], [], "o", color=vermillion, ms=13, fillstyle="none", markeredgewidth=1.5)
        rates, dists = np.concatenate([rate_tr, rate_te]), np.concatenate([dist_tr, dist_te])
        pad_r, pad_d = 0.04 * np.ptp(rates), 0.08 * np.ptp(dists)
        rate_range = (rates.min() - pad_r, rates.max() + pad_r)
        (line,) = ax_plane.plot([], [], "--", color="k", lw=1.2,
                                label=f"${tex['distortion']} + {tex['weight']}\\,R$ constant")
        ax_plane.set_xlim(*rate_range)
        ax_plane.set_ylim(dists.min() - pad_d, dists.max() + pad_d)
        for axis in (ax_plane.xaxis, ax_plane.yaxis):  # few, fixed ticks: each costs drawing time at every update
            axis.set_major_locator(FixedLocator(MaxNLocator(5).tick_values(*axis.get_view_interval())))
        ax_plane.set_xlabel(r"rate $R$, mean $\mathrm{KL}$ (nats)")
        ax_plane.set_ylabel(f"distortion {dis} ({distortion_unit})")
        ax_plane.legend(loc="upper right", handlelength=1.8, borderaxespad=0.3)
        plane_title = ax_plane.set_title(" ")

        bars = ax_kl.bar(np.arange(1, n_latent + 1), np.ones(n_latent), color=blue, edgecolor=blue, linewidth=0.6)
        ax_kl.set_yscale("log")
        kl_all = table["kl_per_dim"]
        low, high = max(1e-3, 0.5 * kl_all[kl_all > 0].min()), 2 * kl_all.max()
        ax_kl.set_ylim(low, high)
        decades = [10.0**k for k in range(int(np.ceil(np.log10(low))), int(np.floor(np.log10(high))) + 1)]
        ax_kl.set_yticks(decades, [f"{d:g}" for d in decades])  # fixed ticks with plain labels: cheap to redraw
        ax_kl.minorticks_off()
        ax_kl.set_xlim(0.3, n_latent + 0.7)
        ax_kl.set_xticks(np.unique(np.r_[1, np.arange(0, n_latent + 1, max(1, n_latent // 4))[1:]]))
        ax_kl.set_xlabel("latent dimension,\nlargest KL first")
        ax_kl.set_ylabel(r"$\mathrm{KL}$ of one dimension (nats)")
        kl_title = ax_kl.set_title(" ")

        image = ax_img.imshow(pictures[0], cmap=DIGIT_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
        h = table["image_shape"][0]
        ax_img.set_yticks([h * (k + 0.5) for k in range(3)], ROW_LABELS)
        ax_img.set_xticks([])
        ax_img.tick_params(left=False)
        for spine in ax_img.spines.values():
            spine.set_visible(False)
        img_title = ax_img.set_title(" ")
        for ax in (ax_plane, ax_kl, ax_img):
            ax.tick_params(labelsize=figures.SMALLEST_POINTS)  # also for ticks made after the style is gone

    def update(**slider):
        i = int(np.argmin(np.abs(values - slider[name])))
        w = table["weights"][i]
        ring_tr.set_data([rate_tr[i]], [dist_tr[i]])
        ring_te.set_data([rate_te[i]], [dist_te[i]])
        line.set_data(*loss_line(rate_tr[i], dist_tr[i], w, rate_range))
        plane_title.set_text(f"{sym} = {values[i]:g}: the dashed line has slope −{w:g}")
        order = np.argsort(table["kl_per_dim"][i])[::-1]
        for bar, height, is_active in zip(bars, table["kl_per_dim"][i][order], table["active"][i][order]):
            bar.set_height(height)
            bar.set_facecolor(blue if is_active else INACTIVE_FACE)
            bar.set_edgecolor(blue if is_active else INACTIVE_EDGE)
            bar.set_hatch(None if is_active else INACTIVE_HATCH)
        kl_title.set_text(f"KL total {table['rate'][i]:.3g} nats;\n"
                          f"{table['active_units'][i]} of {n_latent} units active (solid)")
        image.set_data(pictures[i])
        img_title.set_text(f"{sym} = {values[i]:g}: test digits, their reconstructions, "
                           r"and decoder means at $z \sim p(z)$")
        return readout(table, i, symbol, weight_symbol, distortion_key, distortion_label, distortion_unit)

    update(**{name: values[0]})  # titles and bars in place, so that the layout makes room for them
    # lay out once; fig.tight_layout() would leave an engine that re-lays out at every savefig
    TightLayoutEngine().execute(fig)
    # axis limits and layout stay fixed: only these artists move, so a slider move redraws only them
    moving = [ring_tr, ring_te, line, plane_title, *bars, kl_title, image, img_title]
    alt = figure_words(table, name, symbol=symbol, distortion_key=distortion_key,
                       distortion_words=words["distortion"], weight_words=words["line"])
    return SliderView(fig, {name: value_slider(symbol, values, value)}, update, moving=moving, alt=alt)


def make_beta_view(table, beta=None):
    """:func:`make_tradeoff_view` for a :func:`~vaelib.teaching.tradeoff.beta_sweep` table.

    Distortion ``D = -E_q[log p(x|z)]`` (nats), weight ``beta``.
    """
    return make_tradeoff_view(table, "beta", table["beta"], symbol="β", weight_symbol="β",
                              distortion_key="distortion", distortion_label="D", distortion_unit="nats",
                              tex={"symbol": r"\beta", "weight": r"\beta", "distortion": "D"},
                              words={"distortion": "distortion D in nats",
                                     "line": "D + βR, of slope minus β"}, value=beta)


def make_sigma_view(table, sigma=None):
    """:func:`make_tradeoff_view` for a :func:`~vaelib.teaching.tradeoff.sigma_sweep` table.

    Distortion ``|x - m|^2 / 2`` (squared pixel units, summed over pixels), weight ``sigma^2``.
    """
    return make_tradeoff_view(table, "sigma", np.asarray(table["sigma"]) ** 2, symbol="σ", weight_symbol="σ²",
                              distortion_key="half_squared_error", distortion_label="|x−m|²/2",
                              distortion_unit="squared pixel units",
                              tex={"symbol": r"\sigma", "weight": r"\sigma^2", "distortion": r"\|x-m\|^2/2"},
                              words={"distortion": "half the squared error, |x − m|²/2, in squared pixel units",
                                     "line": "|x − m|²/2 + σ²R, of slope minus σ squared"}, value=sigma)
