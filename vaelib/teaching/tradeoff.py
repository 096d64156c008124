"""Rate against distortion, measured on sweeps of trained VAEs; and where the rate goes.

A sweep is any list of :class:`~vaelib.teaching.digit_models.ModelSpec` s on one data set.
:func:`train_models` trains each model once per machine and then reads it from the model
cache; :func:`measure_model` measures one model; :func:`measure_sweep` does both for a list
and stacks the results into one table. The sweeps of notebooks 03 and 08 are such lists:

- the **beta sweep**: :data:`~vaelib.teaching.digit_models.DIGITS_20D` (784-400-20,
  Bernoulli decoder, binarised digits) with the KL weight ``beta`` replaced, from near
  an autoencoder (``beta = 0.01``) to past posterior collapse (``beta = 20``);
- the **sigma sweeps**: a Gaussian decoder of fixed ``sigma`` on grey digits (``beta = 1``),
  with the same architecture (:data:`GREY_20D`, notebook 08) or a small one
  (:data:`GREY_10D`, notebook 03).

For every model and image, in nats (summed over pixels or latent dimensions)::

    rate        R(x) = KL(q(z|x) || p(z))             closed form, no noise
    distortion  D(x) = -E_q(z|x)[log p(x|z)]          Monte Carlo over S draws z ~ q(z|x)

A model trained with weight ``beta`` is trained to minimise the mean of ``D + beta * R``
over its training images (each step with one draw ``z ~ q(z|x)``). With a Gaussian
decoder of fixed ``sigma``, ``D = |x - m(z)|^2 / (2 sigma^2) + const``, so it minimises,
up to the factor ``1 / sigma^2`` and a constant, ``|x - m|^2 / 2 + sigma^2 * R``: its
plane is (rate, half the squared error) and its weight ``sigma^2`` (notebook 03).

Where the rate goes (Hoffman & Johnson, "ELBO surgery", 2016). For ``N`` images with
encodings ``q(z|x_n)`` and their average, the aggregate posterior
``q(z) = (1/N) sum_n q(z|x_n)``::

    (1/N) sum_n KL(q(z|x_n) || p(z)) = I_q(x; z) + KL(q(z) || p(z)),

``I_q`` the mutual information of ``x`` and ``z`` under ``q(x, z) = (1/N) q(z|x_n)``;
``0 <= I_q <= log N``. :func:`aggregate_kl_split` estimates both terms.
"""

from dataclasses import replace

import numpy as np
from scipy.integrate import trapezoid
from scipy.special import entr, logsumexp

from vaelib.core.evaluate import active_units
from vaelib.core.gaussian import LOG_2PI, kl_std_normal, log_normal, log_std_normal
from vaelib.core.reparam import reparam_forward
from vaelib.core.vae import VAEConfig, decode, encode, reconstruction_nll
from vaelib.teaching.digit_figures import decoder_means
from vaelib.teaching.digit_models import DIGITS_20D, ModelSpec, data_for, trained

#: The KL weights of the beta sweep: near an autoencoder to past posterior collapse.
BETAS = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
#: Epochs per model of the beta sweep.
BETA_EPOCHS = 30
#: The decoder standard deviations of the sigma sweep (pixels in [0, 1]); powers of 2,
#: so that ``beta = sigma^2`` is exact in binary floating point.
SIGMAS = (0.125, 0.25, 0.5, 1.0, 2.0)
#: Epochs per model of the sigma sweep.
SIGMA_EPOCHS = 20

#: Draws ``z ~ q(z|x)`` per image with which :func:`measure_sweep` estimates the distortion.
MEASURE_DRAWS = 2
#: A latent unit is active when ``Var_x(mu_j(x))`` exceeds this (:func:`vaelib.core.evaluate.active_units`).
ACTIVE_THRESHOLD = 0.01

#: 784-400-20 with a Gaussian decoder (fixed ``sigma = 1``) on grey digits; ``with_config(sigma=...)``.
GREY_20D = ModelSpec(VAEConfig(hidden=(400,), n_latent=20, likelihood="gaussian", sigma=1.0), data="grey",
                     epochs=SIGMA_EPOCHS)
