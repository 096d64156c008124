"""The test-digit slider of notebook 09: artists against independent formulas, moved by the slider.

The model is linear-Gaussian on the grid (a decoder whose ReLU units are all on), so the true
posterior is a known Gaussian and its mass contours are known ellipses.
"""

import io
import re

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image
from scipy import stats

from vaelib.core.vae import decode, encode
from vaelib.teaching.exact_models import linear_gaussian_posterior
from vaelib.teaching import figures
from vaelib.teaching.inference_gap import GaussianQ, grid_posteriors, inference_gaps, log_gaussian
from vaelib.teaching.digit_figures import DIGIT_CMAP
from vaelib.teaching.quadrature import latent_grid
from vaelib.teaching.views.posterior_view import (
    CONTOUR_MASSES,
    ELLIPSE_RADII,
    GAUSSIANS,
    contour_lines,
    density_levels,
    digit_name,
    digit_panels,
    ellipse_points,
    figure_words,
    make_posterior_view,
    mass_inside,
)
from vaelib.teaching.views.slider_view import compressed_png

from figure_checks import assert_drawn_for_the_column, visible_texts
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
    ax_z, ax_x, ax_enc, ax_best = view.fig.axes
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
    drawn = [t.get_text() for t in visible_texts(view.fig)]  # the numbers are the readout's, no longer drawn
    assert not any(f"{value:.2f}" in text for value in expected for text in drawn)

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
    colours = [to_hex(line.get_color()) for line in inner]
    assert len({str(d) for d in dashes}) == len(GAUSSIANS) and len(set(colours)) == len(GAUSSIANS)
    assert set(colours) <= {c.lower() for c in figures.PALETTE.values()}  # Okabe and Ito's colours
    for j, line in enumerate(inner):  # the outer ellipse: the same colour and dashes, thinner
        outer = ax_z.lines[4 + 2 * j]
        assert outer.get_color() == line.get_color() and outer.get_linewidth() < line.get_linewidth()
        assert str(outer._unscaled_dash_pattern) == str(dashes[j])
    (legend,) = view.fig.legends  # beside the plane, off the data
    assert ax_z.get_legend() is None
    entries = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert len(entries) == 1 + len(GAUSSIANS) and entries[r"true posterior $p(z\mid x)$"].get_color() == "k"
    for (label, colour, dash, words), line in zip(GAUSSIANS.values(), inner):
        handle = entries[label]
        assert handle.get_color() == colour == line.get_color()
        assert str(handle._unscaled_dash_pattern) == str(line._unscaled_dash_pattern)
        # the words name the colour and the dash: "solid", "dashed" or "dotted", as drawn
        drawn_dash = {"-": "solid", (0, (3, 1.8)): "dashed", (0, (1, 1.5)): "dotted"}[dash]
        assert drawn_dash in words and words.split()[-1] in {"blue", "vermillion", "green"}
    visible_texts(view.fig)  # drawn, so that the boxes below are where they show
    assert legend.get_window_extent().x0 > ax_z.get_window_extent().x1  # the legend lies right of the plane, not on it


def test_figure_is_drawn_for_the_column_whatever_the_callers_settings(model):
    config, params, x, _, _, posteriors, gaps = model
    # small defaults, as a notebook's old rcParams might set them: the view keeps its own style
    with matplotlib.rc_context({"font.size": 6, "xtick.labelsize": 6, "ytick.labelsize": 6, "figure.dpi": 72,
                                "axes.titlesize": 6, "legend.fontsize": 6}):
        view = make_posterior_view(params, x, config, posteriors, gaps, [0, 1, 2], names=["a", "b", "c"],
                                   image_shape=IMAGE_SHAPE)
    for digit in range(3):  # every setting: its limits and title change
        view.sliders["digit"].value = digit
        assert_drawn_for_the_column(view.fig, min_texts=15)
    png = Image.open(io.BytesIO(compressed_png(view.fig)))
    assert png.size[0] <= round(figures.WIDTH * figures.DPI)  # the frame the site shows: 700 px at most
    assert png.info["dpi"][0] == pytest.approx(figures.DPI, abs=0.01)


def test_axis_labels_and_captions_are_in_maths_type(view):
    ax_z, ax_x, *_ = view.fig.axes
    assert (ax_z.get_xlabel(), ax_z.get_ylabel()) == ("$z_1$", "$z_2$")
    assert ax_x.get_title() == "the digit $x$"


