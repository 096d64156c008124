"""Optimisers: SGD (with momentum) and Adam, sharing one contract.

Contract::

    opt = Adam(lr=1e-3)
    opt.inplace_step(params, grads)   # params[k] -= update(grads[k]), in place
    opt.state_dict() / opt.load_state_dict(state)

``params`` and ``grads`` are dicts of arrays with the same keys. Passing a dict
with a single flat vector (see :mod:`vaelib.flat`) updates every parameter of
the model in one call, which is what makes training fast.
The optimisers *descend*: they minimise the loss (the negative ELBO).

Adam's update is one fused loop compiled by Numba (:func:`inplace_adam_update`):
a NumPy version needs about eleven passes over memory per step and cost more
than a third of a training epoch on MNIST; the fused loop reads and writes
each number once. It uses strict IEEE arithmetic (no fastmath), so it gives
the same numbers as the formula written out in NumPy, in the parameters'
dtype: the constants ``1 - b1`` and ``1 - b2`` are passed in as that dtype,
because a Python ``1 - b1`` inside the loop would make Numba compute every
float32 update in float64 and take twice as long. It runs on one thread:
Numba's ``prange`` is what lets LLVM vectorise the loop (a plain loop runs
about eight times slower), and a second thread gains nothing on a
memory-bound loop while its pool fights OpenBLAS's threads for the cores
(measured: the whole epoch became twice as slow).
"""

import numba
import numpy as np


def inplace_adam_update(p, g, m, v, lr_t, eps_t, one_minus_b1, one_minus_b2):
    """One Adam step on flat arrays, in place; see :class:`Adam` for the formula.

    Parameters
    ----------
    p, g, m, v : ndarray, shape (n,), one dtype
        Parameters, gradient, first and second moment estimates.
    lr_t, eps_t, one_minus_b1, one_minus_b2 : scalars of the same dtype
    """
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _adam_loop(p, g, m, v, lr_t, eps_t, one_minus_b1, one_minus_b2)
    finally:
        numba.set_num_threads(threads)


@numba.njit(parallel=True, cache=True)
def _adam_loop(p, g, m, v, lr_t, eps_t, one_minus_b1, one_minus_b2):
    """The loop of :func:`inplace_adam_update`."""
    for i in numba.prange(p.size):
        m[i] += one_minus_b1 * (g[i] - m[i])
        v[i] += one_minus_b2 * (g[i] * g[i] - v[i])
        p[i] -= lr_t * m[i] / (np.sqrt(v[i]) + eps_t)


class SGD:
    """Stochastic gradient descent, ``v <- momentum * v + g``, ``p <- p - lr * v``."""

    def __init__(self, lr=1e-2, momentum=0.0):
        if lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"need lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={momentum}")
        self.lr, self.momentum = lr, momentum
        self.velocity = {}
        self.t = 0

    def inplace_step(self, params, grads):
        """One descent step; changes ``params`` in place."""
        self.t += 1
        for k, g in grads.items():
            if self.momentum:
                v = self.velocity.setdefault(k, np.zeros_like(g))
                v *= self.momentum
                v += g
                g = v
            params[k] -= self.lr * g

    def state_dict(self):
        return {"t": np.array(self.t), **{f"velocity/{k}": v for k, v in self.velocity.items()}}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.velocity = {k.split("/", 1)[1]: np.array(v) for k, v in state.items() if k.startswith("velocity/")}


class Adam:
    """Adam (Kingma & Ba, 2015), with the bias correction folded into the step size.

    ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) g^2``;
    ``p <- p - lr_t * m / (sqrt(v) + eps_t)`` with
    ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)`` and ``eps_t = eps * sqrt(1 - b2^t)``,
    algebraically the same update as the paper's ``m_hat / (sqrt(v_hat) + eps)``.
    """

    def __init__(self, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        if lr <= 0 or not (0 <= b1 < 1 and 0 <= b2 < 1) or eps <= 0:
            raise ValueError(f"invalid Adam settings lr={lr}, b1={b1}, b2={b2}, eps={eps}")
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps
        self.m, self.v = {}, {}
        self.t = 0

    def inplace_step(self, params, grads):
        """One Adam step; changes ``params`` (and the moment estimates) in place."""
        self.t += 1
        correction = np.sqrt(1 - self.b2**self.t)
        lr_t = self.lr * correction / (1 - self.b1**self.t)
        eps_t = self.eps * correction
        for k, g in grads.items():
            p = params[k]
            if k not in self.m:
                self.m[k], self.v[k] = np.zeros_like(p), np.zeros_like(p)
            if not (p.flags.c_contiguous and g.flags.c_contiguous and p.dtype == g.dtype):
                raise ValueError(f"Adam needs C-contiguous parameter and gradient of one dtype for {k!r}")
            scalar = p.dtype.type
            inplace_adam_update(p.reshape(-1), g.reshape(-1), self.m[k].reshape(-1), self.v[k].reshape(-1),
                                scalar(lr_t), scalar(eps_t), scalar(1 - self.b1), scalar(1 - self.b2))

    def state_dict(self):
        state = {"t": np.array(self.t)}
        state.update({f"m/{k}": a for k, a in self.m.items()})
        state.update({f"v/{k}": a for k, a in self.v.items()})
        return state

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.m = {k[2:]: np.array(a) for k, a in state.items() if k.startswith("m/")}
        self.v = {k[2:]: np.array(a) for k, a in state.items() if k.startswith("v/")}


OPTIMISERS = {"adam": Adam, "sgd": SGD}