#: 784-128-10 with a Gaussian decoder (fixed ``sigma = 1``) on grey digits, 5 epochs of Adam at ``lr = 3e-3``
#: in batches of 100: the small models of notebook 03's sigma sweep (a few seconds each).
GREY_10D = ModelSpec(VAEConfig(hidden=(128,), n_latent=10, likelihood="gaussian", sigma=1.0), data="grey",
                     epochs=5, lr=3e-3, batch_size=100)


def beta_spec(beta, epochs=BETA_EPOCHS, seed=0, base=DIGITS_20D):
    """The model of the beta sweep at ``beta``: ``base`` with ``beta``, ``epochs`` and ``seed`` replaced."""
    return replace(base.with_config(beta=float(beta)), epochs=epochs, seed=seed)


def sigma_spec(sigma, beta=1.0, epochs=None, seed=0, base=GREY_20D):
    """A Gaussian-decoder model with fixed ``sigma`` and KL weight ``beta`` (``base`` changed accordingly).

    ``epochs`` defaults to ``base.epochs``. ``sigma_spec(1.0, beta=b)`` trains on
    ``|x - m|^2 / 2 + b * KL`` (plus a constant): the squared-error loss with KL weight ``b``.
    """
    return replace(base.with_config(sigma=float(sigma), beta=float(beta)), epochs=epochs or base.epochs, seed=seed)


# ---------------------------------------------------------------- per-model measurements
def model_terms(params, x, config, eps, batch_size=500):
    """Rate, distortion and squared error of one model, per image.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (n, n_pixels)
    config : VAEConfig
    eps : ndarray, shape (S, n, n_latent)
        Standard normal noise: ``S`` draws ``z = mu + std * eps ~ q(z|x)`` per image, ``S >= 2``
        (the variance over the draws needs two).
    batch_size : int
        Images encoded and decoded at once.

    Returns
    -------
    dict of str -> ndarray, float64
        ``"rate"`` (n,): ``KL(q(z|x) || p(z))``, closed form, nats;
        ``"kl_per_dim"`` (n, n_latent): its terms, one per latent dimension;
        ``"distortion"`` (n,): ``-log p(x|z)`` averaged over the ``S`` draws, nats;
        ``"distortion_var"`` (n,): the variance of ``-log p(x|z)`` over the draws (``ddof=1``);
        ``"squared_error"`` (n,): ``|x - m(z)|^2`` summed over pixels, averaged over the draws
        (Gaussian decoder; NaN for a Bernoulli decoder);
        ``"mu"``, ``"log_var"`` (n, n_latent): the encodings.
    """
    dtype = next(iter(params.values())).dtype
    n_draws = eps.shape[0]
    if n_draws < 2 or eps.shape[1] != len(x):
        raise ValueError(f"eps must have shape (S >= 2, {len(x)}, n_latent), got {eps.shape}")
    parts = {k: [] for k in ("rate", "kl_per_dim", "distortion", "distortion_var", "squared_error", "mu", "log_var")}
    for start in range(0, len(x), batch_size):
        xb = np.asarray(x[start : start + batch_size], dtype=dtype)
        mu, log_var = encode(params, xb, config)
        z, _ = reparam_forward(mu[None], log_var[None], eps[:, start : start + len(xb)].astype(dtype))
        z = z.reshape(-1, config.n_latent)                                   # (S * batch, n_latent)
        x_rep = np.broadcast_to(xb, (n_draws, *xb.shape)).reshape(-1, xb.shape[1])
        out = decode(params, z, config)                                      # logits or Gaussian means
        nll = reconstruction_nll(out, x_rep, params, config).reshape(n_draws, -1)
        if config.likelihood == "gaussian":
            se = np.sum((x_rep - out) ** 2, axis=-1, dtype=np.float64).reshape(n_draws, -1)
        else:
            se = np.full((n_draws, len(xb)), np.nan)                         # not needed; saves a pass of exp
        # (batch, n_latent): the KL of each dimension, as kl_std_normal summed over a trailing axis of length 1
        kl_dims = kl_std_normal(mu[..., None].astype(np.float64), log_var[..., None].astype(np.float64))
        nll = nll.astype(np.float64)
        for k, v in (("rate", kl_dims.sum(axis=1)), ("kl_per_dim", kl_dims), ("distortion", nll.mean(axis=0)),
                     ("distortion_var", nll.var(axis=0, ddof=1)), ("squared_error", se.mean(axis=0)),
                     ("mu", mu.astype(np.float64)), ("log_var", log_var.astype(np.float64))):
            parts[k].append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def sweep_noise(n_draws, n_images, n_latent, seed):
    """The noise every model of a sweep is measured with: the same for all, so that their differences carry
    little Monte Carlo noise.

    Returns ndarray, shape (n_draws, n_images, n_latent), float32.
    """
    return np.random.default_rng(seed).standard_normal((n_draws, n_images, n_latent)).astype(np.float32)


