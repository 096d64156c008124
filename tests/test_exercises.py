"""The checked exercises: every check passes the reference solution, rejects every catalogued mistake
and names it, rejects other wrong answers without naming a mistake they are not, and reports an
untouched placeholder as "not attempted yet" without raising.

The catalogue writes each mistake as a change of a vaelib.core function; LEARNER_MISTAKES below writes
the same slips again, independently, the way a learner would, so that the catalogue is shown to
recognise the real thing.
"""

import ast
import inspect
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit, logsumexp
from scipy.stats import norm

from vaelib.teaching import exercise_solutions as solutions
from vaelib.teaching import exercises
from vaelib.teaching.exercises import CORRECT, EXERCISES, NOT_ATTEMPTED, WRONG, case_inputs, grade

NAMES = list(EXERCISES)
MISTAKES = [(name, m.key) for name, ex in EXERCISES.items() for m in ex.mistakes]


def solution(name):
    return getattr(solutions, name)


def stub(name):
    """The placeholder function, defined from the source the notebook cell holds."""
    namespace = {}
    exec(EXERCISES[name].stub, namespace)
    return namespace[name]


def scaled(fn, factor):
    """``fn`` with every output multiplied by ``factor``."""
    def wrong(*args):
        out = fn(*args)
        return tuple(factor * np.asarray(o) for o in out) if isinstance(out, tuple) else factor * np.asarray(out)
    return wrong


def random_like(fn, seed=0):
    """Random numbers with the shapes of ``fn``'s outputs."""
    def wrong(*args):
        rng = np.random.default_rng(seed)
        out = fn(*args)
        return (tuple(rng.normal(size=np.shape(o)) for o in out) if isinstance(out, tuple)
                else rng.normal(size=np.shape(out)))
    return wrong


# ---------------------------------------------------------------- the classic mistakes, as a learner writes them
def _log_pz_log_qz(z, mu, log_var, std=None):
    std = np.exp(0.5 * log_var) if std is None else std
    return norm.logpdf(z).sum(-1), norm.logpdf(z, mu, std).sum(-1)


def _mc(lp, z, mu, lv, combine, reduce=lambda v: v.mean(axis=0), std=None):
    log_pz, log_qz = _log_pz_log_qz(z, mu, lv, std)
    return reduce(combine(lp, log_pz, log_qz))


def _evidence(x, W, b, sigma, noise=None, det_factor=0.5, two_pi=True, inverse=True, quad_factor=0.5):
    D = len(b)
    C = W @ W.T + (sigma**2 if noise is None else noise) * np.eye(D)
    r = x - b
    quad = r @ np.linalg.solve(C, r) if inverse else r @ C @ r
    return -0.5 * D * math.log(2 * math.pi) * two_pi - quad_factor * quad - det_factor * np.linalg.slogdet(C)[1]


def _evidence_by_det(x, W, b, sigma):
    """The textbook density's log, with log det C as the log of det C."""
    D = len(b)
    C = W @ W.T + sigma**2 * np.eye(D)
    return -0.5 * (D * math.log(2 * math.pi) + np.log(np.linalg.det(C)) + (x - b) @ np.linalg.inv(C) @ (x - b))


def _evidence_with_covariance(x, b, C):
    _, log_det = np.linalg.slogdet(C)
    return -0.5 * (len(b) * math.log(2 * math.pi) + log_det + (x - b) @ np.linalg.solve(C, x - b))


def _lg_elbo(x, mu, lv, W, b, s, spread=True, kl_sign=-1, one_over=None, var=None, normaliser=True,
             bias=True, column_norms=True):
    D = len(b)
    var = np.exp(lv) if var is None else var
    weights = np.sum(W**2, axis=0) if column_norms else 1.0
    sq = np.sum((x - W @ mu - bias * b) ** 2) + spread * np.sum(weights * var)
    scale = 2 * s**2 if one_over is None else one_over
    ell = -normaliser * 0.5 * D * math.log(2 * math.pi * s**2) - sq / scale
    kl = 0.5 * np.sum(var + mu**2 - 1 - np.log(var))
    return ell + kl_sign * kl


def _gauss(x, m, s, quad=None, log_sigma=True, two_pi=True):
    S = np.sum((x - m) ** 2, axis=-1)
    D = x.shape[-1]
    quad = 2 * s**2 if quad is None else quad
    return -S / quad - log_sigma * D * math.log(s) - two_pi * 0.5 * D * math.log(2 * math.pi)


def _kl(mu, lv, var=None, half=0.5, minus_one=True, reduce=np.sum):
    var = np.exp(lv) if var is None else var
    return half * reduce(var + mu**2 - minus_one - np.log(var), axis=-1)


def _naive_sigmoid(l):
    return 1 / (1 + np.exp(-l))


