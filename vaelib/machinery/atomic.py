"""Atomic file writes: a crash at any moment leaves the old file or the new one, never a torn one."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path, mode="wb"):
    """Write ``path`` through a temporary file beside it.

    The temporary file is flushed, ``fsync``-ed and renamed over ``path`` with
    ``os.replace`` when the ``with`` block ends normally; if the block raises,
    it is deleted and ``path`` is untouched. The file gets the permissions a
    plain ``open`` would give it (``0o666`` less the user's umask), not the
    ``0o600`` of a temporary file.

    Parameters
    ----------
    path : str or Path
    mode : {"wb", "w"}

    Yields
    ------
    file object, open for writing
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask():
    """The process's umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory):
    """Make the rename itself durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
