r"""Latent-variable models whose evidence ``log p(x)`` and posterior ``p(z | x)`` are known.

They exist to check the decomposition, for any approximate posterior ``q(z)``,

.. math:: \log p(x) = \mathrm{ELBO}(q) + \mathrm{KL}\big(q(z) \,\|\, p(z \mid x)\big),

with ``q(z) = N(mu, diag(exp(log_var)))`` (``std = exp(0.5 * log_var)``, as everywhere
in vaelib). Two models:

- **linear-Gaussian** (probabilistic PCA): ``z ~ N(0, I_L)``,
  ``x | z ~ N(W z + b, sigma^2 I_D)``. Evidence, posterior and ELBO in closed form.
  ``W`` has shape ``(D, L)`` as in the maths, so for rows ``z`` the decoder mean is
  ``z @ W.T + b``.
- **tanh-Bernoulli**: one latent ``z ~ N(0, 1)``,
  ``x_d | z ~ Bernoulli(sigmoid(a_d tanh(z) + c_d))``. Evidence and posterior by
  quadrature on a fixed grid of ``z``; the ELBO and the KL by quadrature on a grid
  fitted to ``q``. Its posterior is not Gaussian, so no Gaussian ``q`` closes the gap.

Plus :func:`gaussian_kl`, the KL between two Gaussians with full covariances.
All values are in nats; nothing here draws random numbers.
"""

import numpy as np
from scipy.special import logsumexp

from vaelib.core.gaussian import LOG_2PI, kl_std_normal, log_normal, log_std_normal
from vaelib.core.likelihoods import bernoulli_nll_from_logits, gaussian_nll


# ---------------------------------------------------------------- Gaussians
def _log_det_from_cholesky(chol):
    """``log det S`` from the Cholesky factor of ``S``; shape (..., k, k) -> (...)."""
    return 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def gaussian_kl(m1, S1, m2, S2):
    r"""``KL(N(m1, S1) || N(m2, S2))`` for full covariance matrices.

    .. math:: \mathrm{KL} = \tfrac12\Big(\operatorname{tr}(S_2^{-1}S_1)
              + (m_2-m_1)^\top S_2^{-1}(m_2-m_1) - k + \log\det S_2 - \log\det S_1\Big)

    Not symmetric in its two arguments.

    Parameters
    ----------
    m1, m2 : ndarray, shape (..., k)
    S1, S2 : ndarray, shape (..., k, k)
        Symmetric positive definite. All four broadcast against each other.

    Returns
    -------
    ndarray, shape (...), in nats, >= 0; zero only when the two Gaussians are equal.
    """
    m1, m2 = np.asarray(m1, float), np.asarray(m2, float)
    chol1, chol2 = np.linalg.cholesky(S1), np.linalg.cholesky(S2)
    k = m1.shape[-1]
    a = np.linalg.solve(chol2, chol1)                       # L2^{-1} L1
    d = np.linalg.solve(chol2, (m2 - m1)[..., None])[..., 0]  # L2^{-1} (m2 - m1)
    trace = np.sum(a * a, axis=(-2, -1))
    mahalanobis = np.sum(d * d, axis=-1)
    return 0.5 * (trace + mahalanobis - k + _log_det_from_cholesky(chol2) - _log_det_from_cholesky(chol1))


def diag_covariance(log_var):
    """The covariance matrix ``diag(exp(log_var))``; shape (..., k) -> (..., k, k)."""
    var = np.exp(log_var)
    return var[..., None] * np.eye(var.shape[-1])


# ---------------------------------------------------------------- linear-Gaussian model
def linear_gaussian_marginal(W, b, sigma):
    """Mean and covariance of ``p(x) = N(b, W W^T + sigma^2 I)``.

    Parameters
    ----------
    W : ndarray, shape (D, L)
    b : ndarray, shape (D,)
    sigma : float
        Decoder standard deviation, shared by every pixel.

    Returns
    -------
    mean : ndarray, shape (D,)
    cov : ndarray, shape (D, D)
    """
    return np.asarray(b, float), W @ W.T + sigma**2 * np.eye(W.shape[0])


def linear_gaussian_log_evidence(x, W, b, sigma):
    r"""``log p(x) = log N(x | b, W W^T + sigma^2 I)`` in closed form.

    .. math:: \log p(x) = -\tfrac12\big(D\log 2\pi + \log\det C + (x-b)^\top C^{-1}(x-b)\big),
              \quad C = W W^\top + \sigma^2 I

    Parameters
    ----------
    x : ndarray, shape (..., D)
    W : ndarray, shape (D, L)
    b : ndarray, shape (D,)
    sigma : float

    Returns
    -------
    ndarray, shape (...), in nats. A log-*density*: it can be positive.
    """
    mean, cov = linear_gaussian_marginal(W, b, sigma)
    chol = np.linalg.cholesky(cov)
    r = np.linalg.solve(chol, (np.asarray(x, float) - mean)[..., None])[..., 0]
    return -0.5 * (W.shape[0] * LOG_2PI + _log_det_from_cholesky(chol) + np.sum(r * r, axis=-1))


