"""Tests for vaelib.teaching.tradeoff: per-model terms against scipy, the aggregate-posterior estimators, the sweeps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import entr, expit, softmax
from scipy.stats import bernoulli, norm

from vaelib.core.gaussian import kl_std_normal, log_normal
from vaelib.core.vae import VAEConfig, decode, encode, init_params
from vaelib.machinery.cache import ModelCache
from vaelib.teaching import tradeoff
from vaelib.teaching.digit_models import ModelSpec


def reference_terms(params, x, config, eps):
    """Distortion per draw and rate per image from scipy.stats, in float64; returns (nll (S, n), kl (n,), mean (S, n, D))."""
    mu, log_var = encode(params, x, config)
    std = np.exp(0.5 * log_var)
    z = mu + std * eps                                                      # (S, n, L)
    out = decode(params, z.reshape(-1, config.n_latent), config).reshape(*eps.shape[:2], -1)
    if config.likelihood == "bernoulli":
        mean = expit(out)
        nll = -bernoulli.logpmf(x, mean).sum(axis=-1)
    else:
        mean = out
        nll = -norm.logpdf(x, mean, config.sigma).sum(axis=-1)
    kl = -norm.entropy(scale=std).sum(axis=1) + 0.5 * (np.log(2 * np.pi) + mu**2 + std**2).sum(axis=1)
    return nll, kl, mean


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_model_terms_match_scipy(rng, likelihood):
    config = VAEConfig(n_pixels=12, hidden=(6,), n_latent=3, likelihood=likelihood, sigma=0.3)
    params = init_params(config, rng)                                       # float64
    x = (rng.random((7, 12)) < 0.4).astype(float) if likelihood == "bernoulli" else rng.random((7, 12))
    eps = rng.standard_normal((4, 7, 3))
    terms = tradeoff.model_terms(params, x, config, eps, batch_size=3)      # batches that do not divide 7
    nll, kl, mean = reference_terms(params, x, config, eps)
    np.testing.assert_allclose(terms["distortion"], nll.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(terms["distortion_var"], nll.var(axis=0, ddof=1), rtol=1e-9)
    np.testing.assert_allclose(terms["rate"], kl, rtol=1e-12)
    np.testing.assert_allclose(terms["kl_per_dim"].sum(axis=1), kl, rtol=1e-12)
    assert np.all(terms["kl_per_dim"] >= 0)
    if likelihood == "gaussian":
        np.testing.assert_allclose(terms["squared_error"], ((x - mean) ** 2).sum(axis=-1).mean(axis=0), rtol=1e-12)
    else:
        assert np.all(np.isnan(terms["squared_error"]))
    mu, log_var = encode(params, x, config)
    np.testing.assert_allclose(terms["mu"], mu, rtol=1e-12, atol=1e-15)   # encoded in batches: round-off only
    np.testing.assert_allclose(terms["log_var"], log_var, rtol=1e-12, atol=1e-15)


def test_gaussian_distortion_is_affine_in_the_squared_error(rng):
    """With sigma fixed, -log p(x|z) = |x - m|^2 / (2 sigma^2) + D log sigma + (D/2) log 2 pi, draw by draw."""
    sigma = 0.25
    config = VAEConfig(n_pixels=10, hidden=(5,), n_latent=2, likelihood="gaussian", sigma=sigma)
    params = init_params(config, rng)
    x = rng.random((6, 10))
    terms = tradeoff.model_terms(params, x, config, rng.standard_normal((3, 6, 2)))
    affine = terms["squared_error"] / (2 * sigma**2) + 10 * np.log(sigma) + 5 * np.log(2 * np.pi)
    np.testing.assert_allclose(terms["distortion"], affine, rtol=1e-12)


def test_model_terms_rejects_bad_noise(rng):
    config = VAEConfig(n_pixels=4, hidden=(3,), n_latent=2)
    params = init_params(config, rng)
    with pytest.raises(ValueError, match="eps must have shape"):
        tradeoff.model_terms(params, np.zeros((5, 4)), config, np.zeros((1, 5, 2)))
    with pytest.raises(ValueError, match="eps must have shape"):
        tradeoff.model_terms(params, np.zeros((5, 4)), config, np.zeros((2, 4, 2)))


def test_loss_matrix_by_hand():
    loss = tradeoff.loss_matrix(rate=[10.0, 2.0], distortion=[50.0, 70.0], weights=[1.0, 5.0])
    # model 0 at weight 1: 50 + 10; model 1 at weight 1: 70 + 2; at weight 5: 100 and 80
    assert np.array_equal(loss, [[60.0, 72.0], [100.0, 80.0]])


def test_log_normal_pairwise_matches_core(rng):
    z = 2 * rng.standard_normal((9, 4))
    mu, log_var = rng.standard_normal((13, 4)), rng.uniform(-8, 2, size=(13, 4))
    reference = log_normal(z[:, None, :], mu[None], log_var[None])          # (9, 13)
    np.testing.assert_allclose(tradeoff.log_normal_pairwise(z, mu, log_var), reference, rtol=1e-10, atol=1e-8)


def test_split_of_one_shared_encoding(rng):
    """Every image encoded alike: q(z) = q(z|x), so I = 0 and KL(q(z) || p(z)) is the mean KL."""
    mu = np.tile([[0.5, -1.0]], (50, 1))
    log_var = np.tile([[-1.0, 0.5]], (50, 1))
    split = tradeoff.aggregate_kl_split(mu, log_var, 200, rng)
    assert abs(split["mutual_information"]) < 1e-12
    assert split["mean_kl"] == pytest.approx(float(kl_std_normal(mu[:1], log_var[:1])[0]), rel=1e-12)
    assert abs(split["marginal_kl"] - split["mean_kl"]) < 4 * split["marginal_kl_se"]


def test_split_of_well_separated_encodings(rng):
    """N narrow, far-apart encodings: z identifies x, so I = log N; the rest of the mean KL is KL(q(z) || p(z))."""
    n = 8
    mu = np.vstack([6.0 * np.eye(4), -6.0 * np.eye(4)])                      # 8 points, >= 8.4 apart
    log_var = np.full((n, 4), np.log(0.05**2))
    split = tradeoff.aggregate_kl_split(mu, log_var, 500, rng)
    assert split["log_n"] == pytest.approx(np.log(n))
    assert split["mutual_information"] == pytest.approx(np.log(n), abs=1e-9)   # neighbours are 170 standard deviations apart
    assert abs(split["marginal_kl"] - (split["mean_kl"] - np.log(n))) < 4 * split["marginal_kl_se"]


def test_split_adds_up_and_matches_quadrature(rng):
    """1-D encodings: the two terms sum to the closed-form mean KL, and KL(q(z) || p(z)) matches quadrature."""
    mu = rng.normal(0.3, 0.9, size=(40, 1))
    log_var = rng.uniform(np.log(0.1**2), np.log(0.6**2), size=(40, 1))
    split = tradeoff.aggregate_kl_split(mu, log_var, 400, rng)
    assert abs(split["mean_kl_mc"] - split["mean_kl"]) < 4 * split["mean_kl_mc_se"]
    assert split["mutual_information"] + split["marginal_kl"] == pytest.approx(split["mean_kl_mc"], rel=1e-12)
    assert 0 < split["mutual_information"] < split["log_n"]
    quad = tradeoff.marginal_kl_by_quadrature(mu[:, 0], log_var[:, 0], np.linspace(-8, 8, 8001))
    assert abs(split["marginal_kl"] - quad) < 4 * split["marginal_kl_se"]


def test_mutual_information_matches_the_index_posterior(rng):
    """3-D, overlapping encodings: I_q = log N - E_q(z) H(q(n|z)), a second estimator, with scipy's densities."""
    n, n_draws = 30, 400
    mu = rng.normal(0.0, 0.8, size=(n, 3))
    log_var = rng.uniform(np.log(0.2**2), np.log(0.7**2), size=(n, 3))
    split = tradeoff.aggregate_kl_split(mu, log_var, n_draws, rng)
    std = np.exp(0.5 * log_var)
    z = (mu + std * rng.standard_normal((n_draws, n, 3))).reshape(-1, 3)
    index_posterior = softmax(norm.logpdf(z[:, None], mu, std).sum(axis=-1), axis=1)   # q(n|z), (n_draws * n, n)
    h = entr(index_posterior).sum(axis=1).reshape(n_draws, n)
    info, se = np.log(n) - h.mean(), np.sqrt(h.var(axis=0, ddof=1).sum() / n_draws) / n
    assert 0.5 < info < np.log(n) - 0.5                                      # neither end: z tells x only in part
    assert abs(split["mutual_information"] - info) < 4 * np.hypot(split["mutual_information_se"], se)


