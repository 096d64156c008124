"""Trained models kept on disk, so that a notebook trains each model once per machine.

Where: ``$VAELIB_CACHE`` if set, else ``$XDG_CACHE_HOME/vaelib/models``, else
``~/.cache/vaelib/models``; never inside the repository.

Each entry is one ``.npz`` file named by the SHA-256 of its **key**: everything
that determines the trained parameters, namely the model's configuration,
the training settings (epochs, learning rate, batch size, seed, engine), the
data (its name and the SHA-256 of its arrays), NumPy's and Numba's versions,
the CPU family, and :func:`training_code_version`, a hash of the code that
trains. Change any
of them and the model is trained again.

An entry holds the parameters (``param/<name>``), the training history, the
key itself, and the SHA-256 of the parameters' bytes. It is written
atomically (:func:`vaelib.machinery.atomic.atomic_write`). Before an entry is
used, all of it is checked: a file that does not open, lacks a part, holds
another key or parameters whose checksum differs is reported in one line
and trained again; it is never used.
"""

import ast
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .atomic import atomic_write
from .npz import read_npz

FORMAT_VERSION = 1

#: The modules whose code decides what training computes (docstrings and comments aside).
TRAINING_MODULES = ("core", "fast", "machinery/train.py", "machinery/batches.py")
#: ... except these, which training never imports.
NOT_TRAINING = ("core/gradcheck.py",)


def cache_dir(path=None):
    """The cache directory: ``path``, else ``$VAELIB_CACHE``, else the user's cache directory.

    It need not exist.
    """
    if path is None:
        path = os.environ.get("VAELIB_CACHE") or Path(
            os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vaelib" / "models"
    return Path(path).expanduser()


def training_code_version():
    """SHA-256 (16 hex digits) of the syntax trees of :data:`TRAINING_MODULES`, docstrings removed.

    Editing a comment or a docstring keeps the version; editing code changes it.
    Parsing is remembered while the files' sizes and modification times stay the same.
    """
    package = Path(__file__).resolve().parent.parent
    files = []
    for name in TRAINING_MODULES:
        target = package / name
        files += sorted(target.glob("*.py")) if target.is_dir() else [target]
    files = [f for f in files if f.relative_to(package).as_posix() not in NOT_TRAINING]
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _code_version(package, stamp)


@functools.lru_cache(maxsize=8)
def _code_version(package, stamp):
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        file = Path(name)
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        digest.update(file.relative_to(package).as_posix().encode())
        digest.update(ast.dump(tree).encode())
    return digest.hexdigest()[:16]


def array_checksum(*arrays):
    """SHA-256 of the arrays' dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


@dataclass
class CachedModel:
    """A trained model from the cache (or just trained and stored there)."""

    params: dict
    history: list
    key: dict
    path: Path
    trained_now: bool


class ModelCache:
    """Trained models on disk, keyed by everything that determines them.

    Parameters
    ----------
    path : str or Path, optional
        The directory; see :func:`cache_dir`.
    log : callable
        Receives one line whenever an entry is trained, stored, or found bad.
    """

    def __init__(self, path=None, log=print):
        self.path = cache_dir(path)
        self.log = log

    def entry_path(self, key):
        """The file of the entry with ``key`` (a JSON-ready dict)."""
        name = hashlib.sha256(_canonical(key).encode()).hexdigest()[:32]
        return self.path / f"{name}.npz"

    def load(self, key):
        """The entry for ``key`` as a :class:`CachedModel`, or None if absent or bad (bad ones are reported)."""
        path = self.entry_path(key)
        if not path.exists():
            return None
        try:
            arrays = read_npz(path)
            meta = json.loads(str(arrays.pop("meta")))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
            if _canonical(meta["key"]) != _canonical(key):
                raise ValueError("it holds a model trained with other settings")
            names = sorted(arrays)
            if array_checksum(*(arrays[n] for n in names)) != meta["checksum"]:
                raise ValueError("its parameters do not match their checksum")
        except (OSError, ValueError, KeyError) as error:
            self.log(f"model cache: ignoring bad entry {path.name} ({_one_line(error)}); training again")
            return None
        params = {n[len("param/"):]: a for n, a in arrays.items()}
        return CachedModel(params, meta["history"], key, path, trained_now=False)

    def store(self, key, params, history):
        """Write an entry atomically; returns its path, or None if the directory cannot be written."""
        path = self.entry_path(key)
        arrays = {f"param/{k}": np.asarray(v) for k, v in params.items()}
        names = sorted(arrays)
        meta = {"format_version": FORMAT_VERSION, "key": key, "history": history,
                "checksum": array_checksum(*(arrays[n] for n in names))}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as f:
                np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
        except OSError as error:
            self.log(f"model cache: cannot write {path} ({_one_line(error)}); the model is not kept")
            return None
        return path

    def fit(self, config, data, *, epochs, lr=1e-3, batch_size=128, seed=0, engine="fast", label=None,
            progress=True):
        """The model :func:`vaelib.machinery.train.fit` would train, from the cache when it is there.

        Parameters
        ----------
        config : VAEConfig
        data : Dataset
            Trained on ``data.train``; ``data.test`` is evaluated after every epoch.
        epochs, lr, batch_size, seed, engine
            As for :func:`~vaelib.machinery.train.fit`.
        label : str, optional
            Names the model in messages.
        progress : bool
            Show a progress bar over the epochs (when training).

        Returns
        -------
        CachedModel
        """
        from .train import fit  # the training loop is needed only on a miss

        key = {
            "config": config.to_dict(),
            "training": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed, "engine": engine,
                         "threads": 1},
            "data": {"name": data.name, "binary": bool(data.binary),
                     "sha256": array_checksum(data.train, data.test)},
            "numpy": np.__version__,
            "numba": importlib.metadata.version("numba"),  # compiles the fast kernels
            "machine": platform.machine(),  # flush-to-zero and fused multiply-adds differ by CPU family
            "code": training_code_version(),
        }
        cached = self.load(key)
        if cached is not None:
            return cached
        name = label or f"{config.likelihood} VAE, {config.n_latent} latents, beta {config.beta:g}"
        self.log(f"model cache: training {name} ({epochs} epochs); later runs read it from {self.path}")
        with tqdm(total=epochs, desc=name, unit="epoch", disable=not progress) as bar:
            trainer = fit(config, data.train, data.test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                          engine=engine, threads=1, progress=False, log=lambda line: bar.update(1))
        if trainer.interrupted:  # a half-trained model is never stored
            raise KeyboardInterrupt
        params = {k: v.copy() for k, v in trainer.params.items()}
        path = self.store(key, params, trainer.history)
        return CachedModel(params, trainer.history, key, path, trained_now=True)


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _one_line(error):
    return " ".join(str(error).split())[:200]
