"""Optimisers: SGD (with momentum) and Adam, written as in their papers.

Contract::

    opt = Adam(lr=1e-3)
    opt.inplace_step(params, grads)   # params[k] -= update(grads[k]), in place
    opt.state_dict() / opt.load_state_dict(state)

``params`` and ``grads`` are dicts of arrays with the same keys. The
optimisers *descend*: they minimise the loss (the negative ELBO). Training
uses a compiled twin of Adam (:mod:`vaelib.fast.adam`), tested equal to this one.
"""

import numpy as np


class SGD:
    """Stochastic gradient descent with momentum: ``v <- momentum * v + g``, ``p <- p - lr * v``."""

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
            v = self.velocity.get(k, np.zeros_like(g))
            self.velocity[k] = v = self.momentum * v + g
            params[k] -= self.lr * v

    def state_dict(self):
        return {"t": np.array(self.t), **{f"velocity/{k}": v for k, v in self.velocity.items()}}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.velocity = {k.split("/", 1)[1]: np.array(v) for k, v in state.items() if k.startswith("velocity/")}


class Adam:
    r"""Adam (Kingma & Ba, 2015, Algorithm 1).

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g, \quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        \hat m = \frac{m}{1-\beta_1^t}, \quad \hat v = \frac{v}{1-\beta_2^t}, \quad
        p \leftarrow p - \mathrm{lr}\,\frac{\hat m}{\sqrt{\hat v} + \epsilon}
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
        for k, g in grads.items():
            m = self.m.get(k, np.zeros_like(g))
            v = self.v.get(k, np.zeros_like(g))
            self.m[k] = m = self.b1 * m + (1 - self.b1) * g
            self.v[k] = v = self.b2 * v + (1 - self.b2) * g * g
            m_hat = m / (1 - self.b1**self.t)
            v_hat = v / (1 - self.b2**self.t)
            params[k] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

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
