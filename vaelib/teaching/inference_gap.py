r"""Per-image variational inference on a VAE with a two-dimensional latent space, and its gap split in two.

For one image ``x`` and a Gaussian ``q(z) = N(m, S)`` over the latent ``z`` (shape (2,)),

.. math::
    \mathrm{ELBO}(q) = \mathbb{E}_q[\log p(x, z)] + H(q), \qquad
    H(q) = \log(2\pi e) + \log L_{11} + \log L_{22}

where ``S = L L^T`` with ``L`` lower triangular and a positive diagonal (the Cholesky
factor). The entropy is exact; the expectation is a sum over the square grid of
:mod:`vaelib.teaching.quadrature`, whose points already carry ``log p(x, z_g)``:

.. math::
    \mathbb{E}_q[f] \approx \frac{\sum_g w_g f(z_g)}{\sum_g w_g}, \qquad w_g = q(z_g)\, h^2 .

This is the midpoint rule; dividing by ``sum_g w_g`` (which is 1 up to the rule's error)
makes it integrate a constant exactly, so the ~150 nats of ``log p(x)`` inside
``log p(x, z)`` do not multiply the rule's error. It needs ``q`` resolved by the grid:
standard deviations of at least about 0.7 grid spacings (checked in the tests and the notebook).
:func:`elbo_on_nodes` is a second, grid-free rule for any ``q``: the midpoint rule in the
standardised variable ``t``, ``z = m + L t``, which scales with ``q``.

Two families of ``q``, each parameterised by an unconstrained vector ``theta``:

- ``"diagonal"``: ``theta = (m_1, m_2, log L_11, log L_22)``, ``L`` diagonal;
- ``"full"``: ``theta = (m_1, m_2, log L_11, L_21, log L_22)``.

The best ``q`` of a family maximises the grid ELBO over ``theta`` (L-BFGS, exact gradient).
The gap of the encoder's ``q(z|x)`` then splits in two (Cremer, Li & Duvenaud, ICML 2018):

.. math::
    \log p(x) - \mathrm{ELBO}(q_\phi) =
    \underbrace{\log p(x) - \mathrm{ELBO}(q^*)}_{\text{approximation gap}}
    + \underbrace{\mathrm{ELBO}(q^*) - \mathrm{ELBO}(q_\phi)}_{\text{amortisation gap}}

Two more functions look at the evidence from outside the grid: :func:`log_evidence_by_importance`
estimates ``log p(x)`` by importance sampling from a Student-t wider than the posterior (a check of
the grid), and :func:`weight_tail_onset` finds how far out the second moment of the encoder's
importance weights starts to diverge.

All values are per image, in nats; nothing here draws random numbers except
:func:`log_weights` and :func:`log_evidence_by_importance`, which take an ``rng``.
"""

from typing import NamedTuple

import numpy as np
from scipy import optimize, stats
from scipy.ndimage import center_of_mass, label, maximum, maximum_filter
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

from vaelib.core.evaluate import log_importance_weights
from vaelib.core.gaussian import LOG_2PI, log_std_normal
from vaelib.core.vae import decode, encode, reconstruction_nll
from vaelib.teaching.quadrature import latent_grid, log_evidence_from_joint, log_joint_on_grid, log_likelihood_on_grid

FAMILIES = ("diagonal", "full")
#: The latent grid of notebook 09 and of the app's posterior view, for the 784-400-2 digit model:
#: ``[-6, 6]^2``, spacing 0.05.
DIGITS_GRID_RADIUS, DIGITS_GRID_STEP = 6.0, 0.05


# ---------------------------------------------------------------- one Gaussian q
class GaussianQ(NamedTuple):
    """``N(mean, chol @ chol.T)`` in two dimensions."""

    mean: np.ndarray  # (2,)
    chol: np.ndarray  # (2, 2), lower triangular, positive diagonal

    @property
    def cov(self):
        """The covariance ``chol @ chol.T``, shape (2, 2)."""
        return self.chol @ self.chol.T


