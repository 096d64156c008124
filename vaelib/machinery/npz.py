"""Reading ``.npz`` archives of plain arrays: checkpoints, model-cache entries and data files."""

import zipfile

import numpy as np


def read_npz(path):
    """Every array of the ``.npz`` archive at ``path``.

    Returns
    -------
    dict of str -> ndarray

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        In one line, for anything but an archive of plain arrays: a damaged or
        truncated file, a single ``.npy`` array, pickled objects. Pickles are
        never loaded (loading one can run code from the file), and NumPy's own
        messages, which suggest ``allow_pickle=True``, are not repeated.
    """
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} holds a single array, not an .npz archive")
        with f:
            return {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if str(error).endswith("not an .npz archive"):
            raise
        raise ValueError(f"{path} is not a readable .npz archive of arrays (damaged, truncated, "
                         "or holding objects rather than arrays)") from None
