"""The exercise checks against answers they have never seen: numerically unsafe formulas, answers that
write into their inputs, partly written answers, and anything at all a function can return or raise.

Every answer below is written the way a learner would write it, independently of the checks'
catalogue. A check must reject each wrong one, say what is wrong in one message, and never raise.
Last, every one-edit change of each solution's code must fail its check, unless it gives the same
numbers on other inputs too.
"""

import ast
import copy
import inspect
import math
import sys
import warnings

import numpy as np
import pytest
from scipy.special import expit, logsumexp
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from vaelib.teaching import exercise_solutions as solutions
from vaelib.teaching import exercises
from vaelib.teaching.exercises import CORRECT, EXERCISES, NOT_ATTEMPTED, WRONG, grade

NAMES = list(EXERCISES)
LOG_2PI = math.log(2 * math.pi)


def solution(name):
    return getattr(solutions, name)


def as_tuple(name, value):
    return tuple(value) if len(EXERCISES[name].outputs) > 1 else (value,)


def from_tuple(name, values):
    return tuple(values) if len(EXERCISES[name].outputs) > 1 else values[0]


# ---------------------------------------------------------------- right answers, written another way: they pass
def _normal_pdf(v, mean=0.0, std=1.0):
    """A Gaussian density, written out, in the dtype of its inputs."""
    return np.exp(-((v - mean) ** 2) / (2 * std**2)) / (std * math.sqrt(2 * math.pi))


RIGHT_ANSWERS = [
    ("monte_carlo_elbo", "scipy's norm.logpdf", lambda lp, z, mu, lv: np.mean(
        lp + norm.logpdf(z).sum(-1) - norm.logpdf(z, mu, np.exp(0.5 * lv)).sum(-1), axis=0)),
    ("log_evidence_closed_form", "a Cholesky factor", lambda x, W, b, s: (
        lambda Lc: -0.5 * len(b) * LOG_2PI - np.sum(np.log(np.diag(Lc)))
        - 0.5 * np.sum(np.linalg.solve(Lc, x - b) ** 2))(np.linalg.cholesky(W @ W.T + s**2 * np.eye(len(b))))),
    ("gaussian_log_likelihood", "scipy's norm.logpdf", lambda x, m, s: norm.logpdf(x, m, s).sum(axis=-1)),
    ("kl_closed_form", "exp(l) - 1 written out", lambda mu, lv: 0.5 * np.sum(np.exp(lv) + mu**2 - 1 - lv, -1)),
    ("log_q_of_sample", "scipy's norm.logpdf", lambda mu, lv, eps: norm.logpdf(eps).sum(-1) - 0.5 * lv.sum(-1)),
    ("bernoulli_nll_and_gradient", "logaddexp and expit", lambda l, x: (
        np.sum(np.logaddexp(0, l) - x * l, axis=-1), expit(l) - x)),
    ("iwae_estimate", "scipy's logsumexp", lambda lw: logsumexp(lw, axis=1) - math.log(lw.shape[1])),
    ("iwae_estimate", "the row maximum factored out", lambda lw: (
        lambda top: top[:, 0] + np.log(np.mean(np.exp(lw - top), axis=1)))(lw.max(axis=1, keepdims=True))),
]


@pytest.mark.parametrize("name, label, fn", RIGHT_ANSWERS, ids=[f"{n}: {l}" for n, l, _ in RIGHT_ANSWERS])
def test_right_answers_written_another_way_pass(name, label, fn):
    result = grade(name, fn)
    assert result.status == CORRECT, result.report()


# ---------------------------------------------------------------- exact on paper, unsafe in floating point
def _shifted_log_mean_exp(shift):
    return lambda lw: (lambda c: np.reshape(c, (-1,)) + np.log(np.mean(np.exp(lw - c), axis=1)))(shift(lw))


def _mc_elbo_from_densities(lp, z, mu, lv):
    """log of the densities, each computed first."""
    std = np.exp(0.5 * lv)
    return np.mean(lp + np.sum(np.log(_normal_pdf(z)), -1) - np.sum(np.log(_normal_pdf(z, mu, std)), -1), axis=0)


def _mc_elbo_from_products(lp, z, mu, lv):
    """log of the product of the densities over the latent dimensions."""
    std = np.exp(0.5 * lv)
    return np.mean(lp + np.log(np.prod(_normal_pdf(z), -1)) - np.log(np.prod(_normal_pdf(z, mu, std), -1)), 0)


def _evidence_from_the_density(x, W, b, s):
    D = len(b)
    C = W @ W.T + s**2 * np.eye(D)
    r = x - b
    density = np.exp(-0.5 * r @ np.linalg.solve(C, r)) / np.sqrt((2 * np.pi) ** D * np.linalg.det(C))
    return np.log(density)


