"""The test-digit slider of notebook 09: the true posterior of one digit and three Gaussians fitted to it.

For a VAE with a two-dimensional latent space, the slider (``test digit``) picks one of a
few test digits. Above, in the latent plane: the true posterior ``p(z|x)`` from the
quadrature grid, drawn as the contours that enclose 50 %, 90 % and 99 % of its mass; and
three Gaussians as ellipses at 1 and 2 standard deviations: the encoder's ``q(z|x)``, the
best diagonal Gaussian and the best full-covariance Gaussian for this digit
(:mod:`vaelib.teaching.inference_gap`), each in its own colour and dash style. Below: the
digit, and the decoder's Bernoulli means at the encoder's mean and at the best full
Gaussian's mean (dark on light, :data:`~vaelib.teaching.digit_figures.DIGIT_CMAP`). The
numbers (``log p(x)``, the three ELBOs and the gaps, in nats) are the readout, beside the
figure as text.

The figure is drawn for the column (:mod:`vaelib.teaching.figures`: 7 inches wide at 100 dpi,
text of 10 pt or more) whatever the caller's Matplotlib settings, and it is described in words
at every setting (:func:`figure_words`, the view's ``alt``).

Everything is computed when the view is built, so a slider move only sets artist
data. The contours are traced on the grid's log-density, interpolated (cubic) to a
grid four times finer for a smooth line; the masses they enclose come from the grid itself.
The words (:func:`figure_words`) give the posterior's number of modes
(:func:`~vaelib.teaching.inference_gap.posterior_modes`) and the share of its mass inside each
Gaussian's outer ellipse (:func:`mass_inside`).
"""

import contourpy
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import zoom
from scipy.special import logsumexp

from vaelib.teaching import figures
from vaelib.teaching.digit_figures import DIGIT_CMAP, decoder_means
from vaelib.teaching.inference_gap import posterior_modes
from .slider_view import SliderView

#: Posterior mass inside each contour.
CONTOUR_MASSES = (0.5, 0.9, 0.99)
#: Ellipses of each Gaussian, in standard deviations (Mahalanobis radius).
ELLIPSE_RADII = (1.0, 2.0)
#: name -> (label, colour, dash style, words) of the three Gaussians, in drawing order. Colour (Okabe and
#: Ito's, :data:`~vaelib.teaching.figures.PALETTE`) and dash tell them apart twice over.
GAUSSIANS = {
    "encoder": (r"encoder's $q_\phi(z\mid x)$", figures.PALETTE["blue"], "-", "the encoder's q, solid blue"),
    "diagonal": ("best diagonal Gaussian", figures.PALETTE["vermillion"], (0, (3, 1.8)),
                 "the best diagonal Gaussian, dashed vermillion"),
    "full": ("best full-covariance\nGaussian", figures.PALETTE["bluish green"], (0, (1, 1.5)),
             "the best full-covariance Gaussian, dotted green"),
}
#: Line widths at 1 standard deviation (the 2-standard-deviation ellipse, always the outer one, is
#: drawn thinner): the diagonal Gaussian's dashes are drawn wide under the full one's dots, so that
#: both stay visible where the two Gaussians coincide.
ELLIPSE_WIDTHS = {"encoder": 1.8, "diagonal": 3.4, "full": 1.6}
#: The outer ellipse's line width, as a fraction of the inner one's.
OUTER_WIDTH = 0.6
#: Figure size, inches: the column's width; the latent plane and its key above, the three digits below.
FIGSIZE = (figures.WIDTH, 6.2)
#: The slider's description.
SLIDER_DESCRIPTION = "test digit"


def ellipse_points(q, radius, n=121):
    """The curve ``{m + radius * L (cos a, sin a)}``: where ``q``'s Mahalanobis distance is ``radius``.

    Parameters
    ----------
    q : GaussianQ
    radius : float
        In standard deviations.

    Returns
    -------
    ndarray, shape (n, 2), closed (the last point is the first)
    """
    angle = np.linspace(0.0, 2 * np.pi, n)
    return q.mean + radius * np.column_stack([np.cos(angle), np.sin(angle)]) @ q.chol.T