def q_from_theta(theta, family):
    """The Gaussian of an unconstrained vector ``theta`` (see the module docstring for its layout)."""
    theta = np.asarray(theta, dtype=np.float64)
    if family == "diagonal":
        m1, m2, log_l11, log_l22 = theta
        l21 = 0.0
    elif family == "full":
        m1, m2, log_l11, l21, log_l22 = theta
    else:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    return GaussianQ(np.array([m1, m2]), np.array([[np.exp(log_l11), 0.0], [l21, np.exp(log_l22)]]))


def theta_from_q(q, family):
    """Inverse of :func:`q_from_theta`; for ``"diagonal"`` the off-diagonal of ``q.chol`` is dropped."""
    log_l11, log_l22 = np.log(q.chol[0, 0]), np.log(q.chol[1, 1])
    if family == "diagonal":
        return np.array([q.mean[0], q.mean[1], log_l11, log_l22])
    if family == "full":
        return np.array([q.mean[0], q.mean[1], log_l11, q.chol[1, 0], log_l22])
    raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")


def q_from_moments(mean, cov, family):
    """The Gaussian with this mean and covariance (``"full"``), or with this mean and the
    variances ``1 / diag(cov^{-1})`` (``"diagonal"``: the best diagonal ``q`` of a Gaussian
    posterior with covariance ``cov``, by KL(q || p))."""
    if family == "full":
        return GaussianQ(np.asarray(mean, float), np.linalg.cholesky(cov))
    precision = np.linalg.inv(cov)
    return GaussianQ(np.asarray(mean, float), np.diag(1.0 / np.sqrt(np.diag(precision))))


def gaussian_entropy(q):
    """``H(q) = log(2 pi e) + log L_11 + log L_22``, in nats."""
    return 1.0 + LOG_2PI + float(np.sum(np.log(np.diag(q.chol))))


def _standardise(z, q):
    """``u = L^{-1}(z - m)``, shape (G, 2), for a 2 x 2 lower-triangular ``L``."""
    d = np.asarray(z, float) - q.mean
    (l11, _), (l21, l22) = q.chol
    u1 = d[:, 0] / l11
    u2 = (d[:, 1] - l21 * u1) / l22
    return np.column_stack([u1, u2])


def log_gaussian(z, q):
    """``log N(z | q.mean, q.cov)`` at points ``z`` of shape (G, 2); returns shape (G,)."""
    u = _standardise(z, q)
    return -LOG_2PI - np.sum(np.log(np.diag(q.chol))) - 0.5 * np.sum(u * u, axis=1)


def encoder_gaussians(params, x, config):
    """The encoder's ``q(z|x) = N(mu, diag(exp(log_var)))`` for each image, as :class:`GaussianQ`.

    Parameters
    ----------
    x : ndarray, shape (n, n_pixels)

    Returns
    -------
    list of GaussianQ, length n (float64)
    """
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    mu, log_var = encode(params, np.asarray(x, dtype=np.float64), config)
    return [GaussianQ(m, np.diag(np.exp(0.5 * lv))) for m, lv in zip(mu, log_var)]


# ---------------------------------------------------------------- on the quadrature grid
class GridPosteriors(NamedTuple):
    """``log p(x_n, z_g)`` on a grid for ``n`` images, ``log p(x_n)`` from it, and the posteriors' moments."""

    grid: object  # LatentGrid
    log_joint: np.ndarray  # (n, G)
    log_px: np.ndarray  # (n,)
    mean: np.ndarray  # (n, 2), posterior means (posterior_moments)
    cov: np.ndarray  # (n, 2, 2), posterior covariances

    def log_posterior(self, n):
        """``log p(z_g | x_n)`` (per unit area), shape (G,)."""
        return self.log_joint[n] - self.log_px[n]


