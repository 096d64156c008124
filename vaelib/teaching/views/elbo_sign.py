"""The beta slider of notebook 01: how reconstruction and KL trade off in the loss.

A tiny Bernoulli VAE is trained once for each ``beta`` of a grid (same data,
same initialisation, same noise), and its two terms are then measured on a
fixed set of noise samples. The slider picks a ``beta``; the view shows that
model's terms as bars, and where it sits on the reconstruction/KL curves.

Signs (see :mod:`vaelib.core.vae`)::

    ELBO   = -(reconstruction + kl)            objective, maximised
    loss   =   reconstruction + beta * kl      minimised (= -ELBO at beta = 1)

Every number here is in nats per image: summed over pixels and latent
dimensions, averaged over the batch and the noise samples.
"""

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.layout_engine import TightLayoutEngine
from threadpoolctl import threadpool_limits

from vaelib.core.vae import negative_elbo_forward
from vaelib.machinery.train import Trainer
from vaelib.teaching import figures
from .slider_view import SliderView, value_slider

#: The bars' labels: reconstruction, KL, beta * KL, loss.
BAR_LABELS = ("reconstruction", "KL", r"$\beta\cdot$KL", "loss")
#: Figure size (inches): the full width of :mod:`vaelib.teaching.figures`, at its dpi.
FIGSIZE = (figures.WIDTH, 3.6)


def noise_averaged_terms(params, x, eps, config):
    """The ELBO, the loss and their terms, averaged over noise samples and the batch.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (batch, n_pixels)
    eps : ndarray, shape (n_samples, batch, n_latent)
        Standard normal noise; ``E_q`` is estimated by the mean over samples.
    config : VAEConfig

    Returns
    -------
    dict of str -> float
        ``"reconstruction"`` (``-E_q[log p(x|z)]``), ``"kl"``,
        ``"beta_kl"`` (``config.beta * kl``), ``"loss"``
        (``reconstruction + beta * kl``) and ``"elbo"``
        (``-(reconstruction + kl)``), in nats per image.
    """
    n_samples, batch, n_latent = eps.shape
    x_rep = np.broadcast_to(x, (n_samples, *x.shape)).reshape(n_samples * batch, -1)
    _, terms, _ = negative_elbo_forward(params, x_rep, eps.reshape(-1, n_latent), config)
    rec = float(np.mean(terms["reconstruction"]))
    kl = float(np.mean(terms["kl"]))
    return {
        "reconstruction": rec,
        "kl": kl,
        "beta_kl": config.beta * kl,
        "loss": rec + config.beta * kl,
        "elbo": -(rec + kl),
    }


def train_vae(config, x, n_steps=400, lr=1e-2, seed=0):
    """Train a VAE with Adam on one fixed batch, fresh noise every step.

    Each step is :meth:`vaelib.machinery.train.Trainer.step` on the core engine,
    in float64, with the trainer's number of BLAS threads (one), as in
    :meth:`~vaelib.machinery.train.Trainer.train_epoch`.

    Parameters
    ----------
    config : VAEConfig
    x : ndarray, shape (batch, n_pixels)
    n_steps : int
    lr : float
    seed : int
        Seeds both the initialisation and the noise, so equal seeds give equal runs.

    Returns
    -------
    params : dict of str -> ndarray
    history : ndarray, shape (n_steps, 2)
        Batch means of the reconstruction term and the KL at each step (nats),
        measured before that step's update.
    """
    trainer = Trainer(config, lr=lr, batch_size=len(x), seed=seed, dtype=np.float64, engine="core")
    history = np.empty((n_steps, 2))
    with threadpool_limits(trainer.threads, user_api="blas"):
        for step in range(n_steps):
            _, terms = trainer.step(x)
            history[step] = terms["reconstruction"].mean(), terms["kl"].mean()
    return trainer.params, history


def trade_off_table(betas, config, x, n_steps=400, lr=1e-2, seed=0, n_eval=500):
    """Train one model per ``beta`` and measure its reconstruction term and KL.

    Parameters
    ----------
    betas : sequence of float
    config : VAEConfig
        Everything but ``beta``, which is replaced by each value in turn.
    x : ndarray, shape (batch, n_pixels)
    n_steps, lr, seed
        Passed to :func:`train_vae`; the same seed for every ``beta``.
    n_eval : int
        Noise samples per image for measuring the terms (one fixed draw).

    Returns
    -------
    dict
        ``"beta"``, ``"reconstruction"``, ``"kl"``: ndarrays of shape (n_betas,), nats.
    """
    eps = np.random.default_rng(seed + 1).standard_normal((n_eval, x.shape[0], config.n_latent))
    rec, kl = [], []
    for beta in betas:
        cfg = replace(config, beta=float(beta))
        params, _ = train_vae(cfg, x, n_steps, lr, seed)
        terms = noise_averaged_terms(params, x, eps, cfg)
        rec.append(terms["reconstruction"])
        kl.append(terms["kl"])
    return {"beta": np.asarray(betas, dtype=float), "reconstruction": np.array(rec), "kl": np.array(kl)}


def bar_heights(table, i):
    """Heights of the bars for row ``i``: reconstruction, KL, beta * KL, loss (nats)."""
    beta, rec, kl = table["beta"][i], table["reconstruction"][i], table["kl"][i]
    return np.array([rec, kl, beta * kl, rec + beta * kl])


