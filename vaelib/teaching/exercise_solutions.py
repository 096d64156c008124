"""SOLUTIONS to the checked exercises of the notebooks: look here only after trying.

Each function below answers the exercise of the same name (the stubs are in the notebooks'
exercise sections; the checks are in :mod:`vaelib.teaching.exercises`, which does not import this
module: its expected values come from :mod:`vaelib.core` and :mod:`scipy`). They are written the way
a learner would write them, in plain NumPy, and keep float32 inputs in float32 (constants are Python
floats, which do not promote an array).
"""

import math

import numpy as np

LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------- notebook 01, the sign of the ELBO
def loss_from_elbo_terms(log_px_given_z, kl, beta):
    """The loss = batch mean of (reconstruction + beta * KL), with reconstruction = -log p(x|z)."""
    return float(np.mean(-log_px_given_z + beta * kl))


def monte_carlo_elbo(log_px_given_z, z, mu, log_var):
    """ELBO ~ (1/S) sum_s [log p(x|z_s) + log p(z_s) - log q(z_s|x)] (Kingma & Welling's equation 2)."""
    log_pz = -0.5 * np.sum(LOG_2PI + z**2, axis=-1)                                  # (S, B)
    log_qz = -0.5 * np.sum(LOG_2PI + log_var + (z - mu) ** 2 / np.exp(log_var), axis=-1)   # mu broadcasts over S
    return np.mean(log_px_given_z + log_pz - log_qz, axis=0)


# ---------------------------------------------------------------- notebook 02, the KL decomposition
def log_evidence_closed_form(x, W, b, sigma):
    """log N(x | b, C) with C = W W^T + sigma^2 I."""
    D = len(b)
    C = W @ W.T + sigma**2 * np.eye(D)
    _, log_det = np.linalg.slogdet(C)
    r = x - b
    return float(-0.5 * (D * LOG_2PI + log_det + r @ np.linalg.solve(C, r)))


def elbo_closed_form(x, mu, log_var, W, b, sigma):
    """E_q[log p(x|z)] - KL(q || N(0, I)); E_q |x - W z - b|^2 = |x - W mu - b|^2 + sum_j |W_j|^2 var_j."""
    D = len(b)
    var = np.exp(log_var)
    expected_sq = np.sum((x - W @ mu - b) ** 2) + np.sum(np.sum(W**2, axis=0) * var)
    expected_log_lik = -0.5 * D * (LOG_2PI + 2 * math.log(sigma)) - expected_sq / (2 * sigma**2)
    kl = 0.5 * np.sum(var + mu**2 - 1 - log_var)
    return float(expected_log_lik - kl)


# ---------------------------------------------------------------- notebook 03, the Gaussian likelihood
def gaussian_log_likelihood(x, mean, sigma):
    """-|x - m|^2 / (2 sigma^2) - D log sigma - (D/2) log 2 pi, per image."""
    D = x.shape[-1]
    return -np.sum((x - mean) ** 2, axis=-1) / (2 * sigma**2) - D * math.log(sigma) - 0.5 * D * LOG_2PI


def best_sigma(x, mean):
    """sigma_hat = sqrt(|x - m|^2 / D): the root of the mean squared residual, measured from 0."""
    return np.sqrt(np.mean((x - mean) ** 2, axis=-1))


# ---------------------------------------------------------------- notebook 04, reparameterisation
def reparam_sample(mu, log_var, eps):
    """z = mu + std * eps with std = exp(log_var / 2)."""
    return mu + np.exp(0.5 * log_var) * eps


def log_q_of_sample(mu, log_var, eps):
    """log q(z) = log p(eps) - log |det dz/deps| = log N(eps | 0, I) - sum_j log_var_j / 2."""
    return -0.5 * np.sum(LOG_2PI + eps**2, axis=-1) - 0.5 * np.sum(log_var, axis=-1)


# ---------------------------------------------------------------- notebook 05, the Gaussian KL
def kl_closed_form(mu, log_var):
    """(1/2) sum_j (exp(l_j) + mu_j^2 - 1 - l_j); expm1 keeps it >= 0 for tiny log_var."""
    return 0.5 * np.sum(np.expm1(log_var) + mu**2 - log_var, axis=-1)


def kl_gradients(mu, log_var):
    """d KL / d mu = mu, d KL / d log_var = (exp(log_var) - 1) / 2."""
    return mu.copy(), 0.5 * np.expm1(log_var)


# ---------------------------------------------------------------- notebook 06, backprop by hand
def bernoulli_nll_and_gradient(logits, x):
    """nll = sum_d softplus(l_d) - x_d l_d, with softplus(l) = max(l, 0) + log1p(exp(-|l|)); dl = sigmoid(l) - x."""
    softplus = np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))
    nll = np.sum(softplus - x * logits, axis=-1)
    sigmoid = 0.5 + 0.5 * np.tanh(0.5 * logits)       # never overflows
    return nll, sigmoid - x


def linear_backward_pass(dout, x, W):
    """dx = dout W^T, dW = x^T dout, db = sum over the batch of dout."""
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


def reparam_backward_pass(dz, log_var, eps):
    """dmu = dz, dlog_var = dz * eps * std / 2 (std = exp(log_var / 2), d std / d log_var = std / 2)."""
    return dz.copy(), dz * eps * 0.5 * np.exp(0.5 * log_var)


# ---------------------------------------------------------------- notebook 07, training on digits
def iwae_estimate(log_w):
    """log (1/K) sum_k exp(log w_k), with the largest log-weight factored out so nothing underflows."""
    K = log_w.shape[1]
    top = np.max(log_w, axis=1, keepdims=True)
    return top[:, 0] + np.log(np.sum(np.exp(log_w - top), axis=1)) - math.log(K)


# ---------------------------------------------------------------- notebook 08, the KL weight
def sigma_for_beta(beta, sigma=1.0, n_pixels=784, pixel_reduction="sum"):
    """sigma' = sigma * sqrt(beta) (pixels summed), sigma * sqrt(beta * D) (pixels averaged).

    The reconstruction term is |x - m|^2 / (2 sigma^2) (times 1/D for a mean); dividing the loss by
    beta leaves the minimisers alone and gives |x - m|^2 / (2 sigma^2 beta [D]) + KL.
    """
    weight = n_pixels if pixel_reduction == "mean" else 1
    return sigma * math.sqrt(beta * weight)
