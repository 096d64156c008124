"""Tests for the ELBO-gap slider view: artists and readout against independent formulas."""

import re

import numpy as np
import pytest
from scipy import stats

from vaelib.teaching.views.elbo_gap import make_elbo_gap_view

X = np.array([1.2, 0.3, -0.4])
W = np.array([[1.0], [0.5], [-0.3]])
B = np.array([0.1, 0.0, -0.2])
SIGMA = 0.7


def reference_terms(mu, log_var):
    """Posterior, ELBO, KL and log p(x) for the one-latent model, written out by hand."""
    w, var_q = W[:, 0], np.exp(log_var)
    post_var = 1.0 / (1.0 + w @ w / SIGMA**2)
    post_mean = post_var * w @ (X - B) / SIGMA**2
    # ELBO = E_q[log p(x|z)] + E_q[log p(z)] + entropy of q
    resid = X - w * mu - B
    expected_log_lik = np.sum(-0.5 * np.log(2 * np.pi * SIGMA**2) - (resid**2 + w**2 * var_q) / (2 * SIGMA**2))
    expected_log_prior = -0.5 * np.log(2 * np.pi) - 0.5 * (mu**2 + var_q)
    entropy = 0.5 * np.log(2 * np.pi * np.e * var_q)
    elbo = expected_log_lik + expected_log_prior + entropy
    kl = 0.5 * (np.log(post_var / var_q) + (var_q + (mu - post_mean) ** 2) / post_var - 1)
    log_evidence = stats.multivariate_normal(B, np.outer(w, w) + SIGMA**2 * np.eye(3)).logpdf(X)
    return post_mean, post_var, elbo, kl, log_evidence


def parse_readout(text):
    """The four numbers of the readout, in order: ELBO, KL, ELBO + KL, log p(x)."""
    return [float(v) for v in re.findall(r"=\s*(-?\d+\.\d+) nats", text)]


@pytest.fixture
def view():
    return make_elbo_gap_view(X, W, B, SIGMA)


@pytest.mark.parametrize("mu, log_var", [(0.0, 0.0), (1.5, -2.0), (-2.5, 1.5), (0.6, -1.0)])
def test_artists_follow_the_sliders(view, mu, log_var):
    ax_z, ax_bar = view.fig.axes
    post_line, q_line = ax_z.lines
    elbo_bar, kl_bar, evidence_bar = ax_bar.patches[:3]
    view.sliders["mu"].value = mu
    view.sliders["log_var"].value = log_var
    post_mean, post_var, elbo, kl, log_evidence = reference_terms(mu, log_var)
    z = q_line.get_xdata()
    np.testing.assert_allclose(q_line.get_ydata(), stats.norm.pdf(z, mu, np.exp(0.5 * log_var)), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(post_line.get_ydata(), stats.norm.pdf(z, post_mean, np.sqrt(post_var)), rtol=1e-12)
    assert elbo_bar.get_y() == 0 and elbo_bar.get_height() == pytest.approx(elbo, abs=1e-10)
    assert kl_bar.get_y() == pytest.approx(elbo, abs=1e-10)
    assert kl_bar.get_height() == pytest.approx(kl, abs=1e-10)
    assert evidence_bar.get_height() == pytest.approx(log_evidence, abs=1e-10)
    assert kl_bar.get_y() + kl_bar.get_height() == pytest.approx(log_evidence, abs=1e-10)
    assert ax_bar.lines[0].get_ydata()[0] == pytest.approx(log_evidence, abs=1e-10)


@pytest.mark.parametrize("mu, log_var", [(0.0, 0.0), (1.5, -2.0), (-2.5, 1.5)])
def test_readout_numbers_satisfy_the_identity(view, mu, log_var):
    view.sliders["mu"].value = mu
    view.sliders["log_var"].value = log_var
    elbo_r, kl_r, sum_r, log_evidence_r = parse_readout(view.readout)
    _, _, elbo, kl, log_evidence = reference_terms(mu, log_var)
    # Printed to four decimals: each number within half a unit of the last place.
    for printed, want in [(elbo_r, elbo), (kl_r, kl), (sum_r, elbo + kl), (log_evidence_r, log_evidence)]:
        assert printed == pytest.approx(want, abs=5.01e-5)
    assert abs(elbo_r + kl_r - log_evidence_r) <= 1.51e-4
    assert sum_r == log_evidence_r
    assert kl_r >= 0 and elbo_r <= log_evidence_r


def test_gap_closes_at_the_true_posterior(view):
    post_mean, post_var, *_ = reference_terms(0.0, 0.0)
    # The sliders move in steps of 0.05, so set them as near the posterior as the steps allow.
    view.sliders["mu"].value = round(post_mean / 0.05) * 0.05
    view.sliders["log_var"].value = round(np.log(post_var) / 0.05) * 0.05
    _, kl_r, _, _ = parse_readout(view.readout)
    assert kl_r < 5e-3


def test_updates_in_place(view):
    """A slider move changes the existing artists' data; no artist is added or removed."""
    ax_z, ax_bar = view.fig.axes
    artists = (list(ax_z.lines), list(ax_bar.patches), list(ax_bar.lines))
    q_before = ax_z.lines[1].get_ydata().copy()
    view.sliders["mu"].value = 1.0
    assert (list(ax_z.lines), list(ax_bar.patches), list(ax_bar.lines)) == artists
    assert not np.array_equal(ax_z.lines[1].get_ydata(), q_before)


def test_rejects_more_than_one_latent():
    with pytest.raises(ValueError, match="shape"):
        make_elbo_gap_view(X, np.ones((3, 2)), B, SIGMA)


def test_figure_is_large_enough_to_read(view):
    width, height = view.fig.get_size_inches()
    assert width >= 9 and height >= 3.5 and view.fig.dpi >= 100
    ax_z, ax_bar = view.fig.axes
    assert all(text.get_fontsize() >= 9 for text in ax_z.get_legend().get_texts())
    for ax in (ax_z, ax_bar):
        for label in ax.get_xticklabels() + ax.get_yticklabels():
            assert label.get_fontsize() >= 9


def test_posterior_and_q_differ_in_dash_as_well_as_colour(view):
    """Nothing told by colour alone: the two densities differ in line style too."""
    post_line, q_line = view.fig.axes[0].lines[:2]
    assert post_line.get_color() != q_line.get_color()
    assert post_line.get_linestyle() != q_line.get_linestyle()
