"""vaelib: a variational autoencoder in NumPy, with every gradient written by hand.

Modules, one job each:

- :mod:`vaelib.layers`      linear layer and activations, forward/backward pairs
- :mod:`vaelib.mlp`         a multilayer perceptron built from the layers
- :mod:`vaelib.gaussian`    diagonal Gaussian log-density and KL to N(0, I)
- :mod:`vaelib.reparam`     z = mu + exp(log_var / 2) * eps and its backward pass
- :mod:`vaelib.likelihoods` Bernoulli and Gaussian decoder likelihoods
- :mod:`vaelib.vae`         the model: config, parameters, loss (negative ELBO) and gradient
- :mod:`vaelib.gradcheck`   finite-difference gradient checks
- :mod:`vaelib.optim`       SGD and Adam
- :mod:`vaelib.flat`        parameters as views into one flat vector
- :mod:`vaelib.evaluate`    ELBO, importance-weighted log-likelihood, active units
- :mod:`vaelib.exact_models` models with exact log p(x) and p(z|x), for checking the ELBO
- :mod:`vaelib.estimators`  pathwise and score-function gradient estimators
- :mod:`vaelib.data`        data sets by name
- :mod:`vaelib.checkpoint`  .npz checkpoints
- :mod:`vaelib.atomic`      all-or-nothing file writes
- :mod:`vaelib.batches`     shuffled minibatches from compactly stored data
- :mod:`vaelib.train`       the training loop
- :mod:`vaelib.cli`         ``python -m vaelib``
- :mod:`vaelib.views`       the notebooks' slider figures
"""

__version__ = "0.1.0"
