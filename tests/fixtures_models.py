"""Small models shared by several test modules (imported as plain functions; pytest fixtures wrap them)."""

import numpy as np

from vaelib.core.vae import VAEConfig, init_params


def linear_gaussian_vae():
    """A VAE whose decoder is affine on the grid: ``x | z ~ N(W z + b, sigma^2 I)``, and three images.

    A Gaussian decoder whose ReLU units are all switched on (a large first-layer bias), so the
    model is linear-Gaussian and its evidence and posterior are known in closed form
    (:mod:`vaelib.teaching.exact_models`).

    Returns
    -------
    config : VAEConfig
    params : dict of str -> ndarray
    x : ndarray, shape (3, 6)
    W : ndarray, shape (6, 2)
    b : ndarray, shape (6,)
    """
    config = VAEConfig(n_pixels=6, hidden=(5,), n_latent=2, likelihood="gaussian", sigma=0.3)
    rng = np.random.default_rng(1)
    params = init_params(config, rng)
    params["dec.W0"], params["dec.W1"] = 2.0 * params["dec.W0"], 3.0 * params["dec.W1"]  # a narrow posterior
    params["dec.b0"] = np.full(5, 50.0)  # every ReLU unit on for |z| < 15: the decoder is affine
    params["enc.W0"] = 0.01 * params["enc.W0"]  # keeps the encoder's q(z|x) where the decoder is affine
    W = (params["dec.W0"] @ params["dec.W1"]).T  # (D, L), as in exact_models
    b = params["dec.b0"] @ params["dec.W1"] + params["dec.b1"]
    z = rng.standard_normal((3, 2))
    x = z @ W.T + b + config.sigma * rng.standard_normal((3, 6))
    return config, params, x, W, b
