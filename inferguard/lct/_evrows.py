"""The events records of one scanned chunk decoded once in C, for both events folds.

`EventsEngine` (the analytics) and the summary's events block (`_file._EventsAggregate`)
read the same `events.batch` rows; on the native backend `decode` runs
`lct_events_decode` once per chunk and both consume its rows (docs/trace-format.md,
"The C road"). Rows C does not take are decoded by each fold with msgspec.
"""

from __future__ import annotations

import math
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
    names: list[str] = msgspec.field(default_factory=list)  # strings of columns 21-24


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


def decode(decoder: Any, chunk: Chunk, names: list[str], fingerprints: bool = True
           ) -> EventRows | None:
    """`select`, with the batch rows decoded in C by `decoder` (a NativeEventsDecoder);
    `fingerprints=False` for the summary alone (no key fingerprints: faster)."""
    ev = select(chunk, names)
    if ev is None or decoder is None:
        return ev
    win = chunk.window
    rows, fps = decoder.decode_all(win.buf, win.base, chunk.offset[ev.idx],
                                   chunk.length[ev.idx], fingerprints)
    rows[~ev.batch, 0] = 0  # a lifecycle record is never a batch
    ev.rows, ev.fps, ev.names = rows, fps, decoder.names()
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


def columnar(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Rows decoded in C whose str name fields all have an id (columns 21-24)."""
    ok: npt.NDArray[np.bool_] = (rows[:, 0] == 1) & ~(
        (rows[:, [1, 4, 7, 10]] == 0) & (rows[:, 21:25] < 0)).any(axis=1)
    return ok


def ok_for_summary(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Rows whose lenient summary fold is reproduced from the C columns: decoded, [18] set,
    every name field a str (with an id), nil or absent (str() of another type is left to
    Python)."""
    ok: npt.NDArray[np.bool_] = (columnar(rows) & (rows[:, 18] == 1)
                                 & (rows[:, [1, 4, 7, 10]] != 2).all(axis=1))
    return ok


def codes(rows: npt.NDArray[np.int64], field: int) -> npt.NDArray[np.int64]:
    """Name field `field` (0 event_type, 1 tier, 2 backend, 3 instance_id) as a code: its
    id when a str, else -1 - kind (-2 nil, -3 another type, -4 absent)."""
    import numpy as np

    kind = rows[:, 1 + 3 * field]
    out: npt.NDArray[np.int64] = np.where(kind == 0, rows[:, 21 + field], -1 - kind)
    return out


def first_seen(keys: npt.NDArray[np.int64]
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Distinct rows of `keys` (2-d) in order of first appearance: (the keys, the row
    index of each one's first appearance, each row's index into them). Only rows that
    differ from the row before can be first appearances, so only those are sorted."""
    import numpy as np

    n = len(keys)
    if n == 0:
        return keys[:0], np.zeros(0, np.intp), np.zeros(0, np.intp)
    chg = np.ones(n, np.bool_)
    chg[1:] = (keys[1:] != keys[:-1]).any(axis=1)
    cand = np.flatnonzero(chg)
    sub = keys[cand]
    lo, hi = sub.min(axis=0), sub.max(axis=0)
    spans = [int(b) - int(a) + 1 for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
    if math.prod(spans) < 1 << 62:
        # Each row as one int64 (mixed radix over the columns' ranges): a 1-d unique, not
        # numpy's row-wise one, which sorts the rows as opaque bytes (3x slower here).
        strides = np.cumprod([1, *spans[:0:-1]])[::-1].astype(np.int64)
        _, first_c, inv_c = np.unique((sub - lo) @ strides, return_index=True,
                                      return_inverse=True)
        u = sub[first_c]
    else:
        u, first_c, inv_c = np.unique(sub, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first_c, kind="stable")
    rank = np.empty(len(order), np.intp)
    rank[order] = np.arange(len(order))
    inv = rank[inv_c.reshape(-1)][np.cumsum(chg) - 1]
    return u[order], cand[first_c[order]], inv


def isum(a: npt.NDArray[np.int64]) -> int:
    """Exact sum of int64 values (Python's, when numpy's int64 sum could wrap)."""
    if not len(a):
        return 0
    lo, hi = int(a.min()), int(a.max())
    if max(-lo, hi) * len(a) < (1 << 62):
        return int(a.sum())
    return sum(a.tolist())


def group_sums(inv: npt.NDArray[np.intp], n: int, a: npt.NDArray[np.int64]) -> list[int]:
    """Exact per-group sums of `a` (group of row i: inv[i], n groups)."""
    import numpy as np

    if not len(a):
        return [0] * n
    lo, hi = int(a.min()), int(a.max())
    if max(-lo, hi) * len(a) < (1 << 62):
        out = np.zeros(n, np.int64)
        np.add.at(out, inv, a)
        return [int(x) for x in out.tolist()]
    sums = [0] * n
    for g, v in zip(inv.tolist(), a.tolist(), strict=True):
        sums[g] += v
    return sums
