"""Checkpoints: round trip, atomic writes, clear errors."""

import numpy as np
import pytest

from vaelib.machinery import checkpoint as ckpt
from vaelib.machinery.checkpoint import Checkpoint, check_same_run, load_checkpoint, save_checkpoint


def make_checkpoint(rng, epoch=3):
    return Checkpoint(
        params={"enc.W0": rng.standard_normal((4, 3)).astype(np.float32), "log_sigma": np.array(0.5)},
        optimizer_state={"t": np.array(7), "m/theta": rng.standard_normal(5)},
        config={"n_pixels": 4, "hidden": [3], "n_latent": 2},
        training={"lr": 1e-3, "history": [{"epoch": 1, "seconds": 0.5}]},
        epoch=epoch,
        rng_state=np.random.default_rng(5).bit_generator.state,
    )


def test_round_trip(tmp_path, rng):
    original = make_checkpoint(rng)
    save_checkpoint(tmp_path / "model.npz", original)
    loaded = load_checkpoint(tmp_path / "model.npz")
    for k, v in original.params.items():
        np.testing.assert_array_equal(loaded.params[k], v)
        assert loaded.params[k].dtype == v.dtype
    for k, v in original.optimizer_state.items():
        np.testing.assert_array_equal(loaded.optimizer_state[k], v)
    assert (loaded.config, loaded.training, loaded.epoch) == (original.config, original.training, 3)
    restored = np.random.default_rng(0)
    restored.bit_generator.state = loaded.rng_state
    assert restored.random() == np.random.default_rng(5).random()


def test_crash_mid_write_leaves_the_old_checkpoint(tmp_path, rng, monkeypatch):
    path = tmp_path / "model.npz"
    save_checkpoint(path, make_checkpoint(rng, epoch=1))
    before = path.read_bytes()

    def savez_then_crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, make_checkpoint(rng, epoch=2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left behind


def test_missing_and_damaged_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train first"):
        load_checkpoint(tmp_path / "nothing.npz")
    (tmp_path / "torn.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match="cannot be read as a vaelib checkpoint"):
        load_checkpoint(tmp_path / "torn.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a vaelib checkpoint"):
        load_checkpoint(tmp_path / "other.npz")


def test_a_different_run_is_named_field_by_field(tmp_path):
    saved = Checkpoint(params={}, optimizer_state={}, epoch=1, rng_state={},
                       config={"n_pixels": 784, "hidden": [400], "n_latent": 20, "beta": 1.0},
                       training={"lr": 1e-3, "batch_size": 128, "seed": 0, "history": []})
    same = {"lr": 1e-3, "batch_size": 128, "seed": 0}
    with pytest.raises(ValueError, match=r"hidden: checkpoint \[400\], requested \[200\]; "
                                         r"n_latent: checkpoint 20, requested 10; lr: checkpoint 0.001, requested 0.5\)"):
        check_same_run(saved, {**saved.config, "hidden": [200], "n_latent": 10}, {**same, "lr": 0.5},
                       tmp_path / "model.npz")
    with pytest.raises(ValueError, match=r"\(beta: checkpoint 1.0, requested 4.0\)"):
        check_same_run(saved, {**saved.config, "beta": 4.0}, same, tmp_path / "model.npz")
    check_same_run(saved, dict(saved.config), same, tmp_path / "model.npz")  # the same run: no error


@pytest.mark.parametrize("write", [
    lambda p: np.save(p.open("wb"), np.zeros(3)),  # one .npy array under an .npz name
    lambda p: np.savez(p.open("wb"), a=np.array([{"x": 1}], dtype=object)),  # an archive holding a pickle
])
def test_every_reader_refuses_what_is_not_an_archive_of_arrays_in_one_line(tmp_path, write):
    from vaelib.machinery.cache import ModelCache
    from vaelib.machinery.data import load_dataset
    from vaelib.machinery.npz import read_npz

    path = tmp_path / "binarized_mnist.npz"
    write(path)
    for read in (read_npz, load_checkpoint, lambda p: load_dataset("binarized-mnist", data_dir=p.parent)):
        with pytest.raises(ValueError) as error:
            read(path)
        message = str(error.value)
        assert str(path) in message and "\n" not in message and "pickle" not in message.lower()
    lines = []
    cache = ModelCache(tmp_path, log=lines.append)
    key = {"any": "key"}
    path.replace(cache.entry_path(key))
    assert cache.load(key) is None and len(lines) == 1 and "bad entry" in lines[0]
