"""The slider views the app serves (``make app``: Voila on ``app/explorer.ipynb``).

Each entry of :data:`VIEWS` is one view: a title, a caption, the words that
describe its figure (the image's alt text) unless the view carries its own (the
β, σ and posterior views do), and a function that builds it from trained models. Models
come from the model cache (:func:`vaelib.teaching.digit_models.trained`,
through the sweeps of :mod:`vaelib.teaching.tradeoff`); a missing model is
trained first, once however many pages ask for it (the cache's lock per model:
one kernel trains, the others wait and read it). The app serves the entries in order: to add a
view, add its line (and its builder).

:class:`ExplorerPage` is the page: a status panel (what is being trained, a
progress bar, roughly how long is left), then each view as soon as it is
built; the panel goes once every view is there.

How long the models train is read in one place, :func:`app_epochs`: the
numbers of notebooks 08 and 09, unless ``$VAELIB_APP_EPOCHS`` sets every
model's epochs (a quick configuration for testing the app; the page then
says that its models are not the notebooks').
"""

import html
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from vaelib.machinery.cache import ModelCache

#: The first digit of each class among the test digits: the posterior view's choices.
N_CLASSES = 10
#: Environment variable: epochs for every model of the app, instead of the notebooks' (a test configuration).
EPOCHS_ENV = "VAELIB_APP_EPOCHS"


def app_epochs(default):
    """Epochs for one of the app's models: ``default`` (the notebooks'), or ``$VAELIB_APP_EPOCHS`` when set."""
    setting = os.environ.get(EPOCHS_ENV, "").strip()
    return int(setting) if setting else default


@dataclass(frozen=True)
class AppView:
    key: str
    title: str
    caption: str
    alt: str | None  # what the figure shows, in words, for a view without its own (its image's alt text, with
    #                 the slider's setting added); None for a view that carries its own words (``SliderView.alt``)
    build: Callable  # () -> SliderView


#: The cache the views read their models from while a page builds them (see :class:`PageCache`).
_page_cache = None


def model_cache():
    """The model cache: the building page's (reporting to it), else one with a tqdm bar and printed messages."""
    return _page_cache or ModelCache()


def planned_epochs():
    """The epochs of every model the views ask for, in the order they ask for them."""
    from vaelib.teaching import tradeoff
    from vaelib.teaching.digit_models import DIGITS_2D

    return ([app_epochs(tradeoff.BETA_EPOCHS)] * len(tradeoff.BETAS)
            + [app_epochs(tradeoff.GREY_20D.epochs)] * len(tradeoff.SIGMAS)
            + [app_epochs(DIGITS_2D.epochs)])


def beta_view():
    """Notebook 08's beta slider over the beta sweep (20 latents, Bernoulli decoder)."""
    from vaelib.teaching import tradeoff
    from vaelib.teaching.views import tradeoff_explorer

    sweep = tradeoff.beta_sweep(tradeoff.BETAS, epochs=app_epochs(tradeoff.BETA_EPOCHS), cache=model_cache())
    return named(tradeoff_explorer.make_beta_view(sweep, beta=1.0), "β")


def sigma_view():
    """Notebook 08's sigma slider over the sigma sweep (Gaussian decoders of fixed sigma, grey digits)."""
    from vaelib.teaching import tradeoff
    from vaelib.teaching.views import tradeoff_explorer

    sweep = tradeoff.sigma_sweep(tradeoff.SIGMAS, epochs=app_epochs(tradeoff.GREY_20D.epochs),
                                 cache=model_cache())
    return named(tradeoff_explorer.make_sigma_view(sweep, sigma=0.25), "σ")