def grid_posteriors(params, x, config, radius=5.0, step=0.05):
    """``log p(x, z_g)`` on :func:`~vaelib.teaching.quadrature.latent_grid` and ``log p(x)``.

    ``log p(x) = logsumexp_g log p(x, z_g) + 2 log h``, the same midpoint rule as
    :func:`~vaelib.teaching.quadrature.log_evidence`; one pass of the decoder serves both.

    Returns
    -------
    GridPosteriors
        With the posteriors' means and covariances (:func:`posterior_moments`).
    """
    grid = latent_grid(radius, step)
    log_joint = log_joint_on_grid(params, x, config, grid)
    mean, cov = posterior_moments(log_joint, grid)
    return GridPosteriors(grid, log_joint, log_evidence_from_joint(log_joint, grid.step), mean, cov)


def _grid_weights(z, q, step):
    """``w_g = q(z_g) h^2``, shape (G,)."""
    return np.exp(log_gaussian(z, q) + 2 * np.log(step))


def q_mass_on_grid(grid, q):
    """``sum_g q(z_g) h^2``: 1 when the grid resolves ``q`` and covers its mass."""
    return float(np.sum(_grid_weights(grid.z, q, grid.step)))


def expectation_on_grid(values, grid, q):
    """``E_q[f]`` from ``f(z_g)`` (shape (G,)), by the normalised midpoint rule."""
    w = _grid_weights(grid.z, q, grid.step)
    return float(w @ values / w.sum())


def elbo_on_grid(log_joint, grid, q):
    """``ELBO(q) = E_q[log p(x, z)] + H(q)`` for one image, from ``log p(x, z_g)`` of shape (G,)."""
    return expectation_on_grid(log_joint, grid, q) + gaussian_entropy(q)


def kl_to_posterior_on_grid(log_posterior, grid, q):
    """``KL(q || p(z|x)) = -H(q) - E_q[log p(z|x)]``, from ``log p(z_g | x)`` of shape (G,)."""
    return -gaussian_entropy(q) - expectation_on_grid(log_posterior, grid, q)


