"""The contracts both backends implement, and the row types that cross them.

Each hot path has a C kernel (glue in `_lct.py` / `_prom.py`, the only code that touches
cffi) and a pure-Python twin (in `inferguard.lct` / `inferguard.prom`). Both implement the
protocols below, so callers pick one by backend and then call one interface; the
differential tests hold the two to identical output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# -- .lct frames ------------------------------------------------------------------------------


class FrameRows(msgspec.Struct, frozen=True):
    """One row per frame of one scan call (see lct_columns in native/inferguard_api.h)."""

    offset: npt.NDArray[np.int64]
    length: npt.NDArray[np.uint32]
    t_mono: npt.NDArray[np.float64]
    t_wall: npt.NDArray[np.float64]
    op: npt.NDArray[np.int32]
    nkeys: npt.NDArray[np.int32]
    status: npt.NDArray[np.uint8]


class TalliedFrames(msgspec.Struct, frozen=True):
    """What a tallied scan call (`NativeFrameScanner.scan_tally`) leaves in Python: its rows
    were folded in C, so only the (offset, length) of its malformed frames (for findings)
    and of its last frame (for the resync decision)."""

    malformed: list[tuple[int, int]]
    last: tuple[int, int]


class TallyResult(msgspec.Struct, frozen=True):
    """A summary tally read back (`lct_tally_totals` and its columns; NaN: no value)."""

    frames: int
    malformed: int
    records: int
    nan_ts: int
    neg_mono: int
    decreases: int
    mono_min: float
    mono_max: float
    mono_first: float
    mono_last: float
    wall_min: float
    wall_max: float
    counts: list[int]  # per op id (LCT_MAX_OPS entries)
    keys: list[int]
    keys_max: list[int]
    special: dict[int, tuple[int, int, int]]  # row status -> (rows, keys, max keys), op-less rows


class FrameScanner(Protocol):
    """Frames of a buffer -> rows, with qualnames interned in first-seen order (at most
    LCT_MAX_OPS of at most LCT_MAX_QUALNAME bytes). Contract: inferguard/lct/_frame.py."""

    def names(self) -> list[str]:
        """The interned qualnames, by id."""
        ...

    def size(self) -> int:
        """How many qualnames are interned."""
        ...

    def intern(self, name: bytes) -> int:
        """The id of `name` as a scan would give it; -1 if the table is full."""
        ...

    def scan(self, buf: Any, pos: int, base: int, capacity: int, end: int | None = None
             ) -> tuple[int, int, FrameRows | None]:
        """Rows for up to `capacity` frames of buf[pos:end] (`base`: absolute offset of
        buf[0]); returns (LCT_STOP_* reason, new pos, rows or None when there are none)."""
        ...


# -- ObjectKeys -------------------------------------------------------------------------------


class KeyRows(msgspec.Struct, frozen=True):
    """One row per ObjectKey occurrence, in file order; `row` indexes the scan chunk."""

    row: npt.NDArray[np.int32]
    fp: npt.NDArray[np.uint64]
    model: npt.NDArray[np.int32]
    salt: npt.NDArray[np.int32]
    kv_rank: npt.NDArray[np.int64]
    group: npt.NDArray[np.int64]
    status: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.row)


class ByteWindow(Protocol):
    """The mapped bytes a chunk of rows was scanned from."""

    @property
    def buf(self) -> Any: ...

    @property
    def base(self) -> int: ...

    def body(self, offset: int, length: int) -> bytes:
        """The body of the frame whose prefix is at absolute `offset`."""
        ...


class ScannedFrames(Protocol):
    """What key extraction reads of a scan chunk (inferguard.lct._scan.Chunk)."""

    @property
    def offset(self) -> npt.NDArray[np.int64]: ...

    @property
    def length(self) -> npt.NDArray[np.uint32]: ...

    @property
    def nkeys(self) -> npt.NDArray[np.int32]: ...

    @property
    def status(self) -> npt.NDArray[np.uint8]: ...

    @property
    def window(self) -> ByteWindow: ...


class KeyExtractor(Protocol):
    """Scanned records -> one KeyRows row per ObjectKey. Contract: inferguard/lct/_keys.py."""

    def names(self) -> tuple[list[str], list[str]]:
        """The interned model names and cache salts, by id."""
        ...

    def extract(self, chunk: ScannedFrames) -> Iterator[KeyRows]:
        """Key rows of the chunk's records, in pieces of at most KEY_ROWS rows."""
        ...


