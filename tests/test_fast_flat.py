"""Parameters as views into one flat vector."""

import numpy as np
import pytest

from vaelib.core.optim import Adam
from vaelib.fast.flat import flat_views, flatten


def test_one_flat_vector_gives_the_same_update_as_named_tensors(rng):
    shapes = {"W": (3, 2), "b": (2,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    grads = {k: rng.standard_normal(s) for k, s in shapes.items()}
    theta, views = flatten(params, shapes)
    gvec, _ = flatten(grads, shapes)
    named, flat = Adam(), Adam()
    named.inplace_step(params, grads)
    flat.inplace_step({"theta": theta}, {"theta": gvec})
    for k in shapes:
        np.testing.assert_allclose(views[k], params[k], rtol=1e-15)


def test_flat_views_share_memory_and_check_size():
    buf = np.zeros(8)
    views = flat_views({"a": (2, 3), "b": (2,)}, buf)
    views["a"][1, 2] = 5.0
    assert buf[5] == 5.0
    with pytest.raises(ValueError, match="does not hold"):
        flat_views({"a": (3,)}, np.zeros(4))
