"""Exercises for notebook 06, backprop by hand: the Bernoulli likelihood and its gradient, one linear
layer's backward pass, and the reparameterisation's backward pass.

References: the forward/backward pairs of :mod:`vaelib.core` (``bernoulli_nll_forward/backward``,
``linear_backward``, ``reparam_forward/backward``), which pass finite-difference checks in the tests.
"""

import numpy as np

from vaelib.core.layers import LinearCache, linear_backward, sigmoid
from vaelib.core.likelihoods import bernoulli_nll_backward, bernoulli_nll_forward, bernoulli_nll_from_logits
from vaelib.core.reparam import reparam_backward, reparam_forward

from .grading import Case, Exercise, Mistake


# ---------------------------------------------------------------- Bernoulli NLL from logits, and its gradient
def _bernoulli_cases():
    rng = np.random.default_rng(71)
    large = np.array([[-1e4, -40.0, -1.0, 0.0, 1.0, 40.0, 1e4], [1e4, 40.0, 3.0, -3.0, -40.0, -1e4, 0.5]])
    return [
        Case("4 images x 6 pixels, moderate logits",
             {"logits": rng.normal(0, 2, (4, 6)), "x": (rng.random((4, 6)) < 0.5).astype(float)}),
        Case("large |logits| (up to 1e4)", {"logits": large, "x": np.array([[0, 1, 0, 1, 0, 1, 0],
                                                                           [1, 0, 1, 0, 1, 0, 1.0]])}),
        Case("logits = 0 (a decoder at chance)", {"logits": np.zeros((2, 5)), "x": np.array([[0, 1, 1, 0, 1.0]] * 2)}),
        Case("a batch of one, 784 pixels",
             {"logits": rng.normal(0, 3, (1, 784)), "x": (rng.random((1, 784)) < 0.13).astype(float)}),
        Case("x = 0 everywhere", {"logits": rng.normal(0, 2, (3, 4)), "x": np.zeros((3, 4))}),
        Case("float32, logits up to 100",
             {"logits": (rng.normal(0, 30, (3, 8)).clip(-100, 100)).astype(np.float32),
              "x": (rng.random((3, 8)) < 0.5).astype(np.float32)}),
    ]


def _bernoulli(logits, x):
    nll, cache = bernoulli_nll_forward(logits, x)
    return nll, bernoulli_nll_backward(np.ones(len(logits), dtype=logits.dtype), cache)[0]


def _pixel_cost_if_on(logits):
    """Each pixel's -log p(x_d = 1 | logit), shape of ``logits``."""
    return bernoulli_nll_from_logits(logits[..., None], np.ones_like(logits)[..., None])


def _naive_nll(logits, x):
    """The textbook order: the sigmoid first, then its two logs."""
    s = 1 / (1 + np.exp(-logits))
    return -np.sum(x * np.log(s) + (1 - x) * np.log(1 - s), axis=-1)


