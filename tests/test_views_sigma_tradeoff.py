"""Tests for vaelib.teaching.views.sigma_tradeoff: the sweep's numbers, its determinism, the sigma slider."""

import re
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import norm

from vaelib.core.vae import VAEConfig, decode, encode
from vaelib.teaching.views import sigma_tradeoff
from figure_checks import assert_readable

SIDE = 4
D = SIDE * SIDE
SIGMAS = (0.1, 0.5, 2.0)
N_IMAGES = 3


@pytest.fixture(scope="module")
def data():
    """Grey 4x4 'images' in [0, 1]: a smooth blob at a random place, plus noise."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:SIDE, :SIDE]

    def images(n):
        centre = rng.uniform(0, SIDE - 1, size=(n, 2))
        blob = np.exp(-((rows - centre[:, :1, None]) ** 2 + (cols - centre[:, 1:, None]) ** 2) / 2)
        return np.clip(blob + 0.05 * rng.standard_normal(blob.shape), 0, 1).reshape(n, D).astype(np.float32)

    return SimpleNamespace(train=images(64), test=images(20), image_shape=(SIDE, SIDE))


def tiny_sweep(data, seed=3):
    return sigma_tradeoff.train_sigma_sweep(data, SIGMAS, hidden=(8,), n_latent=2, epochs=1, lr=1e-2,
                                            batch_size=16, seed=seed, n_images=N_IMAGES)


@pytest.fixture(scope="module")
def table(data):
    return tiny_sweep(data)


def reference_terms(params, x, eps, sigma):
    """Mean squared error, -log p(x|z) from scipy.stats.norm, KL as -H[q] - E_q[log p(z)], in float64."""
    config = VAEConfig(n_pixels=D, hidden=(8,), n_latent=2, likelihood="gaussian", sigma=sigma)
    params = {k: v.astype(np.float64) for k, v in params.items()}
    x = x.astype(np.float64)
    mu, log_var = encode(params, x, config)
    std = np.exp(0.5 * log_var)
    mean = decode(params, mu + std * eps.astype(np.float64), config)
    squared_error = np.sum((x - mean) ** 2, axis=1)
    rec = -norm.logpdf(x, mean, sigma).sum(axis=1)
    kl = -norm.entropy(scale=std).sum(axis=1) + 0.5 * (np.log(2 * np.pi) + mu**2 + std**2).sum(axis=1)
    return squared_error.mean(), rec.mean(), kl.mean(), decode(params, mu, config)


def parse_readout(text):
    """sigma, then the four numbers after '=': KL, squared error, -log p(x|z), ELBO."""
    first, *rest = text.splitlines()
    sigma = float(re.match(r"sigma = (\S+)", first).group(1))
    return sigma, [float(re.search(r"=\s+(-?\d+\.\d+)", line).group(1)) for line in rest]


def test_table_shapes(table, data):
    n = len(SIGMAS)
    for key in ("sigma", "kl", "squared_error", "reconstruction", "elbo", "seconds"):
        assert table[key].shape == (n,)
    assert table["reconstructions"].shape == (n, N_IMAGES, D)
    assert table["originals"].shape == (N_IMAGES, D)
    assert np.array_equal(table["originals"], data.test[:N_IMAGES])
    assert table["eps"].shape == (len(data.test), 2)
    assert [c.sigma for c in table["configs"]] == list(SIGMAS)
    assert all(c.likelihood == "gaussian" and not c.learn_sigma and c.beta == 1 for c in table["configs"])


@pytest.mark.parametrize("i", range(len(SIGMAS)))
def test_sweep_numbers_match_scipy(table, data, i):
    sigma = SIGMAS[i]
    squared_error, rec, kl, recon = reference_terms(table["params"][i], data.test, table["eps"], sigma)
    # the networks run in float32: relative tolerance 1e-5
    assert table["squared_error"][i] == pytest.approx(squared_error, rel=1e-5)
    assert table["reconstruction"][i] == pytest.approx(rec, rel=1e-5, abs=1e-4)
    assert table["kl"][i] == pytest.approx(kl, rel=1e-5, abs=1e-6)
    assert table["elbo"][i] == pytest.approx(-(rec + kl), rel=1e-5, abs=1e-4)
    np.testing.assert_allclose(table["reconstructions"][i], recon[:N_IMAGES], rtol=1e-5, atol=1e-6)
    # the Gaussian reconstruction term is an affine function of the squared error (float64 identity)
    affine = table["squared_error"][i] / (2 * sigma**2) + D * np.log(sigma) + 0.5 * D * np.log(2 * np.pi)
    assert table["reconstruction"][i] == pytest.approx(affine, rel=1e-6, abs=1e-6)


def test_sweep_is_deterministic_and_trains_from_one_start(data, table):
    again = tiny_sweep(data)
    for key in ("kl", "squared_error", "reconstruction", "reconstructions", "eps"):
        assert np.array_equal(again[key], table[key])
    other_seed = tiny_sweep(data, seed=4)
    assert not np.array_equal(other_seed["kl"], table["kl"])


def test_rejects_bad_sigmas_and_learned_sigma(data):
    with pytest.raises(ValueError, match="increasing"):
        sigma_tradeoff.train_sigma_sweep(data, (0.5, 0.1))
    config = VAEConfig(n_pixels=D, hidden=(8,), n_latent=2, likelihood="gaussian", learn_sigma=True)
    with pytest.raises(ValueError, match="fixed sigma"):
        sigma_tradeoff.gaussian_vae_terms({}, data.test, np.zeros((20, 2)), config)


@pytest.fixture
def view(table):
    return sigma_tradeoff.make_sigma_tradeoff_view(table)


@pytest.mark.parametrize("i", [2, 0, 1])
def test_artists_and_readout_follow_the_slider(view, table, i):
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
    assert np.array_equal(kl_line.get_ydata(), table["kl"]) and np.array_equal(rec_line.get_ydata(), table["reconstruction"])
    assert list(kl_marker.get_xdata()) == [SIGMAS[i]] and list(kl_marker.get_ydata()) == [table["kl"][i]]
    assert list(rec_marker.get_xdata()) == [SIGMAS[i]]
    assert list(rec_marker.get_ydata()) == [table["reconstruction"][i]]

    sigma_r, (kl_r, se_r, rec_r, elbo_r) = parse_readout(view.readout)
    assert sigma_r == SIGMAS[i]
    # printed to three decimals: within half a unit of the last place
    for printed, want in [(kl_r, table["kl"][i]), (se_r, table["squared_error"][i]),
                          (rec_r, table["reconstruction"][i]), (elbo_r, -(table["reconstruction"][i] + table["kl"][i]))]:
        assert printed == pytest.approx(want, abs=5.01e-4)


def test_updates_in_place(view):
    """A slider move changes the existing artists' data; no artist is added or removed."""
    ax_img, ax_kl, ax_rec = view.fig.axes
    artists = (list(ax_img.images), list(ax_kl.lines), list(ax_rec.lines))
    image_before = np.array(ax_img.images[0].get_array()).copy()
    view.sliders["sigma"].value = 2.0
    assert (list(ax_img.images), list(ax_kl.lines), list(ax_rec.lines)) == artists
    assert not np.array_equal(np.array(ax_img.images[0].get_array()), image_before)


def test_every_point_is_inside_its_axes(view, table):
    """Both curves, negative and huge values alike, lie within the plotted area (no point off the axis)."""
    _, ax_kl, ax_rec = view.fig.axes
    for ax, values in ((ax_kl, table["kl"]), (ax_rec, table["reconstruction"])):
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


def test_figure_is_readable(view):
    assert_readable(view.fig, min_texts=10)


def test_sweep_trains_on_the_given_blas_threads(data, monkeypatch):
    """One BLAS thread unless told otherwise (the same numbers on every run); ``threads`` reaches fit."""
    seen = []
    real_fit = sigma_tradeoff.fit

    def recording_fit(*args, **kwargs):
        seen.append(kwargs["threads"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(sigma_tradeoff, "fit", recording_fit)
    tiny_sweep(data)
    assert seen == [1] * len(SIGMAS)
    seen.clear()
    sigma_tradeoff.train_sigma_sweep(data, SIGMAS[:1], hidden=(8,), n_latent=2, epochs=1, batch_size=16,
                                     threads=2)
    assert seen == [2]