class KeyTable(Protocol):
    """Fingerprint -> dense id in first-seen order, at most `capacity` ids."""

    @property
    def count(self) -> int: ...

    @property
    def capacity(self) -> int: ...

    def intern(self, fp: npt.NDArray[np.uint64], use: npt.NDArray[np.bool_]
               ) -> tuple[npt.NDArray[np.int32], int]:
        """Ids per row (-2 unused, -1 no room) and how many rows got -1."""
        ...

    def rebuild(self, fps: npt.NDArray[np.uint64], capacity: int) -> None:
        """Start over with these fingerprints (ids 0..n-1 in this order)."""
        ...

    def fingerprints(self) -> npt.NDArray[np.uint64]:
        """Fingerprints by id."""
        ...


class ContextMatcher(Protocol):
    """read_prefetched_results contexts: an __exit__ closes the most recent open __enter__
    of the same key multiset; at most 2**16 open (more are untracked)."""

    @property
    def n_open(self) -> int: ...

    @property
    def untracked(self) -> int: ...

    @property
    def exit_alone(self) -> int: ...

    def match(self, keysets: npt.NDArray[np.uint64], is_enter: npt.NDArray[np.bool_],
              off: npt.NDArray[np.int64], t: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Match records in file order; the offsets of exits that closed nothing."""
        ...

    def open_contexts(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Offsets and t_mono of every context still open, in no particular order."""
        ...


# -- Prometheus text --------------------------------------------------------------------------


class TokenStream(msgspec.Struct):
    """Rows (one per line) and labels (flat) of one buffer, plus the two interners."""

    om: bool
    line: npt.NDArray[np.int64]
    kind: npt.NDArray[np.uint8]
    name: npt.NDArray[np.int32]
    lab_first: npt.NDArray[np.int64]
    lab_count: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    ts: npt.NDArray[np.float64]
    aux_len: npt.NDArray[np.int64]
    err_col: npt.NDArray[np.int64]
    err: npt.NDArray[np.uint8]
    lab_name: npt.NDArray[np.int32]
    lab_value: npt.NDArray[np.int32]
    names: list[bytes]
    first_row: npt.NDArray[np.int64]
    strs: list[bytes]
    _aux: Callable[[int], tuple[bytes, int]]

    def aux(self, row: int) -> bytes:
        """HELP text, TYPE/UNIT word, comment text or exemplar of `row` (b"" if none)."""
        return self._aux(row)[0] if self.aux_len[row] else b""

    def aux_at(self, row: int) -> tuple[bytes, int]:
        """The auxiliary bytes of `row` and the 1-based byte column where they start."""
        return self._aux(row) if self.aux_len[row] else (b"", 1)


class TokenRows(msgspec.Struct, frozen=True):
    """prom_scan()'s rows of one buffer left in cffi columns (no numpy), for the metrics
    summary's road (`_native._prom.tokenize_rows` / `brief`): the row kinds as bytes, the
    columns the family rules read by index, the interners, and `handle` (the cffi columns,
    opaque outside the glue)."""

    count: int
    labels: int
    kinds: bytes
    line: Any
    name: Any
    aux_len: Any
    names: list[bytes]
    first_row: list[int]
    strs: list[bytes]
    _aux: Callable[[int], tuple[bytes, int]]
    handle: Any

    def aux_at(self, row: int) -> tuple[bytes, int]:
        """The auxiliary bytes of `row` and the 1-based byte column where they start."""
        return self._aux(row) if self.aux_len[row] else (b"", 1)


class RawFacts(msgspec.Struct, frozen=True):
    """What prom_facts.c found of each family (by family index) over `TokenRows`, in ids:
    the lists the metrics evidence turns into `FamilyFacts` (`prom._brief.clean_facts`).
    `pairs`, `buckets` (by `le` value id) and `splits` are sorted (family, id[, sum])
    triples; `sid_ids` the string ids the service-instance label takes; `declined`: a
    total the kernel could not sum exactly."""

    samples: list[int]
    series: list[int]
    nonzero: list[int]
    total: list[float]
    split: list[int]
    pairs: tuple[list[int], list[int], list[int]]
    buckets: tuple[list[int], list[int], list[float]]
    splits: tuple[list[int], list[int], list[float]]
    sid_ids: list[int]
    declined: bool


class Tokenizer(Protocol):
    """Prometheus / OpenMetrics text -> TokenStream. Contract: inferguard/prom/_tokens.py."""

    def __call__(self, data: bytes, om: bool) -> TokenStream: ...