def linear_gaussian_log_joint(x, z, W, b, sigma):
    """``log p(x, z) = log p(x | z) + log p(z)``.

    Parameters
    ----------
    x : ndarray, shape (..., D)
    z : ndarray, shape (..., L)
        Broadcasts against ``x`` over the leading axes.
    W, b, sigma : see :func:`linear_gaussian_log_evidence`

    Returns
    -------
    ndarray, shape (...)
    """
    x = np.asarray(x, float)
    return -gaussian_nll(z @ W.T + b, x, np.log(sigma)) + log_std_normal(z)


def linear_gaussian_posterior(x, W, b, sigma):
    r"""The exact posterior ``p(z | x) = N(mean, cov)``.

    .. math:: \mathrm{cov} = \big(I + W^\top W/\sigma^2\big)^{-1}, \qquad
              \mathrm{mean} = \mathrm{cov}\, W^\top (x - b)/\sigma^2

    Parameters
    ----------
    x : ndarray, shape (..., D)
    W : ndarray, shape (D, L)
    b : ndarray, shape (D,)
    sigma : float

    Returns
    -------
    mean : ndarray, shape (..., L)
    cov : ndarray, shape (L, L)
        The same for every ``x``.
    """
    n_latent = W.shape[1]
    cov = np.linalg.inv(np.eye(n_latent) + W.T @ W / sigma**2)
    cov = 0.5 * (cov + cov.T)
    mean = (np.asarray(x, float) - b) @ W @ cov / sigma**2  # cov is symmetric
    return mean, cov


def linear_gaussian_elbo(x, mu, log_var, W, b, sigma):
    r"""The ELBO of ``q(z) = N(mu, diag(exp(log_var)))`` in closed form.

    ``ELBO = E_q[log p(x | z)] - KL(q || N(0, I))``; the expectation of the
    Gaussian log-likelihood (a quadratic in ``z``) is exact:

    .. math:: \mathbb{E}_q[\log p(x\mid z)] = \log N(x \mid W\mu + b, \sigma^2 I)
              - \frac{1}{2\sigma^2}\sum_j \lVert W_{:,j}\rVert^2 e^{\ell_j}

    Parameters
    ----------
    x : ndarray, shape (..., D)
    mu, log_var : ndarray, shape (..., L)
        Broadcast against ``x`` over the leading axes (one ``x``, many ``q``, or the reverse).
    W : ndarray, shape (D, L)
    b : ndarray, shape (D,)
    sigma : float

    Returns
    -------
    ndarray, shape (...), in nats.
    """
    x = np.asarray(x, float)
    spread = np.sum(np.exp(log_var) * np.sum(W * W, axis=0), axis=-1) / (2 * sigma**2)
    expected_log_lik = -gaussian_nll(mu @ W.T + b, x, np.log(sigma)) - spread
    return expected_log_lik - kl_std_normal(mu, log_var)


def linear_gaussian_kl_to_posterior(x, mu, log_var, W, b, sigma):
    """``KL(q || p(z | x))`` for ``q = N(mu, diag(exp(log_var)))``, from the exact posterior.

    Parameters
    ----------
    x : ndarray, shape (..., D)
    mu, log_var : ndarray, shape (..., L)
    W, b, sigma : see :func:`linear_gaussian_elbo`

    Returns
    -------
    ndarray, shape (...), in nats, >= 0.
    """
    post_mean, post_cov = linear_gaussian_posterior(x, W, b, sigma)
    return gaussian_kl(mu, diag_covariance(np.asarray(log_var, float)), post_mean, post_cov)


# ---------------------------------------------------------------- tanh-Bernoulli model
#: The grid on which the tanh-Bernoulli evidence is integrated: the prior N(0, 1) has
#: mass below 1e-30 outside [-12, 12], and the likelihood is at most 1.
PRIOR_GRID = np.linspace(-12.0, 12.0, 2401)
#: Standardised nodes ``t`` for expectations under ``q``: ``z = mu + std * t``.
STANDARD_GRID = np.linspace(-12.0, 12.0, 1201)


def tanh_bernoulli_logits(z, a, c):
    """Decoder logits ``a * tanh(z) + c``.

    Parameters
    ----------
    z : ndarray, shape (...)
        The scalar latent.
    a, c : ndarray, shape (D,)

    Returns
    -------
    ndarray, shape (..., D)
    """
    return a * np.tanh(np.asarray(z, float))[..., None] + c