def train_models(specs, *, cache=None, labels=None, progress=True):
    """Every model of ``specs``, in order: read from the model cache, or trained now and stored there.

    Parameters
    ----------
    specs : sequence of ModelSpec
    cache : ModelCache, optional
        Default: ``ModelCache()`` at its documented location.
    labels : sequence of str, optional
        One per spec, for the line printed when a model is trained.
    progress : bool
        Show a progress bar while a model trains.

    Returns
    -------
    list of CachedModel
        ``params``, ``history`` and ``trained_now`` of each (:func:`vaelib.teaching.digit_models.trained`).
    """
    specs = list(specs)
    labels = [None] * len(specs) if labels is None else list(labels)
    if len(labels) != len(specs):
        raise ValueError(f"{len(labels)} labels for {len(specs)} specs")
    return [trained(spec, cache=cache, label=label, progress=progress) for spec, label in zip(specs, labels)]


def measure_model(params, config, data, eps, z_prior, n_images=8):
    """Rate, distortion and the pictures of one model, on the test and the training images.

    Parameters
    ----------
    params : dict of str -> ndarray
    config : VAEConfig
    data : Dataset
        ``test``, shape (n_test, n_pixels); ``train``, shape (n_train, n_pixels); ``image_shape``.
    eps : dict
        ``eps["test"]``, shape (S, n_test, n_latent), and ``eps["train"]``, shape (S, n_train, n_latent):
        the noise of the ``S`` draws ``z ~ q(z|x)`` per image (:func:`model_terms`).
    z_prior : ndarray, shape (n_samples, n_latent)
        Points ``z ~ p(z)`` at which the decoder's mean is shown as a sample.
    n_images : int
        Test images (the first ones) reconstructed for display.

    Returns
    -------
    dict
        For the test images, means over the images, nats: ``"rate"``, ``"distortion"``,
        ``"half_squared_error"`` (``|x - m|^2 / 2``, squared pixel units; NaN for a Bernoulli decoder),
        ``"distortion_se"`` (the Monte Carlo standard error of the distortion's mean, from the
        variance over draws within each image); the same for the training images with the suffix
        ``"_train"``. ``"kl_per_dim"`` (n_latent,): mean KL of each latent dimension on the test
        images; ``"active_units"`` and ``"unit_variances"`` (n_latent,): see
        :func:`vaelib.core.evaluate.active_units` (threshold :data:`ACTIVE_THRESHOLD`); ``"active"``
        (n_latent,), bool: which units are counted; ``"mu"``, ``"log_var"`` (n_test, n_latent): the
        test encodings; ``"reconstructions"`` (n_images, n_pixels): the decoder mean at ``z = mu(x)``;
        ``"samples"`` (n_samples, n_pixels): the decoder mean at ``z_prior``.
    """
    row = {}
    for suffix, x, noise in (("", data.test, eps["test"]), ("_train", data.train, eps["train"])):
        terms = model_terms(params, x, config, noise)
        row["rate" + suffix] = terms["rate"].mean()
        row["distortion" + suffix] = terms["distortion"].mean()
        row["half_squared_error" + suffix] = terms["squared_error"].mean() / 2
        row["distortion_se" + suffix] = np.sqrt(terms["distortion_var"].mean() / (len(noise) * len(x)))
        if not suffix:
            test_terms = terms
    count, variances = active_units(params, data.test, config, threshold=ACTIVE_THRESHOLD)
    row.update(kl_per_dim=test_terms["kl_per_dim"].mean(axis=0), active_units=count, unit_variances=variances,
               active=variances > ACTIVE_THRESHOLD, mu=test_terms["mu"], log_var=test_terms["log_var"],
               reconstructions=decoder_means(params, test_terms["mu"][:n_images], config),
               samples=decoder_means(params, z_prior, config))
    return row


