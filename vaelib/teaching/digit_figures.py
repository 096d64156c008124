"""Pictures of digits and of what a VAE does with them: notebook 07.

Images are rows of pixels, shape ``(n, h * w)``, row-major ``h x w`` (28 x 28
for MNIST), with values in [0, 1]: binary digits, or the decoder's **means**.
For a Bernoulli decoder the mean is ``sigmoid(logits)``, the probability that
each pixel is 1; it is a grey map, not an image the model would draw (those
are Bernoulli draws from it).

Four pictures:

- :func:`mosaic` tiles images into one array (and :func:`show_mosaic` draws it);
- :func:`decoded_manifold` decodes a grid of points of a 2-D latent space,
  laid out so that the mosaic sits on the latent axes (:func:`latent_grid_2d`);
- :func:`interpolation` decodes the straight line between the posterior
  means of two images;
- :func:`scatter_by_label` draws 2-D codes, each point as its digit class in the
  class's colour (:data:`DIGIT_COLOURS`), and :func:`label_class_centres` names
  each class at its centre: two channels besides colour.

:func:`mosaic`, :func:`decoded_manifold` and :func:`interpolation` return arrays; the others draw
on a given Axes. Nothing here trains or evaluates a model.
"""

import matplotlib
import numpy as np
from matplotlib import patheffects

from vaelib.core.layers import sigmoid
from vaelib.core.vae import decode, encode
from vaelib.teaching.figures import PALETTE

#: Grey levels of :data:`DIGIT_CMAP`. At the size of a mosaic 32 look the same as 256 (only probabilities below
#: 1/32 turn white), and the PNGs are smaller: notebook 07's decoded 2-D manifold is 91 KB instead of 113 KB at
#: 64 levels (and 149 KB at 256). With 16, faint grey a learner should see (a decoder that hedges) would vanish.
DIGIT_LEVELS = 32

#: Ink dark on a white page: 0 is white, 1 is black.
DIGIT_CMAP = matplotlib.colormaps["gray_r"].resampled(DIGIT_LEVELS)

#: The value of the lines between the tiles of a mosaic: a light grey under :data:`DIGIT_CMAP`.
SEPARATOR = 0.25

#: A colour per digit class, 0 to 9, from Okabe and Ito's palette (:data:`~vaelib.teaching.figures.PALETTE`,
#: without its yellow, too faint for a glyph on white): seven colours for ten classes. Chosen for the codes
#: of notebook 07's 2-D model. The seven classes whose codes crowd the middle of the plane (2, 3, 4, 5, 6, 8,
#: 9) have seven different colours; the pairs whose centres lie closest there (5 and 8, 4 and 9, 3 and 5,
#: 3 and 8, 2 and 6) stay at least 20 CAM02-UCS units apart under deuteranopia and protanopia. 0 and 1, at
#: the bottom right and far to the left, share blue with 9, at the top; 7, at the top, shares vermillion
#: with 2, below the middle. :func:`scatter_by_label` draws each point as its digit, so no two classes share
#: both colour and marker.
DIGIT_COLOURS = tuple(PALETTE[name] for name in (
    "blue", "blue", "vermillion", "bluish green", "sky blue", "orange", "reddish purple", "vermillion", "black",
    "blue"))