def _stable_nll(l, x):
    return np.sum(np.logaddexp(0, l) - x * l, axis=-1)


def _gradient_mistake(change):
    return lambda l, x: (_stable_nll(l, x), change(l, x))


LEARNER_MISTAKES = {
    # 01
    ("loss_from_elbo_terms", "returned_elbo"): lambda lp, kl, beta: np.mean(lp - beta * kl),
    ("loss_from_elbo_terms", "minus_kl"): lambda lp, kl, beta: np.mean(-lp - beta * kl),
    ("loss_from_elbo_terms", "plus_log_likelihood"): lambda lp, kl, beta: np.mean(lp + beta * kl),
    ("loss_from_elbo_terms", "absolute_log_likelihood"): lambda lp, kl, beta: np.mean(abs(lp) + beta * kl),
    ("loss_from_elbo_terms", "beta_on_reconstruction"): lambda lp, kl, beta: np.mean(-beta * lp + kl),
    ("loss_from_elbo_terms", "beta_ignored"): lambda lp, kl, beta: np.mean(-lp + kl),
    ("loss_from_elbo_terms", "summed_over_batch"): lambda lp, kl, beta: np.sum(-lp + beta * kl),
    ("loss_from_elbo_terms", "per_image"): lambda lp, kl, beta: -lp + beta * kl,
    ("monte_carlo_elbo", "plus_kl"): lambda *a: _mc(*a, lambda lp, pz, qz: lp - pz + qz),
    ("monte_carlo_elbo", "returned_loss"): lambda *a: _mc(*a, lambda lp, pz, qz: qz - lp - pz),
    ("monte_carlo_elbo", "sum_over_samples"): lambda *a: _mc(*a, lambda lp, pz, qz: lp + pz - qz,
                                                             reduce=lambda v: v.sum(axis=0)),
    ("monte_carlo_elbo", "exp_log_var_as_std"): lambda lp, z, mu, lv: _mc(
        lp, z, mu, lv, lambda lp, pz, qz: lp + pz - qz, std=np.exp(lv)),
    ("monte_carlo_elbo", "no_prior"): lambda *a: _mc(*a, lambda lp, pz, qz: lp - qz),
    ("monte_carlo_elbo", "mean_over_images"): lambda *a: _mc(*a, lambda lp, pz, qz: lp + pz - qz,
                                                             reduce=lambda v: v.mean(axis=1)),
    ("monte_carlo_elbo", "closed_form_kl"): lambda lp, z, mu, lv: lp.mean(axis=0) - 0.5 * np.sum(
        np.exp(lv) + mu**2 - 1 - lv, axis=-1),
    # 02
    ("log_evidence_closed_form", "sigma_for_variance"): lambda x, W, b, s: _evidence(x, W, b, s, noise=s),
    ("log_evidence_closed_form", "no_prior_spread"): lambda x, W, b, s: _evidence(x, 0 * W, b, s),
    ("log_evidence_closed_form", "no_half_on_log_det"): lambda x, W, b, s: _evidence(x, W, b, s, det_factor=1),
    ("log_evidence_closed_form", "no_2pi"): lambda x, W, b, s: _evidence(x, W, b, s, two_pi=False),
    ("log_evidence_closed_form", "covariance_not_inverted"): lambda x, W, b, s: _evidence(x, W, b, s,
                                                                                            inverse=False),
    ("log_evidence_closed_form", "no_noise"): lambda x, W, b, s: _evidence_with_covariance(x, b, W @ W.T),
    ("log_evidence_closed_form", "noise_on_every_entry"): lambda x, W, b, s: _evidence_with_covariance(
        x, b, W @ W.T + s**2),
    ("log_evidence_closed_form", "no_bias"): lambda x, W, b, s: _evidence_with_covariance(
        x, 0 * x, W @ W.T + s**2 * np.eye(len(x))),
    ("log_evidence_closed_form", "no_half_on_quadratic"): lambda *a: _evidence(*a, quad_factor=1.0),
    ("log_evidence_closed_form", "no_half_at_all"): lambda *a: _evidence(*a, quad_factor=1.0, det_factor=1.0,
                                                                         two_pi=2),
    ("log_evidence_closed_form", "log_of_det"): _evidence_by_det,
    ("elbo_closed_form", "no_spread"): lambda *a: _lg_elbo(*a, spread=False),
    ("elbo_closed_form", "plus_kl"): lambda *a: _lg_elbo(*a, kl_sign=+1),
    ("elbo_closed_form", "notes_one_over_two_sigma"): lambda *a: _lg_elbo(*a, one_over=2 * a[-1]),
    ("elbo_closed_form", "exp_log_var_as_std"): lambda x, mu, lv, W, b, s: _lg_elbo(
        x, mu, lv, W, b, s, var=np.exp(lv) ** 2),
    ("elbo_closed_form", "no_normaliser"): lambda *a: _lg_elbo(*a, normaliser=False),
    ("elbo_closed_form", "no_bias"): lambda *a: _lg_elbo(*a, bias=False),
    ("elbo_closed_form", "spread_without_W"): lambda *a: _lg_elbo(*a, column_norms=False),
    ("elbo_closed_form", "no_kl"): lambda *a: _lg_elbo(*a, kl_sign=0),
    # 03
    ("gaussian_log_likelihood", "notes_one_over_two_sigma"): lambda x, m, s: _gauss(x, m, s, quad=2 * s),
    ("gaussian_log_likelihood", "missing_half"): lambda x, m, s: _gauss(x, m, s, quad=s**2),
    ("gaussian_log_likelihood", "negative_log_likelihood"): lambda x, m, s: -_gauss(x, m, s),
    ("gaussian_log_likelihood", "no_log_sigma"): lambda x, m, s: _gauss(x, m, s, log_sigma=False),
    ("gaussian_log_likelihood", "no_2pi"): lambda x, m, s: _gauss(x, m, s, two_pi=False),
    ("gaussian_log_likelihood", "mean_over_pixels"): lambda x, m, s: np.mean(
        -(x - m) ** 2 / (2 * s**2) - math.log(s) - 0.5 * math.log(2 * math.pi), axis=-1),
    ("gaussian_log_likelihood", "sigma_as_variance"): lambda x, m, s: np.sum(
        -0.5 * np.log(2 * np.pi * s) - (x - m) ** 2 / (2 * s), axis=-1),
    ("gaussian_log_likelihood", "batch_size_for_D"): lambda x, m, s: (
        -np.sum((x - m) ** 2, axis=1) / (2 * s**2) - len(x) * math.log(s) - len(x) / 2 * math.log(2 * math.pi)),
    ("gaussian_log_likelihood", "log_variance_not_halved"): lambda x, m, s: _gauss(x, m, s, log_sigma=2),
    ("best_sigma", "variance"): lambda x, m: np.mean((x - m) ** 2, axis=1),
    ("best_sigma", "root_of_sum"): lambda x, m: np.sqrt(np.sum((x - m) ** 2, axis=1)),
    ("best_sigma", "notes_formula"): lambda x, m: np.sum((x - m) ** 2, axis=1) / (2 * x.shape[1]),
    ("best_sigma", "np_std"): lambda x, m: (x - m).std(axis=1),
    ("best_sigma", "one_sigma_for_the_batch"): lambda x, m: np.sqrt(np.mean((x - m) ** 2)),
    ("best_sigma", "mean_absolute_residual"): lambda x, m: np.abs(x - m).mean(axis=1),
    ("best_sigma", "divided_by_the_batch_size"): lambda x, m: np.sqrt(np.sum((x - m) ** 2, axis=1) / len(x)),
    ("best_sigma", "divided_by_d_minus_1"): lambda x, m: np.sqrt(((x - m) ** 2).sum(axis=1) / (x.shape[1] - 1)),
    # 04
    ("reparam_sample", "exp_log_var_as_std"): lambda mu, lv, eps: mu + np.exp(lv) * eps,
    ("reparam_sample", "log_var_as_std"): lambda mu, lv, eps: mu + lv * eps,
    ("reparam_sample", "divided_by_std"): lambda mu, lv, eps: mu + eps / np.exp(0.5 * lv),
    ("reparam_sample", "no_mean"): lambda mu, lv, eps: np.exp(0.5 * lv) * eps,
    ("reparam_sample", "noise_not_scaled"): lambda mu, lv, eps: mu + eps,
    ("log_q_of_sample", "inverted_jacobian"): lambda mu, lv, eps: norm.logpdf(eps).sum(-1) + 0.5 * lv.sum(-1),
    ("log_q_of_sample", "exp_log_var_jacobian"): lambda mu, lv, eps: np.sum(   # the notes' final formula
        np.log(np.exp(-(np.exp(0.5 * lv) * eps) ** 2 / (2 * np.exp(lv))) / (np.exp(lv) * np.sqrt(2 * np.pi))),
        axis=-1),
    ("log_q_of_sample", "no_jacobian"): lambda mu, lv, eps: norm.logpdf(eps).sum(-1),
    ("log_q_of_sample", "density_at_eps"): lambda mu, lv, eps: norm.logpdf(eps, mu, np.exp(0.5 * lv)).sum(-1),
    ("log_q_of_sample", "prior_at_z"): lambda mu, lv, eps: norm.logpdf(mu + np.exp(0.5 * lv) * eps).sum(-1),
    ("log_q_of_sample", "not_summed"): lambda mu, lv, eps: norm.logpdf(eps) - 0.5 * lv,
    ("log_q_of_sample", "no_2pi"): lambda mu, lv, eps: -0.5 * np.sum(eps**2, axis=-1) - 0.5 * np.sum(lv, axis=-1),
    ("log_q_of_sample", "log_of_a_product"): lambda mu, lv, eps: (   # log |det J| as the log of a product
        norm.logpdf(eps).sum(-1) - np.log(np.prod(np.sqrt(np.exp(lv)), axis=-1))),
    # 05
    ("kl_closed_form", "exp_log_var_as_std"): lambda mu, lv: _kl(mu, lv, var=np.exp(lv) ** 2),
    ("kl_closed_form", "std_for_variance"): lambda mu, lv: _kl(mu, lv, var=np.exp(0.5 * lv)),
    ("kl_closed_form", "missing_half"): lambda mu, lv: _kl(mu, lv, half=1.0),
    ("kl_closed_form", "negative"): lambda mu, lv: -_kl(mu, lv),
    ("kl_closed_form", "mean_over_latents"): lambda mu, lv: _kl(mu, lv, reduce=np.mean),
    ("kl_closed_form", "summed_over_batch"): lambda mu, lv: 0.5 * np.sum(np.exp(lv) + mu**2 - 1 - lv),
    ("kl_closed_form", "missing_minus_one"): lambda mu, lv: _kl(mu, lv, minus_one=False),
    ("kl_closed_form", "reverse_kl"): lambda mu, lv: 0.5 * np.sum(
        np.exp(-lv) + mu**2 / np.exp(lv) - 1 + lv, axis=-1),
    ("kl_closed_form", "summed_over_the_batch_axis"): lambda mu, lv: 0.5 * np.sum(
        np.exp(lv) + mu**2 - 1 - lv, axis=0),
    ("kl_closed_form", "log_var_sign"): lambda mu, lv: 0.5 * np.sum(np.exp(lv) + mu**2 - 1 + lv, axis=-1),
    ("kl_closed_form", "log_of_a_product"): lambda mu, lv: 0.5 * (
        np.sum(np.exp(lv) + mu**2 - 1, axis=-1) - np.log(np.prod(np.exp(lv), axis=-1))),
    ("kl_gradients", "dlog_var_missing_half"): lambda mu, lv: (mu, np.exp(lv) - 1),
    ("kl_gradients", "derivative_wrt_std"): lambda mu, lv: (mu, np.exp(0.5 * lv) - 1 / np.exp(0.5 * lv)),
    ("kl_gradients", "gradient_of_minus_kl"): lambda mu, lv: (-mu, 0.5 * (1 - np.exp(lv))),
    ("kl_gradients", "minus_log_var_not_differentiated"): lambda mu, lv: (mu, 0.5 * np.exp(lv)),
    ("kl_gradients", "dmu_twice"): lambda mu, lv: (2 * mu, 0.5 * (np.exp(lv) - 1)),
    ("kl_gradients", "exp_log_var_as_std"): lambda mu, lv: (mu, np.exp(2 * lv) - 1),
    ("kl_gradients", "derivative_wrt_variance"): lambda mu, lv: (mu, 0.5 - 0.5 / np.exp(lv)),
    ("kl_gradients", "gradients_of_reverse_kl"): lambda mu, lv: (mu / np.exp(lv), 0.5 - 0.5 * (1 + mu**2) / np.exp(lv)),
    ("kl_gradients", "gradients_of_the_batch_mean"): lambda mu, lv: (mu / mu.shape[0],
                                                                     (np.exp(lv) - 1) / (2 * mu.shape[0])),
    # 06
    ("bernoulli_nll_and_gradient", "sigmoid_then_log"): lambda l, x: (
        -np.sum(x * np.log(_naive_sigmoid(l)) + (1 - x) * np.log(1 - _naive_sigmoid(l)), axis=-1),
        _naive_sigmoid(l) - x),
    ("bernoulli_nll_and_gradient", "gradient_sign"): _gradient_mistake(lambda l, x: x - expit(l)),
    ("bernoulli_nll_and_gradient", "gradient_through_sigmoid"): _gradient_mistake(
        lambda l, x: (expit(l) - x) * expit(l) * (1 - expit(l))),
    ("bernoulli_nll_and_gradient", "only_the_x_1_term"): lambda l, x: (
        np.sum(x * np.logaddexp(0, -l), axis=-1), expit(l) - x),
    ("bernoulli_nll_and_gradient", "nll_mean_over_pixels"): lambda l, x: (
        np.mean(np.logaddexp(0, l) - x * l, axis=-1), expit(l) - x),
    ("bernoulli_nll_and_gradient", "gradient_mean_over_pixels"): _gradient_mistake(
        lambda l, x: (expit(l) - x) / x.shape[1]),
    ("bernoulli_nll_and_gradient", "log_likelihood"): lambda l, x: (-_stable_nll(l, x), expit(l) - x),
    ("bernoulli_nll_and_gradient", "labels_swapped"): lambda l, x: (
        np.sum(np.logaddexp(0, l) - (1 - x) * l, axis=-1), expit(l) - x),
    ("bernoulli_nll_and_gradient", "gradient_divided_by_batch"): _gradient_mistake(
        lambda l, x: (expit(l) - x) / l.shape[0]),
    ("linear_backward_pass", "dx_without_transpose"): lambda dout, x, W: (dout @ W, x.T @ dout, dout.sum(0)),
    ("linear_backward_pass", "dW_transposed"): lambda dout, x, W: (dout @ W.T, dout.T @ x, dout.sum(0)),
    ("linear_backward_pass", "db_mean"): lambda dout, x, W: (dout @ W.T, x.T @ dout, dout.mean(0)),
    ("linear_backward_pass", "db_not_reduced"): lambda dout, x, W: (dout @ W.T, x.T @ dout, dout),
    ("linear_backward_pass", "dW_divided_by_batch"): lambda dout, x, W: (dout @ W.T, x.T @ dout / len(x),
                                                                          dout.sum(0)),
    ("linear_backward_pass", "db_wrong_axis"): lambda dout, x, W: (dout @ W.T, x.T @ dout, dout.sum(axis=1)),
    ("reparam_backward_pass", "missing_half"): lambda dz, lv, eps: (dz, dz * eps * np.exp(0.5 * lv)),
    ("reparam_backward_pass", "gradient_wrt_std"): lambda dz, lv, eps: (dz, dz * eps),
    ("reparam_backward_pass", "exp_log_var_as_std"): lambda dz, lv, eps: (dz, dz * eps * np.exp(lv)),
    ("reparam_backward_pass", "dmu_times_std"): lambda dz, lv, eps: (dz * np.exp(0.5 * lv),
                                                                     0.5 * dz * eps * np.exp(0.5 * lv)),
    ("reparam_backward_pass", "variance_for_std"): lambda dz, lv, eps: (dz, 0.5 * dz * eps * np.exp(lv)),
    ("reparam_backward_pass", "eps_forgotten"): lambda dz, lv, eps: (dz, 0.5 * dz * np.exp(0.5 * lv)),
    ("reparam_backward_pass", "divided_by_std"): lambda dz, lv, eps: (dz, 0.5 * dz * eps / np.exp(0.5 * lv)),
    ("reparam_backward_pass", "dlog_var_sign"): lambda dz, lv, eps: (dz, -0.5 * dz * eps * np.exp(0.5 * lv)),
    ("reparam_backward_pass", "dz_forgotten"): lambda dz, lv, eps: (dz, 0.5 * eps * np.exp(0.5 * lv)),
    # 07
    ("iwae_estimate", "mean_of_log_weights"): lambda lw: lw.mean(axis=1),
    ("iwae_estimate", "no_log_k"): lambda lw: logsumexp(lw, axis=1),
    ("iwae_estimate", "exp_underflows"): lambda lw: np.log(np.exp(lw).sum(axis=1) / lw.shape[1]),
    ("iwae_estimate", "largest_log_weight"): lambda lw: lw.max(axis=1),
    ("iwae_estimate", "divided_by_k_outside_the_log"): lambda lw: logsumexp(lw, axis=1) / lw.shape[1],
    ("iwae_estimate", "over_images"): lambda lw: logsumexp(lw, axis=0) - np.log(lw.shape[0]),
    ("iwae_estimate", "log_of_the_batch_size"): lambda lw: logsumexp(lw, axis=1) - math.log(len(lw)),
    ("iwae_estimate", "global_max_shift"): lambda lw: lw.max() + np.log(np.exp(lw - lw.max()).sum(axis=1)
                                                                        / lw.shape[1]),
    ("iwae_estimate", "shift_below_the_row_max"): lambda lw: lw.mean(axis=1) + np.log(
        np.mean(np.exp(lw - lw.mean(axis=1, keepdims=True)), axis=1)),
    # 08
    ("sigma_for_beta", "variance"): lambda beta, s, n, red: s**2 * beta * (n if red == "mean" else 1),
    ("sigma_for_beta", "no_square_root"): lambda beta, s, n, red: s * beta * (n if red == "mean" else 1),
    ("sigma_for_beta", "inverted"): lambda beta, s, n, red: s / math.sqrt(beta * (n if red == "mean" else 1)),
    ("sigma_for_beta", "sigma_ignored"): lambda beta, s, n, red: math.sqrt(beta * (n if red == "mean" else 1)),
    ("sigma_for_beta", "reduction_ignored"): lambda beta, s, n, red: s * math.sqrt(beta),
    ("sigma_for_beta", "reduction_inverted"): lambda beta, s, n, red: s * math.sqrt(
        beta / (n if red == "mean" else 1)),
}


