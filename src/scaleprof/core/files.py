"""Writing files so that a reader never sees half of one, and nothing but our own files is replaced."""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from scaleprof.errors import BadInput


def check_replaceable(path) -> Path:
    """``path`` itself, when writing there would replace nothing or a regular file; a directory, device,
    FIFO or socket there is a BadInput (renaming over it would destroy what is not ours)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError:
        return path                     # unreadable: the write itself reports it
    if stat.S_ISDIR(mode):
        raise BadInput(f"{path}: is a directory; give a file name inside it")
    if not stat.S_ISREG(mode):
        raise BadInput(f"{path}: exists and is not a regular file (a device, pipe or socket); "
                       "scaleprof writes only regular files")
    return path


@contextmanager
def atomic_target(path):
    """Yield a uniquely named temporary path beside ``path``; on success it is renamed onto ``path``
    (with the permissions the user's umask gives new files), else removed. Two writers never share
    a temporary name, and a reader never sees a half-written file where a good one was expected."""
    path = check_replaceable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) through atomic_target: a failing write (disk full) leaves the
    previous file, if any, untouched and nothing half-written."""
    with atomic_target(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
