"""The test-digit slider of notebook 09: artists against independent formulas, moved by the slider.

The model is linear-Gaussian on the grid (a decoder whose ReLU units are all on), so the true
posterior is a known Gaussian and its mass contours are known ellipses.
"""

import re

import numpy as np
import pytest

from vaelib.core.vae import decode, encode
from vaelib.teaching.exact_models import linear_gaussian_posterior
from vaelib.teaching.inference_gap import GaussianQ, grid_posteriors, inference_gaps
from vaelib.teaching.digit_figures import DIGIT_CMAP
from vaelib.teaching.views.posterior_view import (
    CONTOUR_MASSES,
    ELLIPSE_RADII,
    GAUSSIANS,
    contour_lines,
    density_levels,
    ellipse_points,
    make_posterior_view,
)

from figure_checks import assert_readable
from fixtures_models import linear_gaussian_vae

IMAGE_SHAPE = (2, 3)


@pytest.fixture(scope="module")
def model():
    config, params, x, W, b = linear_gaussian_vae()  # the decoder is affine on the grid, the posterior Gaussian
    posteriors = grid_posteriors(params, x, config, radius=2.0, step=0.02)
    gaps = inference_gaps(params, x, config, posteriors=posteriors)
    return config, params, x, W, b, posteriors, gaps


@pytest.fixture
def view(model):
    config, params, x, _, _, posteriors, gaps = model
    return make_posterior_view(params, x, config, posteriors, gaps, [0, 1, 2],
                               names=["first", "second", "third"], image_shape=IMAGE_SHAPE)


def mahalanobis(points, mean, cov):
    d = points - mean
    return np.sqrt(np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d))


def finite(line):
    data = np.asarray(line.get_xydata())
    return data[np.all(np.isfinite(data), axis=1)]


@pytest.mark.parametrize("digit", [1, 2, 0])
def test_ellipses_are_the_three_gaussians(view, model, digit):
    *_, gaps = model
    view.sliders["digit"].value = digit
    lines = view.fig.axes[0].lines
    qs = [gaps.encoder_q[digit], gaps.best_q["diagonal"][digit].q, gaps.best_q["full"][digit].q]
    for j, q in enumerate(qs):
        for k, radius in enumerate(ELLIPSE_RADII):
            points = finite(lines[3 + 2 * j + k])
            np.testing.assert_allclose(mahalanobis(points, q.mean, q.cov), radius, rtol=1e-10)


@pytest.mark.parametrize("digit", [2, 0])
def test_contours_enclose_the_stated_mass_of_the_true_posterior(view, model, digit):
    """For a Gaussian posterior the region holding mass a is the ellipse of radius sqrt(-2 log(1 - a))."""
    config, _, x, W, b, *_ = model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    view.sliders["digit"].value = digit
    for line, mass in zip(view.fig.axes[0].lines[:3], CONTOUR_MASSES):
        radius = mahalanobis(finite(line), means[digit], cov)
        assert len(radius) > 20
        np.testing.assert_allclose(radius, np.sqrt(-2 * np.log(1 - mass)), rtol=0.02)


def test_images_numbers_and_limits(view, model):
    config, params, x, *_, gaps = model
    view.sliders["digit"].value = 2
    ax_z, ax_x, ax_enc, ax_best, _ = view.fig.axes
    np.testing.assert_array_equal(ax_x.images[0].get_array(), x[2].reshape(IMAGE_SHAPE))
    mu, _ = encode(params, x[2:3], config)
    np.testing.assert_allclose(ax_enc.images[0].get_array(), decode(params, mu, config).reshape(IMAGE_SHAPE))
    best_mean = gaps.best_q["full"][2].q.mean[None, :]
    np.testing.assert_allclose(ax_best.images[0].get_array(), decode(params, best_mean, config).reshape(IMAGE_SHAPE))

    printed = [float(v) for v in re.findall(r"-?\d+\.\d+", view.readout)]
    expected = [gaps.log_px[2], gaps.elbo_encoder[2], gaps.elbo_best["diagonal"][2], gaps.elbo_best["full"][2],
                gaps.approximation_gap("diagonal")[2], gaps.approximation_gap("full")[2],
                gaps.amortisation_gap("diagonal")[2], gaps.amortisation_gap("full")[2]]
    np.testing.assert_allclose(printed[:4], expected[:4], atol=5.01e-3)  # two decimals
    np.testing.assert_allclose(printed[4:], expected[4:], atol=5.01e-4)  # three decimals
    assert view.fig.axes[4].texts[0].get_text() == view.readout

    (x0, x1), (y0, y1) = ax_z.get_xlim(), ax_z.get_ylim()
    assert x1 - x0 == pytest.approx(y1 - y0)
    for line in ax_z.lines:
        points = finite(line)
        assert np.all((points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0) & (points[:, 1] < y1))


def test_decoded_best_is_at_the_full_gaussians_mean(model):
    """On a Gaussian posterior both best Gaussians share one mean; move the diagonal one's, and the
    third image must still be the decoder at the full Gaussian's mean."""
    config, params, x, _, _, posteriors, gaps = model
    moved = {family: list(fits) for family, fits in gaps.best_q.items()}
    diagonal = moved["diagonal"][2].q
    moved["diagonal"][2] = moved["diagonal"][2]._replace(q=GaussianQ(diagonal.mean + 0.5, diagonal.chol))
    view = make_posterior_view(params, x, config, posteriors, gaps._replace(best_q=moved), [2],
                               image_shape=IMAGE_SHAPE)
    full_mean = gaps.best_q["full"][2].q.mean[None, :]
    np.testing.assert_allclose(view.fig.axes[3].images[0].get_array(),
                               decode(params, full_mean, config).reshape(IMAGE_SHAPE))
    assert not np.allclose(decode(params, full_mean, config), decode(params, diagonal.mean[None, :] + 0.5, config))