def _elbo_with_a_product_of_variances(x, mu, lv, W, b, s):
    var = np.exp(lv)
    D = len(b)
    expected_sq = np.sum((x - W @ mu - b) ** 2) + np.sum(np.sum(W**2, axis=0) * var)
    kl = 0.5 * (np.sum(var + mu**2 - 1) - np.log(np.prod(var)))
    return -0.5 * D * math.log(2 * math.pi * s**2) - expected_sq / (2 * s**2) - kl


UNSAFE_ANSWERS = [
    # 07: log (1/K) sum exp, with the shift chosen badly
    ("iwae_estimate", "shift by the batch's largest log w", _shifted_log_mean_exp(np.max)),
    ("iwae_estimate", "shift by the constant -100", _shifted_log_mean_exp(lambda lw: -100.0)),
    ("iwae_estimate", "shift by the constant -500", _shifted_log_mean_exp(lambda lw: -500.0)),
    ("iwae_estimate", "shift by each row's mean", _shifted_log_mean_exp(lambda lw: lw.mean(1, keepdims=True))),
    ("iwae_estimate", "shift by each row's first log w", _shifted_log_mean_exp(lambda lw: lw[:, :1])),
    ("iwae_estimate", "shift by each row's smallest log w", _shifted_log_mean_exp(lambda lw: lw.min(1, keepdims=True))),
    ("iwae_estimate", "no shift", lambda lw: np.log(np.mean(np.exp(lw), axis=1))),
    # 05: log of a product
    ("kl_closed_form", "log of the product of the variances", lambda mu, lv: 0.5 * (
        np.sum(np.exp(lv) + mu**2 - 1, -1) - np.log(np.prod(np.exp(lv), -1)))),
    # 04: the Jacobian, or log p(eps), as the log of a product
    ("log_q_of_sample", "log of the product of the standard deviations", lambda mu, lv, eps: (
        -0.5 * np.sum(LOG_2PI + eps**2, -1) - np.log(np.prod(np.exp(0.5 * lv), -1)))),
    ("log_q_of_sample", "log of the product of the densities of eps", lambda mu, lv, eps: (
        np.log(np.prod(_normal_pdf(eps), -1)) - 0.5 * np.sum(lv, -1))),
    # 01: densities first, logs after
    ("monte_carlo_elbo", "log of each density", _mc_elbo_from_densities),
    ("monte_carlo_elbo", "log of the product of the densities", _mc_elbo_from_products),
    # 02: det C, and the density itself
    ("log_evidence_closed_form", "log of det C", lambda x, W, b, s: -0.5 * (
        len(b) * LOG_2PI + np.log(np.linalg.det(W @ W.T + s**2 * np.eye(len(b))))
        + (x - b) @ np.linalg.solve(W @ W.T + s**2 * np.eye(len(b)), x - b))),
    ("log_evidence_closed_form", "log of the density", _evidence_from_the_density),
    ("elbo_closed_form", "log of the product of q's variances", _elbo_with_a_product_of_variances),
    # 03: each pixel's density first, or their product
    ("gaussian_log_likelihood", "log of each pixel's density", lambda x, m, s: np.sum(
        np.log(_normal_pdf(x, m, s)), axis=-1)),
    ("gaussian_log_likelihood", "log of the product of the densities", lambda x, m, s: np.log(
        np.prod(_normal_pdf(x, m, s), axis=-1))),
    # 06: overflowing sigmoids and softplus
    ("bernoulli_nll_and_gradient", "log(1 + exp(l))", lambda l, x: (
        np.sum(np.log(1 + np.exp(l)) - x * l, -1), expit(l) - x)),
    ("bernoulli_nll_and_gradient", "the logs of the sigmoid", lambda l, x: (
        -np.sum(x * np.log(expit(l)) + (1 - x) * np.log(1 - expit(l)), -1), expit(l) - x)),
    ("bernoulli_nll_and_gradient", "dlogits as exp(l) / (1 + exp(l))", lambda l, x: (
        np.sum(np.logaddexp(0, l) - x * l, -1), np.exp(l) / (1 + np.exp(l)) - x)),
]


@pytest.mark.parametrize("name, label, fn", UNSAFE_ANSWERS, ids=[f"{n}: {l}" for n, l, _ in UNSAFE_ANSWERS])
def test_numerically_unsafe_answers_fail(name, label, fn):
    with np.errstate(all="ignore"):
        result = grade(name, fn)
    assert result.status == WRONG


def test_the_unsafe_answers_are_right_on_paper():
    """Each unsafe answer agrees with the reference wherever nothing overflows: its only fault is numerical."""
    for name, label, fn in UNSAFE_ANSWERS:
        ex = EXERCISES[name]
        agrees_somewhere = False
        for case, expected in zip(ex.cases, ex.expected):
            with np.errstate(all="ignore"), threadpool_limits(1, user_api="blas"):
                got = as_tuple(name, fn(*case.float64_inputs().values()))
            finite = all(np.all(np.isfinite(g)) for g in got)
            if finite and all(np.allclose(g, e, rtol=1e-6, atol=1e-6) for g, e in zip(got, expected)):
                agrees_somewhere = True
        assert agrees_somewhere, (name, label)


