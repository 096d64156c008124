"""Parameters as named views into one flat vector.

The model reads a dict of arrays; the optimiser is fastest on one contiguous
vector. :func:`flat_views` gives both at once: writing through a view writes
the vector, and the reverse.
"""

import numpy as np


def flat_views(shapes, buffer):
    """Split a 1-d ``buffer`` into named views of the given shapes.

    Parameters
    ----------
    shapes : dict of str -> tuple
    buffer : ndarray, shape (sum of sizes,)

    Returns
    -------
    dict of str -> ndarray (views into ``buffer``)
    """
    sizes = {k: int(np.prod(s, dtype=np.int64)) for k, s in shapes.items()}
    if buffer.ndim != 1 or buffer.size != sum(sizes.values()):
        raise ValueError(f"buffer of shape {buffer.shape} does not hold {sum(sizes.values())} values")
    views, start = {}, 0
    for k, s in shapes.items():
        views[k] = buffer[start : start + sizes[k]].reshape(s)
        start += sizes[k]
    return views


def flatten(arrays, shapes, dtype=None):
    """Copy named arrays into a new flat vector, in the order of ``shapes``.

    Returns
    -------
    vector : ndarray, shape (n,)
    views : dict of str -> ndarray, views of ``vector``
    """
    dtype = dtype or np.result_type(*arrays.values())
    vector = np.empty(sum(int(np.prod(s, dtype=np.int64)) for s in shapes.values()), dtype=dtype)
    views = flat_views(shapes, vector)
    for k in shapes:
        views[k][...] = arrays[k]
    return vector, views
