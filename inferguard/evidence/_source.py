"""Opening one user-named input: a regular-file check, `-` for standard input, and transparent
gzip with a bound on the decompressed size.

Why here: every road that reads a file the user named (the CLI's single-file commands, the
evidence readers) must refuse the same things the same way, and the byte readers below
(`lct`, `prom`) read regular files by path (they map or seek). A pipe or a `.gz` is therefore
spooled once, sequentially, to a private temporary file and handed on by path: nothing seeks
the pipe, and a gzip bomb stops at the cap instead of filling memory or disk.
"""

from __future__ import annotations

import contextlib
import os
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from inferguard._files import path_problem

STDIN = "-"
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_DECOMPRESSED = 64 << 30
"""Default cap on what a `.gz` input (or a gzip stream on stdin) may expand to: 64 GiB, far
above any real scrape or trace, far below a bomb. `INFERGUARD_MAX_DECOMPRESSED_BYTES`
overrides it."""
_CHUNK = 1 << 20


class InputError(ValueError):
    """A named input cannot be used: missing, not a regular file, unreadable, a broken gzip
    stream, or one expanding past the cap. The message names the input."""


def max_decompressed() -> int:
    """The decompressed-size cap in force (bytes)."""
    raw = os.environ.get("INFERGUARD_MAX_DECOMPRESSED_BYTES")
    if raw is None:
        return DEFAULT_MAX_DECOMPRESSED
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"INFERGUARD_MAX_DECOMPRESSED_BYTES={raw!r}: not an integer") from None
    if value <= 0:
        raise InputError(f"INFERGUARD_MAX_DECOMPRESSED_BYTES={raw!r}: must be positive")
    return value


def input_problem(path: str, *, directory: bool = False, either: bool = False) -> str | None:
    """Why `path` cannot be read as asked (a regular file; a directory when `directory`; either
    when `either`), or None when it can. `-` (standard input) is fine for a file."""
    if path == STDIN and not directory:
        return None
    return path_problem(path, directory=directory, either=either)


def is_gzip(path: str) -> bool:
    """Whether a regular file starts with the gzip magic (the name is not trusted)."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _copy_limited(src: BinaryIO, dst: BinaryIO, label: str, cap: int) -> None:
    """Copy src to dst, gunzipping when src starts with the gzip magic (multi-member streams
    included), never writing more than `cap` decompressed bytes."""
    head = src.read(2)
    if head != GZIP_MAGIC:
        import shutil

        dst.write(head)
        shutil.copyfileobj(src, dst, _CHUNK)
        return
    written = 0
    offset = 0
    d = zlib.decompressobj(wbits=31)
    data = head + src.read(_CHUNK - 2)
    while True:
        while data:
            try:
                out = d.decompress(data, cap - written + 1)
            except zlib.error as exc:
                raise InputError(f"{label}: not a valid gzip stream near compressed offset "
                                 f"{offset}: {exc}") from None
            written += len(out)
            if written > cap:
                raise InputError(f"{label}: decompresses to more than {cap} bytes (the cap; "
                                 "a gzip bomb?); set INFERGUARD_MAX_DECOMPRESSED_BYTES to "
                                 "allow more")
            dst.write(out)
            consumed = len(data) - len(d.unconsumed_tail)
            offset += consumed
            data = d.unconsumed_tail
            if d.eof:
                rest = d.unused_data
                if rest.lstrip(b"\0"):  # another member follows
                    d = zlib.decompressobj(wbits=31)
                    data = rest
                else:
                    data = b""
        chunk = src.read(_CHUNK)
        if not chunk:
            break
        data = chunk
    if not d.eof:
        raise InputError(f"{label}: gzip stream ends early (truncated at compressed offset "
                         f"{offset})")


@contextlib.contextmanager
def local_input(path: str, *, stdin: BinaryIO | None = None) -> Iterator[str]:
    """The path of a regular, uncompressed file holding the input's bytes.

    `path` itself when it is a plain regular file; otherwise (`-`, or gzip content) a private
    temporary copy, read sequentially, decompressed with the cap, removed on exit."""
    problem = input_problem(path)
    if problem is not None:
        raise InputError(f"{path}: {problem}")
    if path != STDIN and not is_gzip(path):
        yield path
        return
    cap = max_decompressed()
    label = "<stdin>" if path == STDIN else path
    import tempfile  # only for a gzip input (tempfile + shutil cost ~5 ms of start-up)

    with tempfile.TemporaryDirectory(prefix="inferguard-input-") as tmp:
        target = os.path.join(tmp, "input")
        with open(target, "wb") as dst:
            if path == STDIN:
                src = stdin if stdin is not None else sys.stdin.buffer
                _copy_limited(src, dst, label, cap)
            else:
                with open(path, "rb") as f:
                    _copy_limited(f, dst, label, cap)
        yield target


def binary_offset(path: str, limit: int = 1 << 16) -> int | None:
    """The offset of the first NUL byte in the first `limit` bytes, or None: text formats
    (Prometheus, logs, JSON) never hold one, so a NUL says the file is binary."""
    with open(path, "rb") as f:
        head = f.read(limit)
    i = head.find(b"\0")
    return None if i < 0 else i
