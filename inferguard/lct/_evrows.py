"""The events records of one scanned chunk decoded once in C, for both events folds.

`EventsEngine` (the analytics) and the summary's events block (`_file._EventsAggregate`)
read the same `events.batch` rows; on the native backend `decode` runs
`lct_events_decode` once per chunk and both consume its rows (docs/trace-format.md,
"The C road"). Rows C does not take are decoded by each fold with msgspec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from inferguard.lct import _frame as tf

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from inferguard.lct._scan import Chunk

EVENT_OPS = ("events.batch", "events.lifecycle")


class EventRows(msgspec.Struct):
    """`idx`: the chunk's well-formed events records (row numbers, file order); `batch`:
    whether each is an events.batch; `rows` / `fps`: the C decoder's columns and key
    fingerprints for them (None on the Python backend)."""

    idx: Any
    batch: Any
    rows: Any = None
    fps: Any = None


def select(chunk: Chunk, names: list[str]) -> EventRows | None:
    """The chunk's events records (None when it has none)."""
    import numpy as np

    want = [i for i, n in enumerate(names) if n in EVENT_OPS]
    if not want:
        return None
    idx = np.flatnonzero((chunk.status != tf.ROW_MALFORMED) & np.isin(chunk.op, want))
    if not len(idx):
        return None
    batch = chunk.op[idx] == names.index("events.batch") if "events.batch" in names else (
        np.zeros(len(idx), np.bool_))
    return EventRows(idx, batch)


def decode(decoder: Any, chunk: Chunk, names: list[str]) -> EventRows | None:
    """`select`, with the batch rows decoded in C by `decoder` (a NativeEventsDecoder)."""
    ev = select(chunk, names)
    if ev is None or decoder is None:
        return ev
    win = chunk.window
    rows, fps = decoder.decode_all(win.buf, win.base, chunk.offset[ev.idx],
                                   chunk.length[ev.idx])
    rows[~ev.batch, 0] = 0  # a lifecycle record is never a batch
    ev.rows, ev.fps = rows, fps
    return ev


class Spans:
    """str of a (kind, offset, length) span of the window buffer, cached by its bytes."""

    def __init__(self) -> None:
        self._str: dict[bytes, str] = {}

    def get(self, buf: Any, off: int, n: int) -> str:
        raw = bytes(buf[off:off + n])
        s = self._str.get(raw)
        if s is None:
            s = raw.decode("utf-8")
            if len(self._str) < 4096:
                self._str[raw] = s
        return s


def ok_for_summary(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Rows whose lenient summary fold is reproduced from the C columns: decoded, [18] set,
    and every name field a str, nil or absent (str() of another type is left to Python)."""
    ok: npt.NDArray[np.bool_] = ((rows[:, 0] == 1) & (rows[:, 18] == 1)
                                 & (rows[:, [1, 4, 7, 10]] != 2).all(axis=1))
    return ok