def density_levels(log_density, masses=CONTOUR_MASSES):
    """Log-density thresholds whose super-level sets hold the given masses of a grid distribution.

    Parameters
    ----------
    log_density : ndarray, any shape
        ``log p`` at the cells of a uniform grid (cells of equal area).
    masses : sequence of float in (0, 1)

    Returns
    -------
    ndarray, shape (len(masses),)
        ``levels[i]``: the largest threshold such that the cells with ``log p >= levels[i]``
        hold at least ``masses[i]`` of the total.
    """
    values = np.sort(np.ravel(log_density))[::-1]
    cumulative = np.exp(np.logaddexp.accumulate(values) - logsumexp(values))
    index = np.searchsorted(cumulative, np.asarray(masses) - 1e-12)  # 1e-12: round-off in the cumulative sum
    return values[np.minimum(index, len(values) - 1)]


def fine_grid(axis1, axis2, log_density, upsample=4):
    """A grid log-density interpolated (cubic) onto a grid ``upsample`` times finer.

    Parameters
    ----------
    axis1, axis2 : ndarray, shapes (m1,), (m2,)
        Cell centres along ``z_1`` and ``z_2``; ``log_density[i, j]`` is at ``(axis1[i], axis2[j])``.
    log_density : ndarray, shape (m1, m2)
    upsample : int

    Returns
    -------
    fine1, fine2 : ndarray, shapes (k1,), (k2,), ``k = upsample * (m - 1) + 1``
        The fine grid's points along ``z_1`` and ``z_2``, from the first centre to the last.
    fine : ndarray, shape (k1, k2)
        The interpolated log-density at ``(fine1[i], fine2[j])``.
    """
    fine1 = np.linspace(axis1[0], axis1[-1], upsample * (len(axis1) - 1) + 1)
    fine2 = np.linspace(axis2[0], axis2[-1], upsample * (len(axis2) - 1) + 1)
    fine = zoom(log_density, (len(fine1) / len(axis1), len(fine2) / len(axis2)), order=3, grid_mode=False)
    return fine1, fine2, fine


def contour_lines(axis1, axis2, log_density, level, upsample=4):
    """The contour ``log p = level`` of a grid log-density, as one polyline with NaN breaks.

    Parameters
    ----------
    axis1, axis2 : ndarray, shapes (m1,), (m2,)
        Cell centres along ``z_1`` and ``z_2``; ``log_density[i, j]`` is at ``(axis1[i], axis2[j])``.
    log_density : ndarray, shape (m1, m2)
    level : float
    upsample : int
        The log-density is interpolated (cubic) onto a grid this many times finer first (:func:`fine_grid`).

    Returns
    -------
    ndarray, shape (k, 2): ``(z1, z2)`` rows, NaN rows between separate pieces.
    """
    fine1, fine2, fine = fine_grid(axis1, axis2, log_density, upsample)
    lines = contourpy.contour_generator(fine1, fine2, fine.T).lines(level)  # contourpy: z[y, x]
    if not lines:
        return np.full((1, 2), np.nan)
    return np.vstack([np.vstack([line, [np.nan, np.nan]]) for line in lines])[:-1]


def _crop(log_posterior, grid, nats=25.0, margin=4):
    """The block of the grid around a posterior, where ``log p(z|x) > max - nats`` (plus ``margin``
    cells): ``axis1`` (m1,), ``axis2`` (m2,), the block (m1, m2), and the whole log-density (m, m)."""
    side = len(grid.axis)
    log_post = np.asarray(log_posterior, dtype=np.float64).reshape(side, side)
    rows, cols = np.nonzero(log_post > log_post.max() - nats)
    r0, r1 = max(0, rows.min() - margin), min(side, rows.max() + margin + 1)
    c0, c1 = max(0, cols.min() - margin), min(side, cols.max() + margin + 1)
    return grid.axis[r0:r1], grid.axis[c0:c1], log_post[r0:r1, c0:c1], log_post


def mass_inside(log_posterior, grid, q, radius, upsample=8):
    """The posterior's mass within Mahalanobis distance ``radius`` of ``q`` (inside its ellipse).

    The posterior's log-density is interpolated (cubic, :func:`fine_grid`) onto a grid ``upsample``
    times finer over the block where it is within 25 nats of its peak (each point beyond is below
    ``e^-25`` of the peak), as the contours are; the mass is the share of that fine grid's density
    whose points lie inside. On the grid itself a cell would count whole or not at all, and an
    ellipse a few cells across (an encoder's ``q`` can be narrower than a cell) would hold the wrong
    share by up to a few per cent (3 points for a Gaussian one grid spacing wide, against the
    chi-square distribution; this way 0.6 points or less, down to 0.7 spacings).

    Parameters
    ----------
    log_posterior : ndarray, shape (G,)
        ``log p(z_g | x)`` on ``grid`` (any constant offset).
    grid : LatentGrid
    q : GaussianQ
    radius : float
        In ``q``'s standard deviations.
    upsample : int

    Returns
    -------
    float in [0, 1]
    """
    axis1, axis2, block, _ = _crop(log_posterior, grid)
    fine1, fine2, fine = fine_grid(axis1, axis2, block, upsample)
    z = np.stack(np.meshgrid(fine1, fine2, indexing="ij"), axis=-1).reshape(-1, 2)
    inside = np.linalg.norm(np.linalg.solve(q.chol, (z - q.mean).T), axis=0) <= radius
    p = np.exp(fine.ravel() - fine.max())
    return float(p[inside].sum() / p.sum())


