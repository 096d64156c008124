"""Adam as one compiled loop: the fast twin of :class:`vaelib.core.optim.Adam`.

Written out in NumPy, an Adam step makes about eleven passes over the
parameters, gradient and moment estimates; on the 652,824 parameters of the
784-400-20 VAE that cost more than a third of a training epoch. The loop of
:func:`vaelib.fast.kernels.inplace_adam_update` reads and writes each number
once. It folds the bias corrections into the step size,

    lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t),    eps_t = eps * sqrt(1 - b2^t),
    p <- p - lr_t * m / (sqrt(v) + eps_t),

which is algebraically the paper's ``lr * m_hat / (sqrt(v_hat) + eps)``;
rounding differs, so the two are tested equal within a tolerance
(``tests/test_fast_adam.py``). It also flushes moment estimates below the
smallest normal number to zero, which keeps it from slowing down sixfold on
subnormal numbers (see :func:`~vaelib.fast.kernels.inplace_adam_update`). The
state has the core's format, so either optimiser continues the other's
checkpoint.
"""

import numpy as np

from vaelib.core.optim import Adam

from .kernels import inplace_adam_update


class FastAdam(Adam):
    """:class:`~vaelib.core.optim.Adam` with the compiled update; same settings, same state."""

    def inplace_step(self, params, grads):
        """One Adam step; changes ``params`` (and the moment estimates) in place.

        Every parameter and gradient must be C-contiguous and of one dtype;
        one flat vector (:mod:`vaelib.fast.flat`) is the fast case.
        """
        self.t += 1
        correction = np.sqrt(1 - self.b2**self.t)
        lr_t = self.lr * correction / (1 - self.b1**self.t)
        eps_t = self.eps * correction
        for k, g in grads.items():
            p = params[k]
            if not (p.flags.c_contiguous and g.flags.c_contiguous and p.dtype == g.dtype):
                raise ValueError(f"FastAdam needs a C-contiguous parameter and gradient of one dtype for {k!r}")
            if k not in self.m:
                self.m[k], self.v[k] = np.zeros_like(p), np.zeros_like(p)
            scalar = p.dtype.type  # the loop computes in the parameters' dtype
            inplace_adam_update(p.reshape(-1), g.reshape(-1), self.m[k].reshape(-1), self.v[k].reshape(-1),
                                scalar(lr_t), scalar(eps_t), scalar(1 - self.b1), scalar(1 - self.b2),
                                np.finfo(p.dtype).tiny)