def test_rows_at_very_different_scales_fail_a_shift_by_the_batch_maximum():
    result = grade("iwae_estimate", _shifted_log_mean_exp(np.max))
    labels = [EXERCISES["iwae_estimate"].cases[i].label for i in result.failing_cases]
    assert "rows near -60, -900 and -2000 nats" in labels and result.mistake_keys == ["global_max_shift"]


def test_no_constant_shift_passes():
    """A constant that suits the float32 rows near -100 leaves those near -400 at exp(-300) = 0, and back."""
    for shift in np.arange(-2000.0, 801.0, 50.0):
        with np.errstate(all="ignore"):
            assert grade("iwae_estimate", _shifted_log_mean_exp(lambda lw, c=shift: c)).status == WRONG, shift


# ---------------------------------------------------------------- right on typical inputs, wrong on an edge
def _expanded_mean_square(x, m):
    """mean((x - m)^2) as mean(x^2) - 2 mean(x m) + mean(m^2): exact on paper, it cancels catastrophically."""
    return np.mean(x * x, axis=-1) - 2 * np.mean(x * m, axis=-1) + np.mean(m * m, axis=-1)


EDGE_ANSWERS = [
    # 01: a Bernoulli decoder's log p(x|z) is never positive, a Gaussian decoder's can be
    ("loss_from_elbo_terms", "|log p(x|z)| as the reconstruction term",
     lambda lp, kl, beta: np.mean(np.abs(lp) + beta * kl), "a Gaussian decoder"),
    ("loss_from_elbo_terms", "the reconstruction term clipped at 0",
     lambda lp, kl, beta: np.mean(np.maximum(-lp, 0.0) + beta * kl), "a Gaussian decoder"),
    ("loss_from_elbo_terms", "the loss clipped at 0",
     lambda lp, kl, beta: max(float(np.mean(-lp + beta * kl)), 0.0), "a Gaussian decoder"),
    # 03: the square expanded loses the digits of small residuals in float32
    ("best_sigma", "the square expanded", lambda x, m: np.sqrt(_expanded_mean_square(x, m)), "small residuals"),
    ("best_sigma", "the square expanded, kept >= 0",
     lambda x, m: np.sqrt(np.maximum(_expanded_mean_square(x, m), 0.0)), "small residuals"),
    # 04: a product of 1000 densities leaves float64's range too. The answers cast to float64 themselves: whether
    # a NumPy float64 scalar such as np.sqrt(2 pi) makes a float32 array float64 depends on the NumPy version
    # (it does under NumPy 2's promotion rules, NEP 50, and does not under NumPy 1.26's)
    ("log_q_of_sample", "log of the product of the densities of eps, in float64", lambda mu, lv, eps: (
        np.log(np.prod(np.exp(-0.5 * np.float64(eps) ** 2) / np.sqrt(2 * np.pi), axis=-1))
        - 0.5 * np.sum(np.float64(lv), axis=-1)),
     "1000 latents"),
    ("log_q_of_sample", "log of the product of q's densities, in float64", lambda mu, lv, eps: np.log(np.prod(
        np.exp(-0.5 * np.float64(eps) ** 2) / (np.sqrt(2 * np.pi) * np.exp(0.5 * np.float64(lv))), axis=-1)),
     "1000 latents"),
]


@pytest.mark.parametrize("name, label, fn, edge", EDGE_ANSWERS, ids=[f"{n}: {l}" for n, l, _, _ in EDGE_ANSWERS])
def test_answers_right_on_typical_inputs_fail_on_the_edge_case(name, label, fn, edge):
    with np.errstate(all="ignore"):
        result = grade(name, fn)
    labels = [EXERCISES[name].cases[i].label for i in result.failing_cases]
    assert result.status == WRONG and labels and all(edge in case_label for case_label in labels), labels


def test_a_gaussian_decoders_case_has_a_positive_log_likelihood_and_a_negative_loss():
    case, = [c for c in EXERCISES["loss_from_elbo_terms"].cases if "Gaussian decoder" in c.label]
    assert np.any(case.inputs["log_px_given_z"] > 0) and np.any(case.inputs["log_px_given_z"] < 0)
    assert case.facts["loss"] < 0


def test_the_product_of_densities_is_named_for_what_it_is():
    def product_of_densities(mu, lv, eps):    # float32 stays float32: the 100 latents underflow too
        return np.log(np.prod(_normal_pdf(eps), axis=-1)) - 0.5 * np.sum(lv, axis=-1)

    with np.errstate(all="ignore"):
        result = grade("log_q_of_sample", product_of_densities)
    assert result.mistake_keys == ["log_of_a_product"]
    assert "of the densities" in " ".join(result.report().split())
    float64_product = grade("log_q_of_sample", EDGE_ANSWERS[5][2])
    assert any(d.startswith("your result is not finite in case '1000 latents") and "product over many latent" in d
               for d in float64_product.diagnostics)


