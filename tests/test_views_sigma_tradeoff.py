"""Tests for vaelib.teaching.views.sigma_tradeoff: a sigma sweep's numbers against scipy, and the sigma slider."""

import io
import re

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image
from scipy.stats import norm

from vaelib.core.vae import VAEConfig, decode, encode
from vaelib.machinery.cache import ModelCache
from vaelib.teaching import figures, tradeoff
from vaelib.teaching.digit_figures import DIGIT_CMAP
from vaelib.teaching.digit_models import ModelSpec, grey_digits
from vaelib.teaching.views import sigma_tradeoff
from vaelib.teaching.views.slider_view import compressed_png
from figure_checks import assert_drawn_for_the_column

SIGMAS = (0.1, 0.5, 2.0)
N_IMAGES, N_DRAWS, SIDE = 3, 2, 28
#: One epoch of a tiny Gaussian VAE on the grey digits: a real sweep, trained in a second.
TINY_GREY = ModelSpec(VAEConfig(hidden=(8,), n_latent=2, likelihood="gaussian"), data="grey", epochs=1, lr=1e-2,
                      batch_size=64)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    cache = ModelCache(tmp_path_factory.mktemp("models"), log=lambda line: None)
    return tradeoff.sigma_sweep(SIGMAS, base=TINY_GREY, cache=cache, progress=False, n_draws=N_DRAWS,
                                n_images=N_IMAGES, n_samples=N_IMAGES)


@pytest.fixture(scope="module")
def terms(table):
    return sigma_tradeoff.sigma_terms(table)


def reference_terms(params, x, eps, sigma):
    """Means over images and draws of the squared error, -log p(x|z) from scipy.stats.norm, and the KL as
    -H[q] - E_q[log p(z)], in float64; and the decoder mean at z = mu(x)."""
    config = TINY_GREY.with_config(sigma=sigma).config
    params = {k: v.astype(np.float64) for k, v in params.items()}
    x = x.astype(np.float64)
    mu, log_var = encode(params, x, config)
    std = np.exp(0.5 * log_var)
    mean = decode(params, (mu + std * eps).reshape(-1, 2), config).reshape(len(eps), len(x), -1)   # (S, n, D)
    squared_error = np.sum((x - mean) ** 2, axis=-1).mean()
    rec = -norm.logpdf(x, mean, sigma).sum(axis=-1).mean()
    kl = (-norm.entropy(scale=std).sum(axis=1) + 0.5 * (np.log(2 * np.pi) + mu**2 + std**2).sum(axis=1)).mean()
    return squared_error, rec, kl, decode(params, mu, config)


@pytest.mark.parametrize("i", range(len(SIGMAS)))
def test_sweep_numbers_match_scipy(table, terms, i):
    """The view's numbers are those of the cached model, measured with the sweep's documented noise."""
    x = grey_digits().test
    eps = tradeoff.sweep_noise(N_DRAWS, len(x), 2, [0, 0]).astype(np.float64)
    squared_error, rec, kl, recon = reference_terms(table["params"][i], x, eps, SIGMAS[i])
    assert terms["sigma"][i] == SIGMAS[i]
    # the networks run in float32: relative tolerance 1e-5
    assert terms["squared_error"][i] == pytest.approx(squared_error, rel=1e-5)
    assert terms["reconstruction"][i] == pytest.approx(rec, rel=1e-5, abs=1e-3)
    assert terms["kl"][i] == pytest.approx(kl, rel=1e-5, abs=1e-6)
    assert terms["elbo"][i] == pytest.approx(-(rec + kl), rel=1e-5, abs=1e-3)
    np.testing.assert_allclose(table["reconstructions"][i], recon[:N_IMAGES], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sigma_tradeoff.reconstruct(table["params"][i], x[:N_IMAGES], table["specs"][i].config),
                               recon[:N_IMAGES], rtol=1e-5, atol=1e-6)
    # the Gaussian reconstruction term is an affine function of the squared error, draw by draw, so on the means too
    D = x.shape[1]
    affine = terms["squared_error"][i] / (2 * SIGMAS[i] ** 2) + D * np.log(SIGMAS[i]) + 0.5 * D * np.log(2 * np.pi)
    assert terms["reconstruction"][i] == pytest.approx(affine, rel=1e-6, abs=1e-3)