# ---------------------------------------------------------------- both ways: the right answer passes ...
@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(name, capsys):
    EXERCISES[name].check(solution(name))
    out = capsys.readouterr().out
    assert grade(name, solution(name)).status == CORRECT
    assert out.startswith(f"correct: `{name}` gives") and "remark" not in out


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_has_edge_cases_and_float32_where_arrays_are_inputs(name):
    cases = EXERCISES[name].cases
    assert len(cases) >= 5
    takes_arrays = any(isinstance(v, np.ndarray) for v in cases[0].inputs.values())
    assert not takes_arrays or any(case.is_float32 for case in cases)


# ---------------------------------------------------------------- ... and every catalogued mistake fails, named
@pytest.mark.parametrize("name, key", MISTAKES)
def test_catalogued_mistake_is_rejected_and_named(name, key, capsys):
    ex = EXERCISES[name]
    mistake = next(m for m in ex.mistakes if m.key == key)
    result = ex.grade(mistake.wrong)
    assert result.status == WRONG
    assert result.mistake_keys == [key]                # named, and no other mistake with it
    ex.check(mistake.wrong)
    assert "known mistake" in capsys.readouterr().out
    assert " ".join(mistake.description.split()) in " ".join(result.report().split())


@pytest.mark.parametrize("name, key", sorted(LEARNER_MISTAKES))
def test_the_same_mistake_written_by_a_learner_is_named(name, key):
    result = grade(name, LEARNER_MISTAKES[name, key])
    assert result.status == WRONG
    assert result.mistake_keys == [key]