# ---------------------------------------------------------------- writing into the inputs
def _kl_gradients_into_log_var(mu, log_var):
    dlog_var = log_var                       # not a copy
    dlog_var[...] = 0.5 * np.expm1(log_var)
    return mu, dlog_var


def _iwae_shifting_in_place(lw):
    top = lw.max(axis=1, keepdims=True)
    lw -= top
    return top[:, 0] + np.log(np.mean(np.exp(lw), axis=1))


def _gaussian_subtracting_in_place(x, mean, sigma):
    x -= mean
    return -np.sum(x**2, -1) / (2 * sigma**2) - x.shape[-1] * (math.log(sigma) + 0.5 * LOG_2PI)


def _sample_into_mu(mu, log_var, eps):
    mu += np.exp(0.5 * log_var) * eps
    return mu


def _sigma_subtracting_in_place(x, mean):
    x -= mean
    return np.sqrt(np.mean(x**2, axis=-1))


def _bernoulli_gradient_into_x(logits, x):
    nll = np.sum(np.logaddexp(0, logits) - x * logits, axis=-1)
    x -= expit(logits)
    return nll, -x


def _reparam_grad_into_eps(dz, log_var, eps):
    eps *= 0.5 * np.exp(0.5 * log_var)
    return dz, dz * eps


def _loss_weighting_kl_in_place(lp, kl, beta):
    kl *= beta
    return np.mean(kl - lp)


def _evidence_centring_x(x, W, b, sigma):
    x -= b
    C = W @ W.T + sigma**2 * np.eye(len(b))
    return -0.5 * (len(b) * LOG_2PI + np.linalg.slogdet(C)[1] + x @ np.linalg.solve(C, x))


IN_PLACE_ANSWERS = [
    ("loss_from_elbo_terms", "kl *= beta", _loss_weighting_kl_in_place, ["kl"]),
    ("log_evidence_closed_form", "x -= b", _evidence_centring_x, ["x"]),
    ("gaussian_log_likelihood", "x -= mean", _gaussian_subtracting_in_place, ["x"]),
    ("best_sigma", "x -= mean", _sigma_subtracting_in_place, ["x"]),
    ("reparam_sample", "mu += ...", _sample_into_mu, ["mu"]),
    ("kl_gradients", "dlog_var = log_var; dlog_var[...] = ...", _kl_gradients_into_log_var, ["log_var"]),
    ("bernoulli_nll_and_gradient", "x -= sigmoid", _bernoulli_gradient_into_x, ["x"]),
    ("reparam_backward_pass", "eps *= ...", _reparam_grad_into_eps, ["eps"]),
    ("iwae_estimate", "log_w -= top", _iwae_shifting_in_place, ["log_w"]),
]


@pytest.mark.parametrize("name, label, fn, modified", IN_PLACE_ANSWERS,
                         ids=[f"{n}: {l}" for n, l, _, _ in IN_PLACE_ANSWERS])
def test_writing_into_an_input_is_reported_by_name(name, label, fn, modified):
    result = grade(name, fn)
    assert result.status == WRONG and result.modified == modified
    report = " ".join(result.report().split())
    assert f"your function writes into its input `{modified[0]}`" in report
    assert f"your function changed `{modified[0]}` in place." in report
    assert "matches none" not in report           # its outputs are right: only the writing is reported


@pytest.mark.parametrize("name", [n for n in NAMES if any(isinstance(v, np.ndarray)
                                                        for v in EXERCISES[n].cases[0].inputs.values())])
def test_any_input_written_into_is_named(name):
    """The right outputs, then every array input written into in turn: each is named, and only it."""
    inputs = [k for k, v in EXERCISES[name].cases[0].inputs.items() if isinstance(v, np.ndarray)]
    for position, input_name in enumerate(EXERCISES[name].cases[0].inputs):
        if input_name not in inputs:
            continue

        def scribbles(*args, position=position):
            out = solution(name)(*(np.copy(a) if isinstance(a, np.ndarray) else a for a in args))
            args[position][...] = 0.5 * args[position] + 1.0
            return out

        result = grade(name, scribbles)
        assert result.status == WRONG and result.modified == [input_name]


def test_the_cases_stay_intact_after_an_answer_writes_into_them():
    before = [{k: np.copy(v) for k, v in case.inputs.items()} for case in EXERCISES["iwae_estimate"].cases]
    grade("iwae_estimate", _iwae_shifting_in_place)
    for saved, case in zip(before, EXERCISES["iwae_estimate"].cases):
        assert all(np.array_equal(saved[k], case.inputs[k]) for k in saved)
    assert grade("iwae_estimate", solutions.iwae_estimate).status == CORRECT