@pytest.mark.parametrize("change, message", [(dict(likelihood="bernoulli"), "fixed sigma"),
                                             (dict(learn_sigma=True), "fixed sigma"),
                                             (dict(beta=0.5), "beta = 1")])
def test_sigma_terms_refuses_other_models(change, message):
    specs = [TINY_GREY.with_config(sigma=s, **change) for s in SIGMAS]
    with pytest.raises(ValueError, match=message):
        sigma_tradeoff.sigma_terms({"specs": specs})


def test_sigma_terms_refuses_unsorted_sigmas():
    with pytest.raises(ValueError, match="increase"):
        sigma_tradeoff.sigma_terms({"specs": [TINY_GREY.with_config(sigma=s) for s in (0.5, 0.1)]})


def parse_readout(text):
    """sigma, then the four numbers after '=': KL, squared error, -log p(x|z), ELBO."""
    first, *rest = text.splitlines()
    sigma = float(re.match(r"σ = (\S+)", first).group(1))
    return sigma, [float(re.search(r"=\s+(-?\d+\.\d+)", line).group(1)) for line in rest]


@pytest.fixture
def view(table):
    return sigma_tradeoff.make_sigma_tradeoff_view(table)


@pytest.mark.parametrize("i", [2, 0, 1])
def test_artists_and_readout_follow_the_slider(view, table, terms, i):
    ax_img, ax_kl, ax_rec = view.fig.axes
    view.sliders["sigma"].value = SIGMAS[i]
    shown = np.asarray(ax_img.images[0].get_array())
    assert shown.shape == (2 * SIDE, N_IMAGES * SIDE)
    for j in range(N_IMAGES):  # image j occupies columns j*SIDE ... ; originals on top
        block = np.s_[:, j * SIDE : (j + 1) * SIDE]
        assert np.array_equal(shown[:SIDE][block], table["originals"][j].reshape(SIDE, SIDE))
        assert np.array_equal(shown[SIDE:][block], table["reconstructions"][i, j].reshape(SIDE, SIDE))
    kl_line, kl_marker = ax_kl.lines[:2]
    rec_line, rec_marker = ax_rec.lines[:2]
    assert np.array_equal(kl_line.get_ydata(), table["rate"]) and np.array_equal(rec_line.get_ydata(), table["distortion"])
    assert list(kl_marker.get_xdata()) == [SIGMAS[i]] and list(kl_marker.get_ydata()) == [table["rate"][i]]
    assert list(rec_marker.get_xdata()) == [SIGMAS[i]]
    assert list(rec_marker.get_ydata()) == [table["distortion"][i]]

    sigma_r, (kl_r, se_r, rec_r, elbo_r) = parse_readout(view.readout)
    assert sigma_r == SIGMAS[i]
    # printed to three decimals: within half a unit of the last place
    for printed, want in [(kl_r, table["rate"][i]), (se_r, 2 * table["half_squared_error"][i]),
                          (rec_r, table["distortion"][i]), (elbo_r, -(table["distortion"][i] + table["rate"][i]))]:
        assert printed == pytest.approx(want, abs=5.01e-4)


def test_digits_are_dark_on_light(view):
    """Ink (pixel value 1) is drawn dark on a white page (0), as in every figure of digits."""
    image = view.fig.axes[0].images[0]
    assert image.get_cmap() is DIGIT_CMAP and image.get_clim() == (0.0, 1.0)
    ink, page = (np.mean(image.get_cmap()(v)[:3]) for v in (1.0, 0.0))
    assert ink < 0.1 and page > 0.9


def test_updates_in_place(view):
    """A slider move changes the existing artists' data; no artist is added or removed."""
    ax_img, ax_kl, ax_rec = view.fig.axes
    artists = (list(ax_img.images), list(ax_kl.lines), list(ax_rec.lines))
    image_before = np.array(ax_img.images[0].get_array()).copy()
    view.sliders["sigma"].value = 2.0
    assert (list(ax_img.images), list(ax_kl.lines), list(ax_rec.lines)) == artists
    assert not np.array_equal(np.array(ax_img.images[0].get_array()), image_before)


def test_every_point_is_inside_its_axes(view, terms):
    """Both curves, negative and huge values alike, lie within the plotted area (no point off the axis)."""
    _, ax_kl, ax_rec = view.fig.axes
    for ax, values in ((ax_kl, terms["kl"]), (ax_rec, terms["reconstruction"])):
        lo, hi = ax.get_ylim()
        assert np.all((lo < values) & (values < hi))
    assert ax_rec.get_ylim()[0] < 0 < ax_rec.get_ylim()[1]  # the zero line is in view
    assert ax_rec.get_yscale() == "symlog"