def posterior_moments(log_joint, grid):
    """Mean and covariance of the grid posterior ``p(z|x)``.

    Parameters
    ----------
    log_joint : ndarray, shape (G,) for one image or (n, G)

    Returns
    -------
    mean : ndarray, shape (2,) or (n, 2)
    cov : ndarray, shape (2, 2) or (n, 2, 2)
    """
    p = np.exp(log_joint - log_joint.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    z1, z2 = grid.z.T
    mean = p @ grid.z
    s11, s12, s22 = np.moveaxis(p @ np.column_stack([z1 * z1, z1 * z2, z2 * z2]), -1, 0)  # E[z_i z_j]
    second = np.stack([np.stack([s11, s12], -1), np.stack([s12, s22], -1)], -2)
    return mean, second - mean[..., :, None] * mean[..., None, :]


def posterior_modes(log_posterior, grid, size=5, depth=5.0):
    """The modes of a grid posterior: its peaks, found as the grid points that are the largest
    within a ``size`` x ``size`` block around them, and within ``depth`` nats of the highest.

    A peak that falls between grid points can show as a few equal points side by side (a Gaussian
    centred between four cell centres gives four); touching points of equal height are one mode,
    reported at their centre. A point on the grid's edge counts if nothing inside is higher: there
    the peak may lie beyond the edge, on a posterior the grid cuts off.

    Parameters
    ----------
    log_posterior : ndarray, shape (G,)
        ``log p(z_g | x)`` on ``grid`` (any constant offset).
    grid : LatentGrid
    size : int
        The block, in grid points (5: a point is a mode if no point within two spacings is higher).
    depth : float
        Modes lower than the highest by this many nats or more are left out (bumps of the far tail).

    Returns
    -------
    points : ndarray, shape (k, 2)
        The modes, highest first.
    heights : ndarray, shape (k,)
        Their log densities minus the highest's (the first is 0), nats.
    """
    side = len(grid.axis)
    log_post = np.asarray(log_posterior, dtype=np.float64).reshape(side, side)
    is_mode = (maximum_filter(log_post, size=size) == log_post) & (log_post > log_post.max() - depth)
    pieces, k = label(is_mode, structure=np.ones((3, 3)))  # touching points of equal height: one mode
    index = np.arange(1, k + 1)
    heights = np.asarray(maximum(log_post, pieces, index)) - log_post.max()
    centres = np.asarray(center_of_mass(is_mode, pieces, index)).reshape(k, 2)  # (row, column) of each mode
    points = grid.axis[0] + grid.step * centres  # z[i * m + j] = (axis[i], axis[j])
    order = np.argsort(-heights, kind="stable")
    return points[order], heights[order]


def offset_and_width(q, mean, cov):
    r"""Where a Gaussian ``q`` sits against a posterior of mean ``mean`` and covariance ``cov``.

    Returns
    -------
    d_M : float
        The Mahalanobis distance of ``q``'s mean under the posterior,
        :math:`\sqrt{(m_q - m_p)^\top \Sigma_p^{-1} (m_q - m_p)}`: the offset in posterior standard
        deviations along its direction.
    lambda_min : float
        The smallest eigenvalue of :math:`L^\top \Sigma_p^{-1} L` (``L = q.chol``): the smallest ratio,
        over directions ``v``, of ``q``'s variance to the posterior's, :math:`v^\top L L^\top v /
        v^\top \Sigma_p v`. The importance weights ``p(x, z) / q(z)`` of a Gaussian posterior have a
        finite variance only if it exceeds 1/2.
    """
    offset = np.asarray(q.mean, float) - np.asarray(mean, float)
    d_M = float(np.sqrt(offset @ np.linalg.solve(cov, offset)))
    lambda_min = float(np.linalg.eigvalsh(q.chol.T @ np.linalg.solve(cov, q.chol)).min())
    return d_M, lambda_min


# ---------------------------------------------------------------- the best q of a family
def _negative_elbo_and_grad(theta, family, z, f):
    """``-ELBO`` on the points ``z`` (values ``f = log p(x, z)``) and its gradient in ``theta``.

    With ``p_g = w_g / sum w``, ``d E_q[f] = sum_g p_g (f_g - E_q[f]) d log q(z_g)``, and for
    ``u = L^{-1}(z - m)``, ``v = L^{-T} u``: ``d log q / d m = v``,
    ``d log q / d L_ij = v_i u_j - [i = j] / L_ii`` (lower triangle).
    """
    q = q_from_theta(theta, family)
    u = _standardise(z, q)
    half_squared = 0.5 * np.einsum("gi,gi->g", u, u)
    p = np.exp(half_squared.min() - half_squared)  # w_g up to a constant factor
    p /= p.sum()
    expected = p @ f
    (l11, _), (l21, l22) = q.chol
    v2 = u[:, 1] / l22
    v1 = (u[:, 0] - l21 * v2) / l11
    scores = [v1, v2, l11 * v1 * u[:, 0] - 1.0]  # d log q / d (m1, m2, log L11)
    if family == "full":
        scores.append(v2 * u[:, 0])  # d log q / d L21
    scores.append(l22 * v2 * u[:, 1] - 1.0)  # d log q / d log L22
    grad = np.array([p @ ((f - expected) * s) for s in scores])
    grad[2] += 1.0  # d H / d log L11
    grad[-1] += 1.0  # d H / d log L22
    return -(expected + gaussian_entropy(q)), -grad


class FittedQ(NamedTuple):
    """The best Gaussian of a family for one image."""

    q: GaussianQ
    elbo: float  # on the whole grid, nats
    mass: float  # q_mass_on_grid: 1 when the grid holds and resolves q
    converged: bool


def posterior_starts(log_joint, grid, moments=None, mode_distance=0.5):
    """Starting points for :func:`best_gaussian`, per family: the posterior's moments
    (:func:`q_from_moments`) placed at the posterior mean, and, when the grid's most probable
    point lies more than ``mode_distance`` posterior standard deviations (Mahalanobis) from the
    mean, the same covariance placed there too. A mode that far from the mean means a skewed or
    multimodal posterior; closer, the two starts reach the same optimum.

    Parameters
    ----------
    log_joint : ndarray, shape (G,)
    grid : LatentGrid
    moments : (mean, cov), optional
        :func:`posterior_moments` of ``log_joint``, if already computed.

    Returns
    -------
    dict of family -> list of one or two GaussianQ
    """
    mean, cov = posterior_moments(log_joint, grid) if moments is None else moments
    mode = grid.z[np.argmax(log_joint)]
    d = mode - mean
    centres = [mean, mode] if d @ np.linalg.solve(cov, d) > mode_distance**2 else [mean]
    return {family: [q_from_moments(c, cov, family) for c in centres] for family in FAMILIES}


def best_gaussian(log_joint, grid, family, starts=None, window=60.0, gtol=1e-7):
    """The Gaussian ``q`` of ``family`` that maximises :func:`elbo_on_grid` for one image.

    The optimiser (L-BFGS-B, exact gradient) sums over the grid points where
    ``log p(x, z) > max - window`` nats, which hold all the mass of any ``q`` near the
    posterior. Bounds keep the mean inside the bounding box of those points and the standard
    deviations ``L_11``, ``L_22`` between a quarter of the grid spacing and 1, so ``q`` cannot
    escape from the points that penalise it. The returned ELBO and mass are computed on the
    whole grid: a mass far from 1 means the grid does not hold or resolve ``q``.

    Parameters
    ----------
    log_joint : ndarray, shape (G,)
        ``log p(x, z_g)`` for one image.
    grid : LatentGrid
    family : {"diagonal", "full"}
    starts : list of GaussianQ, optional
        Where the optimiser starts; the best end point is returned.
        Default: ``posterior_starts(log_joint, grid)[family]``.
    window : float
        Nats below the grid's maximum of ``log p(x, z)`` still summed by the optimiser.
    gtol : float
        L-BFGS-B's tolerance on the projected gradient.

    Returns
    -------
    FittedQ
    """
    if starts is None:
        starts = posterior_starts(log_joint, grid)[family]
    keep = log_joint > log_joint.max() - window
    z, f = grid.z[keep], log_joint[keep]
    (m1_low, m2_low), (m1_high, m2_high) = z.min(axis=0), z.max(axis=0)
    sd_low, sd_high = np.log(grid.step / 4), 0.0  # bounds on log L_11 and log L_22
    if family == "full":
        lower = [m1_low, m2_low, sd_low, -np.inf, sd_low]
        upper = [m1_high, m2_high, sd_high, np.inf, sd_high]
    else:
        lower, upper = [m1_low, m2_low, sd_low, sd_low], [m1_high, m2_high, sd_high, sd_high]
    best = None
    for start in starts:
        theta0 = np.clip(theta_from_q(start, family), lower, upper)
        fit = optimize.minimize(_negative_elbo_and_grad, theta0, args=(family, z, f), jac=True,
                                method="L-BFGS-B", bounds=optimize.Bounds(lower, upper),
                                options={"gtol": gtol, "maxiter": 500})
        if best is None or fit.fun < best.fun:
            best = fit
    q = q_from_theta(best.x, family)
    w = _grid_weights(grid.z, q, grid.step)
    elbo = float(w @ log_joint / w.sum()) + gaussian_entropy(q)  # elbo_on_grid, sharing w with the mass
    return FittedQ(q, elbo, float(w.sum()), bool(best.success))


# ---------------------------------------------------------------- a rule fitted to q
def standard_nodes(radius=4.5, step=0.5):
    """Nodes ``t`` (shape (T, 2)) and weights (shape (T,), summing to 1) for ``E[f(t)]``, ``t ~ N(0, I)``.

    The midpoint rule on ``[-radius, radius]^2`` with the standard normal density as weight,
    normalised, and the nodes stretched by ``1 / sqrt(sum_i w_i t_i1^2)`` (a factor
    ``1 + 6e-5`` for the defaults) so that the rule's second moments are exactly 1: the
    cut-off tails would otherwise miss ``1.2e-4`` of them. The rule is then exact for every
    polynomial of degree 2, so for the ELBO of a linear-Gaussian model, whose ``log p(x, z)``
    is quadratic in ``z``. For a Gaussian weight the midpoint rule's error otherwise falls like
    ``exp(-2 pi^2 / step^2)``; what remains comes from the kinks of a ReLU decoder.
    """
    t = latent_grid(radius, step).z
    w = np.exp(log_std_normal(t))
    w /= w.sum()
    return t / np.sqrt(w @ t[:, 0] ** 2), w


def elbo_on_nodes(params, x, config, qs, radius=4.5, step=0.5, max_rows=8192):
    """``ELBO(q_n)`` for image ``x_n`` by the rule of :func:`standard_nodes` at ``z = m + L t``.

    It decodes its own points, so it needs no grid and resolves a ``q`` of any width.
    ``log p(x | z)`` comes from the core (:func:`~vaelib.core.vae.decode`,
    :func:`~vaelib.core.vae.reconstruction_nll`), computed in the dtype of ``params``.

    Parameters
    ----------
    x : ndarray, shape (n, n_pixels)
    qs : sequence of GaussianQ, length n
        One Gaussian per image.
    max_rows : int
        Bound on the decoded points held at once.

    Returns
    -------
    ndarray, shape (n,), float64, nats
    """
    t, w = standard_nodes(radius, step)
    dtype = next(iter(params.values())).dtype
    per_call = max(1, max_rows // len(t))
    out = np.empty(len(x))
    for s in range(0, len(x), per_call):
        xb, qb = np.asarray(x[s:s + per_call], dtype=dtype), qs[s:s + per_call]
        z = np.stack([q.mean + t @ q.chol.T for q in qb]).astype(dtype)  # (b, T, 2)
        decoded = decode(params, z.reshape(-1, 2), config).reshape(len(xb), len(t), -1)
        log_joint = -reconstruction_nll(decoded, xb[:, None, :], params, config) + log_std_normal(z)
        out[s:s + len(xb)] = log_joint.astype(np.float64) @ w + [gaussian_entropy(q) for q in qb]
    return out


# ---------------------------------------------------------------- the gaps, over many images
class InferenceGaps(NamedTuple):
    """Per image (arrays of shape (n,), nats), and the ``q``'s behind them."""

    log_px: np.ndarray
    elbo_encoder: np.ndarray
    elbo_best: dict  # family -> ndarray (n,)
    encoder_q: list  # GaussianQ per image
    best_q: dict  # family -> list of FittedQ

    def whole_gap(self):
        """``log p(x) - ELBO(encoder's q)``, shape (n,): the encoder's ``KL(q(z|x) || p(z|x))``, which
        :meth:`approximation_gap` and :meth:`amortisation_gap` split in two for either family."""
        return self.log_px - self.elbo_encoder

    def approximation_gap(self, family):
        """``log p(x) - ELBO(best q of family)``, shape (n,)."""
        return self.log_px - self.elbo_best[family]

    def amortisation_gap(self, family):
        """``ELBO(best q of family) - ELBO(encoder's q)``, shape (n,)."""
        return self.elbo_best[family] - self.elbo_encoder


def inference_gaps(params, x, config, posteriors=None, radius=5.0, step=0.05):
    """``log p(x)``, the encoder's ELBO and the best ELBO of each family, for every image.

    ``log p(x)`` from the grid (:func:`grid_posteriors`). The best ``q`` of each family
    maximises the grid ELBO (:func:`best_gaussian`, from :func:`posterior_starts`); the full
    family also starts from the best diagonal ``q``, which it contains. Every ELBO reported,
    the encoder's included, is then computed by :func:`elbo_on_nodes`, which does not use the grid.
    Runs on one BLAS thread: L-BFGS-B's many tiny products only lose time to thread hand-offs.

    Parameters
    ----------
    x : ndarray, shape (n, n_pixels)
    posteriors : GridPosteriors, optional
        Computed for ``x`` if not given.

    Returns
    -------
    InferenceGaps
    """
    with threadpool_limits(1, user_api="blas"):
        if posteriors is None:
            posteriors = grid_posteriors(params, x, config, radius, step)
        grid = posteriors.grid
        best = {"diagonal": [], "full": []}
        for n, log_joint in enumerate(posteriors.log_joint):
            starts = posterior_starts(log_joint, grid, (posteriors.mean[n], posteriors.cov[n]))
            diagonal = best_gaussian(log_joint, grid, "diagonal", starts=starts["diagonal"])
            best["diagonal"].append(diagonal)
            best["full"].append(best_gaussian(log_joint, grid, "full", starts=starts["full"] + [diagonal.q]))
        encoder_q = encoder_gaussians(params, x, config)
        elbo_best = {family: elbo_on_nodes(params, x, config, [b.q for b in fits]) for family, fits in best.items()}
        return InferenceGaps(posteriors.log_px, elbo_on_nodes(params, x, config, encoder_q), elbo_best,
                             encoder_q, best)


# ---------------------------------------------------------------- log p(x) without the grid
def log_evidence_by_importance(params, x, config, means, covs, rng, n_samples=4096, df=6.0, widen=1.2,
                               max_rows=8192):
    r"""``log p(x)`` by importance sampling from a Student-t around each posterior, without the grid.

    .. math:: \hat p(x) = \frac1S \sum_{s=1}^S \frac{p(x, z_s)}{r(z_s)}, \qquad
              z_s \sim r = t_\nu(m,\ \mathrm{widen} \cdot \Sigma)

    is unbiased for ``p(x)`` whatever ``m`` and ``Sigma`` are (they set only its variance; the
    grid posterior's moments make a good choice). Since ``p(x | z) <= 1`` for binary data,
    ``p(x, z) / r(z) <= N(z | 0, I) / r(z)``, which is bounded: the Student-t's tails are
    polynomial, the prior's Gaussian. The weights are bounded, so their variance is finite and
    the standard error below means what it says. ``log p(x, z)`` comes from the core
    (:func:`~vaelib.core.vae.decode`, :func:`~vaelib.core.vae.reconstruction_nll`), in the
    dtype of ``params``.

    Parameters
    ----------
    x : ndarray, shape (n, n_pixels)
    means : ndarray, shape (n, 2)
    covs : ndarray, shape (n, 2, 2)
    rng : numpy.random.Generator
    df : float
        Degrees of freedom of the Student-t.
    widen : float
        The t's scale matrix is ``widen * covs[i]``.

    Returns
    -------
    log_px, se : ndarray, shape (n,)
        ``log`` of the mean weight, and its standard error ``sd(w) / (mean(w) sqrt(S))``
        (delta method), nats.
    """
    dtype = next(iter(params.values())).dtype
    log_px, se = np.empty(len(x)), np.empty(len(x))
    for i, (image, mean, cov) in enumerate(zip(np.asarray(x, dtype=dtype), means, covs)):
        proposal = stats.multivariate_t(loc=mean, shape=widen * np.asarray(cov), df=df)
        z = np.asarray(proposal.rvs(size=n_samples, random_state=rng), dtype=dtype)
        log_w = np.empty(n_samples)
        for s in range(0, n_samples, max_rows):
            zs = z[s:s + max_rows]
            decoded = decode(params, zs, config)
            log_joint = -reconstruction_nll(decoded, image[None, :], params, config) + log_std_normal(zs)
            log_w[s:s + max_rows] = log_joint - proposal.logpdf(zs.astype(np.float64))
        w = np.exp(log_w - log_w.max())
        log_px[i] = np.log(w.mean()) + log_w.max()
        se[i] = w.std(ddof=1) / (w.mean() * np.sqrt(n_samples))
    return log_px, se


# ---------------------------------------------------------------- importance weights and IWAE_K
def log_weights(params, x, config, rng, n_samples, max_rows=8192):
    """``log w_k = log p(x, z_k) - log q(z_k|x)`` for ``z_k ~ q(z|x)``, by the core, in chunks.

    Returns
    -------
    ndarray, shape (n, n_samples)
    """
    dtype = next(iter(params.values())).dtype
    out = np.empty((len(x), n_samples))
    per_call = max(1, max_rows // len(x))
    for s in range(0, n_samples, per_call):
        k = min(per_call, n_samples - s)
        eps = rng.standard_normal((len(x), k, config.n_latent)).astype(dtype)
        out[:, s:s + k] = log_importance_weights(params, np.asarray(x, dtype=dtype), config, eps)
    return out


def weight_tail_onset(params, x, config, q, n_directions=8, bulk=4.0, max_radius=60.0, step=0.25):
    r"""Where the second moment of the weights ``w = p(x, z) / q(z)`` starts to diverge, in ``q``'s standard deviations.

    ``E_q[w^2] = \int p(x, z)^2 / q(z)\, dz``. Along ``n_directions`` rays ``z = m + u L (\cos a, \sin a)``
    from ``q``'s mean (``u`` in standard deviations of ``q``) the log-integrand
    ``2 log p(x, z) - log q(z)`` is computed for ``u`` from 0 to ``max_radius``. On each ray the
    onset is the smallest ``u`` from which on it stays above its largest value over ``q``'s bulk,
    ``u <= bulk`` (all rays), up to ``max_radius``; the smallest onset over the rays is returned
    (``inf`` if no ray ends above the bulk). ``q`` puts mass ``exp(-u^2 / 2)`` beyond
    Mahalanobis radius ``u``.

    Parameters
    ----------
    x : ndarray, shape (n_pixels,)
        One image.
    q : GaussianQ

    Returns
    -------
    float
    """
    u = np.arange(0.0, max_radius + step / 2, step)
    angle = 2 * np.pi * np.arange(n_directions) / n_directions
    directions = np.column_stack([np.cos(angle), np.sin(angle)]) @ q.chol.T  # (n_directions, 2)
    z = (q.mean + u[None, :, None] * directions[:, None, :]).reshape(-1, 2)
    log_joint = log_likelihood_on_grid(params, np.asarray(x)[None, :], config, z)[0] + log_std_normal(z)
    integrand = (2 * log_joint - log_gaussian(z, q)).reshape(n_directions, len(u))
    above = integrand > integrand[:, u <= bulk].max()
    onsets = [u[len(u) - np.argmin(row[::-1])] if row[-1] and not row.all() else np.inf for row in above]
    return float(min(onsets))


def iwae_bounds(log_w, ks):
    """``IWAE_K = log (1/K) sum_k w_k`` from disjoint groups of ``K`` weights: mean and standard error.

    Parameters
    ----------
    log_w : ndarray, shape (n, S)
        Independent log importance weights per image.
    ks : sequence of int
        Each ``K`` needs at least two groups: ``2 K <= S``.

    Returns
    -------
    mean, se : ndarray, shape (n, len(ks))
        Mean of the ``S // K`` group estimates and its standard error.
    """
    n, n_samples = log_w.shape
    means, ses = np.empty((n, len(ks))), np.empty((n, len(ks)))
    for j, k in enumerate(ks):
        groups = n_samples // k
        if groups < 2:
            raise ValueError(f"K = {k} needs at least {2 * k} weights per image, got {n_samples}")
        estimates = logsumexp(log_w[:, :groups * k].reshape(n, groups, k), axis=2) - np.log(k)
        means[:, j] = estimates.mean(axis=1)
        ses[:, j] = estimates.std(axis=1, ddof=1) / np.sqrt(groups)
    return means, ses