# ---------------------------------------------------------------- a partly written answer
def _unwritten_for(name):
    """Which cases a partly written answer leaves out: float32 ones, or for sigma_for_beta a mean over pixels."""
    if name == "sigma_for_beta":
        return lambda args: args[3] == "mean"
    return lambda args: any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in args)


def partly_written(name, fn):
    leaves_out = _unwritten_for(name)

    def answer(*args):
        if leaves_out(args):
            raise NotImplementedError("this branch is still to write")
        return fn(*args)
    return answer


@pytest.mark.parametrize("name", NAMES)
def test_a_partly_written_answer_is_graded_on_the_cases_it_handles(name, capsys):
    ex = EXERCISES[name]
    left_out = [i for i, case in enumerate(ex.cases) if _unwritten_for(name)(tuple(case.inputs.values()))]
    assert 0 < len(left_out) < len(ex.cases)
    result = grade(name, partly_written(name, solution(name)))
    assert result.status == WRONG and result.failing_cases == left_out and result.unwritten == left_out
    report = " ".join(result.report().split())
    assert "every other case is right" in report and "matches none" not in report
    getattr(exercises, f"check_{name}")(partly_written(name, solution(name)))
    assert not capsys.readouterr().out.startswith("not attempted")


def test_a_partly_written_answer_is_checked_for_mistakes_on_the_cases_it_handles():
    def missing_minus_one_but_for_the_first_shape(mu, lv):
        if mu.shape == (4, 3):
            raise NotImplementedError
        return 0.5 * np.sum(np.exp(lv) + mu**2 - lv, axis=-1)

    result = grade("kl_closed_form", missing_minus_one_but_for_the_first_shape)
    assert result.mistake_keys == ["missing_minus_one"] and result.unwritten == [0]
    report = " ".join(result.report().split())
    assert "first failing case that your function handles, 'log_var = 0'" in report
    assert "1 of 7 cases still reaches a part of your function that raises NotImplementedError ('random, 4 x 3')" \
        in report


def test_only_an_answer_unwritten_in_every_case_is_not_attempted():
    def unwritten(mu, log_var):
        raise NotImplementedError
    assert grade("kl_closed_form", unwritten).status == NOT_ATTEMPTED
    assert grade("kl_gradients", lambda mu, log_var: (..., ...)).status == NOT_ATTEMPTED

    def one_case_written(mu, log_var):
        if mu.shape == (1, 5):
            return solutions.kl_closed_form(mu, log_var)
        raise NotImplementedError
    assert grade("kl_closed_form", one_case_written).status == WRONG


def test_one_output_still_a_placeholder_is_named():
    report = grade("kl_gradients", lambda mu, log_var: (mu.copy(), ...)).report()
    assert "returned a placeholder (...) for dlog_var where numbers are expected" in report


@pytest.mark.parametrize("missing", [..., None, NotImplemented], ids=repr)
def test_the_outputs_written_are_graded_when_another_is_not_yet(missing):
    def two_of_three(dout, x, W):
        return dout @ W.T, x.T @ dout, missing

    result = grade("linear_backward_pass", two_of_three)
    report = " ".join(result.report().split())
    assert result.status == WRONG and result.wrong_outputs == ["db"] and result.unfinished_outputs == ["db"]
    assert ("`db` is not written yet in every case (a placeholder, or None); `dx` and `dW` are right in every "
            "case.") in report
    assert "matches none" not in report and ("NotImplemented)" in report) == (missing is NotImplemented)


def test_an_output_left_a_placeholder_in_some_cases_is_not_called_wrong_there():
    def dlog_var_left_for_float32(mu, log_var):
        return mu, (... if mu.dtype == np.float32 else 0.5 * np.expm1(log_var))

    result = grade("kl_gradients", dlog_var_left_for_float32)
    report = " ".join(result.report().split())
    assert "`dlog_var` is not written yet in 2 of 7 cases (a placeholder, or None); `dmu` is right in every case." \
        in report
    assert "wrong only in float32" not in report


def test_a_wrong_output_beside_a_placeholder_is_shown_and_its_mistake_named():
    result = grade("kl_gradients", lambda mu, log_var: (2 * mu, ...))
    report = " ".join(result.report().split())
    assert result.mistake_keys == ["dmu_twice"] and result.wrong_outputs == ["dmu", "dlog_var"]
    assert "dmu[" in report and "`dlog_var` is not written yet" in report and "right in every" not in report


@pytest.mark.parametrize("name", NAMES)
def test_code_written_before_the_placeholders_raise_is_not_called_the_placeholder(name, capsys):
    """The stub's raise left below new code: nothing can be graded, but the function is not the placeholder."""
    namespace = {}
    exec(EXERCISES[name].stub, namespace)
    stub = namespace[name]

    def started(*args):
        first = as_tuple(name, solution(name)(*args))[0]   # the first output, written
        return stub(*args) if first is not None else None

    result = grade(name, started)
    assert result.status == NOT_ATTEMPTED
    assert result.report().startswith(f"not finished yet: `{name}` still raises NotImplementedError")
    assert "is still the placeholder" not in result.report()
    getattr(exercises, f"check_{name}")(stub)                        # the stub itself: as the notebooks print it
    assert capsys.readouterr().out.startswith(f"not attempted yet: `{name}` is still the placeholder.")


