"""Helpers for work that can run beside the main thread: C kernels (cffi releases the GIL
around its calls), hashlib on large buffers and numpy on large arrays do, so on two cores
they overlap."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import ClassVar, Generic, TypeVar

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


class Ahead(Generic[T]):
    """Runs an iterator on a worker thread at most `depth` items ahead of its consumer, so
    two stages whose work releases the GIL (C scans, numpy folds) overlap on two cores.

    Use as a context manager around the consuming loop: leaving it (the end, a `break`, an
    error, Ctrl-C) stops the worker and waits for it, so no thread outlives the data it
    reads (a mapped file is closed after). An error in the worker is re-raised in the
    consumer at the item where it happened; every item before it is delivered first."""

    _END: ClassVar[object] = object()

    def __init__(self, items: Iterator[T], name: str, depth: int = 1) -> None:
        import queue

        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._failed: list[BaseException] = []
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)

    def _put(self, item: object) -> bool:
        """Hand over one item, unless the consumer has left (then False)."""
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():  # checked before each item's work, not after
                item = next(self._items, self._END)
                if item is self._END or not self._put(item):
                    break
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._failed.append(exc)
        self._put(self._END)

    def _consume(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is self._END:
                if self._failed:
                    raise self._failed[0]
                return
            yield item  # type: ignore[misc]  # every item but _END is a T

    def __enter__(self) -> Iterator[T]:
        self._worker.start()
        return self._consume()

    def __exit__(self, *exc: object) -> None:
        import queue

        self._stop.set()
        while self._worker.is_alive():
            try:  # free the worker if it waits to hand over an item
                self._queue.get_nowait()
            except queue.Empty:
                try:
                    self._worker.join(0.05)
                except KeyboardInterrupt:  # Ctrl-C again: still wait for the worker
                    continue
