"""Checkpoints: one ``.npz`` file, written atomically.

Format (``FORMAT_VERSION = 1``), the arrays of one ``numpy.savez`` file:

- ``param/<name>``: each model parameter, e.g. ``param/enc.W0`` of shape (784, 400);
- ``optim/<key>``: the optimiser state from ``state_dict()`` (``optim/t``,
  ``optim/m/<name>``, ``optim/v/<name>`` for Adam);
- ``meta``: a 0-d string array holding JSON with ``format_version``, ``config``
  (:meth:`VAEConfig.to_dict`), ``training`` (settings such as ``lr``,
  ``batch_size``, ``seed``), ``epoch`` (epochs finished) and ``rng_state``
  (the ``bit_generator.state`` of the training ``numpy.random.Generator``).

Writing goes through :func:`vaelib.machinery.atomic.atomic_write`: a crash at any
moment leaves either the old checkpoint or the new one, never a torn file.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .npz import read_npz

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """The contents of a checkpoint file."""

    params: dict
    optimizer_state: dict
    config: dict
    training: dict
    epoch: int
    rng_state: dict


def save_checkpoint(path, checkpoint):
    """Write ``checkpoint`` to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
    checkpoint : Checkpoint
    """
    path = Path(path)
    meta = {
        "format_version": FORMAT_VERSION,
        "config": checkpoint.config,
        "training": checkpoint.training,
        "epoch": int(checkpoint.epoch),
        "rng_state": checkpoint.rng_state,
    }
    arrays = {f"param/{k}": v for k, v in checkpoint.params.items()}
    arrays.update({f"optim/{k}": v for k, v in checkpoint.optimizer_state.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a vaelib checkpoint, is damaged, or has another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first with `python -m vaelib train --out {path.parent}`")
    try:
        arrays = read_npz(path)
    except ValueError as e:
        raise ValueError(f"{path} cannot be read as a vaelib checkpoint (damaged, or not an .npz archive of arrays); "
                         "train again into a new --out directory") from e
    if "meta" not in arrays:
        raise ValueError(f"{path} is an .npz file but not a vaelib checkpoint (no 'meta' entry)")
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {meta.get('format_version')!r}; this vaelib reads format {FORMAT_VERSION}"
        )
    return Checkpoint(
        params={k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")},
        optimizer_state={k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")},
        config=meta["config"],
        training=meta["training"],
        epoch=meta["epoch"],
        rng_state=meta["rng_state"],
    )


def check_same_run(checkpoint, config, settings, path):
    """Raise ``ValueError`` naming every setting where a checkpoint differs from the run requested.

    Resuming continues the run the checkpoint holds, so the model, the loss
    and the training settings must all be the ones it was made with.

    Parameters
    ----------
    checkpoint : Checkpoint
    config : dict
        ``VAEConfig.to_dict()`` of the requested model.
    settings : dict
        Requested training settings, e.g. ``{"lr": 1e-3, "batch_size": 128, "seed": 0}``.
    """
    saved = {**checkpoint.config, **{k: checkpoint.training.get(k) for k in settings}}
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, requested {v!r}" for k, v in {**config, **settings}.items()
             if saved.get(k) != v]
    if diffs:
        raise ValueError(f"checkpoint {path} was made with other settings ({'; '.join(diffs)}); "
                         "use the same settings, or a new --out directory")
