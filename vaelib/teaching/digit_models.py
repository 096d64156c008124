"""The VAEs trained on real digits that notebooks 07, 08 and 09 share.

Each is trained once per machine and then read from the model cache
(:mod:`vaelib.machinery.cache`), so a notebook that needs a model trained in
another notebook finds it there, or trains it with the same settings.

The digits are ``mnist5k``: 4,000 training and 1,000 test images of real MNIST
digits, with labels; ``binarized_digits`` thresholds them at 0.5 for a Bernoulli
decoder, ``grey_digits`` keeps the grey levels in [0, 1].
"""

from dataclasses import dataclass, replace

from vaelib.core.vae import VAEConfig
from vaelib.machinery.cache import ModelCache
from vaelib.machinery.data import load_dataset


def binarized_digits():
    """``mnist5k`` thresholded at 0.5: pixels in {0, 1}. A :class:`~vaelib.machinery.data.Dataset`."""
    return load_dataset("mnist5k", binarize=True)


def grey_digits():
    """``mnist5k`` with grey levels in [0, 1]."""
    return load_dataset("mnist5k")


@dataclass(frozen=True)
class ModelSpec:
    """Everything that determines a trained model: architecture, loss, data and training settings."""

    config: VAEConfig
    data: str = "binarized"  # "binarized" or "grey"
    epochs: int = 50
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0

    def with_config(self, **changes):
        """The same spec with fields of the config replaced, e.g. ``beta=4.0``."""
        return replace(self, config=replace(self.config, **changes))


#: 784-400-20, Bernoulli: the standard VAE of the collection (test -ELBO about 100 nats after 50 epochs).
DIGITS_20D = ModelSpec(VAEConfig(hidden=(400,), n_latent=20), epochs=50)

#: 784-400-2, Bernoulli: a latent space one can draw, and integrate over exactly.
DIGITS_2D = ModelSpec(VAEConfig(hidden=(400,), n_latent=2), epochs=60)


def data_for(spec):
    """The data set a spec trains on."""
    if spec.data == "binarized":
        return binarized_digits()
    if spec.data == "grey":
        return grey_digits()
    raise ValueError(f"unknown data {spec.data!r}; choose 'binarized' or 'grey'")


def trained(spec, cache=None, label=None, progress=True):
    """The model of ``spec``, trained now or read from the cache.

    Parameters
    ----------
    spec : ModelSpec
    cache : ModelCache, optional
        Default: ``ModelCache()`` at its documented location.
    label : str, optional
        Names the model in the one line printed when it is trained.
    progress : bool
        Show a progress bar while training.

    Returns
    -------
    CachedModel
        ``params`` (float32) and ``history`` (per epoch, nats per image).
    """
    cache = cache or ModelCache()
    return cache.fit(spec.config, data_for(spec), epochs=spec.epochs, lr=spec.lr, batch_size=spec.batch_size,
                     seed=spec.seed, label=label, progress=progress)