def measure_sweep(specs, *, n_draws=None, n_images=8, n_samples=8, seed=0, cache=None, labels=None, progress=True):
    """Train (or read from the cache) every model of ``specs`` and measure each with :func:`measure_model`.

    Parameters
    ----------
    specs : sequence of ModelSpec
        Any models that share one data set and one latent dimension.
    n_draws : int, optional
        Draws ``z ~ q(z|x)`` per image for the distortion (the same noise for every model);
        default :data:`MEASURE_DRAWS`. The noise is ``sweep_noise(n_draws, n, n_latent, [seed, 0])``
        for the ``n`` test images and ``[seed, 1]`` for the training images.
    n_images : int
        Test images (the first ones) reconstructed for display.
    n_samples : int
        Samples ``x ~ p(x|z)``, shown as the decoder mean at ``z ~ p(z)`` (the same ``z`` for every model:
        ``sweep_noise(1, n_samples, n_latent, [seed, 2])[0]``).
    seed : int
        Seeds the measurement noise (training has each spec's own seed).
    cache, labels, progress
        As for :func:`train_models`.

    Returns
    -------
    dict
        Every entry of :func:`measure_model`, stacked over the models: a leading axis of length
        ``n_models`` (e.g. ``"rate"`` (n_models,), ``"mu"`` (n_models, n_test, n_latent)).
        Besides: ``"originals"`` (n_images, n_pixels); ``"image_shape"``; ``"specs"``, ``"params"``:
        one per model; ``"trained_now"`` (n_models,), bool.
    """
    specs = list(specs)
    n_draws = MEASURE_DRAWS if n_draws is None else n_draws
    if any(s.data != specs[0].data or s.config.n_latent != specs[0].config.n_latent for s in specs):
        raise ValueError("a sweep's models must share their data and latent dimension")
    data, n_latent = data_for(specs[0]), specs[0].config.n_latent
    eps = {"test": sweep_noise(n_draws, len(data.test), n_latent, [seed, 0]),
           "train": sweep_noise(n_draws, len(data.train), n_latent, [seed, 1])}
    z_prior = sweep_noise(1, n_samples, n_latent, [seed, 2])[0]
    models = train_models(specs, cache=cache, labels=labels, progress=progress)
    rows = [measure_model(model.params, spec.config, data, eps, z_prior, n_images) for spec, model in zip(specs, models)]
    table = {k: np.array([row[k] for row in rows]) for k in rows[0]}
    table.update(originals=np.asarray(data.test[:n_images], dtype=np.float32), image_shape=tuple(data.image_shape),
                 specs=specs, params=[model.params for model in models],
                 trained_now=np.array([model.trained_now for model in models]))
    return table


def beta_sweep(betas=BETAS, *, epochs=BETA_EPOCHS, base=DIGITS_20D, **kwargs):
    """:func:`measure_sweep` over :func:`beta_spec` models; adds ``"beta"`` (n_models,) to the table."""
    betas = _increasing(betas, "betas")
    specs = [beta_spec(b, epochs=epochs, base=base) for b in betas]
    labels = [f"beta = {b:g}" for b in betas]
    return {"beta": betas, **measure_sweep(specs, labels=labels, **kwargs)}


def sigma_sweep(sigmas=SIGMAS, *, epochs=None, base=GREY_20D, **kwargs):
    """:func:`measure_sweep` over :func:`sigma_spec` models (``beta = 1``; ``epochs`` default ``base.epochs``);
    adds ``"sigma"`` (n_models,)."""
    sigmas = _increasing(sigmas, "sigmas")
    specs = [sigma_spec(s, epochs=epochs, base=base) for s in sigmas]
    labels = [f"Gaussian decoder, sigma = {s:g}" for s in sigmas]
    return {"sigma": sigmas, **measure_sweep(specs, labels=labels, **kwargs)}


def _increasing(values, name):
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0 or np.any(np.diff(values) <= 0) or values[0] <= 0:
        raise ValueError(f"{name} must be a non-empty increasing sequence of positive numbers, got {values}")
    return values