def test_every_catalogued_mistake_has_a_learner_version():
    assert sorted(LEARNER_MISTAKES) == sorted(MISTAKES)


@pytest.mark.parametrize("name, key", MISTAKES)
def test_a_mistake_changes_exactly_the_outputs_it_declares(name, key):
    ex = EXERCISES[name]
    mistake = next(m for m in ex.mistakes if m.key == key)
    changed = set()
    for case, run, expected in zip(ex.cases, ex.mistake_runs[key], ex.expected):
        if run.error is not None:
            continue
        for output, got, exp in zip(ex.outputs, run.outputs, expected):
            if got.shape != exp.shape or not np.allclose(got, exp, rtol=1e-4, atol=1e-6):
                changed.add(output)
    assert any(run.error is None for run in ex.mistake_runs[key])       # the mistake runs somewhere
    declared = set(mistake.affects or ex.outputs)
    # a mistake that raises where the answer does not changes every output there
    raises_somewhere = any(run.error for run in ex.mistake_runs[key])
    assert changed <= declared and (changed == declared or raises_somewhere)


# ---------------------------------------------------------------- other wrong answers: rejected, never misnamed
@pytest.mark.parametrize("name", NAMES)
def test_right_answer_times_1_01_is_rejected_without_naming_a_mistake(name):
    result = grade(name, scaled(solution(name), 1.01))
    assert result.status == WRONG and result.mistake_keys == []
    assert any("1.01 times the expected value" in d for d in result.diagnostics)


