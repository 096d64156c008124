"""Trained models kept on disk, so that a notebook trains each model once per machine.

Where: ``$VAELIB_CACHE`` if set, else ``$XDG_CACHE_HOME/vaelib/models``, else
``~/.cache/vaelib/models``; never inside the repository.

Each entry is one ``.npz`` file named by the SHA-256 of its **key**: everything
that determines the trained parameters, namely the model's configuration,
the training settings (epochs, learning rate, batch size, seed, engine, and the
objective with its ``k`` when it is not the ELBO), the
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

Each model is trained once, however many processes ask for it at the same
time (the kernels of a class opening the app, two notebooks run side by
side). :meth:`ModelCache.fit` takes a lock per entry (``<entry>.lock``, an
OS file lock through the ``filelock`` package) before training: one process
trains, and the others wait for it, saying what they wait for and showing its
progress (from ``<entry>.progress.json``, which the training process rewrites
after every epoch), then read the entry. The operating system releases the lock
of a process that dies, so a killed trainer never blocks the others; it leaves
no entry (entries are written atomically), and the next process trains the
model. Every model trained and every wait is recorded in one line of
``training.log`` in the cache directory.
"""

import ast
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import filelock
import numpy as np
from tqdm.auto import tqdm

from .atomic import atomic_write
from .npz import read_npz

FORMAT_VERSION = 1

#: The modules whose code decides what training computes (docstrings and comments aside).
TRAINING_MODULES = ("core", "fast", "machinery/train.py", "machinery/batches.py")
#: ... except these, which training never imports.
NOT_TRAINING = ("core/gradcheck.py",)
#: A process waiting for another's training checks its progress this often (seconds).
WAIT_POLL_SECONDS = 0.5
#: A training process whose progress file has not changed for this long (seconds) is taken for stuck:
#: the waiting process stops waiting and trains the model itself. An epoch takes seconds.
STALLED_SECONDS = 900.0
#: The file in the cache directory that records, one JSON line each, every model trained and every wait.
TRAINING_LOG = "training.log"


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


@dataclass(frozen=True)
class TrainingProgress:
    """How far the training of one model has got, as the process that trains it or one that waits sees it.

    Attributes
    ----------
    label : str
        The model's name.
    epochs : int
        Epochs to train.
    epoch : int
        Epochs finished, 0 to ``epochs``.
    seconds : float
        Since the training started.
    waiting : bool
        True in a process that waits for another one (``pid``) to train the model.
    pid : int
        The process that trains.
    done : bool
        The training has ended (finished or stopped); the last report of a model.
    """

    label: str
    epochs: int
    epoch: int
    seconds: float
    waiting: bool = False
    pid: int = 0
    done: bool = False

    @property
    def seconds_left(self):
        """Estimated seconds to the last epoch, from the mean epoch so far; None before the first epoch ends."""
        if self.epoch <= 0:
            return None
        return max(0.0, self.seconds / self.epoch * (self.epochs - self.epoch))

    def describe(self):
        """One line: what is trained, by whom, how far, and roughly how long is left."""
        who = f"waiting for process {self.pid}, which trains" if self.waiting else "training"
        left = self.seconds_left
        eta = "" if left is None or self.done else f", about {_duration(left)} left"
        return f"{who} {self.label}: epoch {self.epoch} of {self.epochs}{eta}"


