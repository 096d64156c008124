"""Tests for the ELBO-gap slider view: artists, readout and words against independent formulas, the figure rules."""

import io
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image
from scipy import stats

from figure_checks import assert_drawn_for_the_column
from vaelib.teaching import figures
from vaelib.teaching.views.elbo_gap import halfway_grid, make_elbo_gap_view
from vaelib.teaching.views.slider_view import FRAME_DPI, compressed_png

X = np.array([1.2, 0.3, -0.4])
W = np.array([[1.0], [0.5], [-0.3]])
B = np.array([0.1, 0.0, -0.2])
SIGMA = 0.7


def reference_terms(mu, log_var):
    """Posterior, ELBO, KL and log p(x) for the one-latent model, written out by hand."""
    w, var_q = W[:, 0], np.exp(log_var)
    post_var = 1.0 / (1.0 + w @ w / SIGMA**2)
    post_mean = post_var * w @ (X - B) / SIGMA**2
    # ELBO = E_q[log p(x|z)] + E_q[log p(z)] + entropy of q
    resid = X - w * mu - B
    expected_log_lik = np.sum(-0.5 * np.log(2 * np.pi * SIGMA**2) - (resid**2 + w**2 * var_q) / (2 * SIGMA**2))
    expected_log_prior = -0.5 * np.log(2 * np.pi) - 0.5 * (mu**2 + var_q)
    entropy = 0.5 * np.log(2 * np.pi * np.e * var_q)
    elbo = expected_log_lik + expected_log_prior + entropy
    kl = 0.5 * (np.log(post_var / var_q) + (var_q + (mu - post_mean) ** 2) / post_var - 1)
    log_evidence = stats.multivariate_normal(B, np.outer(w, w) + SIGMA**2 * np.eye(3)).logpdf(X)
    return post_mean, post_var, elbo, kl, log_evidence


POST_MEAN, POST_VAR, *_ = reference_terms(0.0, 0.0)


def parse_readout(text):
    """The four numbers of the readout, in order: ELBO, KL, ELBO + KL, log p(x)."""
    return [float(v) for v in re.findall(r"=\s*(-?\d+\.\d+) nats", text)]


@pytest.fixture
def view():
    return make_elbo_gap_view(X, W, B, SIGMA)


def set_setting(view, i, j):
    """Move the sliders to the ``i``-th mean and the ``j``-th log-variance; return those values."""
    mu = view.sliders["mu"].options[i][1]
    log_var = view.sliders["log_var"].options[j][1]
    view.sliders["mu"].value, view.sliders["log_var"].value = mu, log_var
    return mu, log_var


def test_the_sliders_step_by_halves_from_the_prior_through_the_posterior(view):
    """Five means and five log-variances: the start (the prior's 0), half way, the posterior's, and two half-steps
    beyond; 25 settings, all precomputable."""
    mus = [value for _, value in view.sliders["mu"].options]
    log_vars = [value for _, value in view.sliders["log_var"].options]
    np.testing.assert_allclose(mus, [0, POST_MEAN / 2, POST_MEAN, 1.5 * POST_MEAN, 2 * POST_MEAN], rtol=1e-12)
    log_post = np.log(POST_VAR)  # negative: the posterior is narrower than the prior, so the grid is 2 log S ... 0
    np.testing.assert_allclose(log_vars, [2 * log_post, 1.5 * log_post, log_post, log_post / 2, 0], rtol=1e-12)
    assert view.values == {"mu": 0.0, "log_var": 0.0}
    assert view.n_settings == 25 and view.precomputable
    labels = [label for label, _ in view.sliders["mu"].options]
    assert labels == [f"{v:.2f}" for v in mus] and labels[0] == "0.00"
    assert [label for label, _ in view.sliders["log_var"].options][-1] == "0.00"  # not "-0.00"


def test_halfway_grid_by_hand():
    assert halfway_grid(1.0, 2.0, range(-1, 4)) == (0.5, 1.0, 1.5, 2.0, 2.5)
    assert halfway_grid(0.0, -1.0, range(0, 3)) == (-1.0, -0.5, 0.0)  # increasing, whichever way the target lies
    assert str(halfway_grid(0.0, -1.0, range(0, 3))[-1]) == "0.0"
    with pytest.raises(ValueError, match="too close"):
        halfway_grid(0.3, 0.305, range(3))