def loss_matrix(rate, distortion, weights):
    """``loss[i, j] = distortion[j] + weights[i] * rate[j]``: model ``j`` judged at weight ``i``.

    Parameters
    ----------
    rate, distortion : ndarray, shape (n_models,)
    weights : ndarray, shape (n_weights,)

    Returns
    -------
    ndarray, shape (n_weights, n_models)
    """
    return np.asarray(distortion)[None, :] + np.asarray(weights)[:, None] * np.asarray(rate)[None, :]


# ---------------------------------------------------------------- the aggregate posterior
def log_normal_pairwise(z, mu, log_var):
    r"""``log N(z_s | mu_n, diag(exp(log_var_n)))`` for every pair of a point and a Gaussian.

    :func:`vaelib.core.gaussian.log_normal` on ``z[:, None]``, ``mu[None]``, ``log_var[None]``,
    computed with matrix products instead of an (S, N, L) array: with :math:`\lambda = e^{-\ell}`,

    .. math:: \sum_j (z_j - \mu_j)^2 \lambda_j = (z \odot z)\cdot\lambda - 2\, z \cdot (\mu \odot \lambda)
              + (\mu \odot \mu) \cdot \lambda .

    Parameters
    ----------
    z : ndarray, shape (S, L)
    mu, log_var : ndarray, shape (N, L)

    Returns
    -------
    ndarray, shape (S, N), float64
    """
    z, mu, log_var = (np.asarray(a, dtype=np.float64) for a in (z, mu, log_var))
    precision = np.exp(-log_var)                                              # (N, L)
    quad = (z * z) @ precision.T - 2 * z @ (mu * precision).T + np.sum(mu * mu * precision, axis=1)
    return -0.5 * (quad + np.sum(log_var, axis=1) + mu.shape[1] * LOG_2PI)


def aggregate_kl_split(mu, log_var, n_draws, rng, chunk=1000):
    r"""Split the mean KL into the mutual information and the KL of the aggregate posterior.

    With ``q(z) = (1/N) sum_m q(z|x_m)`` over the ``N`` rows of ``mu``,

    .. math::
        \frac1N\sum_n \mathrm{KL}(q(z|x_n)\,\|\,p(z))
        = \underbrace{\mathbb{E}_{q(x,z)}[\log q(z|x) - \log q(z)]}_{I_q(x;z)}
        + \underbrace{\mathbb{E}_{q(z)}[\log q(z) - \log p(z)]}_{\mathrm{KL}(q(z)\|p(z))}.

    Each expectation is estimated with ``n_draws`` draws ``z ~ q(z|x_n)`` for every ``n``
    (stratified over the images), and ``log q(z)`` is computed exactly, as the log of the
    mixture of all ``N`` encodings. The only error is Monte Carlo error.

    Parameters
    ----------
    mu, log_var : ndarray, shape (N, n_latent)
    n_draws : int, >= 2
    rng : numpy.random.Generator
    chunk : int
        Draws evaluated against all ``N`` encodings at once (memory ``chunk * N``).

    Returns
    -------
    dict of str -> float, nats
        ``"mean_kl"``: the closed-form left-hand side; ``"mutual_information"`` and
        ``"marginal_kl"``: the estimates of the two terms, with standard errors ``"..._se"``;
        ``"mean_kl_mc"``, ``"mean_kl_mc_se"``: their sum, a Monte Carlo estimate of ``"mean_kl"``;
        ``"log_n"``: ``log N``, the largest possible mutual information.
    """
    mu, log_var = np.asarray(mu, dtype=np.float64), np.asarray(log_var, dtype=np.float64)
    n = len(mu)
    if n_draws < 2:
        raise ValueError(f"n_draws must be at least 2 (for the standard errors), got {n_draws}")
    eps = rng.standard_normal((n_draws, n, mu.shape[1]))
    z, _ = reparam_forward(mu[None], log_var[None], eps)                      # (n_draws, N, L)
    z = z.reshape(-1, mu.shape[1])                                            # row k*N + n: draw k of image n
    log_q_own = log_normal(z, np.tile(mu, (n_draws, 1)), np.tile(log_var, (n_draws, 1)))
    log_q_agg = np.concatenate([logsumexp(log_normal_pairwise(z[s : s + chunk], mu, log_var), axis=1)
                                for s in range(0, len(z), chunk)]) - np.log(n)
    log_p = log_std_normal(z)
    terms = {"mutual_information": log_q_own - log_q_agg, "marginal_kl": log_q_agg - log_p,
             "mean_kl_mc": log_q_own - log_p}
    out = {"mean_kl": float(kl_std_normal(mu, log_var).mean()), "log_n": float(np.log(n))}
    for name, values in terms.items():
        values = values.reshape(n_draws, n)
        out[name] = float(values.mean())
        # stratified sampling: the variance of the mean is sum_n Var_n / (n_draws * N^2)
        out[name + "_se"] = float(np.sqrt(values.var(axis=0, ddof=1).sum() / n_draws) / n)
    return out