class TqdmProgress:
    """Shows :class:`TrainingProgress` reports as a tqdm bar per model (the default of :class:`ModelCache`)."""

    def __init__(self):
        self._bar = self._label = None

    def __call__(self, report):
        if self._bar is None or self._label != (report.label, report.waiting):
            self.close()
            desc = f"waiting for process {report.pid}: {report.label}" if report.waiting else report.label
            self._bar = tqdm(total=report.epochs, desc=desc, unit="epoch")
            self._label = (report.label, report.waiting)
        self._bar.update(report.epoch - self._bar.n)
        if report.done:
            self.close()

    def close(self):
        if self._bar is not None:
            self._bar.close()
        self._bar = self._label = None


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
        Receives one line whenever an entry is trained, waited for, stored, or found bad.
    progress : callable, optional
        Receives a :class:`TrainingProgress` when a model's training starts
        here or the wait for another process's starts, after every epoch, and
        once more with ``done=True``. Default: a tqdm bar (:class:`TqdmProgress`).
    """

    def __init__(self, path=None, log=print, progress=None):
        self.path = cache_dir(path)
        self.log = log
        self.progress = progress

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

    def key(self, config, data, *, epochs, lr=1e-3, batch_size=128, seed=0, engine="fast", objective="elbo", k=1):
        """The key of the model :meth:`fit` trains with these arguments: everything that determines it.

        The objective and its ``k`` are in the key only when they are not the ELBO's (``"elbo"``, 1),
        so a model trained on the ELBO keeps the key it had before the cache knew of objectives.
        """
        training = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed, "engine": engine,
                    "threads": 1}
        if (objective, k) != ("elbo", 1):
            training.update(objective=objective, k=int(k))
        return {
            "config": config.to_dict(),
            "training": training,
            "data": {"name": data.name, "binary": bool(data.binary),
                     "sha256": array_checksum(data.train, data.test)},
            "numpy": np.__version__,
            "numba": importlib.metadata.version("numba"),  # compiles the fast kernels
            "machine": platform.machine(),  # flush-to-zero and fused multiply-adds differ by CPU family
            "code": training_code_version(),
        }

    def fit(self, config, data, *, epochs, lr=1e-3, batch_size=128, seed=0, engine="fast", objective="elbo", k=1,
            label=None, progress=True):
        """The model :func:`vaelib.machinery.train.fit` would train, from the cache when it is there.

        A missing model is trained under the entry's lock: if another process
        is training it, this one waits (reporting that process's progress) and
        then reads the entry; if that process stopped without storing it, this
        one trains it.

        Parameters
        ----------
        config : VAEConfig
        data : Dataset
            Trained on ``data.train``; ``data.test`` is evaluated after every epoch.
        epochs, lr, batch_size, seed, engine, objective, k
            As for :func:`~vaelib.machinery.train.fit`: ``objective="iwae"`` with ``k`` samples per image
            trains on the importance-weighted bound.
        label : str, optional
            Names the model in messages.
        progress : bool
            Report progress (to the cache's ``progress``, by default a tqdm bar) while training or waiting.

        Returns
        -------
        CachedModel
        """
        key = self.key(config, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, engine=engine,
                       objective=objective, k=k)
        cached = self.load(key)
        if cached is not None:
            return cached
        name = label or f"{config.likelihood} VAE, {config.n_latent} latents, beta {config.beta:g}"
        report = (self.progress or TqdmProgress()) if progress else (lambda _report: None)
        lock = filelock.FileLock(self._sidecar(key, ".lock"))
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            locked, waited = self._acquire(lock, key, name, report)
        except OSError as error:  # an unwritable cache: train without a lock (the entry will not be kept either)
            self.log(f"model cache: cannot lock {lock.lock_file} ({_one_line(error)}); training without a lock")
            locked = waited = False
        try:
            cached = self.load(key) if waited else None  # the process waited for has stored it, unless it stopped
            if cached is not None:
                return cached
            if locked:
                self._remove_leftovers(key)
            return self._train(key, config, data, name, report, epochs=epochs, lr=lr, batch_size=batch_size,
                               seed=seed, engine=engine, objective=objective, k=k)
        finally:
            if locked:
                lock.release()

    def _remove_leftovers(self, key):
        """Delete the temporary files of an earlier writer of this entry (a process killed mid-write).

        Called with the entry's lock held: only the lock's holder writes the entry and its
        progress file, so any temporary file of theirs belongs to a process that is gone.
        """
        for name in (self.entry_path(key).name, self._sidecar(key, ".progress.json").name):
            for leftover in self.path.glob(f".{name}.*.tmp"):
                leftover.unlink(missing_ok=True)

    def _sidecar(self, key, suffix):
        """A file beside the entry of ``key``: ``<entry>.lock``, ``<entry>.progress.json``."""
        return self.entry_path(key).with_suffix(suffix)

    def _acquire(self, lock, key, name, report):
        """Take the entry's lock, waiting (and reporting) while another process trains the model.

        Returns
        -------
        locked, waited : bool
            ``locked``: the lock is held (False if the other process looked stuck, with no
            progress for :data:`STALLED_SECONDS`, and the wait was given up); ``waited``:
            another process held it first.
        """
        try:
            lock.acquire(timeout=0)
            return True, False
        except filelock.Timeout:
            pass
        start, seen, last, told = time.monotonic(), None, None, None
        while True:
            try:
                lock.acquire(timeout=WAIT_POLL_SECONDS)
                break
            except filelock.Timeout:
                pass
            record = self._read_progress(key)
            if record is not None and record != last:
                last, seen = record, time.monotonic()
                status = _progress_of(record, name, waiting=True)
                report(status)
                if told != status.pid:  # once per training process waited for
                    told = status.pid
                    self.log(f"model cache: {status.describe()}; this process reads it when it is stored")
            if time.monotonic() - (seen or start) > STALLED_SECONDS:
                self.log(f"model cache: the training of {name} shows no progress for {STALLED_SECONDS:.0f} s; "
                         "training it here")
                return False, True
        waited = time.monotonic() - start
        if last is not None:
            report(_progress_of(last, name, waiting=True, done=True))
        self._record("waited", key, name, waited)
        return True, True

    def _read_progress(self, key):
        try:
            record = json.loads(self._sidecar(key, ".progress.json").read_text())
            return record if {"epochs", "epoch", "started", "pid"} <= set(record) else None
        except (OSError, ValueError):
            return None

    def _train(self, key, config, data, name, report, *, epochs, lr, batch_size, seed, engine, objective, k):
        from .train import fit  # the training loop is needed only on a miss

        self.log(f"model cache: training {name} ({epochs} epochs); later runs read it from {self.path}")
        progress_file = self._sidecar(key, ".progress.json")
        started, pid = time.time(), os.getpid()
        state = {"label": name, "epochs": epochs, "epoch": 0, "started": started, "pid": pid,
                 "host": socket.gethostname()}

        def epoch_done(_line=None):
            if _line is not None:
                state["epoch"] += 1
            self._write_progress(progress_file, state)
            report(TrainingProgress(name, epochs, state["epoch"], time.time() - started, pid=pid))

        try:
            epoch_done()
            trainer = fit(config, data.train, data.test, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                          engine=engine, threads=1, progress=False, log=epoch_done, objective=objective, k=k)
        finally:
            report(TrainingProgress(name, epochs, state["epoch"], time.time() - started, pid=pid, done=True))
            try:
                progress_file.unlink(missing_ok=True)
            except OSError:
                pass
        if trainer.interrupted:  # a half-trained model is never stored
            raise KeyboardInterrupt
        params = {k: v.copy() for k, v in trainer.params.items()}
        path = self.store(key, params, trainer.history)
        if path is not None:
            self._record("trained", key, name, time.time() - started)
        return CachedModel(params, trainer.history, key, path, trained_now=True)

    def _write_progress(self, path, state):
        try:
            with atomic_write(path, "w") as f:
                json.dump(state, f)
        except OSError:
            pass  # the cache cannot be written: nobody can wait for this model anyway

    def _record(self, event, key, name, seconds):
        """Append one line to :data:`TRAINING_LOG`: a model trained, or waited for, by this process."""
        line = json.dumps({"event": event, "entry": self.entry_path(key).name, "label": name, "pid": os.getpid(),
                           "seconds": round(seconds, 1), "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        try:
            with open(self.path / TRAINING_LOG, "a") as f:  # one short write in append mode: lines never mix
                f.write(line + "\n")
        except OSError:
            pass

    def training_log(self):
        """The records of :data:`TRAINING_LOG`, oldest first: dicts with ``event`` ("trained" or "waited"),
        ``entry``, ``label``, ``pid``, ``seconds`` and ``time``."""
        try:
            lines = (self.path / TRAINING_LOG).read_text().splitlines()
        except OSError:
            return []
        return [json.loads(line) for line in lines if line.strip()]


def _progress_of(record, name, waiting, done=False):
    """A :class:`TrainingProgress` from a progress file's record (a finished wait counts every epoch)."""
    epochs = int(record["epochs"])
    return TrainingProgress(record.get("label", name), epochs, epochs if done else int(record["epoch"]),
                            time.time() - float(record["started"]), waiting=waiting, pid=int(record["pid"]),
                            done=done)


def _duration(seconds):
    """``"40 s"``, ``"3 min"``: a rough duration for a person."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _one_line(error):
    return " ".join(str(error).split())[:200]
