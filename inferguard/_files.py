"""Opening an input path safely, for every layer that takes one: regular files only.

A device (`/dev/zero`) or FIFO reports size 0 and may never end or never open; a directory
is not a file. The open is non-blocking (a FIFO with no writer would block a plain open
forever) and checked with `fstat` before a byte is read.
"""

from __future__ import annotations

import errno
import os
import stat


class NotRegularFile(OSError):
    """An input path that is a directory, device, FIFO or socket."""


def file_type(mode: int) -> str:
    """What a non-regular file is, in words."""
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device"
            if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")


def path_problem(path: str | os.PathLike[str], *, directory: bool = False,
                 either: bool = False) -> str | None:
    """Why `path` cannot be read as asked (a regular file; a directory when `directory`; either
    when `either`), or None when it can. From `stat` alone: nothing is opened (a device's open
    may act), so parse-time checks stay side-effect free."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file or directory"
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISDIR(st.st_mode):
        if not (directory or either):
            return "is a directory, expected a file"
        return None if os.access(path, os.R_OK | os.X_OK) else "permission denied"
    if directory:
        return "not a directory"
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file ({file_type(st.st_mode)}); give a file, or '-' for a pipe"
    return None if os.access(path, os.R_OK) else "permission denied"


def open_regular_fd(path: str | os.PathLike[str], *, follow: bool = True) -> int:
    """A blocking read-only descriptor of a regular file; `NotRegularFile` (an OSError,
    naming what it is) otherwise. `follow=False` refuses a symlink too."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file ({file_type(mode)}): "
                                 "refused, since it has no size and may never end",
                                 os.fspath(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (memory does not grow with it)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