def test_split_needs_two_draws(rng):
    with pytest.raises(ValueError, match="at least 2"):
        tradeoff.aggregate_kl_split(np.zeros((3, 2)), np.zeros((3, 2)), 1, rng)


def test_quadrature_of_one_gaussian_is_the_closed_form():
    kl = tradeoff.marginal_kl_by_quadrature(np.array([0.7]), np.array([np.log(0.4**2)]), np.linspace(-8, 8, 4001))
    assert kl == pytest.approx(float(kl_std_normal(np.array([[0.7]]), np.array([[np.log(0.4**2)]]))[0]), rel=1e-8)


def test_quadrature_of_a_mixture_matches_scipy_quad():
    mu, log_var = np.array([-1.5, 0.2, 2.0]), np.log(np.array([0.3, 0.5, 0.2]) ** 2)

    def integrand(t):
        q = np.mean(norm.pdf(t, mu, np.exp(0.5 * log_var)))
        return q * (np.log(q) - norm.logpdf(t)) if q > 0 else 0.0

    reference = integrate.quad(integrand, -10, 10, points=list(mu), limit=200)[0]
    kl = tradeoff.marginal_kl_by_quadrature(mu, log_var, np.linspace(-10, 10, 20001))
    assert kl == pytest.approx(reference, rel=1e-7)


