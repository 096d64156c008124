"""Optimisers: SGD (with momentum) and Adam, sharing one contract.

Contract::

    opt = Adam(lr=1e-3)
    opt.inplace_step(params, grads)   # params[k] -= update(grads[k]), in place
    opt.state_dict() / opt.load_state_dict(state)

``params`` and ``grads`` are dicts of arrays with the same keys. Passing a dict
with a single flat vector (see :mod:`vaelib.flat`) runs each update as a few
whole-array NumPy operations, which is what makes training fast.
The optimisers *descend*: they minimise the loss (the negative ELBO).
"""

import numpy as np


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
        self.m, self.v, self._scratch = {}, {}, {}
        self.t = 0

    def inplace_step(self, params, grads):
        """One Adam step; changes ``params`` (and the moment estimates) in place."""
        self.t += 1
        correction = np.sqrt(1 - self.b2**self.t)
        lr_t = self.lr * correction / (1 - self.b1**self.t)
        eps_t = self.eps * correction
        for k, g in grads.items():
            m = self.m.setdefault(k, np.zeros_like(g))
            v = self.v.setdefault(k, np.zeros_like(g))
            tmp = self._scratch.setdefault(k, np.empty_like(g))
            # m += (1 - b1) * (g - m)
            np.subtract(g, m, out=tmp)
            tmp *= 1 - self.b1
            m += tmp
            # v += (1 - b2) * (g*g - v)
            np.multiply(g, g, out=tmp)
            tmp -= v
            tmp *= 1 - self.b2
            v += tmp
            # p -= lr_t * m / (sqrt(v) + eps_t)
            np.sqrt(v, out=tmp)
            tmp += eps_t
            np.divide(m, tmp, out=tmp)
            tmp *= lr_t
            params[k] -= tmp

    def state_dict(self):
        state = {"t": np.array(self.t)}
        state.update({f"m/{k}": a for k, a in self.m.items()})
        state.update({f"v/{k}": a for k, a in self.v.items()})
        return state

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.m = {k[2:]: np.array(a) for k, a in state.items() if k.startswith("m/")}
        self.v = {k[2:]: np.array(a) for k, a in state.items() if k.startswith("v/")}
        self._scratch = {}


OPTIMISERS = {"adam": Adam, "sgd": SGD}