def test_slider_moves_the_same_artists(view):
    ax_z = view.fig.axes[0]
    artists = list(ax_z.lines) + [ax.images[0] for ax in view.fig.axes[1:4]]
    before = [np.array(a.get_xydata() if hasattr(a, "get_xydata") else a.get_array()) for a in artists]
    readout = view.readout
    view.sliders["digit"].value = 1
    after_artists = list(ax_z.lines) + [ax.images[0] for ax in view.fig.axes[1:4]]
    assert all(a is b for a, b in zip(artists, after_artists)) and len(artists) == len(after_artists)
    after = [np.array(a.get_xydata() if hasattr(a, "get_xydata") else a.get_array()) for a in artists]
    assert all(b.shape != a.shape or not np.allclose(b, a, equal_nan=True) for b, a in zip(before, after))
    assert view.readout != readout and "second" in view.readout


def test_slider_is_the_test_digit_labelled_by_its_number(model):
    config, params, x, _, _, posteriors, gaps = model
    default = make_posterior_view(params, x, config, posteriors, gaps, [2, 0], image_shape=IMAGE_SHAPE)
    assert default.sliders["digit"].description == "test digit"
    assert default.options() == {"digit": [("2", 0), ("0", 1)]}  # rows of the test set's first digits
    chosen = make_posterior_view(params, x, config, posteriors, gaps, [2, 0], labels=[417, 8],
                                 image_shape=IMAGE_SHAPE)  # x holds chosen test digits: 417 and 8
    assert chosen.options() == {"digit": [("417", 0), ("8", 1)]}
    assert chosen.readout.splitlines()[0] == "test digit 2"  # the default title follows the row
    for labels in ([1], [5, 5]):
        with pytest.raises(ValueError, match="one distinct label per index"):
            make_posterior_view(params, x, config, posteriors, gaps, [2, 0], labels=labels, image_shape=IMAGE_SHAPE)


def test_each_gaussian_has_its_own_colour_dash_and_legend_entry(view):
    """Nothing told by colour alone: the three Gaussians differ in dash style too, and the legend shows both."""
    ax_z = view.fig.axes[0]
    inner = [ax_z.lines[3 + 2 * j] for j in range(len(GAUSSIANS))]
    dashes = [line._unscaled_dash_pattern for line in inner]  # (offset, pattern); pattern None when solid
    colours = [line.get_color() for line in inner]
    assert len({str(d) for d in dashes}) == len(GAUSSIANS) and len(set(colours)) == len(GAUSSIANS)
    for j, line in enumerate(inner):  # the outer ellipse: the same colour and dashes, thinner
        outer = ax_z.lines[4 + 2 * j]
        assert outer.get_color() == line.get_color() and outer.get_linewidth() < line.get_linewidth()
        assert str(outer._unscaled_dash_pattern) == str(dashes[j])
    legend = {t.get_text(): h for t, h in zip(ax_z.get_legend().get_texts(), ax_z.get_legend().legend_handles)}
    for label, colour, _ in GAUSSIANS.values():
        handle = legend[label]
        assert handle.get_color() == colour
        assert str(handle._unscaled_dash_pattern) in {str(d) for d in dashes}
    assert len({str(legend[label]._unscaled_dash_pattern) for label, *_ in GAUSSIANS.values()}) == 3


def test_figure_is_readable(view):
    assert_readable(view.fig, min_texts=10)


def test_digits_are_drawn_dark_on_light_with_the_digit_colormap(view):
    for ax in view.fig.axes[1:4]:
        image = ax.images[0]
        assert image.get_cmap() is DIGIT_CMAP and image.get_clim() == (0.0, 1.0)
    white, black = DIGIT_CMAP(0.0), DIGIT_CMAP(1.0)  # a pixel that is off is paper, one that is on is ink
    assert min(white[:3]) > 0.99 and max(black[:3]) < 0.01


def test_density_levels_of_a_known_distribution():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    levels = density_levels(np.log(p), masses=(0.4, 0.5, 0.7, 0.95))
    np.testing.assert_allclose(np.exp(levels), [0.4, 0.3, 0.3, 0.1])


def test_contour_lines_separate_pieces_with_nan():
    axis = np.linspace(-3.0, 3.0, 61)
    z1, z2 = np.meshgrid(axis, axis, indexing="ij")
    two_bumps = np.logaddexp(-((z1 - 1.5) ** 2 + z2**2) / 0.1, -((z1 + 1.5) ** 2 + z2**2) / 0.1)
    line = contour_lines(axis, axis, two_bumps, -1.0)
    assert np.isnan(line).all(axis=1).sum() == 1  # two closed pieces
    pieces = np.split(line, np.flatnonzero(np.isnan(line[:, 0])))
    centres = sorted(np.nanmean(piece[:, 0]) for piece in pieces)
    np.testing.assert_allclose(centres, [-1.5, 1.5], atol=1e-3)
    radius = np.hypot(np.abs(line[:, 0]) - 1.5, line[:, 1])
    np.testing.assert_allclose(radius[np.isfinite(radius)], np.sqrt(0.1), rtol=2e-3)  # -r^2/0.1 = -1


def test_ellipse_points_are_closed_curves():
    q = GaussianQ(np.array([1.0, -2.0]), np.array([[0.3, 0.0], [0.2, 0.1]]))
    points = ellipse_points(q, 2.0)
    np.testing.assert_allclose(points[0], points[-1])
    np.testing.assert_allclose(mahalanobis(points, q.mean, q.cov), 2.0, rtol=1e-12)