def test_quadrature_refuses_a_coarse_or_narrow_grid():
    with pytest.raises(ValueError, match="does not resolve"):
        tradeoff.marginal_kl_by_quadrature(np.array([0.0]), np.array([np.log(0.01**2)]), np.linspace(-5, 5, 101))
    with pytest.raises(ValueError, match="widen it"):
        tradeoff.marginal_kl_by_quadrature(np.array([3.0]), np.array([0.0]), np.linspace(-2, 2, 401))


def test_zero_rate_distortion_by_hand():
    train = np.array([[1, 0], [1, 1]])
    test = np.array([[1, 0], [0, 0]])
    bound, fitted = tradeoff.zero_rate_distortion(train, test)
    assert bound == pytest.approx(np.log(2))                  # pixel 0: mean 1/2, entropy log 2; pixel 1: always 0
    p = np.array([2.5 / 3, 1.5 / 3])                          # smoothed training means (k + 1/2) / (n + 1)
    assert fitted == pytest.approx(-bernoulli.logpmf(test, p).sum(axis=1).mean())


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_zero_rate_fitted_never_beats_the_bound(seed):
    """Cross-entropy under any fixed product of Bernoullis is at least the entropy of the test pixel means."""
    rng = np.random.default_rng(seed)
    train, test = (rng.random((20, 6)) < 0.3).astype(int), (rng.random((15, 6)) < 0.6).astype(int)
    bound, fitted = tradeoff.zero_rate_distortion(train, test)
    assert fitted >= bound - 1e-12


def test_specs():
    spec = tradeoff.beta_spec(3.0, epochs=7, seed=2)
    assert spec.config.beta == 3.0 and spec.epochs == 7 and spec.seed == 2 and spec.data == "binarized"
    assert spec.config.hidden == (400,) and spec.config.n_latent == 20 and spec.config.likelihood == "bernoulli"
    grey = tradeoff.sigma_spec(0.5)
    assert grey.data == "grey" and grey.config.likelihood == "gaussian" and not grey.config.learn_sigma
    assert grey.config.sigma == 0.5 and grey.config.beta == 1.0 and grey.epochs == tradeoff.SIGMA_EPOCHS
    squared_error_loss = tradeoff.sigma_spec(1.0, beta=0.25)
    assert squared_error_loss.config.sigma == 1.0 and squared_error_loss.config.beta == 0.25
    small = tradeoff.sigma_spec(0.2, base=tradeoff.GREY_10D)         # epochs, lr and batch size from the base
    assert (small.epochs, small.lr, small.batch_size, small.data) == (5, 3e-3, 100, "grey")
    assert small.config.hidden == (128,) and small.config.n_latent == 10 and small.config.sigma == 0.2
    assert tradeoff.sigma_spec(0.2, epochs=2, base=tradeoff.GREY_10D).epochs == 2


# ---------------------------------------------------------------- sweeps of tiny trained models
TINY = ModelSpec(VAEConfig(hidden=(8,), n_latent=2), epochs=1)
TINY_GREY = ModelSpec(VAEConfig(hidden=(8,), n_latent=2, likelihood="gaussian"), data="grey", epochs=1)
SIZES = dict(n_draws=2, n_images=3, n_samples=3)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return ModelCache(tmp_path_factory.mktemp("models"), log=lambda line: None)


@pytest.fixture(scope="module")
def beta_table(cache):
    return tradeoff.beta_sweep((0.5, 4.0), base=TINY, epochs=1, cache=cache, progress=False, **SIZES)