@pytest.mark.parametrize("name", NAMES)
def test_random_numbers_of_the_right_shape_are_rejected_without_naming_a_mistake(name):
    result = grade(name, random_like(solution(name)))
    assert result.status == WRONG and result.mistake_keys == []
    assert "matches none of the mistakes in the catalogue" in result.report()


# ---------------------------------------------------------------- the placeholder
@pytest.mark.parametrize("name", NAMES)
def test_placeholder_is_not_attempted_and_does_not_raise(name, capsys):
    fn = stub(name)
    with pytest.raises(NotImplementedError):
        fn(*case_inputs(name, 0).values())
    exercises_check = getattr(exercises, f"check_{name}")
    exercises_check(fn)                                   # the notebook's check cell: must not raise
    out = capsys.readouterr().out
    assert out.startswith("not attempted yet:") and name in out
    assert grade(name, fn).status == NOT_ATTEMPTED


@pytest.mark.parametrize("name", NAMES)
def test_stub_has_the_solutions_signature_and_a_numpydoc_docstring_with_shapes(name):
    fn = stub(name)
    assert list(inspect.signature(fn).parameters) == list(inspect.signature(solution(name)).parameters)
    assert list(inspect.signature(fn).parameters) == list(EXERCISES[name].cases[0].inputs)
    doc = inspect.getdoc(fn)
    assert "Parameters\n----------" in doc and "Returns\n-------" in doc
    assert "shape" in doc or name == "sigma_for_beta"                    # its arguments are numbers
    assert max(len(line) for line in EXERCISES[name].stub.splitlines()) <= 79   # fits the site's code column


