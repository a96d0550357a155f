"""Writing files so that a reader never sees half of one, and nothing but our own files is replaced.

Temporary files and folders carry their owner (a tag of the host and the process id) in their name:
the next writer of the same name removes those whose process on this host is gone (a killed run),
and leaves those of a live writer, or of another host, alone.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import socket
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from scaleprof.errors import BadInput


def check_replaceable(path) -> Path:
    """``path`` itself, when writing there would replace nothing or a regular file; a directory, device,
    FIFO, socket or symbolic link there is a BadInput (renaming over it would destroy what is not ours;
    writing through a link would change a file elsewhere)."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError:
        return path                     # unreadable: the write itself reports it
    if stat.S_ISLNK(mode):
        raise BadInput(f"{path}: is a symbolic link; scaleprof neither writes through links nor replaces them: "
                       "give the path of a real file")
    if stat.S_ISDIR(mode):
        raise BadInput(f"{path}: is a directory; give a file name inside it")
    if not stat.S_ISREG(mode):
        raise BadInput(f"{path}: exists and is not a regular file (a device, pipe or socket); "
                       "scaleprof writes only regular files")
    return path


def user_cache_dir() -> Path | None:
    """scaleprof's per-user cache: $SCALEPROF_CACHE_DIR as given, else $XDG_CACHE_HOME/scaleprof, else
    $HOME/.cache/scaleprof. As the XDG base-directory rules say, a relative or empty XDG_CACHE_HOME or
    HOME is ignored (a relative one would scatter caches under every working directory, an empty one
    write at the filesystem root); None when nothing usable is set: nothing is cached across runs."""
    given = os.environ.get("SCALEPROF_CACHE_DIR")
    if given:
        return Path(given)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "scaleprof"
    home = os.environ.get("HOME", "")
    if os.path.isabs(home) and home != "/":
        return Path(home) / ".cache" / "scaleprof"
    return None


def quiet_libraries() -> None:
    """Keep the libraries scaleprof imports from writing outside its output and cache: ONNX Runtime's
    telemetry keeps a device-id database under $XDG_CACHE_HOME or $HOME (and logs a warning when it
    cannot), unless ORT_DISABLE_TELEMETRY is set; a user's own setting of it is kept."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def read_limited(path, limit: int, what: str = "file") -> bytes:
    """The bytes of ``path``, read only once it is known to hold at most ``limit`` of them: a larger
    file, a pipe or a socket (whose reader would wait forever for a writer) is a BadInput; a missing
    or unreadable one an OSError, for the caller to word."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise BadInput(f"{path}: a pipe or socket, not a {what}: give a regular file (its reader would "
                           "wait for a writer forever)")
        if stat.S_ISREG(mode) and os.fstat(fd).st_size > limit:
            raise BadInput(f"{path}: larger than {_size(limit)}, not a {what} scaleprof wrote or reads")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise BadInput(f"{path}: larger than {_size(limit)}, not a {what} scaleprof wrote or reads")
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{n >> 10} kB"


@contextmanager
def atomic_target(path):
    """Yield a uniquely named temporary path beside ``path``; on success it is renamed onto ``path``
    (with the permissions the user's umask gives new files), else removed. Two writers never share
    a temporary name, and a reader never sees a half-written file where a good one was expected."""
    path = check_replaceable(path)
    prefix = f".{path.name}."
    remove_stale(path.parent, prefix, ".tmp")
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{owner_tag()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        check_replaceable(path)         # what appeared there meanwhile is not ours to replace either
        try:
            os.replace(tmp, path)
        except OSError as err:          # name the file the user gave, not our hidden temporary one
            raise OSError(err.errno, err.strerror, str(path)) from None
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


def make_temp_dir(parent, prefix: str) -> Path:
    """A new folder ``parent/PREFIX<owner>.<random>`` with the permissions the user's umask gives new
    folders; the stale ones of killed runs under the same prefix are removed first."""
    parent = Path(parent)
    remove_stale(parent, prefix, "")
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}.", dir=parent))
    os.chmod(folder, 0o777 & ~_umask())
    return folder


def remove_stale(parent, prefix: str, suffix: str) -> None:
    """Remove ``parent``'s temporary files or folders named ``PREFIX[anything-]<owner>.*SUFFIX`` whose
    owner is a process of this host that no longer runs (best effort: a failure leaves them)."""
    try:
        names = [n for n in os.listdir(parent) if n.startswith(prefix) and n.endswith(suffix)]
    except OSError:
        return
    for name in names:
        parts = name[len(prefix):].partition(".")[0].rsplit("-", 2)
        if len(parts) < 2 or parts[-2] != _host_tag() or not parts[-1].isdigit() or _alive(int(parts[-1])):
            continue
        path = Path(parent) / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            pass


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def owner_tag() -> str:
    """This process on this host, as temporary names carry it ("<host hash>-<pid>")."""
    return f"{_host_tag()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                     # another user's process: alive
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
