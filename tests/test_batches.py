"""Minibatches: packed binary rows come back exactly as they went in."""

import numpy as np
import pytest

from vaelib.machinery.batches import Minibatches


def test_binary_rows_are_packed_and_returned_exactly(rng):
    x = (rng.random((50, 13)) > 0.5).astype(np.float32)  # 13 pixels: not a multiple of 8
    batches = Minibatches(x)
    assert batches.binary and batches._rows.nbytes == 50 * 2
    index = rng.permutation(50)[:7]
    (out,) = batches.iterate(index, batch_size=7)
    assert out.dtype == np.float32 and out.shape == (7, 13)
    np.testing.assert_array_equal(out, x[index])


def test_grey_rows_are_kept_in_the_training_dtype(rng):
    x = rng.random((20, 5))
    batches = Minibatches(x, np.float32)
    assert not batches.binary and len(batches) == 20
    (out,) = batches.iterate(np.array([3, 1]), batch_size=2)
    np.testing.assert_array_equal(out, x[[3, 1]].astype(np.float32))


@pytest.mark.parametrize("binary", [True, False])
def test_iterate_serves_the_rows_of_order_batch_by_batch(binary, rng):
    """Across gather blocks (3 batches each here) and with a short last batch."""
    x = rng.random((50, 13))
    x = (x > 0.5).astype(np.float32) if binary else x
    batches = Minibatches(x, np.float32)
    order = rng.permutation(50)
    served = list(batches.iterate(order, batch_size=7, batches_per_gather=3))
    assert [len(b) for b in served] == [7] * 7 + [1]
    for i, b in enumerate(served):
        np.testing.assert_array_equal(b, x[order[7 * i : 7 * i + 7]].astype(np.float32))