def test_a_placeholder_returning_ellipsis_is_not_attempted():
    assert grade("kl_closed_form", lambda mu, log_var: ...).status == NOT_ATTEMPTED


# ---------------------------------------------------------------- what the report says, and what it never says
def _code_lines(fn):
    """The lines of a function's body that are code (not its docstring), stripped."""
    source = inspect.getsource(fn)
    body = source.split('"""')[-1]
    return [line.strip() for line in body.splitlines() if len(line.strip()) > 12]


@pytest.mark.parametrize("name", NAMES)
def test_reports_never_show_the_solutions_code(name):
    ex = EXERCISES[name]
    reports = [ex.grade(m.wrong).report() for m in ex.mistakes]
    reports += [ex.grade(scaled(solution(name), 1.01)).report(), ex.grade(random_like(solution(name))).report(),
                ex.grade(solution(name)).report()]
    for line in _code_lines(solution(name)):
        assert all(line not in report for report in reports), line
    assert all("def " not in r and "return " not in r and "lambda" not in r for r in reports)


def test_report_names_the_case_and_shows_a_few_numbers():
    report = grade("kl_closed_form", LEARNER_MISTAKES["kl_closed_form", "missing_half"]).report()
    lines = report.splitlines()
    assert lines[0].startswith("not yet right: the closed-form KL")
    assert "first failing case, 'random, 4 x 3':" in lines[2]
    assert sum("expected" in line and "yours" in line for line in lines) == 3        # three numbers, not a wall
    assert "the factor 1/2 is missing" in report and "case_inputs(\"kl_closed_form\", 0)" in report
    assert max(len(line) for line in lines) <= 110


