"""Minibatches from a data matrix held compactly in memory.

Binary images are stored packed, eight pixels to a byte (``np.packbits``),
and unpacked one batch at a time. For binarised MNIST that is 4.9 MB instead
of 157 MB of float32, small enough to stay in cache: gathering a shuffled
batch of 128 rows then takes about 50 µs instead of about 900 µs from the
float32 matrix on the reference machine, where random rows of a large
array are slow to reach. Other data is kept as given, in the training dtype.

An epoch is served by :meth:`Minibatches.iterate`, which gathers the shuffled
rows of many batches at once into one contiguous block and slices batches off
it. Gathering 128 random rows at every step cost about 0.12 ms of a 4 ms
step in training, because the matrix multiplications and the optimiser push
the packed data out of cache between steps; one gather per 64 batches costs
about 0.03 ms per step.
"""

import numpy as np


def is_binary(x):
    """True when every entry of ``x`` is exactly 0 or 1."""
    return bool(np.all((x == 0) | (x == 1)))


class Minibatches:
    """Rows of a data matrix, served by index.

    Parameters
    ----------
    x : ndarray, shape (n, n_pixels)
    dtype : numpy dtype
        The dtype of the batches handed out.
    """

    def __init__(self, x, dtype=np.float32):
        self.n_pixels = x.shape[1]
        self.dtype = np.dtype(dtype)
        self.binary = is_binary(x)
        self._rows = np.packbits(x.astype(bool), axis=1) if self.binary else np.asarray(x, dtype=self.dtype)

    def __len__(self):
        return len(self._rows)

    def iterate(self, order, batch_size, batches_per_gather=64):
        """Yield the batches ``order[0:batch_size]``, ``order[batch_size:2*batch_size]``, ...

        Parameters
        ----------
        order : ndarray of int, shape (n,)
            Row indices, e.g. a permutation for a shuffled epoch.
        batch_size : int
        batches_per_gather : int
            How many batches' rows are gathered from the matrix at once.

        Yields
        ------
        ndarray, shape (batch_size, n_pixels); the last batch may be smaller.
        """
        rows_per_gather = batch_size * batches_per_gather
        for g in range(0, len(order), rows_per_gather):
            block = self._rows[order[g : g + rows_per_gather]]
            for start in range(0, len(block), batch_size):
                yield self._unpacked(block[start : start + batch_size])

    def _unpacked(self, rows):
        """Stored rows as ndarray of shape (len(rows), n_pixels) in ``self.dtype``."""
        if self.binary:
            rows = np.unpackbits(rows, axis=1, count=self.n_pixels)
        return rows.astype(self.dtype, copy=False)