def test_beta_sweep_table(beta_table, cache):
    from vaelib.teaching.digit_models import binarized_digits, trained

    data = binarized_digits()
    assert np.array_equal(beta_table["beta"], [0.5, 4.0])
    assert list(beta_table["trained_now"]) == [True, True]
    for key in ("rate", "distortion", "half_squared_error", "distortion_se", "rate_train", "distortion_train",
                "half_squared_error_train", "distortion_se_train", "active_units"):
        assert beta_table[key].shape == (2,)
    assert beta_table["kl_per_dim"].shape == beta_table["unit_variances"].shape == (2, 2)
    # the units the view colours as active are the ones counted
    assert np.array_equal(beta_table["active"], beta_table["unit_variances"] > tradeoff.ACTIVE_THRESHOLD)
    assert np.array_equal(beta_table["active"].sum(axis=1), beta_table["active_units"])
    assert beta_table["mu"].shape == (2, len(data.test), 2)
    assert beta_table["reconstructions"].shape == (2, 3, 784) and beta_table["samples"].shape == (2, 3, 784)
    assert np.array_equal(beta_table["originals"], data.test[:3])
    # the table's numbers are model_terms of the cached model with the documented noise
    model = trained(tradeoff.beta_spec(4.0, epochs=1, base=TINY), cache=cache, progress=False)
    eps = tradeoff.sweep_noise(2, len(data.test), 2, [0, 0])
    terms = tradeoff.model_terms(model.params, data.test, TINY.with_config(beta=4.0).config, eps)
    assert beta_table["rate"][1] == terms["rate"].mean() and beta_table["distortion"][1] == terms["distortion"].mean()
    assert np.allclose(beta_table["kl_per_dim"][1].sum(), beta_table["rate"][1], rtol=1e-12)
    # ... and on the training images, with their own noise
    eps_train = tradeoff.sweep_noise(2, len(data.train), 2, [0, 1])
    terms_train = tradeoff.model_terms(model.params, data.train, TINY.with_config(beta=4.0).config, eps_train)
    assert beta_table["rate_train"][1] == terms_train["rate"].mean()
    assert beta_table["distortion_train"][1] == terms_train["distortion"].mean()
    # active units: the variance of mu_j(x) over the test images
    np.testing.assert_allclose(beta_table["unit_variances"][1], beta_table["mu"][1].var(axis=0), rtol=1e-6)
    # a larger beta buys a smaller rate, even after one epoch
    assert beta_table["rate"][1] < beta_table["rate"][0] and beta_table["rate_train"][1] < beta_table["rate_train"][0]


def test_beta_sweep_reads_the_cache_and_repeats_itself(beta_table, cache):
    again = tradeoff.beta_sweep((0.5, 4.0), base=TINY, epochs=1, cache=cache, progress=False, **SIZES)
    assert list(again["trained_now"]) == [False, False]
    for key in ("rate", "distortion", "rate_train", "distortion_train", "reconstructions", "samples"):
        assert np.array_equal(again[key], beta_table[key])


def test_sigma_sweep_table(cache):
    table = tradeoff.sigma_sweep((0.25, 1.0), base=TINY_GREY, epochs=1, cache=cache, progress=False, **SIZES)
    assert np.array_equal(table["sigma"], [0.25, 1.0])
    # per image, D = |x - m|^2 / (2 sigma^2) + const; averaged over the same draws and images, so on the means too
    for i, sigma in enumerate(table["sigma"]):
        const = 784 * np.log(sigma) + 392 * np.log(2 * np.pi)
        assert table["distortion"][i] == pytest.approx(table["half_squared_error"][i] / sigma**2 + const, rel=1e-6)  # float32
    # a Gaussian decoder's mean is its output: reconstructions at z = mu(x), samples at the documented z ~ p(z)
    z_prior = tradeoff.sweep_noise(1, 3, 2, [0, 2])[0]
    for i in range(2):
        config = table["specs"][i].config
        np.testing.assert_allclose(table["reconstructions"][i], decode(table["params"][i], table["mu"][i, :3], config),
                                   rtol=1e-5, atol=1e-6)                  # float32 network, float64 mu
        assert np.array_equal(table["samples"][i], decode(table["params"][i], z_prior, config))


def test_train_models_reads_the_cache_in_order(beta_table, cache):
    """The models of any list of specs, in its order: those of the sweep above come from the cache."""
    specs = [tradeoff.beta_spec(4.0, epochs=1, base=TINY), tradeoff.beta_spec(0.5, epochs=1, base=TINY)]
    models = tradeoff.train_models(specs, cache=cache, progress=False)
    assert [m.trained_now for m in models] == [False, False]
    for model, i in zip(models, (1, 0)):
        assert all(np.array_equal(model.params[k], beta_table["params"][i][k]) for k in model.params)
    with pytest.raises(ValueError, match="1 labels for 2 specs"):
        tradeoff.train_models(specs, cache=cache, labels=["one"])