@pytest.mark.parametrize("i, j", [(0, 4), (2, 2), (4, 0), (1, 3), (3, 1)])
def test_artists_follow_the_sliders(view, i, j):
    ax_z, ax_bar = view.fig.axes
    post_line, q_line = ax_z.lines
    elbo_bar, kl_bar, evidence_bar = ax_bar.patches[:3]
    mu, log_var = set_setting(view, i, j)
    post_mean, post_var, elbo, kl, log_evidence = reference_terms(mu, log_var)
    z = q_line.get_xdata()
    np.testing.assert_allclose(q_line.get_ydata(), stats.norm.pdf(z, mu, np.exp(0.5 * log_var)), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(post_line.get_ydata(), stats.norm.pdf(z, post_mean, np.sqrt(post_var)), rtol=1e-12)
    assert elbo_bar.get_y() == 0 and elbo_bar.get_height() == pytest.approx(elbo, abs=1e-10)
    assert kl_bar.get_y() == pytest.approx(elbo, abs=1e-10)
    assert kl_bar.get_height() == pytest.approx(kl, abs=1e-10)
    assert evidence_bar.get_height() == pytest.approx(log_evidence, abs=1e-10)
    assert kl_bar.get_y() + kl_bar.get_height() == pytest.approx(log_evidence, abs=1e-10)
    assert ax_bar.lines[0].get_ydata()[0] == pytest.approx(log_evidence, abs=1e-10)


@pytest.mark.parametrize("i, j", [(0, 4), (4, 0), (1, 2)])
def test_readout_numbers_satisfy_the_identity(view, i, j):
    mu, log_var = set_setting(view, i, j)
    elbo_r, kl_r, sum_r, log_evidence_r = parse_readout(view.readout)
    _, _, elbo, kl, log_evidence = reference_terms(mu, log_var)
    # Printed to four decimals: each number within half a unit of the last place.
    for printed, want in [(elbo_r, elbo), (kl_r, kl), (sum_r, elbo + kl), (log_evidence_r, log_evidence)]:
        assert printed == pytest.approx(want, abs=5.01e-5)
    assert abs(elbo_r + kl_r - log_evidence_r) <= 1.51e-4
    assert sum_r == log_evidence_r
    assert kl_r >= 0 and elbo_r <= log_evidence_r


def test_the_gap_closes_exactly_at_the_posterior_and_at_no_other_setting(view):
    kls = {}
    for values in view.settings():
        *_, kl = reference_terms(values["mu"], values["log_var"])[:4]
        kls[values["mu"], values["log_var"]] = kl
    at_posterior = [key for key, kl in kls.items() if kl < 1e-12]
    assert len(at_posterior) == 1
    assert at_posterior[0] == pytest.approx((POST_MEAN, np.log(POST_VAR)), abs=1e-12)
    assert min(kl for key, kl in kls.items() if key != at_posterior[0]) > 0.05
    set_setting(view, 2, 2)
    assert parse_readout(view.readout)[1] == 0.0


def test_the_axes_hold_every_setting_and_never_rescale(view):
    ax_z, ax_bar = view.fig.axes
    limits = ax_z.get_ylim(), ax_bar.get_ylim(), ax_z.get_xlim()
    for i in range(5):
        for j in range(5):
            mu, log_var = set_setting(view, i, j)
            assert (ax_z.get_ylim(), ax_bar.get_ylim(), ax_z.get_xlim()) == limits
            _, _, elbo, _, log_evidence = reference_terms(mu, log_var)
            assert ax_z.lines[1].get_ydata().max() < limits[0][1]  # q's peak
            assert limits[1][0] < min(elbo, 0.0) and max(log_evidence, 0.0) < limits[1][1]
            # q has almost all its mass on the drawn z axis
            assert stats.norm.cdf(limits[2][1], mu, np.exp(0.5 * log_var)) - \
                stats.norm.cdf(limits[2][0], mu, np.exp(0.5 * log_var)) > 0.998
    assert ax_z.lines[0].get_ydata().max() < limits[0][1]


def test_updates_in_place(view):
    """A slider move changes the existing artists' data; no artist is added or removed."""
    ax_z, ax_bar = view.fig.axes
    artists = (list(ax_z.lines), list(ax_bar.patches), list(ax_bar.lines))
    q_before = ax_z.lines[1].get_ydata().copy()
    set_setting(view, 3, 1)
    assert (list(ax_z.lines), list(ax_bar.patches), list(ax_bar.lines)) == artists
    assert not np.array_equal(ax_z.lines[1].get_ydata(), q_before)


def test_rejects_more_than_one_latent():
    with pytest.raises(ValueError, match="shape"):
        make_elbo_gap_view(X, np.ones((3, 2)), B, SIGMA)


def test_rejects_a_start_at_the_posterior():
    with pytest.raises(ValueError, match="too close"):
        make_elbo_gap_view(X, W, B, SIGMA, mu=POST_MEAN)


def test_figure_is_drawn_for_the_column_whatever_the_callers_settings():
    # small defaults, as a notebook's old rcParams might set them: the view keeps its own style
    with matplotlib.rc_context({"font.size": 6, "xtick.labelsize": 6, "figure.dpi": 72, "legend.fontsize": 6}):
        view = make_elbo_gap_view(X, W, B, SIGMA)
    assert_drawn_for_the_column(view.fig, min_texts=12)
    width, height = view.fig.get_size_inches()
    assert figures.text_px(figures.SMALLEST_POINTS, width, FRAME_DPI) >= 12
    png = Image.open(io.BytesIO(compressed_png(view.fig)))
    assert png.size == (round(width * FRAME_DPI), round(height * FRAME_DPI))
    assert png.info["dpi"][0] == pytest.approx(FRAME_DPI, abs=0.01)


def test_nothing_is_told_by_colour_alone(view):
    """The two densities differ in dash as well as colour and the legend names both; each bar is named by its
    tick label, the KL's hatched; every colour is Okabe and Ito's (or white)."""
    ax_z, ax_bar = view.fig.axes
    post_line, q_line = ax_z.lines[:2]
    assert post_line.get_color() != q_line.get_color()
    assert post_line.get_linestyle() == "-" and q_line.get_linestyle() == "--"
    assert [t.get_text() for t in ax_z.get_legend().get_texts()] == [r"true posterior $p(z\mid x)$", "$q(z)$"]
    assert [t.get_text() for t in ax_bar.get_xticklabels()] == ["ELBO", "+ KL", r"$\log p(x)$"]
    assert [bool(p.get_hatch()) for p in ax_bar.patches[:3]] == [False, True, False]
    palette = {to_hex(c) for c in figures.PALETTE.values()} | {"#ffffff"}
    colours = [post_line.get_color(), q_line.get_color()] + [p.get_facecolor() for p in ax_bar.patches[:3]]
    assert {to_hex(c) for c in colours} <= palette


def test_the_words_are_true_at_every_setting_and_name_it(view):
    """One description for all 25 settings (a page may show the starting words beside any frame), each number in it
    from the hand-written reference; the setting shown is named after it, so every frame's words differ."""
    settings = view.settings()
    words = view.alt
    assert isinstance(words, str)
    mu_label = {v: k for k, v in view.sliders["mu"].options}
    log_var_label = {v: k for k, v in view.sliders["log_var"].options}
    texts = [view.alt_text(values) for values in settings]
    assert len(set(texts)) == 25
    for values, text in zip(settings, texts):
        assert text == f"{words} Setting shown: q's mean μ = {mu_label[values['mu']]}, " \
                       f"q's log-variance = {log_var_label[values['log_var']]}."
    reference = [reference_terms(v["mu"], v["log_var"]) for v in settings]
    elbos, kls = [r[2] for r in reference], [r[3] for r in reference]
    log_evidence = reference[0][4]
    off_posterior = [kl for kl in kls if kl > 1e-12]
    assert len(off_posterior) == 24
    sds = np.exp(0.5 * np.array(list(log_var_label)))
    for phrase in [
        f"mean {POST_MEAN:.2f} and standard deviation {np.sqrt(POST_VAR):.2f}",
        f"means 0.00 to {2 * POST_MEAN:.2f}", f"log-variances {2 * np.log(POST_VAR):.2f} to 0.00",
        f"standard deviations {sds.min():.2f} to {sds.max():.2f}",
        f"({min(elbos):.2f} to {max(elbos):.2f} over the settings)",
        f"up to log p(x) = {log_evidence:.2f}",
        f"no height only at mean {POST_MEAN:.2f} and log-variance {np.log(POST_VAR):.2f}",
        f"at every other setting the KL is {min(off_posterior):.2f} to {max(off_posterior):.2f} nats",
        "solid black curve", "dashed blue curve", "hatched vermillion bar", "in nats",
    ]:
        assert phrase in words, phrase
    low, high = view.fig.axes[0].get_xlim()
    assert f"against z from {low:g} to {high:g}" in words


def test_a_slider_move_renders_the_whole_figure_by_redrawing_only_what_moves(view):
    """The view names its moving artists (q's curve, the two moving bars, the lines over them) and keeps its layout:
    the PNG a move renders over the kept background is the figure a full draw gives, to a few pixels of
    anti-aliasing."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    from vaelib.teaching.views.slider_view import _png_bytes

    assert view.moving
    assert isinstance(view.fig.get_layout_engine(), (type(None), PlaceHolderLayoutEngine))  # no layout at a draw
    positions = [ax.get_position().bounds for ax in view.fig.axes]
    view.png()  # keeps the background
    for i, j in [(4, 0), (2, 2), (0, 4)]:
        set_setting(view, i, j)
        blitted, full = (np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=int)
                         for data in (view.png().data, _png_bytes(view.fig)))
        assert blitted.shape == full.shape
        assert (np.abs(blitted - full).sum(axis=-1) > 30).mean() < 1e-4  # under 24 of the 238,000 pixels
    assert [ax.get_position().bounds for ax in view.fig.axes] == positions