def test_the_placeholder_with_its_docstring_or_message_changed_is_still_the_placeholder():
    source = EXERCISES["kl_closed_form"].stub.replace("write the body of kl_closed_form", "to do").replace(
        "for every row, in nats.", "per row.")
    namespace = {}
    exec(source, namespace)
    assert grade("kl_closed_form", namespace["kl_closed_form"]).report().startswith("not attempted yet:")


@pytest.mark.parametrize("name", [n for n in NAMES if len(EXERCISES[n].outputs) > 1])
def test_outputs_returned_in_the_wrong_order_are_pointed_out(name):
    def swapped(*args):
        out = list(as_tuple(name, solution(name)(*args)))
        out[0], out[1] = out[1], out[0]
        return tuple(out)

    result = grade(name, swapped)
    first, second = EXERCISES[name].outputs[:2]
    assert result.status == WRONG
    assert any(d.startswith(f"your {first} and {second} are each other's expected values in every case")
               for d in result.diagnostics)


def test_an_output_equal_to_another_expected_output_is_not_called_swapped():
    result = grade("reparam_backward_pass", lambda dz, log_var, eps: (dz, dz))      # dlog_var = dz: not a swap
    assert not any("each other's" in d for d in result.diagnostics)


def test_a_list_holding_none_is_reported_as_such_not_as_nan():
    result = grade("kl_closed_form", lambda mu, log_var: [None] + list(solutions.kl_closed_form(mu, log_var)[1:]))
    report = result.report()
    assert "returned a list holding None for kl where numbers are expected" in report and "not finite" not in report


# ---------------------------------------------------------------- a hint names the output that is wrong
def test_a_nonfinite_dlogits_is_blamed_on_dlogits():
    def overflowing_sigmoid(logits, x):
        return np.sum(np.logaddexp(0, logits) - x * logits, axis=-1), np.exp(logits) / (1 + np.exp(logits)) - x

    result = grade("bernoulli_nll_and_gradient", overflowing_sigmoid)
    assert result.wrong_outputs == ["dlogits"]
    assert any(d.startswith("dlogits is not finite in case 'large |logits| (up to 1e4)'")
               for d in result.diagnostics)
    assert not any("nll" in d for d in result.diagnostics)


MULTI_OUTPUT = [(name, output) for name in NAMES for output in EXERCISES[name].outputs
                if len(EXERCISES[name].outputs) > 1]


@pytest.mark.parametrize("name, output", MULTI_OUTPUT)
def test_a_nonfinite_hint_names_its_output_and_no_other(name, output):
    k = EXERCISES[name].outputs.index(output)

    def one_nan(*args):
        out = [np.array(o, dtype=float) for o in solution(name)(*args)]
        out[k].flat[0] = np.nan
        return tuple(out)

    result = grade(name, one_nan)
    assert result.wrong_outputs == [output]
    hints = [d for d in result.diagnostics if "not finite" in d]
    assert len(hints) == 1 and output in hints[0]
    others = [o for o in EXERCISES[name].outputs if o != output]
    assert not any(f"{o} " in hints[0] or f"{o}:" in hints[0] for o in others)


# ---------------------------------------------------------------- a check never raises, whatever the answer
class _ArrayRaises:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array here")


class _LenRaises(list):
    def __len__(self):
        raise RuntimeError("no length")


class _StrRaises(Exception):
    def __str__(self):
        raise RuntimeError("no message either")


class _LearnersBaseException(BaseException):
    pass


def _recurse(n):
    return _recurse(n + 1)


def _raise(error):
    def answer(*args):
        raise error
    return answer


def _returning(value):
    return lambda *args: value


def _per_output(change):
    """Each output of the right answer passed through ``change``."""
    def build(name):
        return lambda *args: from_tuple(name, [change(o) for o in as_tuple(name, solution(name)(*args))])
    return build


def _sets_numpy_to_raise(*args):
    np.seterr(all="raise")
    return np.zeros(3) / 0.0


def _warns(*args):
    warnings.warn("a learner's warning", UserWarning)
    return np.log(np.zeros(2))


