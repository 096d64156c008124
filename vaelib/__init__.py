"""vaelib: a variational autoencoder in NumPy, with every gradient written by hand.

Four folders, and the core imports none of the others:

``vaelib.core``, the mathematics, in plain NumPy, one equation per named function:

- :mod:`~vaelib.core.layers`       linear layer and activations, forward/backward pairs
- :mod:`~vaelib.core.mlp`          a multilayer perceptron built from the layers
- :mod:`~vaelib.core.gaussian`     diagonal Gaussian log-density, KL to N(0, I), score
- :mod:`~vaelib.core.reparam`      z = mu + exp(log_var / 2) * eps and its backward pass
- :mod:`~vaelib.core.likelihoods`  Bernoulli and Gaussian decoder likelihoods
- :mod:`~vaelib.core.vae`          the model: config, parameters, loss (negative ELBO) and gradient
- :mod:`~vaelib.core.evaluate`     ELBO, importance-weighted bound on log p(x), active units
- :mod:`~vaelib.core.gradcheck`    finite-difference gradient checks
- :mod:`~vaelib.core.optim`        SGD and Adam

``vaelib.fast``, the same step made fast, each piece tested equal to its core twin:

- :mod:`~vaelib.fast.kernels`      fused element-wise loops (Numba)
- :mod:`~vaelib.fast.vae`          loss and gradient in one call, written into a flat vector
- :mod:`~vaelib.fast.adam`         Adam as one compiled loop
- :mod:`~vaelib.fast.flat`         parameters as views into one flat vector

``vaelib.machinery``, running it:

- :mod:`~vaelib.machinery.data`        data sets by name
- :mod:`~vaelib.machinery.batches`     shuffled minibatches from compactly stored data
- :mod:`~vaelib.machinery.train`       the training loop, checkpoints every epoch
- :mod:`~vaelib.machinery.checkpoint`  .npz checkpoints
- :mod:`~vaelib.machinery.cache`       trained models kept on disk, keyed by what determines them
- :mod:`~vaelib.machinery.atomic`      all-or-nothing file writes
- :mod:`~vaelib.machinery.stop`        Ctrl-C and SIGTERM, obeyed only where stopping is safe
- :mod:`~vaelib.machinery.cli`         ``python -m vaelib``

``vaelib.teaching``, what the notebooks need beyond the VAE itself:

- :mod:`~vaelib.teaching.exact_models` models with exact log p(x) and p(z|x)
- :mod:`~vaelib.teaching.estimators`   pathwise and score-function gradient estimators
- :mod:`~vaelib.teaching.quadrature`   log p(x) and p(z|x) of a 2-D latent model on a grid
- :mod:`~vaelib.teaching.digit_models` the models trained on digits that notebooks 07-09 share
- :mod:`~vaelib.teaching.digit_figures` mosaics of digits, decoded 2-D manifolds, interpolations
- :mod:`~vaelib.teaching.views`        the notebooks' slider figures
- :mod:`~vaelib.teaching.exercises`    checked exercises: cases, reference values, the catalogue of classic mistakes
- :mod:`~vaelib.teaching.exercise_solutions` their solutions (look only after trying)
"""

__version__ = "0.2.0"
