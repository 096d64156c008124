"""The reparameterisation: log_var is a log-variance, and the gradients are pathwise."""

import numpy as np

from vaelib.core.gradcheck import numerical_gradient, relative_error
from vaelib.core.reparam import reparam_backward, reparam_forward


def test_samples_have_mean_mu_and_variance_exp_log_var(rng):
    mu, log_var = np.array([[1.0, -2.0, 0.5]]), np.array([[0.0, np.log(4.0), -2.0]])
    n = 200_000
    z, _ = reparam_forward(mu, log_var, rng.standard_normal((n, 3)))
    var = np.exp(log_var[0])
    # standard errors: of the mean sqrt(var/n); of the variance var*sqrt(2/n)
    assert np.all(np.abs(z.mean(axis=0) - mu[0]) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(z.var(axis=0) - var) < 5 * var * np.sqrt(2 / n))
    # and not the variance one would get by reading log_var as a log standard deviation
    assert abs(z.var(axis=0)[1] - 16.0) > 10


def test_reparam_gradients(rng):
    mu, log_var, eps = rng.standard_normal((3, 4, 2))
    dz = rng.standard_normal((4, 2))
    dmu, dlv = reparam_backward(dz, reparam_forward(mu, log_var, eps)[1])
    f = lambda: float(np.sum(reparam_forward(mu, log_var, eps)[0] * dz))
    assert relative_error(dmu, numerical_gradient(f, mu)) < 1e-7
    assert relative_error(dlv, numerical_gradient(f, log_var)) < 1e-7