def test_exception_in_the_learners_code_is_reported_not_raised(capsys):
    def broken(mu, log_var):
        raise ValueError("boom")

    exercises.check_kl_closed_form(broken)
    out = capsys.readouterr().out
    assert "raised ValueError: boom" in out and grade("kl_closed_form", broken).status == WRONG


def test_a_missing_return_is_named():
    assert "returned None: is a `return` missing?" in grade("kl_closed_form", lambda mu, log_var: None).report()


def test_a_wrong_number_of_outputs_is_reported():
    report = grade("kl_gradients", lambda mu, log_var: mu).report()
    assert "returned one ndarray where 2 are expected: dmu, dlog_var" in report


def test_a_shape_error_is_explained():
    report = grade("kl_closed_form", lambda mu, log_var: solutions.kl_closed_form(mu, log_var)[:, None]).report()
    assert "has shape (4, 1) where (4,) is expected. An extra axis of length 1 at the end: keepdims=True" in report


def _row_max_kept(log_w):
    top = log_w.max(axis=1, keepdims=True)                 # (B, 1)
    return top + np.log(np.mean(np.exp(log_w - top), axis=1))   # (B, 1) + (B,): (B, B)


def _column_vectors(x, W, b, sigma):
    r = (x - b)[:, None]                                   # (D, 1)
    C = W @ W.T + sigma**2 * np.eye(len(b))
    return -0.5 * (len(b) * math.log(2 * math.pi) + np.linalg.slogdet(C)[1] + r.T @ np.linalg.solve(C, r))


@pytest.mark.parametrize("name, fn, hint", [
    ("iwae_estimate", _row_max_kept, "has shape (4, 4) where (4,) is expected. A square array: is a reduction "
                                     "missing, or was an array of shape (n, 1)"),
    ("log_evidence_closed_form", _column_vectors, "has shape (1, 1) where () is expected. A 1 x 1 array"),
    ("linear_backward_pass", lambda dout, x, W: (dout @ W.T, x.T @ dout, dout.sum(axis=0, keepdims=True)),
     "db has shape (1, 3) where (3,) is expected. A leading axis of length 1: a trailing comma after `return`, a "
     "pair of brackets too many, or keepdims=True"),
    ("monte_carlo_elbo", lambda lp, z, mu, lv: lp + norm.logpdf(z).sum(-1) - norm.logpdf(
        z, mu, np.exp(0.5 * lv)).sum(-1), "has shape (20, 3) where (3,) is expected. An extra leading axis: is a "
                                          "reduction over axis 0 missing"),
], ids=["(B, 1) + (B,)", "column vectors", "keepdims", "no mean over the samples"])
def test_a_shape_hint_points_at_the_slip(name, fn, hint):
    assert hint in grade(name, fn).report()