def tanh_bernoulli_log_joint(x, z, a, c):
    """``log p(x, z) = log p(x | z) + log N(z | 0, 1)``.

    Parameters
    ----------
    x : ndarray, shape (..., D)
        Binary pixels; broadcasts against ``z.shape + (D,)``.
    z : ndarray, shape (...)
    a, c : ndarray, shape (D,)

    Returns
    -------
    ndarray, shape (...)
    """
    z = np.asarray(z, float)
    return -bernoulli_nll_from_logits(tanh_bernoulli_logits(z, a, c), x) + log_std_normal(z[..., None])


def _log_trapezoid(log_f, h):
    """``log(integral of f)`` by the trapezoid rule on a uniform grid, from ``log f`` on the last axis."""
    log_w = np.full(log_f.shape[-1], np.log(h))
    log_w[[0, -1]] -= np.log(2.0)
    return logsumexp(log_f + log_w, axis=-1)


def tanh_bernoulli_log_evidence(x, a, c, z_grid=PRIOR_GRID):
    r"""``log p(x) = log \int p(x | z) N(z | 0, 1) dz`` by the trapezoid rule.

    The integrand is smooth and decays like the prior, so the trapezoid rule on a
    uniform grid is accurate to round-off (about 1e-13 on the default grid).

    Parameters
    ----------
    x : ndarray, shape (..., D)
    a, c : ndarray, shape (D,)
    z_grid : ndarray, shape (n_grid,)
        Uniformly spaced, covering the prior.

    Returns
    -------
    ndarray, shape (...), in nats; always < 0 (``p(x)`` is a probability of a discrete outcome).
    """
    x = np.asarray(x, float)
    log_f = tanh_bernoulli_log_joint(x[..., None, :], z_grid, a, c)
    return _log_trapezoid(log_f, z_grid[1] - z_grid[0])


def tanh_bernoulli_log_posterior(z, x, a, c):
    """``log p(z | x) = log p(x, z) - log p(x)``, with the evidence by quadrature.

    Parameters
    ----------
    z : ndarray, shape (...)
    x : ndarray, shape (D,)
    a, c : ndarray, shape (D,)

    Returns
    -------
    ndarray, shape (...)
    """
    return tanh_bernoulli_log_joint(x, z, a, c) - tanh_bernoulli_log_evidence(x, a, c)


def _q_nodes(mu, log_var, t=STANDARD_GRID):
    """Nodes ``z = mu + std * t`` and weights for ``E_q[f] = sum_i w_i f(z_i)``.

    The trapezoid rule in the standardised variable ``t``; accurate for every
    width of ``q`` because the grid scales with ``std``. Shapes: (...) -> (..., n).
    """
    mu, log_var = np.asarray(mu, float), np.asarray(log_var, float)
    std = np.exp(0.5 * log_var)
    z = mu[..., None] + std[..., None] * t
    w = np.exp(-0.5 * (LOG_2PI + t * t)) * (t[1] - t[0])
    return z, w


def tanh_bernoulli_elbo(x, mu, log_var, a, c):
    r"""The ELBO of ``q(z) = N(mu, exp(log_var))`` by quadrature.

    ``ELBO = E_q[log p(x | z)] - KL(q || N(0, 1))``: the expectation by the
    trapezoid rule on a grid fitted to ``q`` (:data:`STANDARD_GRID`), the KL in
    closed form. It never uses ``p(x)``.

    Parameters
    ----------
    x : ndarray, shape (D,)
    mu, log_var : ndarray, shape (...)
        The scalar latent's mean and log-variance under ``q``.
    a, c : ndarray, shape (D,)

    Returns
    -------
    ndarray, shape (...), in nats.
    """
    mu, log_var = np.asarray(mu, float), np.asarray(log_var, float)
    z, w = _q_nodes(mu, log_var)
    log_lik = -bernoulli_nll_from_logits(tanh_bernoulli_logits(z, a, c), x)
    return np.sum(w * log_lik, axis=-1) - kl_std_normal(mu[..., None], log_var[..., None])


def tanh_bernoulli_kl_to_posterior(x, mu, log_var, a, c):
    r"""``KL(q || p(z | x)) = E_q[log q(z) - log p(z | x)]`` by quadrature.

    The posterior's log-density is :func:`tanh_bernoulli_log_posterior` (normalised by
    the evidence on :data:`PRIOR_GRID`); the expectation is on the grid fitted to ``q``.

    Parameters
    ----------
    x : ndarray, shape (D,)
    mu, log_var : ndarray, shape (...)
    a, c : ndarray, shape (D,)

    Returns
    -------
    ndarray, shape (...), in nats, >= 0.
    """
    mu, log_var = np.asarray(mu, float), np.asarray(log_var, float)
    z, w = _q_nodes(mu, log_var)
    log_q = log_normal(z[..., None], mu[..., None, None], log_var[..., None, None])
    return np.sum(w * (log_q - tanh_bernoulli_log_posterior(z, x, a, c)), axis=-1)