def test_symlog_axis_shows_small_negative_next_to_huge_values():
    """The case of notebook 03: -log p(x|z) from -242 to +3145 nats; the axis holds 0 and every value."""
    values = np.array([3144.9, 114.4, -241.6, 81.7, 571.2, 1099.1])
    assert sigma_tradeoff.symlog_threshold(values) == 10.0  # a power of 10 at or below min |value| = 81.7
    lo, hi = sigma_tradeoff.padded_symlog_limits(values)
    assert lo == pytest.approx(-241.6 * 3) and hi == pytest.approx(3144.9 * 3)
    lo, hi = sigma_tradeoff.padded_symlog_limits(np.array([5.0, 20.0]))  # all positive: 0 stays in view
    assert lo == -1.0 and hi == pytest.approx(60.0)


def test_figure_is_drawn_for_the_column_whatever_the_callers_settings(table):
    # small defaults, as a notebook's old rcParams might set them: the view keeps its own style
    with matplotlib.rc_context({"font.size": 6, "xtick.labelsize": 6, "ytick.labelsize": 6, "figure.dpi": 72,
                                "axes.titlesize": 6}):
        view = sigma_tradeoff.make_sigma_tradeoff_view(table)
    assert_drawn_for_the_column(view.fig, min_texts=15)
    png = Image.open(io.BytesIO(compressed_png(view.fig)))
    assert png.size[0] <= round(figures.WIDTH * figures.DPI)  # the frame the site shows: 700 px at most
    assert png.info["dpi"][0] == pytest.approx(figures.DPI, abs=0.01)


def test_the_two_curves_differ_by_more_than_colour(view):
    _, ax_kl, ax_rec = view.fig.axes
    kl, rec = ax_kl.lines[0], ax_rec.lines[0]
    assert (kl.get_linestyle(), kl.get_marker()) == ("-", "o") and (rec.get_linestyle(), rec.get_marker()) == ("--", "s")
    assert to_hex(kl.get_color()) == figures.PALETTE["blue"].lower()
    assert to_hex(rec.get_color()) == figures.PALETTE["vermillion"].lower()
    # each panel names its curve: its title and its axis label
    assert ax_kl.get_title().startswith("KL term") and ax_rec.get_title().startswith("reconstruction term")


def test_the_slider_is_labelled_sigma_and_the_words_name_the_setting(view, terms):
    assert view.sliders["sigma"].description == "σ"
    words = view.alt_text()
    assert words.endswith("Setting shown: σ = 0.1.")
    # the sweep's numbers, formatted here: the KL at both ends, the reconstruction term at both ends and at its lowest
    kl, rec = terms["kl"], terms["reconstruction"]
    low = int(np.argmin(rec))
    for number in (kl[0], kl[-1], rec[0], rec[-1], rec[low]):
        assert f"{number:.2f}" in words
    assert f"lowest, {rec[low]:.2f} nats" in words and f"at σ = {SIGMAS[low]:g}" in words
    assert f"KL {'falls' if kl[-1] < kl[0] else 'rises'} from" in words and "from 0.1 to 2 on a log scale" in words
    assert f"Top, {N_IMAGES} test digits" in words
    # the same words at every setting, the setting aside: the site's player changes only the setting
    for sigma in SIGMAS:
        view.sliders["sigma"].value = sigma
        assert view.alt_text() == words.replace("σ = 0.1.", f"σ = {sigma:g}.")


def test_figure_words_follow_the_numbers():
    terms = {"sigma": np.array([0.1, 1.0]), "kl": np.array([1.0, 5.0]), "reconstruction": np.array([30.0, 20.0])}
    words = sigma_tradeoff.figure_words(terms, 4)
    assert "the KL rises from 1.00 to 5.00 nats" in words and "lowest, 20.00 nats at σ = 1" in words
    assert "below 0" not in words and "Top, 4 test digits" in words


def test_axis_labels_are_in_maths_type(view):
    _, ax_kl, ax_rec = view.fig.axes
    assert "$\\sigma$" in ax_kl.get_xlabel() and "$\\mathrm{KL}" in ax_kl.get_ylabel()
    assert ax_rec.get_ylabel().startswith("$-\\log p(x|z)$")