def test_writing_into_the_inputs_spoils_no_other_case():
    def scribbles(mu, log_var):
        out = solutions.kl_closed_form(mu, log_var)
        mu[...], log_var[...] = 99.0, -99.0
        return out

    result = grade("kl_closed_form", scribbles)
    assert result.status == WRONG and result.modified == ["mu", "log_var"]          # reported, both named
    assert grade("kl_closed_form", solutions.kl_closed_form).status == CORRECT       # the cases are intact


def test_a_fault_in_float32_only_is_diagnosed():
    def half_precision(mu, log_var):
        low = mu.dtype == np.float32
        return solutions.kl_closed_form(*(a.astype(np.float16) if low else a for a in (mu, log_var)))

    result = grade("kl_closed_form", half_precision)
    cases = EXERCISES["kl_closed_form"].cases
    assert result.status == WRONG and "float32" in [cases[i].label for i in result.failing_cases]
    assert all(cases[i].is_float32 for i in result.failing_cases)
    assert any("wrong only in float32" in d for d in result.diagnostics)


def test_an_overflow_outside_the_catalogue_gets_a_hint():
    def naive_softplus(logits, x):                  # log(1 + exp(l)): overflows at l = 1e4, unlike the catalogue's
        return np.sum(np.log(1 + np.exp(logits)) - x * logits, axis=-1), expit(logits) - x

    result = grade("bernoulli_nll_and_gradient", naive_softplus)
    assert result.status == WRONG and result.mistake_keys == []
    assert any(d.startswith("nll is not finite in case 'large |logits| (up to 1e4)'") and "At large |logits|" in d
               for d in result.diagnostics)


def test_float64_results_for_float32_inputs_pass_with_a_remark():
    result = grade("kl_closed_form", lambda mu, log_var: solutions.kl_closed_form(mu, log_var).astype(np.float64))
    assert result.status == CORRECT and "returns float64 for float32 inputs" in result.report()


def test_impossible_values_are_pointed_out_whatever_the_mistake():
    negative_kl = grade("kl_closed_form", lambda mu, lv: solutions.kl_closed_form(mu, lv) - 1.0)
    assert any("a KL divergence never is" in d for d in negative_kl.diagnostics)
    above_evidence = grade("elbo_closed_form", lambda *a: solutions.elbo_closed_form(*a) + 1.0)
    assert any("is above log p(x)" in d for d in above_evidence.diagnostics)


@pytest.mark.parametrize("name", NAMES)
def test_case_inputs_reproduce_the_cases(name):
    ex = EXERCISES[name]
    for i, expected in enumerate(ex.expected):
        out = solution(name)(*case_inputs(name, i).values())
        out = out if isinstance(out, tuple) else (out,)
        for got, exp in zip(out, expected):
            np.testing.assert_allclose(got, exp, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- the solutions stay out of the checks' way
def test_the_checks_never_import_the_solutions():
    for path in Path(exercises.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [getattr(node, "module", None) or ""] + [alias.name for alias in node.names]
                assert not any("exercise_solutions" in n for n in names), path.name
    script = ("import sys; from vaelib.teaching import exercises as e; "
              "[ex.grade(lambda *a: 0.0) for ex in e.EXERCISES.values()]; "
              "assert 'vaelib.teaching.exercise_solutions' not in sys.modules")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_exercises_cover_notebooks_01_to_08():
    counts = {nb: len(exercises.exercises_for(nb)) for nb in ("01", "02", "03", "04", "05", "06", "07", "08")}
    assert all(counts[nb] >= 2 for nb in ("01", "02", "03", "04", "05", "06")) and counts["07"] and counts["08"]
    assert sum(counts.values()) == len(EXERCISES)


def test_no_stub_shadows_a_name_a_notebook_uses():
    """A stub defined at the end of a notebook must not replace a function its earlier cells call."""
    for path in sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"
                         and not any(t.startswith("exercise-") for t in c.get("metadata", {}).get("tags", [])))
        for ex in exercises.exercises_for(path.name[:2]):
            assert not re.search(rf"\b{ex.name}\b", code), (path.name, ex.name)


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_holds_the_check_cell_that_calls_the_check(name):
    ex = EXERCISES[name]
    assert ex.check_source.splitlines() == ["from vaelib.teaching import exercises", f"exercises.check_{name}({name})"]
    path, = (Path(__file__).parents[1] / "notebooks").glob(f"{ex.notebook}-*.ipynb")
    cells = [c for c in json.loads(path.read_text())["cells"]
             if f"exercise-{name}" in c.get("metadata", {}).get("tags", [])]
    checks = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]) == ex.check_source]
    assert len(checks) == 1, f"{path.name} has no cell tagged exercise-{name} that runs the check"
    assert cells.index(checks[0]) == len(cells) - 1  # after the function it checks