def digit_panels(params, x, config, posteriors, gaps, indices):
    """Everything the view draws for each chosen image, computed once.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (n, n_pixels)
        The images ``posteriors`` and ``gaps`` were computed for.
    config : VAEConfig
    posteriors : GridPosteriors
    gaps : InferenceGaps
    indices : sequence of int
        Rows of ``x`` to show.

    Returns
    -------
    list of dict, one per index: ``"contours"`` (list of (k, 2) polylines, one per
    :data:`CONTOUR_MASSES`), ``"ellipses"`` (name -> list of (121, 2) curves, one per
    :data:`ELLIPSE_RADII`), ``"limits"`` ((z1_low, z1_high), (z2_low, z2_high)), ``"image"``,
    ``"decoded_encoder"``, ``"decoded_best"`` (each shape (n_pixels,),
    :func:`~vaelib.teaching.digit_figures.decoder_means` at the encoder's mean and at the best
    full Gaussian's mean), ``"numbers"`` (dict of floats, nats), ``"modes"`` (how many,
    :func:`~vaelib.teaching.inference_gap.posterior_modes`) and ``"mass_inside"`` (name -> the
    posterior mass inside that Gaussian's outer ellipse, :func:`mass_inside`).
    """
    panels = []
    for n in indices:
        log_posterior = posteriors.log_posterior(n)
        axis1, axis2, block, log_post = _crop(log_posterior, posteriors.grid)
        levels = density_levels(log_post)  # masses from the whole grid
        contours = [contour_lines(axis1, axis2, block, level) for level in levels]
        qs = {"encoder": gaps.encoder_q[n], "diagonal": gaps.best_q["diagonal"][n].q,
              "full": gaps.best_q["full"][n].q}
        ellipses = {name: [ellipse_points(q, r) for r in ELLIPSE_RADII] for name, q in qs.items()}
        points = np.vstack([*contours, *[e[-1] for e in ellipses.values()]])  # the outer ellipses
        limits = _square_limits(points)
        decoded = decoder_means(params, np.stack([qs["encoder"].mean, qs["full"].mean]), config)
        numbers = {
            "log_px": gaps.log_px[n],
            "elbo_encoder": gaps.elbo_encoder[n],
            "elbo_diagonal": gaps.elbo_best["diagonal"][n],
            "elbo_full": gaps.elbo_best["full"][n],
            "approximation_diagonal": gaps.approximation_gap("diagonal")[n],
            "amortisation_diagonal": gaps.amortisation_gap("diagonal")[n],
            "approximation_full": gaps.approximation_gap("full")[n],
            "amortisation_full": gaps.amortisation_gap("full")[n],
        }
        panels.append({"contours": contours, "ellipses": ellipses, "limits": limits,
                       "image": np.asarray(x[n], float), "decoded_encoder": decoded[0],
                       "decoded_best": decoded[1], "numbers": {k: float(v) for k, v in numbers.items()},
                       "modes": len(posterior_modes(log_posterior, posteriors.grid)[0]),
                       "mass_inside": {name: mass_inside(log_posterior, posteriors.grid, q, ELLIPSE_RADII[-1])
                                       for name, q in qs.items()}})
    return panels


def _square_limits(points, pad=0.12):
    """Equal-length axis ranges around ``points`` (NaNs ignored), padded by ``pad`` of the span."""
    low, high = np.nanmin(points, axis=0), np.nanmax(points, axis=0)
    centre, half = (low + high) / 2, (1 + 2 * pad) * np.max(high - low) / 2
    return tuple((c - half, c + half) for c in centre)