def test_figure_words_name_this_digits_numbers(view, model):
    """The view's words at each setting: the posterior's one mode, and the mass in each outer ellipse, which
    for the best full Gaussian (the posterior itself) is the chi-square value 1 - e^-2 = 86 %."""
    config, params, x, W, b, posteriors, gaps = model
    means, cov = linear_gaussian_posterior(x, W, b, config.sigma)
    outer = ELLIPSE_RADII[-1]
    assert f"{100 * stats.chi2.cdf(outer**2, df=2):.0f} %" == "86 %"
    panels = digit_panels(params, x, config, posteriors, gaps, [0, 1, 2])
    samples = np.random.default_rng(0).multivariate_normal(np.zeros(2), cov, size=200_000)
    words = []
    for digit, name in enumerate(["first", "second", "third"]):
        view.sliders["digit"].value = digit
        text = view.alt_text()
        words.append(text)
        assert text.startswith(f"Above, the latent plane of {name}: z1 across, z2 up.")
        assert text.endswith(f"Setting shown: test digit = {digit}.")
        assert "it has one peak (one mode)" in text  # a Gaussian posterior
        qs = {"encoder": gaps.encoder_q[digit], "diagonal": gaps.best_q["diagonal"][digit].q,
              "full": gaps.best_q["full"][digit].q}
        for family, q in qs.items():
            # the share of posterior samples inside q's outer ellipse: a reference that never touches the grid
            inside = mahalanobis(means[digit] + samples, q.mean, q.cov) <= outer
            reference = inside.mean()
            assert panels[digit]["mass_inside"][family] == pytest.approx(reference, abs=0.005)  # 4 se <= 0.0045
        assert panels[digit]["mass_inside"]["full"] == pytest.approx(1 - np.exp(-outer**2 / 2), abs=0.003)
        held = panels[digit]["mass_inside"]
        assert (f"The encoder's outer ellipse holds {figure_percent(held['encoder'])} of the posterior's mass, the "
                f"best diagonal Gaussian's {figure_percent(held['diagonal'])} and the best full-covariance "
                f"Gaussian's 86 %; were the posterior Gaussian, its own outer ellipse would hold 86 %.") in text
    assert len(set(words)) == len(words)  # each digit its own words


def figure_percent(mass):
    """The words' per cents, written out here: whole per cents, "under 1 %" and "over 99 %" at the ends."""
    return "under 1 %" if mass < 0.005 else "over 99 %" if mass > 0.995 else f"{round(100 * mass)} %"


def test_figure_words_of_a_posterior_with_three_modes():
    panel = {"modes": 3, "mass_inside": {"encoder": 0.004, "diagonal": 0.4567, "full": 0.9961}}
    words = figure_words(panel, "test digit 92, a 6")
    assert "it has 3 separate peaks (modes)" in words
    assert "holds under 1 % of the posterior's mass, the best diagonal Gaussian's 46 % and the best " \
           "full-covariance Gaussian's over 99 %" in words
    assert "contours holding 50, 90 and 99 % of its mass" in words
    assert "ellipses at 1 (inner) and 2 (outer) standard deviations" in words
    for *_, described in GAUSSIANS.values():
        assert described in words


def test_mass_inside_against_the_chi_square_distribution():
    """A Gaussian posterior N(m, S) and q = N(m + L d, s^2 S) (L L^T = S): with t = L^-1 (z - m) standard
    normal, q's Mahalanobis distance is |t - d| / s, so the mass within radius r is P(|t - d|^2 <= r^2 s^2),
    the non-central chi-square with 2 degrees of freedom and non-centrality |d|^2 (central when d = 0:
    1 - exp(-r^2 s^2 / 2), 0.8647 for q = p and r = 2)."""
    grid = latent_grid(2.5, 0.05)
    chol = np.array([[0.12, 0.0], [0.05, 0.08]])  # sds 0.12 and 0.094: 2.4 and 1.9 grid spacings
    mean = np.array([0.31, -0.22])  # off the cell centres
    log_p = log_gaussian(grid.z, GaussianQ(mean, chol)) + 123.0  # any constant offset
    assert mass_inside(log_p, grid, GaussianQ(mean, chol), 2.0) == pytest.approx(1 - np.exp(-2), abs=2e-3)
    assert mass_inside(log_p, grid, GaussianQ(mean, chol), 1.0) == pytest.approx(1 - np.exp(-0.5), abs=2e-3)
    for d, s in [((1.5, -0.5), 1.0), ((0.3, 0.4), 0.5), ((-2.0, 1.0), 1.4), ((5.0, 0.0), 1.0)]:
        q = GaussianQ(mean + chol @ np.array(d), s * chol)
        reference = stats.ncx2.cdf(4.0 * s * s, df=2, nc=np.dot(d, d))
        assert mass_inside(log_p, grid, q, 2.0) == pytest.approx(reference, abs=2e-3), (d, s)


def test_mass_inside_an_ellipse_narrower_than_a_cell():
    """An encoder's q can be narrower than a grid cell: its ellipse then holds about the posterior's density
    at its mean times its area, pi r^2 det(L), where counting whole cells by their centres gives all or none."""
    grid = latent_grid(2.0, 0.05)
    post = GaussianQ(np.zeros(2), np.diag([0.3, 0.2]))
    log_p = log_gaussian(grid.z, post)
    q = GaussianQ(np.array([0.1, -0.05]), np.diag([0.008, 0.012]))  # at a cells' corner; 2-sd radii under a cell
    area = np.pi * 2.0**2 * np.prod(np.diag(q.chol))
    expected = np.exp(log_gaussian(q.mean[None, :], post)[0]) * area
    assert mass_inside(log_p, grid, q, 2.0) == pytest.approx(expected, rel=0.02)
    u = np.linalg.solve(q.chol, (grid.z - q.mean).T)
    assert not np.any(np.einsum("ig,ig->g", u, u) <= 4.0)  # no cell centre inside: whole cells would say 0


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


def test_digit_name_says_an_8():
    assert digit_name(121, 8) == "test digit 121, an 8"
    assert digit_name(3, 0) == "test digit 3, a 0" and digit_name(92, np.int64(6)) == "test digit 92, a 6"