ODD_RETURNS = {
    "None": _returning(None),
    "an empty list": _returning([]),
    "a list of two numbers": _returning([1.0, 2.0]),
    "a ragged list": _returning([[1.0], [2.0, 3.0]]),
    "a string": _returning("the KL"),
    "bytes": _returning(b"\x00\x01"),
    "a dict": _returning({"kl": 1.0}),
    "a set": _returning({1.0, 2.0}),
    "a generator": lambda *args: (a for a in args),
    "NaN": _returning(float("nan")),
    "inf": _returning(np.inf),
    "a 0-d array": _returning(np.array(0.5)),
    "a 3-d array": _returning(np.zeros((2, 3, 4))),
    "an int too large for any dtype": _returning(2**200),
    "a complex number": _returning(1 + 2j),
    "an object whose __array__ raises": _returning(_ArrayRaises()),
    "a list whose __len__ raises": _returning(_LenRaises([1.0, 2.0])),
    "a tuple of length 1": _returning((np.zeros(3),)),
    "a tuple of length 4": _returning((np.zeros(3),) * 4),
    "a tuple of Nones": _returning((None, None, None)),
    "a tuple of strings": _returning(("a", "b")),
    "Ellipsis in a tuple of three": _returning((np.zeros(3), ..., np.zeros(3))),
}
ODD_OUTPUTS = {
    "each output as an int array": _per_output(lambda o: np.asarray(o).astype(int)),
    "each output all NaN": _per_output(lambda o: np.full(np.shape(o), np.nan)),
    "each output with an extra entry": _per_output(lambda o: np.append(np.ravel(o), 0.0)),
    "each output with an axis too many": _per_output(lambda o: np.asarray(o)[..., None]),
    "each output one entry per dimension": _per_output(lambda o: np.asarray(o)[..., None] * np.ones(3)),
    "each output summed to one number, plus 1": _per_output(lambda o: float(np.sum(o)) + 1.0),
    "each output as a list in a list": _per_output(lambda o: [np.asarray(o).tolist()]),
    "each output as a list of lists of strings": _per_output(lambda o: [["x"]]),
    "each output complex": _per_output(lambda o: np.asarray(o) + 1j),
    "each output an object array of strings": _per_output(lambda o: np.full(np.shape(o), "x", dtype=object)),
    "each output a bool array": _per_output(lambda o: np.asarray(o) > 0),
    "each output as a generator": _per_output(lambda o: (v for v in np.ravel(o))),
    "each output None": _per_output(lambda o: None),
}
RAISES = {
    "ValueError": _raise(ValueError("operands could not be broadcast together")),
    "ZeroDivisionError": _raise(ZeroDivisionError("float division by zero")),
    "a long message": _raise(TypeError("x" * 10_000)),
    "an exception whose str raises": _raise(_StrRaises()),
    "RecursionError": lambda *args: _recurse(0),
    "MemoryError": _raise(MemoryError()),
    "AssertionError": _raise(AssertionError()),
    "LinAlgError": _raise(np.linalg.LinAlgError("Singular matrix")),
    "SystemExit": _raise(SystemExit(1)),
    "GeneratorExit": _raise(GeneratorExit()),
    "a BaseException of its own": _raise(_LearnersBaseException("stop")),
    "StopIteration": _raise(StopIteration()),
    "numpy set to raise on a division by 0": _sets_numpy_to_raise,
    "a warning, and log 0": _warns,
}
BATTERY = ([(label, lambda name, fn=fn: fn) for label, fn in {**ODD_RETURNS, **RAISES}.items()]
           + list(ODD_OUTPUTS.items()))


@pytest.mark.parametrize("name", NAMES)
def test_the_check_cell_never_raises_and_reports_once(name, capsys):
    """Each answer of the battery (49 of them) through the notebook's check cell: one report, nothing else."""
    numpy_state = np.geterr()
    for label, build in BATTERY:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            getattr(exercises, f"check_{name}")(build(name))       # the notebook's check cell
        out, err = capsys.readouterr()
        assert err == "" and not caught and np.geterr() == numpy_state, label
        assert out.startswith("not yet right:") and out.count("not yet right") == 1, label
        assert out.rstrip().splitlines()[-1].startswith("to try that case:"), label
        assert "could not grade" not in out, label


def test_the_learner_stopping_the_cell_stops_the_check():
    with pytest.raises(KeyboardInterrupt):
        exercises.check_kl_closed_form(_raise(KeyboardInterrupt()))


def test_an_elbo_per_dimension_is_a_shape_error_not_a_crash(capsys):
    def per_dimension(x, mu, log_var, W, b, sigma):
        var = np.exp(log_var)
        ell = (-0.5 * len(b) * math.log(2 * math.pi * sigma**2)
               - (np.sum((x - W @ mu - b) ** 2) + np.sum(W**2, axis=0) * var) / (2 * sigma**2))
        return ell - 0.5 * (var + mu**2 - 1 - log_var)            # sums missing: one value per latent
    exercises.check_elbo_closed_form(per_dimension)
    out = capsys.readouterr().out
    assert "your result has shape (2,) where () is expected. An extra axis" in out


def test_a_recursion_error_leaves_the_interpreter_usable():
    limit = sys.getrecursionlimit()
    result = grade("kl_closed_form", RAISES["RecursionError"])
    assert "raised RecursionError" in result.report() and sys.getrecursionlimit() == limit
    assert grade("kl_closed_form", solutions.kl_closed_form).status == CORRECT