def readout(numbers, title=""):
    """The numbers of one panel as text, in nats."""
    n = numbers
    return "\n".join([
        title,
        f"log p(x)  (quadrature)         {n['log_px']:9.2f}",
        f"ELBO, encoder's q(z|x)         {n['elbo_encoder']:9.2f}",
        f"ELBO, best diagonal Gaussian   {n['elbo_diagonal']:9.2f}",
        f"ELBO, best full Gaussian       {n['elbo_full']:9.2f}",
        "gaps (nats)        diagonal      full",
        f"  approximation    {n['approximation_diagonal']:8.3f}  {n['approximation_full']:8.3f}",
        f"  amortisation     {n['amortisation_diagonal']:8.3f}  {n['amortisation_full']:8.3f}",
    ])


def _percent(mass):
    """A share as whole per cents, in words at either end (a share under 0.5 % is not "0 %")."""
    if mass < 0.005:
        return "under 1 %"
    return "over 99 %" if mass > 0.995 else f"{100 * mass:.0f} %"


def _listed(values):
    """``[0.5, 0.9, 0.99]`` as "50, 90 and 99" (per cents)."""
    words = [f"{100 * v:g}" for v in values]
    return ", ".join(words[:-1]) + " and " + words[-1]


def figure_words(panel, name):
    """What the view's figure shows for one panel of :func:`digit_panels`, in words (its alt text).

    The axes, each curve's colour and dash, and what to look for, with this digit's numbers: how many
    modes its posterior has, and how much of the posterior's mass each Gaussian's outer ellipse holds.
    For scale, the words give the share a Gaussian of the posterior's own mean and covariance would
    hold, were the posterior Gaussian: the chi-square probability with 2 degrees of freedom,
    ``1 - exp(-r^2 / 2)`` at the outer radius ``r`` (86 % at ``r = 2``).

    Parameters
    ----------
    panel : dict
        One of :func:`digit_panels`.
    name : str
        The digit's title (e.g. ``"test digit 3, a 0"``).
    """
    modes = panel["modes"]
    peaks = "one peak (one mode)" if modes == 1 else f"{modes} separate peaks (modes)"
    held = panel["mass_inside"]
    outer = ELLIPSE_RADII[-1]
    own_shape = 1 - np.exp(-outer**2 / 2)
    radii = f"{ELLIPSE_RADII[0]:g} (inner) and {outer:g} (outer)"
    return (
        f"Above, the latent plane of {name}: z1 across, z2 up. The true posterior p(z|x) is drawn as black "
        f"contours holding {_listed(CONTOUR_MASSES)} % of its mass; it has {peaks}. Three Gaussians are drawn as "
        f"ellipses at {radii} standard deviations: {'; '.join(words for *_, words in GAUSSIANS.values())}. "
        f"Look for where each sits on the posterior. The encoder's outer ellipse holds "
        f"{_percent(held['encoder'])} of the posterior's mass, the best diagonal Gaussian's "
        f"{_percent(held['diagonal'])} and the best full-covariance Gaussian's {_percent(held['full'])}; were the "
        f"posterior Gaussian, its own outer ellipse would hold {_percent(own_shape)}. Below, three pictures: the "
        f"digit, and the decoder's pixel probabilities at the encoder's mean and at the best full-covariance "
        f"Gaussian's mean, dark where a pixel is likely on."
    )


def digit_name(index, label):
    """A test digit's title, by its number among the test digits and its class: ``"test digit 121, an 8"``."""
    return f"test digit {index}, {'an' if int(label) == 8 else 'a'} {label}"