BERNOULLI_NLL_AND_GRADIENT = Exercise(
    name="bernoulli_nll_and_gradient",
    title="the Bernoulli negative log-likelihood from logits, and its gradient",
    notebook="06",
    outputs=("nll", "dlogits"),
    make_cases=_bernoulli_cases,
    reference=lambda case: _bernoulli(**case.float64_inputs()),
    mistakes=(
        Mistake("sigmoid_then_log",
                "you computed the sigmoid first and then its logs: at large |logits| the sigmoid rounds to "
                "exactly 0 or 1, and the log gives -inf (or 0 * inf = nan). Section 3 shows a form that "
                "never overflows.",
                lambda logits, x: (_naive_nll(logits, x), _bernoulli(logits, x)[1]), affects=("nll",)),
        Mistake("gradient_sign", "your dlogits has the wrong sign.",
                lambda logits, x: (_bernoulli(logits, x)[0], -_bernoulli(logits, x)[1]), affects=("dlogits",)),
        Mistake("gradient_through_sigmoid",
                "your dlogits is multiplied by the sigmoid's derivative s (1 - s): differentiated with respect "
                "to logits, that factor has already cancelled.",
                lambda logits, x: (_bernoulli(logits, x)[0],
                                   _bernoulli(logits, x)[1] * sigmoid(logits) * (1 - sigmoid(logits))),
                affects=("dlogits",)),
        Mistake("only_the_x_1_term",
                "your nll leaves out the term of the pixels with x = 0: they cost nothing in your version.",
                lambda logits, x: (np.sum(x * _pixel_cost_if_on(logits), axis=-1), _bernoulli(logits, x)[1]),
                affects=("nll",)),
        Mistake("nll_mean_over_pixels", "your nll is averaged over the pixels; the nll of an image is their sum.",
                lambda logits, x: (_bernoulli(logits, x)[0] / x.shape[-1], _bernoulli(logits, x)[1]),
                affects=("nll",)),
        Mistake("gradient_mean_over_pixels", "your dlogits is divided by the number of pixels.",
                lambda logits, x: (_bernoulli(logits, x)[0], _bernoulli(logits, x)[1] / x.shape[-1]),
                affects=("dlogits",)),
        Mistake("log_likelihood", "your nll is log p(x|z), not its negative.",
                lambda logits, x: (-_bernoulli(logits, x)[0], _bernoulli(logits, x)[1]), affects=("nll",)),
        Mistake("labels_swapped",
                "your nll charges a pixel with x = 1 what a pixel with x = 0 costs, and the other way round: "
                "x and 1 - x are swapped.",
                lambda logits, x: (_bernoulli(logits, 1 - x)[0], _bernoulli(logits, x)[1]), affects=("nll",)),
        Mistake("gradient_divided_by_batch",
                "your dlogits is divided by the batch size: it is the gradient of the batch mean of the nll, "
                "where that of its sum is asked for.",
                lambda logits, x: (_bernoulli(logits, x)[0], _bernoulli(logits, x)[1] / len(x)),
                affects=("dlogits",)),
    ),
    task=(
        "**A. The Bernoulli likelihood and its gradient.** Write `bernoulli_nll_and_gradient(logits, x)`: "
        "$-\\log p(x\\mid z)$ of each image for a Bernoulli decoder that emits logits, and the gradient of the "
        "sum of these with respect to the logits (section 3). It must work at any logit, $\\pm 10^4$ included."
    ),
    stub='''def bernoulli_nll_and_gradient(logits, x):
    """-log Bernoulli(x | sigmoid(logits)) of each image, and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (batch, D)
        The decoder's output; p(x_d = 1 | z) = sigmoid(logits_d).
    x : ndarray, shape (batch, D)
        Binary pixels, 0 or 1.

    Returns
    -------
    nll : ndarray, shape (batch,)
        Negative log-likelihood of each image, summed over pixels, in nats.
    dlogits : ndarray, shape (batch, D)
        Gradient of nll.sum() with respect to logits.
    """
    raise NotImplementedError("write the body of bernoulli_nll_and_gradient")
''',
    nonfinite_hints={
        "nll": "At large |logits| exp overflows, or a sigmoid rounds to exactly 0 or 1 and its log is -inf.",
        "dlogits": "At large |logits| exp overflows to inf, and a ratio of two infinities (inf / inf) is nan. "
                   "A sigmoid can be computed without an overflow.",
    },
)
check_bernoulli_nll_and_gradient = BERNOULLI_NLL_AND_GRADIENT.check


# ---------------------------------------------------------------- one linear layer's backward pass
def _linear_cases():
    rng = np.random.default_rng(72)

    def inputs(batch, n_in, n_out, dtype=np.float64):
        return {k: v.astype(dtype) for k, v in {"dout": rng.standard_normal((batch, n_out)),
                                                "x": rng.standard_normal((batch, n_in)),
                                                "W": rng.standard_normal((n_in, n_out))}.items()}

    return [Case("5 images, 4 inputs, 3 outputs", inputs(5, 4, 3)),
            Case("a square W (3 x 3)", inputs(4, 3, 3)),
            Case("a batch of one", inputs(1, 4, 2)),
            Case("batch = inputs = 3, 2 outputs", inputs(3, 3, 2)),
            Case("float32, 8 images, 6 inputs, 5 outputs", inputs(8, 6, 5, np.float32))]