# ---------------------------------------------------------------- every small change of a solution
_SWAPPED_OPERATORS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult}
_SWAPPED_FUNCTIONS = {"sum": ["mean"], "mean": ["sum"], "exp": ["expm1"], "expm1": ["exp"], "log": ["log1p", "log2"],
                      "log1p": ["log"], "max": ["min", "mean"], "maximum": ["minimum"], "sqrt": ["abs"],
                      "tanh": ["sin"]}


def _one_changes(function):
    """Every function that differs from ``function`` (an ast.FunctionDef) by one small edit."""
    for i, node in enumerate(ast.walk(function)):
        edits = []
        if isinstance(node, ast.BinOp):
            edits += [("op", _SWAPPED_OPERATORS[type(node.op)]())] if type(node.op) in _SWAPPED_OPERATORS else []
            edits += [("keep", node.left), ("keep", node.right)]         # a term or a factor dropped
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            edits += [("keep", node.operand)]                             # a sign dropped
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            edits += [("value", v) for v in {2 * node.value, node.value / 2, node.value + 1, node.value - 1,
                                             -node.value, 0} if v != node.value]
        elif isinstance(node, ast.Attribute) and node.attr in _SWAPPED_FUNCTIONS:
            edits += [("attr", name) for name in _SWAPPED_FUNCTIONS[node.attr]]
        elif isinstance(node, ast.keyword) and node.arg == "axis":
            edits += [("axis", v) for v in (0, 1, -1, None)]
        for edit in edits:
            yield _edited(function, i, edit)


def _edited(function, index, edit):
    changed = copy.deepcopy(function)
    nodes = list(ast.walk(changed))
    node, (kind, value) = nodes[index], edit
    if kind == "op":
        node.op = value
    elif kind == "value":
        node.value = value
    elif kind == "attr":
        node.attr = value
    elif kind == "axis":
        node.value = ast.Constant(value)
    else:                                                      # replace the node by one of its parts
        replacement = copy.deepcopy(value)
        for parent in nodes:
            for field, child in ast.iter_fields(parent):
                if child is node:
                    setattr(parent, field, replacement)
                elif isinstance(child, list):
                    child[:] = [replacement if c is node else c for c in child]
    return changed


def _compiled(function):
    namespace = {"np": np, "math": math, "LOG_2PI": solutions.LOG_2PI}
    exec(compile(ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[])), "<edit>", "exec"),
         namespace)
    return namespace[function.name]


def _other_inputs(name, rng):
    """Inputs like each case's, with new numbers: binary arrays stay binary, numbers move by up to 30 %."""
    for case in EXERCISES[name].cases:
        inputs = {}
        for key, v in case.inputs.items():
            if isinstance(v, np.ndarray) and set(np.unique(v)) <= {0.0, 1.0}:
                inputs[key] = (rng.random(v.shape) < 0.5).astype(v.dtype)
            elif isinstance(v, np.ndarray):
                inputs[key] = (v * rng.uniform(0.5, 1.5, v.shape) + 0.1 * rng.standard_normal(v.shape)).astype(v.dtype)
            else:
                inputs[key] = v * rng.uniform(0.7, 1.3) if isinstance(v, float) else v
        yield inputs


def _same_function(name, fn, rng):
    """Does ``fn`` give the solution's outputs on other inputs like the cases' (float64 tolerance, loosely)?"""
    for inputs in _other_inputs(name, rng):
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pairs = zip(as_tuple(name, solution(name)(*inputs.values())), as_tuple(name, fn(*inputs.values())))
                if not all(np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-5, atol=1e-7, equal_nan=True)
                           for a, b in pairs):
                    return False
        except Exception:
            return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_every_small_change_of_the_solution_fails_or_changes_nothing(name):
    """One edit of the solution's code (an operator, a constant, a function, an axis, a term dropped): the check
    calls it correct only if it gives the same numbers on other inputs too."""
    function = next(node for node in ast.parse(inspect.getsource(solutions)).body
                    if isinstance(node, ast.FunctionDef) and node.name == name)
    rng = np.random.default_rng(17)
    tried = 0
    for changed in _one_changes(function):
        try:
            fn = _compiled(changed)
        except SyntaxError:
            continue
        tried += 1
        if grade(name, fn).status == CORRECT:
            assert _same_function(name, fn, rng), ast.unparse(changed)
    assert tried >= 5


@pytest.mark.parametrize("not_a_function", [None, 3.0, "kl_closed_form", np.zeros(3)], ids=repr)
def test_checking_something_that_is_not_a_function_reports_it(not_a_function, capsys):
    exercises.check_kl_closed_form(not_a_function)
    out = capsys.readouterr().out
    assert out.startswith("not yet right:") and "raised TypeError" in out and "is not callable" in out
