"""Tests for vaelib.teaching.digit_figures: mosaic layout, the latent grid, decoder means, interpolation, codes by class."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from colorspacious import cspace_convert, deltaE
from matplotlib.markers import MarkerStyle
from scipy.special import expit

from vaelib.core.vae import VAEConfig, decode, encode, init_params
from vaelib.teaching import digit_figures as figs
from vaelib.teaching.figures import PALETTE


@pytest.fixture
def tiny_model(rng):
    config = VAEConfig(n_pixels=6, hidden=(5,), n_latent=2)
    return config, init_params(config, rng)


# ---------------------------------------------------------------- mosaic
def test_mosaic_places_each_image_in_its_tile_row_by_row():
    h, w, pad = 2, 3, 1
    images = np.arange(1, 6)[:, None] * np.ones((5, h * w)) / 10     # image k is filled with (k + 1) / 10
    images[0] = np.arange(h * w) / 10                                # image 0 shows its own layout
    tiles = figs.mosaic(images, n_cols=2, image_shape=(h, w), pad=pad, fill=-1.0)
    assert tiles.shape == (3 * (h + pad) - pad, 2 * (w + pad) - pad)  # 5 images in 2 columns: 3 rows
    np.testing.assert_array_equal(tiles[:h, :w], images[0].reshape(h, w))   # row-major inside a tile
    for k in range(1, 5):
        r, c = divmod(k, 2)
        block = tiles[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w]
        np.testing.assert_array_equal(block, images[k].reshape(h, w))
    assert np.all(tiles[h, :] == -1.0) and np.all(tiles[:, w] == -1.0)      # padding lines
    assert np.all(tiles[2 * (h + pad):, w + pad:] == -1.0)                  # the empty sixth tile
    assert np.sum(tiles == -1.0) == tiles.size - 5 * h * w


def test_mosaic_without_padding_is_a_plain_reshape():
    images = np.random.default_rng(0).random((6, 4))
    tiles = figs.mosaic(images, n_cols=3, image_shape=(2, 2), pad=0)
    expected = images.reshape(2, 3, 2, 2).transpose(0, 2, 1, 3).reshape(4, 6)
    np.testing.assert_array_equal(tiles, expected)


def test_mosaic_rejects_images_of_the_wrong_size():
    with pytest.raises(ValueError, match="shape"):
        figs.mosaic(np.zeros((3, 5)), n_cols=2, image_shape=(2, 2))


def test_show_mosaic_draws_the_mosaic_on_the_given_extent():
    images = np.random.default_rng(1).random((4, 4))
    fig, (ax1, ax2) = plt.subplots(1, 2)
    artist = figs.show_mosaic(ax1, images, n_cols=2, image_shape=(2, 2))
    np.testing.assert_array_equal(artist.get_array(), figs.mosaic(images, 2, (2, 2)))
    assert artist.get_clim() == (0.0, 1.0) and not ax1.axison
    assert artist.get_cmap().N == figs.DIGIT_LEVELS and artist.get_cmap()(0.0)[:3] == (1.0, 1.0, 1.0)  # 0 is white
    placed = figs.show_mosaic(ax2, images, n_cols=2, image_shape=(2, 2), pad=0, extent=(-1, 1, -1, 1))
    assert tuple(placed.get_extent()) == (-1, 1, -1, 1) and ax2.axison
    plt.close(fig)


# ---------------------------------------------------------------- the latent grid
def test_latent_grid_is_laid_out_like_a_scatter_plot():
    z, axis = figs.latent_grid_2d(3, 2.0)
    np.testing.assert_allclose(axis, [-2.0, 0.0, 2.0])
    assert z.shape == (9, 2)
    tile = z.reshape(3, 3, 2)                                      # (row from top, column from left, z)
    np.testing.assert_allclose(tile[0, 0], [-2.0, 2.0])             # top left: z1 lowest, z2 highest
    np.testing.assert_allclose(tile[2, 2], [2.0, -2.0])             # bottom right
    np.testing.assert_allclose(tile[:, :, 0], np.tile(axis, (3, 1)))        # z1 constant down a column
    np.testing.assert_allclose(tile[:, :, 1], np.tile(axis[::-1, None], (1, 3)))  # z2 constant along a row


def test_manifold_extent_puts_tile_centres_at_their_z():
    z, axis = figs.latent_grid_2d(4, 3.0)
    left, right, bottom, top = figs.manifold_extent(axis)
    width = (right - left) / 4                                      # four tiles per axis, no padding
    centres = left + width * (np.arange(4) + 0.5)
    np.testing.assert_allclose(centres, axis)
    assert (bottom, top) == (left, right)


def test_decoded_manifold_decodes_each_grid_point(tiny_model):
    config, params = tiny_model
    images, z, axis = figs.decoded_manifold(params, config, n=4, limit=1.5)
    assert images.shape == (16, 6) and z.shape == (16, 2)
    np.testing.assert_allclose(images, expit(decode(params, z, config)), rtol=1e-12)
    with pytest.raises(ValueError, match="2-D"):
        figs.decoded_manifold(params, VAEConfig(n_pixels=6, hidden=(5,), n_latent=3))


# ---------------------------------------------------------------- decoder means
def test_decoder_means_are_probabilities_for_bernoulli_and_means_for_gaussian(rng):
    z = rng.standard_normal((7, 2))
    bern = VAEConfig(n_pixels=6, hidden=(5,), n_latent=2)
    params = init_params(bern, rng)
    means = figs.decoder_means(params, z, bern)
    np.testing.assert_allclose(means, expit(decode(params, z, bern)), rtol=1e-12)
    assert np.all((means > 0) & (means < 1))
    gauss = VAEConfig(n_pixels=6, hidden=(5,), n_latent=2, likelihood="gaussian")
    np.testing.assert_array_equal(figs.decoder_means(params, z, gauss), decode(params, z, gauss))


# ---------------------------------------------------------------- interpolation
def test_interpolation_starts_and_ends_at_the_encodings(tiny_model, rng):
    config, params = tiny_model
    x = (rng.random((2, 6)) < 0.5).astype(float)
    z, images = figs.interpolation(params, config, x[0], x[1], n_steps=5)
    mu, _ = encode(params, x, config)
    assert z.shape == (5, 2) and images.shape == (5, 6)
    np.testing.assert_array_equal(z[0], mu[0])
    np.testing.assert_array_equal(z[-1], mu[1])
    np.testing.assert_allclose(z[2], (mu[0] + mu[1]) / 2, rtol=1e-12)       # the midpoint
    np.testing.assert_allclose(np.diff(z, axis=0), np.tile((mu[1] - mu[0]) / 4, (4, 1)), rtol=1e-10)  # even steps
    np.testing.assert_allclose(images, expit(decode(params, z, config)), rtol=1e-12)


def test_interpolation_endpoints_are_exact_in_float32(rng):
    config = VAEConfig(n_pixels=6, hidden=(5,), n_latent=3)
    params = init_params(config, rng, np.float32)
    x = (rng.random((2, 6)) < 0.5).astype(np.float32)
    z, _ = figs.interpolation(params, config, x[0], x[1], n_steps=7)
    mu, _ = encode(params, x, config)
    np.testing.assert_array_equal(z[[0, -1]], mu)


# ---------------------------------------------------------------- scatter by label
def test_scatter_by_label_draws_each_point_as_its_digit_in_its_class_colour(rng):
    points = rng.standard_normal((30, 2))
    labels = np.repeat([0, 3, 7], 10)
    fig, ax = plt.subplots()
    drawn = figs.scatter_by_label(ax, points, labels, alpha=1.0)
    assert list(drawn) == [0, 3, 7]
    for k, collection in drawn.items():
        np.testing.assert_array_equal(collection.get_offsets(), points[labels == k])
        assert collection.get_label() == str(k)
        np.testing.assert_allclose(collection.get_facecolor()[0], matplotlib.colors.to_rgba(figs.DIGIT_COLOURS[k]))
        glyph = MarkerStyle(f"${k}$")                                      # the digit, as mathtext draws it
        np.testing.assert_allclose(collection.get_paths()[0].vertices,
                                   glyph.get_path().transformed(glyph.get_transform()).vertices)
    assert [t.get_text() for t in ax.legend().get_texts()] == ["0", "3", "7"]
    plt.close(fig)


def test_every_digit_has_a_marker_of_its_own():
    shapes = [MarkerStyle(figs.digit_marker(k)).get_path().vertices for k in range(10)]
    for a, b in itertools.combinations(range(10), 2):
        assert shapes[a].shape != shapes[b].shape or not np.allclose(shapes[a], shapes[b]), (a, b)


def test_class_centres_are_medians_and_labels_sit_on_them():
    points = np.array([[0.0, 0.0], [1.0, 10.0], [5.0, 2.0], [-4.0, -4.0], [-2.0, -1.0]])
    labels = np.array([2, 2, 2, 9, 9])
    centres = figs.class_centres(points, labels)
    assert list(centres) == [2, 9]
    np.testing.assert_array_equal(centres[2], [1.0, 2.0])                  # medians of (0, 1, 5) and (0, 10, 2)
    np.testing.assert_array_equal(centres[9], [-3.0, -2.5])                # means of two, the median of two
    fig, ax = plt.subplots()
    texts = figs.label_class_centres(ax, points, labels)
    for k, text in texts.items():
        assert text.get_text() == str(k) and text.get_position() == tuple(centres[k])
        assert matplotlib.colors.same_color(text.get_color(), figs.DIGIT_COLOURS[k])
    plt.close(fig)


# ---------------------------------------------------------------- the classes' colours
def seen_with(colour, cvd_type):
    """A colour as seen with a full deuteranomaly or protanomaly (colorspacious' model), in sRGB."""
    space = {"name": "sRGB1+CVD", "cvd_type": cvd_type, "severity": 100}
    return np.clip(cspace_convert(matplotlib.colors.to_rgb(colour), space, "sRGB1"), 0, 1)


def test_digit_colours_are_okabe_ito_and_no_two_classes_share_colour_and_marker():
    assert len(figs.DIGIT_COLOURS) == 10
    assert set(figs.DIGIT_COLOURS) <= set(PALETTE.values()) - {PALETTE["yellow"]}   # yellow is faint on white
    styles = {(colour, figs.digit_marker(k)) for k, colour in enumerate(figs.DIGIT_COLOURS)}
    assert len(styles) == 10
    assert len({figs.DIGIT_COLOURS[k] for k in (2, 3, 4, 5, 6, 8, 9)}) == 7     # the crowded middle: one each


@pytest.mark.parametrize("cvd_type", ["deuteranomaly", "protanomaly"])
def test_classes_of_different_colours_stay_apart_for_red_green_colour_blindness(cvd_type):
    colours = figs.DIGIT_COLOURS
    for a, b in itertools.combinations(range(10), 2):
        if colours[a] != colours[b]:
            assert deltaE(seen_with(colours[a], cvd_type), seen_with(colours[b], cvd_type),
                          input_space="sRGB1") > 12, (a, b)
    for a, b in ((5, 8), (4, 9), (3, 5), (3, 8), (2, 6)):                    # the closest centres, as documented
        assert deltaE(seen_with(colours[a], cvd_type), seen_with(colours[b], cvd_type), input_space="sRGB1") > 20
    # Matplotlib's default colours, which these replace, bring some classes within 12 units
    # (under deuteranopia 2 and 3, green and red, within 6), so the threshold tells the two apart.
    tab10 = [c["color"] for c in matplotlib.rcParamsDefault["axes.prop_cycle"]]
    assert min(deltaE(seen_with(a, cvd_type), seen_with(b, cvd_type), input_space="sRGB1")
               for a, b in itertools.combinations(tab10, 2)) < 12


# ---------------------------------------------------------------- the colour map
def test_digit_colormap_runs_from_white_to_black_in_equal_steps():
    cmap, levels = figs.DIGIT_CMAP, figs.DIGIT_LEVELS
    assert cmap.N == levels
    assert cmap(0.0)[:3] == (1.0, 1.0, 1.0) and cmap(1.0)[:3] == (0.0, 0.0, 0.0)
    assert cmap(0.9 / levels)[:3] == (1.0, 1.0, 1.0)               # below one step: white
    assert cmap(1.1 / levels)[0] < 1.0                              # one step up: the first grey
    greys = np.array([cmap((k + 0.5) / levels)[0] for k in range(levels)])   # one value per level
    assert len(np.unique(greys)) == levels and np.all(np.diff(greys) < 0)    # each level darker than the last