def _linear(dout, x, W):
    return linear_backward(dout, LinearCache(x, W))


def _replace(index, change):
    """A mistake in output ``index`` alone: the right outputs with ``change(dout, x, W)`` in that slot."""
    def wrong(dout, x, W):
        outputs = list(_linear(dout, x, W))
        outputs[index] = change(dout, x, W)
        return tuple(outputs)
    return wrong


LINEAR_BACKWARD_PASS = Exercise(
    name="linear_backward_pass",
    title="the backward pass of a linear layer out = x @ W + b",
    notebook="06",
    outputs=("dx", "dW", "db"),
    make_cases=_linear_cases,
    reference=lambda case: _linear(**case.float64_inputs()),
    mistakes=(
        Mistake("dx_without_transpose",
                "your dx multiplies dout by W itself: it only runs when W is square, and then gives a wrong "
                "gradient.", _replace(0, lambda dout, x, W: dout @ W), affects=("dx",)),
        Mistake("dW_transposed", "your dW has its two factors swapped: it is the transpose of the right one.",
                _replace(1, lambda dout, x, W: _linear(dout, x, W)[1].T), affects=("dW",)),
        Mistake("db_mean", "your db averages over the batch where the bias's gradient sums.",
                _replace(2, lambda dout, x, W: _linear(dout, x, W)[2] / len(dout)), affects=("db",)),
        Mistake("db_not_reduced",
                "your db keeps the batch axis: b is shared by every row, so its gradient collects from all of them.",
                _replace(2, lambda dout, x, W: dout.copy()), affects=("db",)),
        Mistake("dW_divided_by_batch",
                "your dW is divided by the batch size: the 1/B of the batch mean lives in one place, at the "
                "start of the backward pass.",
                _replace(1, lambda dout, x, W: _linear(dout, x, W)[1] / len(dout)), affects=("dW",)),
        Mistake("db_wrong_axis",
                "your db sums dout over its outputs (axis 1), not over the batch (axis 0): one value per image, "
                "where one per output unit is expected.",
                _replace(2, lambda dout, x, W: np.sum(dout, axis=1)), affects=("db",)),
    ),
    task=(
        "**B. One linear layer's backward pass.** Write `linear_backward_pass(dout, x, W)`: for "
        "`out = x @ W + b` and the upstream gradient `dout`, the gradients `dx`, `dW` and `db` (section 5), "
        "without calling `linear_backward`."
    ),
    stub='''def linear_backward_pass(dout, x, W):
    """Gradients of sum(dout * out) for out = x @ W + b.

    Parameters
    ----------
    dout : ndarray, shape (batch, n_out)
        Gradient of the loss with respect to out.
    x : ndarray, shape (batch, n_in)
    W : ndarray, shape (n_in, n_out)

    Returns
    -------
    dx : ndarray, shape (batch, n_in)
    dW : ndarray, shape (n_in, n_out)
    db : ndarray, shape (n_out,)
    """
    raise NotImplementedError("write the body of linear_backward_pass")
''',
)
check_linear_backward_pass = LINEAR_BACKWARD_PASS.check


# ---------------------------------------------------------------- the reparameterisation's backward pass
def _reparam_cases():
    rng = np.random.default_rng(73)

    def inputs(batch, n_latent, log_var=None, dtype=np.float64):
        lv = rng.normal(size=(batch, n_latent)) if log_var is None else np.full((batch, n_latent), log_var)
        return {k: v.astype(dtype) for k, v in {"dz": rng.standard_normal((batch, n_latent)),
                                                "log_var": lv,
                                                "eps": rng.standard_normal((batch, n_latent))}.items()}

    return [Case("random, 4 x 3", inputs(4, 3)),
            Case("log_var = 0", inputs(3, 2, log_var=0.0)),
            Case("a batch of one", inputs(1, 5)),
            Case("log_var = -4", inputs(2, 3, log_var=-4.0)),
            Case("float32, 6 x 4", inputs(6, 4, dtype=np.float32))]