def marginal_kl_by_quadrature(mu, log_var, grid):
    r"""``KL(q(z_j) || N(0, 1))`` for one latent dimension, by quadrature on a grid.

    ``q(z_j) = (1/N) sum_n N(z_j | mu_n, exp(log_var_n))``, the aggregate posterior's marginal.
    The integral :math:`\int q \log(q/p)\,dz` is the trapezoidal rule on ``grid``.

    Parameters
    ----------
    mu, log_var : ndarray, shape (N,)
        One latent dimension's encodings.
    grid : ndarray, shape (G,), evenly spaced
        Must cover the mixture and resolve its narrowest component.

    Returns
    -------
    float, nats

    Raises
    ------
    ValueError
        If the spacing is above a fifth of the narrowest standard deviation, or the grid
        holds less than ``1 - 1e-6`` of the mixture's mass.
    """
    mu, log_var = np.asarray(mu, dtype=np.float64), np.asarray(log_var, dtype=np.float64)
    h = grid[1] - grid[0]
    if h > 0.2 * np.exp(0.5 * log_var.min()):
        raise ValueError(f"grid spacing {h:g} does not resolve a component of std {np.exp(0.5 * log_var.min()):.3g}")
    log_q = logsumexp(log_normal_pairwise(grid[:, None], mu[:, None], log_var[:, None]), axis=1) - np.log(len(mu))
    q = np.exp(log_q)
    mass = trapezoid(q, grid)
    if abs(mass - 1) > 1e-6:
        raise ValueError(f"the grid holds {mass:.8f} of the mixture's mass; widen it")
    return float(trapezoid(q * (log_q - log_std_normal(grid[:, None])), grid))


def zero_rate_distortion(train, test):
    r"""The least distortion any model with rate 0 can have on the test images (Bernoulli decoder).

    With rate 0, ``q(z|x) = p(z)`` for every image, so ``z`` does not depend on the image. The
    decoder may still vary with ``z``, but at each ``z`` it is one product of Bernoullis with
    probabilities ``p_d(z)`` for every image alike, and its distortion averaged over the test
    images is the cross-entropy ``sum_d H(\bar x_d, p_d(z))``, ``\bar x_d`` the test images' pixel
    means. A cross-entropy is never below the entropy, so every ``z``, and hence their average,
    gives at least ``sum_d H(\bar x_d)``, with equality at ``p_d = \bar x_d``. The decoder
    ``p_d`` = the training images' pixel means (smoothed as ``(k + 1/2) / (n + 1)``, so no pixel
    gets probability 0) is what a zero-rate model can learn.

    Parameters
    ----------
    train, test : ndarray, shape (n, n_pixels), values in {0, 1}

    Returns
    -------
    bound : float
        ``sum_d H(mean_test_d)``, nats per image.
    fitted : float
        ``-mean_test sum_d log Bernoulli(x_d | p_d)`` with ``p_d`` from the training images, nats per image.
    """
    train, test = np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64)
    p_test = test.mean(axis=0)
    h = entr(p_test) + entr(1 - p_test)                                      # -p log p - (1-p) log(1-p)
    p_train = (train.sum(axis=0) + 0.5) / (len(train) + 1)
    fitted = -(test @ np.log(p_train) + (1 - test) @ np.log1p(-p_train)).mean()
    return float(h.sum()), float(fitted)