def posterior_view():
    """Notebook 09's digit slider: the true posterior of the 2-D model and three Gaussians fitted to it."""
    from dataclasses import replace

    from vaelib.teaching.digit_models import DIGITS_2D, binarized_digits, trained
    from vaelib.teaching.inference_gap import DIGITS_GRID_RADIUS, DIGITS_GRID_STEP, grid_posteriors, inference_gaps
    from vaelib.teaching.views.posterior_view import digit_name, make_posterior_view

    spec = replace(DIGITS_2D, epochs=app_epochs(DIGITS_2D.epochs))
    model = trained(spec, cache=model_cache(), label="784-400-2 Bernoulli VAE (two latents)")
    data = binarized_digits()
    shown = [int(np.flatnonzero(data.test_labels == c)[0]) for c in range(N_CLASSES)]
    x, config = data.test[shown], spec.config
    posteriors = grid_posteriors(model.params, x, config, radius=DIGITS_GRID_RADIUS, step=DIGITS_GRID_STEP)
    gaps = inference_gaps(model.params, x, config, posteriors=posteriors)
    names = [digit_name(n, data.test_labels[n]) for n in shown]
    view = make_posterior_view(model.params, x, config, posteriors, gaps, list(range(len(shown))), names=names,
                               labels=shown)
    return named(view, "test digit")  # its labels are the digits' indices among the test digits


def named(view, label):
    """``view`` with its one slider labelled ``label`` (the name a screen reader gives it too)."""
    (slider,) = view.sliders.values()
    slider.description = label
    return view


VIEWS = [
    AppView("beta", "β: how much the KL costs",
            "Ten VAEs (784-400-20, Bernoulli decoder), each trained with another weight β on the KL. Left: "
            "every model's rate (KL) and distortion (reconstruction term); the ringed one is the model of this β, "
            "and the dashed line is its loss, which no other model beats. Right: the KL of each latent "
            "dimension. Below: test digits, their reconstructions and samples.",
            None,  # the view's own words (tradeoff_explorer.figure_words)
            beta_view),
    AppView("sigma", "σ: the decoder's noise level acts as β",
            "Five VAEs with a Gaussian decoder of fixed σ on grey digits. The squared error and the KL trade "
            "off as they do under β = σ²: a large σ makes the KL dear, and the latents collapse.",
            None,  # the view's own words (tradeoff_explorer.figure_words)
            sigma_view),
    AppView("posterior", "The true posterior of a digit, and the best Gaussians",
            "A VAE with two latents, whose posterior p(z|x) is computed exactly on a grid (black contours). "
            "Blue, solid: the encoder's q(z|x); vermillion, dashed, and green, dotted: the best diagonal and "
            "full-covariance Gaussians for this digit. The numbers: log p(x) and the three ELBOs, in nats.",
            None,  # the view's own words (posterior_view.figure_words)
            posterior_view),
]


