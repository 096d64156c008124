"""The slider views the app serves (``make app``: Voila on ``app/explorer.ipynb``).

Each entry of :data:`VIEWS` is one view: a title, a caption and a function that
builds it from trained models. Models come from the model cache
(:func:`vaelib.teaching.digit_models.trained`, through the sweeps of
:mod:`vaelib.teaching.tradeoff`); a model missing from the cache is trained
first: a one-line message in the terminal that runs ``make app`` as it starts,
and a progress bar in the page. The app serves the entries in order: to add a
view, add its line (and its builder).
"""

import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: The first digit of each class among the test digits: the posterior view's choices.
N_CLASSES = 10


@dataclass(frozen=True)
class AppView:
    key: str
    title: str
    caption: str
    build: Callable  # () -> SliderView


def model_cache():
    """The model cache, whose messages (a model is being trained) go at once to the terminal of ``make app``.

    They are written to the kernel's own stderr, which the kernel shares with the
    server; the page shows a progress bar per model as it trains.
    """
    from vaelib.machinery.cache import ModelCache

    return ModelCache(log=lambda line: print(line, file=sys.__stderr__, flush=True))


def beta_view():
    """Notebook 08's beta slider over the beta sweep (20 latents, Bernoulli decoder)."""
    from vaelib.teaching import tradeoff
    from vaelib.teaching.views import tradeoff_explorer

    return tradeoff_explorer.make_beta_view(tradeoff.beta_sweep(tradeoff.BETAS, cache=model_cache()), beta=1.0)


def sigma_view():
    """Notebook 08's sigma slider over the sigma sweep (Gaussian decoders of fixed sigma, grey digits)."""
    from vaelib.teaching import tradeoff
    from vaelib.teaching.views import tradeoff_explorer

    return tradeoff_explorer.make_sigma_view(tradeoff.sigma_sweep(tradeoff.SIGMAS, cache=model_cache()), sigma=0.25)


def posterior_view():
    """Notebook 09's digit slider: the true posterior of the 2-D model and three Gaussians fitted to it."""
    from vaelib.teaching.digit_models import DIGITS_2D, binarized_digits, trained
    from vaelib.teaching.inference_gap import DIGITS_GRID_RADIUS, DIGITS_GRID_STEP, grid_posteriors, inference_gaps
    from vaelib.teaching.views.posterior_view import make_posterior_view

    model = trained(DIGITS_2D, cache=model_cache(), label="784-400-2 Bernoulli VAE")
    data = binarized_digits()
    shown = [int(np.flatnonzero(data.test_labels == c)[0]) for c in range(N_CLASSES)]
    x, config = data.test[shown], DIGITS_2D.config
    posteriors = grid_posteriors(model.params, x, config, radius=DIGITS_GRID_RADIUS, step=DIGITS_GRID_STEP)
    gaps = inference_gaps(model.params, x, config, posteriors=posteriors)
    names = [f"test digit {n}, a {data.test_labels[n]}" for n in shown]
    return make_posterior_view(model.params, x, config, posteriors, gaps, list(range(len(shown))), names=names,
                               labels=shown)


VIEWS = [
    AppView("beta", "β: how much the KL costs",
            "Ten VAEs (784-400-20, Bernoulli decoder), each trained with another weight β on the KL. Left: "
            "every model's rate (KL) and distortion (reconstruction term); the ringed one is the model of this β, "
            "and the dashed line is its loss, which no other model beats. Right: the KL of each latent "
            "dimension. Below: test digits, their reconstructions and samples.",
            beta_view),
    AppView("sigma", "σ: the decoder's noise level acts as β",
            "Five VAEs with a Gaussian decoder of fixed σ on grey digits. The squared error and the KL trade "
            "off as they do under β = σ²: a large σ makes the KL dear, and the latents collapse.",
            sigma_view),
    AppView("posterior", "The true posterior of a digit, and the best Gaussians",
            "A VAE with two latents, whose posterior p(z|x) is computed exactly on a grid (black contours). "
            "Blue: the encoder's q(z|x); orange and green: the best diagonal and full-covariance Gaussians for "
            "this digit. The numbers: log p(x) and the three ELBOs, in nats.",
            posterior_view),
]


def show_all(views=None):
    """Build and display each view of ``views`` (default :data:`VIEWS`): a heading, its caption, sliders, figure.

    Returns
    -------
    dict of str -> SliderView
        By key, in display order.
    """
    from IPython.display import Markdown, display

    shown = {}
    for entry in VIEWS if views is None else views:
        view = entry.build()
        display(Markdown(f"## {entry.title}\n\n{entry.caption}"))
        # live widgets only (no precomputed frames); the figure in a widget, which Voila updates
        view.show(static=False, image_widget=True)
        shown[entry.key] = view
    return shown
