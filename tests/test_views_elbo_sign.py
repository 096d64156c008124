"""Tests for vaelib.teaching.views.elbo_sign: the terms it computes, the training it runs, the beta slider."""

import io
from dataclasses import replace

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.text import Text
from PIL import Image
from scipy.special import expit
from scipy.stats import bernoulli, norm

from vaelib.core.vae import VAEConfig, decode, encode, init_params
from vaelib.teaching import figures
from vaelib.teaching.views import elbo_sign
from vaelib.teaching.views.slider_view import compressed_png

D, L, B = 16, 2, 6


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = (rng.random((B, D)) < 0.4).astype(np.float64)
    config = VAEConfig(n_pixels=D, hidden=(16,), n_latent=L, activation="tanh", beta=2.0)
    return x, config


@pytest.fixture(scope="module")
def table(data):
    x, config = data
    return elbo_sign.trade_off_table([0.5, 1.0, 4.0], config, x, n_steps=300, lr=1e-2, seed=3, n_eval=200)


def terms_reference(params, x, eps, config):
    """Reconstruction and KL from scipy.stats: the Bernoulli log-pmf, and KL = -H[q] - E_q[log p(z)]."""
    mu, log_var = encode(params, x, config)
    std = np.exp(0.5 * log_var)
    z = mu + std * eps  # (S, B, L)
    logits = decode(params, z.reshape(-1, L), config).reshape(*eps.shape[:2], D)
    rec = -bernoulli.logpmf(x, expit(logits)).sum(-1).mean()
    kl = -norm.entropy(scale=std).sum(-1) + 0.5 * (np.log(2 * np.pi) + mu**2 + std**2).sum(-1)
    return rec, kl.mean()


def test_noise_averaged_terms_match_scipy_and_signs(data):
    x, config = data
    rng = np.random.default_rng(1)
    params = init_params(config, rng)
    eps = rng.standard_normal((50, B, L))
    t = elbo_sign.noise_averaged_terms(params, x, eps, config)
    rec, kl = terms_reference(params, x, eps, config)
    assert t["reconstruction"] == pytest.approx(rec, rel=1e-10)
    assert t["kl"] == pytest.approx(kl, rel=1e-10)
    assert t["beta_kl"] == pytest.approx(2.0 * kl, rel=1e-10)
    assert t["loss"] == pytest.approx(rec + 2.0 * kl, rel=1e-10)
    assert t["elbo"] == pytest.approx(-(rec + kl), rel=1e-10)
    assert t["reconstruction"] > 0 and t["kl"] >= 0 and t["elbo"] < 0


def test_loss_at_beta_one_is_minus_the_elbo_from_its_definition(data):
    """At beta = 1 the loss is -ELBO, with the ELBO from its definition E_q[log p(x, z) - log q(z|x)].

    The reference uses only scipy densities on the same z; it differs from vaelib's (closed-form KL)
    by the Monte Carlo error of E_q[log q(z|x) - log p(z)] as an estimate of the KL.
    """
    x, config = data
    config = replace(config, beta=1.0)
    rng = np.random.default_rng(2)
    params = init_params(config, rng)
    eps = rng.standard_normal((20_000, B, L))
    t = elbo_sign.noise_averaged_terms(params, x, eps, config)

    mu, log_var = encode(params, x, config)
    std = np.exp(0.5 * log_var)
    z = mu + std * eps  # (S, B, L)
    logits = decode(params, z.reshape(-1, L), config).reshape(*eps.shape[:2], D)
    log_px_z = bernoulli.logpmf(x, expit(logits)).sum(-1)  # (S, B)
    log_pz_minus_log_qz = norm.logpdf(z).sum(-1) - norm.logpdf(z, mu, std).sum(-1)  # (S, B)
    elbo_def = np.mean(log_px_z + log_pz_minus_log_qz)
    se = log_pz_minus_log_qz.mean(axis=1).std(ddof=1) / np.sqrt(len(eps))  # nats, of the batch mean
    assert t["loss"] == pytest.approx(-elbo_def, abs=5 * se)
    assert t["elbo"] == pytest.approx(elbo_def, abs=5 * se)
    # the test has the power to see a wrong sign on the KL, which would move the loss by 2 KL
    assert 2 * t["kl"] > 20 * se


def test_train_vae_is_deterministic_and_lowers_the_loss(data):
    x, config = data
    p1, h1 = elbo_sign.train_vae(config, x, n_steps=200, seed=5)
    p2, h2 = elbo_sign.train_vae(config, x, n_steps=200, seed=5)
    assert h1.shape == (200, 2)
    assert np.array_equal(h1, h2) and all(np.array_equal(p1[k], p2[k]) for k in p1)
    loss = h1[:, 0] + config.beta * h1[:, 1]
    assert loss[-50:].mean() < loss[:50].mean() - 1.0  # nats; the batch is tiny, so it falls fast
    assert h1[0, 1] < h1[-50:, 1].mean()  # and the KL is not driven to 0: it grows from the start


def test_trade_off_table_rows_equal_separate_training(data, table):
    x, config = data
    cfg = replace(config, beta=1.0)
    params, _ = elbo_sign.train_vae(cfg, x, n_steps=300, lr=1e-2, seed=3)
    eps = np.random.default_rng(4).standard_normal((200, B, L))  # the table's evaluation noise (seed + 1)
    rec, kl = terms_reference(params, x, eps, cfg)
    assert table["beta"].tolist() == [0.5, 1.0, 4.0]
    assert table["reconstruction"][1] == pytest.approx(rec, rel=1e-10)
    assert table["kl"][1] == pytest.approx(kl, rel=1e-10)
    # a larger KL weight buys a smaller KL with a worse reconstruction
    assert table["kl"][2] < table["kl"][0]
    assert table["reconstruction"][2] > table["reconstruction"][0]