def _reparam_grads(dz, log_var, eps):
    _, cache = reparam_forward(np.zeros_like(log_var), log_var, eps)
    return reparam_backward(dz, cache)


def _reparam_dlog_var(change):
    return lambda dz, log_var, eps: (_reparam_grads(dz, log_var, eps)[0], change(dz, log_var, eps))


REPARAM_BACKWARD_PASS = Exercise(
    name="reparam_backward_pass",
    title="the backward pass of z = mu + exp(0.5 * log_var) * eps",
    notebook="06",
    outputs=("dmu", "dlog_var"),
    make_cases=_reparam_cases,
    reference=lambda case: _reparam_grads(**case.float64_inputs()),
    mistakes=(
        Mistake("missing_half", "your dlog_var is twice the right one: the factor 1/2 is missing.",
                _reparam_dlog_var(lambda dz, log_var, eps: 2 * _reparam_grads(dz, log_var, eps)[1]),
                affects=("dlog_var",)),
        Mistake("gradient_wrt_std",
                "your dlog_var is the gradient with respect to the standard deviation, not log_var "
                "(the factor d std / d log_var is missing).",
                _reparam_dlog_var(lambda dz, log_var, eps: dz * eps), affects=("dlog_var",)),
        Mistake("exp_log_var_as_std", "your dlog_var is that of z = mu + exp(log_var) * eps.",
                _reparam_dlog_var(lambda dz, log_var, eps: 2 * _reparam_grads(dz, 2 * log_var, eps)[1]),
                affects=("dlog_var",)),
        Mistake("dmu_times_std", "your dmu is multiplied by the standard deviation.",
                lambda dz, log_var, eps: (dz * np.exp(0.5 * log_var), _reparam_grads(dz, log_var, eps)[1]),
                affects=("dmu",)),
        Mistake("variance_for_std",
                "your dlog_var has the variance exp(log_var) where the standard deviation belongs.",
                _reparam_dlog_var(lambda dz, log_var, eps: _reparam_grads(dz, log_var, eps)[1]
                                  * np.exp(0.5 * log_var)), affects=("dlog_var",)),
        Mistake("eps_forgotten", "your dlog_var leaves out the noise eps: z depends on log_var through std * eps.",
                _reparam_dlog_var(lambda dz, log_var, eps: _reparam_grads(dz, log_var, np.ones_like(eps))[1]),
                affects=("dlog_var",)),
        Mistake("divided_by_std",
                "your dlog_var divides by the standard deviation where it should multiply by it.",
                _reparam_dlog_var(lambda dz, log_var, eps: _reparam_grads(dz, -log_var, eps)[1]),
                affects=("dlog_var",)),
        Mistake("dlog_var_sign", "your dlog_var has the wrong sign.",
                _reparam_dlog_var(lambda dz, log_var, eps: -_reparam_grads(dz, log_var, eps)[1]),
                affects=("dlog_var",)),
        Mistake("dz_forgotten",
                "your dlog_var leaves out the upstream gradient dz: the chain rule multiplies by it.",
                _reparam_dlog_var(lambda dz, log_var, eps: _reparam_grads(np.ones_like(dz), log_var, eps)[1]),
                affects=("dlog_var",)),
    ),
    task=(
        "**C. The reparameterisation's backward pass.** Write `reparam_backward_pass(dz, log_var, eps)`: for "
        "$z = \\mu + e^{\\ell/2} \\odot \\varepsilon$ and the upstream gradient `dz`, the gradients with respect "
        "to `mu` and `log_var` (section 8), without calling `reparam_backward`."
    ),
    stub='''def reparam_backward_pass(dz, log_var, eps):
    """Gradients of sum(dz * z), z = mu + exp(0.5 * log_var) * eps, eps fixed.

    Parameters
    ----------
    dz : ndarray, shape (batch, n_latent)
        Gradient of the loss with respect to z.
    log_var, eps : ndarray, shape (batch, n_latent)

    Returns
    -------
    dmu, dlog_var : ndarray, shape (batch, n_latent)
    """
    raise NotImplementedError("write the body of reparam_backward_pass")
''',
)
check_reparam_backward_pass = REPARAM_BACKWARD_PASS.check