def make_posterior_view(params, x, config, posteriors, gaps, indices, names=None, labels=None,
                        image_shape=(28, 28)):
    """A slider over chosen test digits: true posterior, three Gaussians, the digit and the numbers.

    Drawn in the style of :mod:`vaelib.teaching.figures` whatever the caller's Matplotlib
    settings: :data:`FIGSIZE`, :data:`~vaelib.teaching.figures.WIDTH` wide at its dpi, 10-pt text
    or larger.

    Parameters
    ----------
    params, x, config, posteriors, gaps, indices
        As for :func:`digit_panels`.
    names : sequence of str, optional
        A title for each index (e.g. ``"test digit 3, a 0"``, :func:`digit_name`).
    labels : sequence of str, optional
        The slider's label for each index: the digit's number among the test digits. Default:
        ``str(index)``, right when ``x`` is the test set's first rows; pass the test indices when
        ``x`` holds chosen test digits only.
    image_shape : tuple (h, w)

    Returns
    -------
    SliderView
        Slider ``digit`` (described as :data:`SLIDER_DESCRIPTION`): its value ``k`` shows image
        ``indices[k]`` and is labelled ``labels[k]``; the readout gives the numbers (:func:`readout`),
        ``alt`` the figure's words (:func:`figure_words`).
        Artists on ``view.fig.axes[0]`` (the latent plane): ``lines[0:3]`` the posterior contours
        (one per :data:`CONTOUR_MASSES`), then for each of :data:`GAUSSIANS` in order two lines, its
        ellipses at :data:`ELLIPSE_RADII` (``lines[3:5]`` encoder, ``lines[5:7]`` diagonal, ``lines[7:9]`` full).
        ``fig.axes[1..3].images[0]``: the digit, decoded at the encoder's mean, decoded at the
        best full Gaussian's mean.
    """
    panels = digit_panels(params, x, config, posteriors, gaps, indices)
    names = list(names) if names is not None else [f"test digit {i}" for i in indices]
    labels = [str(i) for i in indices] if labels is None else [str(label) for label in labels]
    if len(labels) != len(indices) or len(set(labels)) != len(labels):
        raise ValueError(f"need one distinct label per index, got {labels} for {len(indices)} indices")

    width, height = FIGSIZE
    inch = lambda left, bottom, w, h: (left / width, bottom / height, w / width, h / height)  # noqa: E731
    with plt.rc_context(figures.STYLE):
        fig = plt.figure(figsize=FIGSIZE)
        ax_z = fig.add_axes(inch(0.75, 2.75, 3.15, 3.15))
        contour_artists = [ax_z.plot([], [], color="k", lw=lw, ls="-")[0] for lw in (1.6, 1.1, 0.7)]
        contour_artists[0].set_label(r"true posterior $p(z\mid x)$")
        ellipse_artists = {}
        for name, (label, colour, dashes, _) in GAUSSIANS.items():
            widths = [ELLIPSE_WIDTHS[name] * (1.0 if r == ELLIPSE_RADII[0] else OUTER_WIDTH) for r in ELLIPSE_RADII]
            ellipse_artists[name] = [ax_z.plot([], [], color=colour, lw=lw, ls=dashes,
                                               label=label if r == ELLIPSE_RADII[0] else None)[0]
                                     for r, lw in zip(ELLIPSE_RADII, widths)]
        ax_z.set(xlabel="$z_1$", ylabel="$z_2$")
        ax_z.set_aspect("equal", adjustable="box")
        title = ax_z.set_title(" ")
        # the key beside the plane, off the data: the legend, and what the contours and the two ellipses are
        fig.legend(handles=[contour_artists[0]] + [a[0] for a in ellipse_artists.values()], loc="upper left",
                   bbox_to_anchor=inch(4.2, 5.95, 0, 0)[:2], frameon=False, handlelength=3.2, borderaxespad=0)
        fig.text(4.2 / width, 4.55 / height, f"Contours: {_listed(CONTOUR_MASSES)} %\nof the posterior's mass.\n"
                 f"Ellipses: {ELLIPSE_RADII[0]:g} (inner) and {ELLIPSE_RADII[-1]:g}\n(outer) standard deviations.",
                 va="top", ha="left", linespacing=1.4)

        captions = ("the digit $x$", "decoded at the\nencoder's mean", "decoded at the best\nfull Gaussian's mean")
        image_artists = []
        for j, caption in enumerate(captions):
            ax = fig.add_axes(inch(0.45 + 2.2 * j, 0.1, 1.75, 1.75))
            image_artists.append(ax.imshow(np.zeros(image_shape), cmap=DIGIT_CMAP, vmin=0.0, vmax=1.0,
                                           interpolation="nearest"))
            ax.set_title(caption)
            ax.set_axis_off()

    def update(digit):
        panel = panels[digit]
        for artist, line in zip(contour_artists, panel["contours"]):
            artist.set_data(line[:, 0], line[:, 1])
        for name, artists in ellipse_artists.items():
            for artist, curve in zip(artists, panel["ellipses"][name]):
                artist.set_data(curve[:, 0], curve[:, 1])
        (x0, x1), (y0, y1) = panel["limits"]
        ax_z.set_xlim(x0, x1)
        ax_z.set_ylim(y0, y1)
        title.set_text(f"latent plane, {names[digit]}")
        for artist, key in zip(image_artists, ("image", "decoded_encoder", "decoded_best")):
            artist.set_data(panel[key].reshape(image_shape))
        return readout(panel["numbers"], names[digit])

    slider = widgets.SelectionSlider(options=[(label, k) for k, label in enumerate(labels)], value=0,
                                     description=SLIDER_DESCRIPTION)
    return SliderView(fig, {"digit": slider}, update, alt=lambda digit: figure_words(panels[digit], names[digit]))