def mosaic(images, n_cols, image_shape=(28, 28), pad=1, fill=SEPARATOR):
    """Tile images into one 2-D array, row by row.

    Parameters
    ----------
    images : ndarray, shape (n, h * w)
    n_cols : int
        Tiles per row; there are ``ceil(n / n_cols)`` rows.
    image_shape : tuple of int
        ``(h, w)``.
    pad : int
        Pixels between neighbouring tiles.
    fill : float
        Value of the padding and of empty tiles in the last row.

    Returns
    -------
    ndarray, shape (n_rows * (h + pad) - pad, n_cols * (w + pad) - pad)
        Image ``k`` is the block at rows ``r * (h + pad)`` to ``r * (h + pad) + h``
        and columns ``c * (w + pad)`` to ``c * (w + pad) + w``, with ``r, c = divmod(k, n_cols)``.
    """
    images = np.asarray(images)
    h, w = image_shape
    if images.ndim != 2 or images.shape[1] != h * w:
        raise ValueError(f"images must have shape (n, {h * w}), got {images.shape}")
    if n_cols < 1 or pad < 0:
        raise ValueError(f"n_cols must be >= 1 and pad >= 0, got {n_cols}, {pad}")
    n_rows = -(-len(images) // n_cols)
    out = np.full((n_rows * (h + pad) - pad, n_cols * (w + pad) - pad), fill, dtype=np.float64)
    for k, image in enumerate(images):
        r, c = divmod(k, n_cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = image.reshape(h, w)
    return out


def show_mosaic(ax, images, n_cols, image_shape=(28, 28), pad=1, extent=None):
    """Draw :func:`mosaic` on ``ax`` with :data:`DIGIT_CMAP`, values 0 to 1.

    Parameters
    ----------
    ax : matplotlib Axes
    images : ndarray, shape (n, h * w)
    n_cols, image_shape, pad
        As for :func:`mosaic`.
    extent : tuple of 4 floats, optional
        ``(left, right, bottom, top)`` in data units, to place the mosaic on
        axes (as :func:`manifold_extent` gives); without it the axes are hidden.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    tiles = mosaic(images, n_cols, image_shape, pad)
    artist = ax.imshow(tiles, cmap=DIGIT_CMAP, vmin=0.0, vmax=1.0, extent=extent, interpolation="nearest")
    if extent is None:
        ax.set_axis_off()
    return artist


def decoder_means(params, z, config):
    """What the decoder predicts for each latent point: ``E[x | z]``.

    Bernoulli decoder: ``sigmoid(logits)``, each pixel's probability of being 1.
    Gaussian decoder: its mean.

    Parameters
    ----------
    params : dict of str -> ndarray
    z : ndarray, shape (n, n_latent)
    config : VAEConfig

    Returns
    -------
    ndarray, shape (n, n_pixels)
    """
    out = decode(params, np.asarray(z, dtype=next(iter(params.values())).dtype), config)
    return sigmoid(out) if config.likelihood == "bernoulli" else out


def latent_grid_2d(n, limit):
    """An ``n x n`` grid on ``[-limit, limit]^2``, ordered as the tiles of a mosaic.

    Tile ``(r, c)`` (row ``r`` from the top, column ``c`` from the left) holds
    ``z = (axis[c], axis[n - 1 - r])``: ``z_1`` grows to the right and ``z_2``
    upwards, as on a scatter plot.

    Parameters
    ----------
    n : int
        Points per axis, >= 2.
    limit : float

    Returns
    -------
    z : ndarray, shape (n * n, 2)
        Row-major over tiles: ``z[r * n + c]``.
    axis : ndarray, shape (n,)
        ``linspace(-limit, limit, n)``.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    axis = np.linspace(-limit, limit, n)
    z2, z1 = np.meshgrid(axis[::-1], axis, indexing="ij")  # rows: z2 from high to low; columns: z1
    return np.column_stack([z1.ravel(), z2.ravel()]), axis


def manifold_extent(axis):
    """``(left, right, bottom, top)`` that puts tile centres of :func:`latent_grid_2d` at their ``z``.

    Parameters
    ----------
    axis : ndarray, shape (n,), evenly spaced

    Returns
    -------
    tuple of 4 floats
    """
    half = (axis[1] - axis[0]) / 2
    return (axis[0] - half, axis[-1] + half, axis[0] - half, axis[-1] + half)


def decoded_manifold(params, config, n=15, limit=3.0):
    """Decoder means over an ``n x n`` grid of a 2-D latent space.

    Parameters
    ----------
    params : dict of str -> ndarray
    config : VAEConfig, with ``n_latent = 2``
    n : int
    limit : float
        The grid covers ``[-limit, limit]^2``.

    Returns
    -------
    images : ndarray, shape (n * n, n_pixels), in mosaic order (see :func:`latent_grid_2d`)
    z : ndarray, shape (n * n, 2)
    axis : ndarray, shape (n,)
    """
    if config.n_latent != 2:
        raise ValueError(f"a decoded manifold needs a 2-D latent space, got n_latent = {config.n_latent}")
    z, axis = latent_grid_2d(n, limit)
    return decoder_means(params, z, config), z, axis


def interpolation(params, config, x_start, x_end, n_steps=10):
    """Decode the straight line between the posterior means of two images.

    ``z_t = (1 - t) mu(x_start) + t mu(x_end)`` for ``t = 0, 1/(n_steps - 1), ..., 1``.

    Parameters
    ----------
    params : dict of str -> ndarray
    config : VAEConfig
    x_start, x_end : ndarray, shape (n_pixels,)
    n_steps : int, >= 2

    Returns
    -------
    z : ndarray, shape (n_steps, n_latent)
        ``z[0]`` and ``z[-1]`` are the encoder's means for ``x_start`` and ``x_end``.
    images : ndarray, shape (n_steps, n_pixels)
        :func:`decoder_means` at each ``z``.
    """
    if n_steps < 2:
        raise ValueError(f"n_steps must be at least 2, got {n_steps}")
    dtype = next(iter(params.values())).dtype
    mu, _ = encode(params, np.asarray(np.stack([x_start, x_end]), dtype=dtype), config)  # (2, n_latent)
    t = np.linspace(0.0, 1.0, n_steps)[:, None]
    z = (1 - t) * mu[0] + t * mu[1]
    z[0], z[-1] = mu[0], mu[1]  # exact endpoints, whatever the rounding of (1 - t) and t
    return z, decoder_means(params, z, config)


def scatter_by_label(ax, points, labels, size=40, alpha=0.8, colours=DIGIT_COLOURS):
    """Scatter 2-D points, each drawn as its digit class (the glyph is the marker), in its class's colour.

    The glyph tells every class apart on its own, in any colour vision and in grey;
    the colour (:data:`DIGIT_COLOURS`) lets the eye find a cluster.

    Parameters
    ----------
    ax : matplotlib Axes
    points : ndarray, shape (n, 2)
    labels : ndarray of int, shape (n,), digit classes 0-9
    size, alpha : float
        Marker size (points^2; a glyph's larger side is about ``sqrt(size)`` points) and opacity.
    colours : sequence of 10 colours
        The colour of class ``k`` is ``colours[k]``.

    Returns
    -------
    dict of int -> matplotlib.collections.PathCollection, one per class present, in class order,
    each labelled with its digit for a legend.
    """
    points, labels = np.asarray(points), np.asarray(labels)
    return {int(k): ax.scatter(points[labels == k, 0], points[labels == k, 1], s=size, alpha=alpha,
                               marker=digit_marker(k), color=colours[int(k)], label=str(int(k)), linewidths=0)
            for k in np.unique(labels)}


def digit_marker(k):
    """The marker that draws digit ``k`` as a glyph (Matplotlib's mathtext marker ``"$k$"``)."""
    return f"${int(k)}$"


def class_centres(points, labels):
    """Each class's centre: the median of its points, coordinate by coordinate.

    Parameters
    ----------
    points : ndarray, shape (n, 2)
    labels : ndarray of int, shape (n,)

    Returns
    -------
    dict of int -> ndarray, shape (2,), one per class present, in class order.
    """
    points, labels = np.asarray(points), np.asarray(labels)
    return {int(k): np.median(points[labels == k], axis=0) for k in np.unique(labels)}


def label_class_centres(ax, points, labels, colours=DIGIT_COLOURS, fontsize=16):
    """Write each class's digit, large and bold, at its :func:`class_centres` point, with a white outline.

    A direct label: the reader finds a cluster by its name, not by matching a colour to a legend.

    Parameters
    ----------
    ax : matplotlib Axes
    points : ndarray, shape (n, 2)
    labels : ndarray of int, shape (n,), digit classes 0-9
    colours : sequence of 10 colours
    fontsize : float
        In points.

    Returns
    -------
    dict of int -> matplotlib.text.Text, one per class present, in class order.
    """
    halo = [patheffects.withStroke(linewidth=4, foreground="white")]
    return {k: ax.text(x, y, str(k), color=colours[k], fontsize=fontsize, fontweight="bold", ha="center",
                       va="center", path_effects=halo, zorder=3)
            for k, (x, y) in class_centres(points, labels).items()}
