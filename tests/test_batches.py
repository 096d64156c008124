"""Minibatches: packed binary rows come back exactly as they went in."""

import numpy as np

from vaelib.batches import Minibatches


def test_binary_rows_are_packed_and_returned_exactly(rng):
    x = (rng.random((50, 13)) > 0.5).astype(np.float32)  # 13 pixels: not a multiple of 8
    batches = Minibatches(x)
    assert batches.binary and batches._rows.nbytes == 50 * 2
    index = rng.permutation(50)[:7]
    out = batches.batch(index)
    assert out.dtype == np.float32 and out.shape == (7, 13)
    np.testing.assert_array_equal(out, x[index])


def test_grey_rows_are_kept_in_the_training_dtype(rng):
    x = rng.random((20, 5))
    batches = Minibatches(x, np.float32)
    assert not batches.binary and len(batches) == 20
    np.testing.assert_array_equal(batches.batch(np.array([3, 1])), x[[3, 1]].astype(np.float32))