# ---------------------------------------------------------------- the page
class ExplorerPage:
    """The app's page: a status panel while models are trained or read, then the views, one by one.

    ``page.widget`` is displayed by one cell, ``page.build()`` run by the next
    (Voila's progressive rendering shows a displayed widget at once, and its
    changes as they happen, while the next cell runs).

    Parameters
    ----------
    views : list of AppView, optional
        Default :data:`VIEWS`.
    """

    def __init__(self, views=None):
        import ipywidgets as widgets

        self.entries = list(VIEWS if views is None else views)
        self.plan = planned_epochs()
        self.cache = PageCache(self)
        self.views = {}
        self.messages = []
        self.status = widgets.HTML()
        self.status.add_class("vaelib-app-status")
        self.widget = widgets.VBox([self.status])
        self.widget.add_class("vaelib-app")
        self._current = None  # (what is being built, index of the view)
        self._last_shown, self._last_model = 0.0, None
        self._last_point = self._pace = None  # for the estimate of the time left
        self._say("Starting: reading the trained models.")

    # ------------------------------------------------------------ progress
    def report(self, progress):
        """Receives the cache's :class:`~vaelib.machinery.cache.TrainingProgress` reports."""
        now, which_model = time.monotonic(), (progress.label, progress.waiting, progress.pid)
        if which_model == self._last_model and not progress.done and now - self._last_shown < 0.25:
            return  # at most four epoch updates a second
        self._last_shown, self._last_model = now, which_model
        k = self.cache.asked - 1  # this model's place among those the views ask for
        which = f"model {k + 1} of {len(self.plan)}" if 0 <= k < len(self.plan) else "a model"
        who = ("Another page is training " if progress.waiting else "Training ") + which
        lines = [f"{who}: {progress.label}, epoch {progress.epoch} of {progress.epochs}."]
        left = self._seconds_left(progress, k)
        if progress.waiting:
            lines.append("This page reads it when it is done.")
        if progress.done:
            lines = [f"{which.capitalize()} is trained: {progress.label}."]
        elif left is not None:
            lines.append(f"About {_duration(left)} left for all the models still to train.")
        self._say(" ".join(lines), progress.epoch, progress.epochs)

    def log(self, line):
        """Receives the cache's one-line messages; the latest few are shown under the progress bar."""
        self.messages = (self.messages + [line])[-3:]

    def _seconds_left(self, progress, k):
        """This model's epochs to go, and every later model's, at the pace of the latest epochs (an upper
        bound when later models turn out to be in the cache)."""
        if progress.epoch <= 0 or not 0 <= k < len(self.plan):
            return None
        point = (progress.label, progress.waiting, progress.epoch, progress.seconds)
        last, self._last_point = self._last_point, point
        if last is not None and last[:2] == point[:2] and point[2] > last[2]:
            pace = (point[3] - last[3]) / (point[2] - last[2])  # the first epoch also compiles: leave it out
            self._pace = pace if self._pace is None else 0.7 * self._pace + 0.3 * pace
        elif self._pace is None:
            self._pace = progress.seconds / progress.epoch
        later = sum(self.plan[k + 1:])
        return self._pace * (progress.epochs - progress.epoch + later)

    def _say(self, text, value=None, maximum=None):
        first_start = ("<p>The first start on a machine trains the models this page needs, once for every "
                       "visitor: later visits read them from the model cache.</p>") if maximum is not None else ""
        bar = "" if maximum is None else (
            f'<progress max="{maximum}" value="{value}" aria-label="epochs of this model">'
            f"{value} of {maximum}</progress>")
        quick = ""
        if os.environ.get(EPOCHS_ENV, "").strip():
            quick = (f"<p><strong>Test configuration</strong>: every model trains for "
                     f"{html.escape(os.environ[EPOCHS_ENV])} epochs ({EPOCHS_ENV}), not the notebooks' numbers."
                     "</p>")
        messages = "".join(f"<li>{html.escape(m)}</li>" for m in self.messages)
        self.status.value = (f'<div class="vaelib-app-status-box">{first_start}<p>{html.escape(text)}</p>{bar}'
                             f'{f"<ul>{messages}</ul>" if messages else ""}{quick}</div>')

    # ------------------------------------------------------------ building
    def build(self):
        """Build each view (training what is missing), add it to the page, then remove the status panel.

        Returns
        -------
        dict of str -> SliderView
            By key, in display order.
        """
        global _page_cache
        _page_cache = self.cache
        try:
            for i, entry in enumerate(self.entries):
                self._say(f"Building view {i + 1} of {len(self.entries)}: {entry.title}.")
                try:
                    view = entry.build()
                except Exception as error:
                    self._say(f"This view could not be built ({type(error).__name__}: {error}); the server's log "
                              "has the details.")
                    raise
                if getattr(view, "alt", None) is None:
                    view.alt = entry.alt
                self.views[entry.key] = view
                section = view_section(entry, view)
                self.widget.children = [*self.widget.children, section]
        finally:
            _page_cache = None
        self.widget.children = [c for c in self.widget.children if c is not self.status]
        return self.views


class PageCache(ModelCache):
    """The model cache as a page uses it: reports and messages go to the page, which it tells how many models
    the views have asked for so far."""

    def __init__(self, page):
        super().__init__(log=page.log, progress=page.report)
        self.asked = 0

    def fit(self, *args, **kwargs):
        self.asked += 1
        return super().fit(*args, **kwargs)


def view_section(entry, view):
    """One view on the page: its heading and caption, then its sliders, readout and figure."""
    import ipywidgets as widgets

    heading = widgets.HTML(f"<h2>{html.escape(entry.title)}</h2><p>{html.escape(entry.caption)}</p>")
    heading.add_class("vaelib-app-caption")
    section = widgets.VBox([heading, view.widget(image_widget=True)])
    section.add_class("vaelib-app-view")
    return section


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