def test_a_sweep_row_is_measure_model_of_its_model(beta_table, cache):
    """measure_sweep stacks measure_model over its models, with the documented noise."""
    from vaelib.teaching.digit_models import binarized_digits

    data = binarized_digits()
    eps = {"test": tradeoff.sweep_noise(2, len(data.test), 2, [0, 0]),
           "train": tradeoff.sweep_noise(2, len(data.train), 2, [0, 1])}
    z_prior = tradeoff.sweep_noise(1, 3, 2, [0, 2])[0]
    row = tradeoff.measure_model(beta_table["params"][0], beta_table["specs"][0].config, data, eps, z_prior, n_images=3)
    for key, value in row.items():
        assert np.array_equal(beta_table[key][0], value, equal_nan=True), key   # NaN: no squared error (Bernoulli)
    assert row["distortion_train"] > 0 and row["rate_train"] > 0


def test_sweeps_reject_bad_values_and_mixed_specs(cache):
    with pytest.raises(ValueError, match="increasing"):
        tradeoff.beta_sweep((2.0, 1.0), base=TINY, cache=cache)
    with pytest.raises(ValueError, match="increasing"):
        tradeoff.sigma_sweep((0.0, 1.0), base=TINY_GREY, cache=cache)
    with pytest.raises(ValueError, match="share"):
        tradeoff.measure_sweep([TINY, TINY_GREY], cache=cache)


def test_measure_sweep_draws_n_draws(beta_table, cache):
    """With n_draws = 3 the distortion is the mean over 3 draws of the documented noise."""
    from vaelib.teaching.digit_models import binarized_digits

    data = binarized_digits()
    table = tradeoff.beta_sweep((4.0,), base=TINY, epochs=1, cache=cache, progress=False, **{**SIZES, "n_draws": 3})
    config = TINY.with_config(beta=4.0).config
    terms = tradeoff.model_terms(beta_table["params"][1], data.test, config, tradeoff.sweep_noise(3, len(data.test), 2, [0, 0]))
    assert table["distortion"][0] == terms["distortion"].mean()
    assert table["distortion"][0] != beta_table["distortion"][1]                 # 2 draws give another estimate


def test_distortion_standard_error_is_the_spread_over_noise(beta_table):
    """distortion_se predicts how much the measured distortion moves when the noise is drawn again."""
    from types import SimpleNamespace

    from vaelib.teaching.digit_models import binarized_digits

    full = binarized_digits()
    data = SimpleNamespace(test=full.test[:200], train=full.train[:20], image_shape=full.image_shape)
    params, config = beta_table["params"][0], beta_table["specs"][0].config
    rows = []
    for seed in range(400):
        eps = {"test": tradeoff.sweep_noise(3, 200, 2, [seed, 0]), "train": tradeoff.sweep_noise(3, 20, 2, [seed, 1])}
        rows.append(tradeoff.measure_model(params, config, data, eps, np.zeros((1, 2)), n_images=1))
    spread = np.std([row["distortion"] for row in rows], ddof=1)
    predicted = np.mean([row["distortion_se"] for row in rows])
    # 400 repeats measure a standard deviation to about 4 %; a missing factor 1/S would give sqrt(3)
    assert 0.8 < spread / predicted < 1.25


def test_split_standard_errors_are_the_spread_over_seeds(rng):
    """Each of the split's standard errors predicts the spread of its estimate over fresh draws."""
    mu = rng.normal(0.0, 0.8, size=(30, 3))
    log_var = rng.uniform(np.log(0.2**2), np.log(0.7**2), size=(30, 3))
    splits = [tradeoff.aggregate_kl_split(mu, log_var, 4, np.random.default_rng(seed)) for seed in range(1000)]
    for name in ("mutual_information", "marginal_kl", "mean_kl_mc"):
        spread = np.std([s[name] for s in splits], ddof=1)
        predicted = np.mean([s[name + "_se"] for s in splits])
        # 1,000 repeats measure a standard deviation to a few per cent; a missing 1/n_draws would give a factor 2.
        # (The spread of I_q comes out about 10 % above its standard error: with 4 draws per digit the
        # rare, very negative terms log q(z|x_n) - log q(z) are often missed, as notebook 08 says.)
        assert 0.8 < spread / predicted < 1.25, name