def readout(table, i):
    """The numbers the view shows for row ``i``, as text."""
    beta, rec, kl = table["beta"][i], table["reconstruction"][i], table["kl"][i]
    return (
        f"β = {beta:g}\n"
        f"reconstruction -E_q[log p(x|z)] = {rec:.3f} nats (minimised)\n"
        f"KL(q(z|x) || p(z))              = {kl:.3f} nats (minimised)\n"
        f"β * KL                          = {beta * kl:.3f} nats\n"
        f"loss = rec + β * KL             = {rec + beta * kl:.3f} nats (minimised)\n"
        f"ELBO = -(rec + KL)              = {-(rec + kl):.3f} nats (maximised)"
    )


def _trend(values):
    """How a sequence moves from its first to its last value, in a word."""
    return "falls" if values[-1] < values[0] else "rises" if values[-1] > values[0] else "goes"


def figure_words(table):
    """What the view's figure shows, in words (its alt text), with the numbers of ``table``.

    The same words describe every setting: the figure's setting (the chosen
    ``beta``) is named by :meth:`SliderView.alt_text`, and the chosen model's
    numbers are in the readout.
    """
    betas, rec, kl = table["beta"], table["reconstruction"], table["kl"]
    return (
        "Left, four bars in nats per image for the model trained at the chosen β: the reconstruction term, "
        "the KL, β times the KL, and the loss, reconstruction plus β times KL. Right, on the same axis, the "
        f"reconstruction term (solid, circles) and the KL (dashed, squares) of the {len(betas)} models trained "
        f"with β from {betas[0]:g} to {betas[-1]:g}: as β grows the KL {_trend(kl)} from {kl[0]:.2f} to "
        f"{kl[-1]:.2f} nats and the reconstruction term {_trend(rec)} from {rec[0]:.2f} to {rec[-1]:.2f}; "
        "a dotted line and rings mark the chosen β."
    )


def make_elbo_sign_view(table, beta=None):
    """A beta slider over a :func:`trade_off_table`.

    Left: bars of reconstruction, KL, beta * KL and the loss for the model
    trained at the chosen ``beta``. Right: reconstruction and KL of every
    trained model against ``beta``, with rings and a vertical line at the
    chosen one. Drawn in the style of :mod:`vaelib.teaching.figures`
    (:data:`~vaelib.teaching.figures.WIDTH` wide, 10-pt text, Okabe-Ito colours),
    whatever the caller's Matplotlib settings; reconstruction is blue and solid,
    the KL vermillion and dashed, in both panels (the KL bars hatched for
    ``beta`` times the KL), so that no series is told by colour alone.

    Parameters
    ----------
    table : dict from :func:`trade_off_table`
    beta : float, optional
        Initial slider value (one of ``table["beta"]``; default the first).

    Returns
    -------
    SliderView
        Its figure described by :func:`figure_words` (``alt``).
    """
    betas = table["beta"]
    blue, vermillion, black = (figures.PALETTE[c] for c in ("blue", "vermillion", "black"))
    with plt.rc_context(figures.STYLE):
        # one shared y axis (nats): a bar's top lines up with its model's point on the curves
        fig, (ax_bar, ax_curve) = plt.subplots(1, 2, figsize=FIGSIZE, sharey=True)
        bars = ax_bar.bar(range(4), bar_heights(table, 0), color=[blue, vermillion, "white", black],
                          edgecolor=[blue, vermillion, vermillion, black], hatch=[None, None, "///", None])
        ax_bar.set_xticks(range(4), BAR_LABELS)
        top = max(bar_heights(table, i).max() for i in range(len(betas)))
        ax_bar.set_ylim(0, 1.12 * top)
        ax_bar.set_ylabel("nats per image")
        bar_title = ax_bar.set_title(" ")

        ax_curve.plot(betas, table["reconstruction"], color=blue, ls="-", marker=figures.MARKERS[0],
                      label="reconstruction")
        ax_curve.plot(betas, table["kl"], color=vermillion, ls="--", marker=figures.MARKERS[1], label="KL")
        (marker,) = ax_curve.plot([], [], "o", color=black, markersize=13, fillstyle="none", markeredgewidth=1.5,
                                  clip_on=False)
        (chosen,) = ax_curve.plot([], [], color=black, ls=":", lw=1.2)
        ax_curve.margins(x=0.08)  # room for the rings at either end
        ax_curve.locator_params(axis="x", nbins=5)  # few tick labels: text is most of the rendering time
        ax_curve.set_xlabel(r"$\beta$ (weight of the KL in the loss)")
        ax_curve.set_title(r"every trained model, against $\beta$")
        ax_curve.legend(loc="upper left")
    top_y = ax_bar.get_ylim()[1]

    def update(beta):
        i = int(np.argmin(np.abs(betas - beta)))
        for bar, h in zip(bars, bar_heights(table, i)):
            bar.set_height(h)
        bar_title.set_text(rf"the model trained at $\beta$ = {betas[i]:g}")
        marker.set_data([betas[i], betas[i]], [table["reconstruction"][i], table["kl"][i]])
        chosen.set_data([betas[i], betas[i]], [0, top_y])
        return readout(table, i)

    update(betas[0])  # the title in place, so that the layout makes room for it
    # lay out once; fig.tight_layout() would leave a layout engine that costs every savefig an extra draw
    TightLayoutEngine().execute(fig)
    return SliderView(fig, {"beta": value_slider("β", betas, beta)}, update, alt=figure_words(table))
