"""One helper for work that can run beside the main thread: C kernels (cffi releases the
GIL around its calls) and hashlib on large buffers do, so on two cores they overlap."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def beside(fn: Callable[[], T], name: str) -> Callable[[], T]:
    """Start `fn()` in a second thread; the returned function waits for it and returns its
    result, or raises what it raised. Call it on every path (a `finally`), so no thread
    outlives the data it reads."""
    got: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            got.append(fn())
        except BaseException as exc:  # handed to the caller, re-raised there
            failed.append(exc)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()

    def join() -> T:
        try:
            worker.join()
        except KeyboardInterrupt:  # Ctrl-C: still wait (the work is short), then stop
            worker.join()
            raise
        if failed:
            raise failed[0]
        return got[0]

    return join