def test_slider_moves_bars_marker_and_readout(table):
    view = elbo_sign.make_elbo_sign_view(table, beta=0.5)
    ax_bar, ax_curve = view.fig.axes
    bars = ax_bar.patches
    marker, chosen = ax_curve.lines[2:4]

    def check(i):
        beta, rec, kl = table["beta"][i], table["reconstruction"][i], table["kl"][i]
        expected = [rec, kl, beta * kl, rec + beta * kl]
        np.testing.assert_allclose([b.get_height() for b in bars], expected, rtol=1e-12)
        np.testing.assert_allclose(marker.get_xdata(), [beta, beta])
        np.testing.assert_allclose(marker.get_ydata(), [rec, kl])
        assert f"loss = rec + β * KL             = {rec + beta * kl:.3f}" in view.readout
        assert f"ELBO = -(rec + KL)              = {-(rec + kl):.3f}" in view.readout
        assert f"β = {beta:g}\n" in view.readout
        assert ax_bar.get_title() == f"the model trained at $\\beta$ = {beta:g}"
        np.testing.assert_allclose(chosen.get_xdata(), [beta, beta])

    check(0)
    heights_before = [b.get_height() for b in bars]
    view.sliders["beta"].value = 4.0
    check(2)
    assert [b.get_height() for b in bars] != heights_before
    view.sliders["beta"].value = 1.0
    check(1)


def all_text(fig):
    """Every visible text of a figure: titles, axis labels, tick labels, legends."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_figure_is_drawn_for_the_column_whatever_the_callers_settings(table):
    # small defaults, as a notebook's old rcParams might set them: the view keeps its own style
    with matplotlib.rc_context({"font.size": 6, "xtick.labelsize": 6, "figure.dpi": 72, "legend.fontsize": 6}):
        view = elbo_sign.make_elbo_sign_view(table)
    width, _ = view.fig.get_size_inches()
    assert width <= figures.WIDTH and view.fig.dpi == figures.DPI
    texts = all_text(view.fig)
    assert len(texts) > 15  # titles, labels, ticks, the legend
    assert min(t.get_fontsize() for t in texts) >= figures.SMALLEST_POINTS
    # 10-pt text shows at 12 px or more in the site's column, by hand: 10 / 72 * dpi * min(1, 688 / width px)
    assert 10 / 72 * view.fig.dpi * min(1, 688 / (width * view.fig.dpi)) >= 12
    png = Image.open(io.BytesIO(compressed_png(view.fig)))
    assert png.size[0] == round(width * figures.DPI)
    assert png.info["dpi"][0] == pytest.approx(figures.DPI, abs=0.01)  # stored as whole pixels per metre


def test_no_series_is_told_by_colour_alone(table):
    view = elbo_sign.make_elbo_sign_view(table)
    ax_bar, ax_curve = view.fig.axes
    rec, kl = ax_curve.lines[:2]
    # the two curves differ in dash and marker as well as colour, and the legend names both
    assert rec.get_linestyle() == "-" and kl.get_linestyle() == "--"
    assert rec.get_marker() != kl.get_marker()
    assert [t.get_text() for t in ax_curve.get_legend().get_texts()] == ["reconstruction", "KL"]
    # every bar is named by its tick label; beta * KL is the KL's colour, hatched
    assert [t.get_text() for t in ax_bar.get_xticklabels()] == list(elbo_sign.BAR_LABELS)
    assert [bool(b.get_hatch()) for b in ax_bar.patches] == [False, False, True, False]
    palette = {to_hex(c) for c in figures.PALETTE.values()} | {"#ffffff"}
    colours = [line.get_color() for line in ax_curve.lines[:2]] + [b.get_facecolor() for b in ax_bar.patches]
    assert {to_hex(c) for c in colours} <= palette


def test_alt_text_describes_the_figure_with_the_tables_numbers_and_names_the_setting(table):
    view = elbo_sign.make_elbo_sign_view(table, beta=1.0)
    words = view.alt_text()
    assert words.endswith("Setting shown: β = 1.")
    # the table's ends, formatted here: beta 0.5 -> 4, the KL falls and the reconstruction rises (checked above)
    for value in (table["kl"][0], table["kl"][-1], table["reconstruction"][0], table["reconstruction"][-1]):
        assert f"{value:.2f}" in words
    assert "KL falls from" in words and "reconstruction term rises from" in words
    assert "β from 0.5 to 4" in words and "the 3 models trained" in words
    view.sliders["beta"].value = 4.0
    assert view.alt_text().endswith("Setting shown: β = 4.")
    assert view.alt_text().removesuffix("Setting shown: β = 4.") == words.removesuffix("Setting shown: β = 1.")


def test_figure_words_say_which_way_each_term_moves():
    # a made-up table where the KL rises and the reconstruction falls: the words follow the numbers
    table = {"beta": np.array([1.0, 2.0]), "reconstruction": np.array([5.0, 3.0]), "kl": np.array([1.0, 2.0])}
    words = elbo_sign.figure_words(table)
    assert "KL rises from 1.00 to 2.00 nats" in words and "reconstruction term falls from 5.00 to 3.00;" in words
