"""Walk the frames of a .lct file in bounded windows, on either backend.

The file is mapped one window at a time (64 MiB by default), so peak memory does not grow
with the file. A kernel (C or Python, same contract) turns the frames of a window into rows;
this module owns everything between kernel calls: remapping when a frame crosses a window,
integrity findings, and resynchronising after a damaged length prefix or body.
"""

from __future__ import annotations

import _thread
import mmap
import os
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import numpy.typing as npt

import msgspec

from inferguard._files import open_regular_fd
from inferguard._native import Backend
from inferguard._native._lct import NativeFrameScanner, NativeTally
from inferguard._native._protocols import FrameRows, FrameScanner, TalliedFrames
from inferguard.lct import _frame as tf

DEFAULT_WINDOW = 64 << 20
CHUNK_ROWS = 1 << 16
# The pure-Python kernel takes at most this many rows a call: its per-batch copies and numpy
# temporaries then stay in cache (bench_trace_stats.py's `python_rows_65536` row beside
# `python`; docs/performance.md, "Smaller batches for the pure-Python kernel").
PYTHON_CHUNK_ROWS = 1 << 14
# Split a window across two threads (native backend only) when this much of it is left.
PARALLEL_MIN_BYTES = 8 << 20
SCAN_THREADS = max(1, min(2, int(os.environ.get("INFERGUARD_SCAN_THREADS", "0"))
                       or (os.cpu_count() or 1)))
# The analytics pass (`trace stats`, evidence) takes its own setting (the parity tests force
# each count on it): 2 runs its scan and key extraction on a worker thread a chunk ahead of
# the fold (lct/_stats.py), the scan itself unsplit; 1 runs both on the caller's thread.
# Its default is SCAN_THREADS (docs/performance.md, "The scan a chunk ahead of the fold").
ANALYTICS_SCAN_THREADS = SCAN_THREADS
# Every record upstream writes starts with `{"type": "record", ...` (msgspec, tag first).
RECORD_SIGNATURE = b"\xa4type\xa6record"
_BE32 = struct.Struct(">I")


class Finding:
    """One integrity observation: what, where (byte offset), and detail."""

    __slots__ = ("detail", "kind", "offset", "skipped")

    def __init__(self, kind: str, offset: int, detail: str, skipped: int = 0) -> None:
        self.kind = kind
        self.offset = offset
        self.detail = detail
        self.skipped = skipped


class FindingLog(list[Finding]):
    """Findings of one read: the first `limit` kept, the rest only counted, so a file of
    millions of damaged frames cannot make memory grow with it."""

    def __init__(self, limit: int = 1000) -> None:
        super().__init__()
        self.limit = limit
        self.omitted = 0
        self.omitted_skipped = 0

    def append(self, f: Finding) -> None:
        if len(self) < self.limit:
            super().append(f)
        else:
            self.omitted += 1
            self.omitted_skipped += f.skipped


class Source:
    """A trace as bytes: a file (mapped window by window) or a caller's buffer."""

    def __init__(self, source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> None:
        self._fd: int | None = None
        self._buf: memoryview | None = None
        self._findable: bytes | bytearray = b""
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._buf = memoryview(source).cast("B")
            self._findable = source if isinstance(source, (bytes, bytearray)) else bytes(source)
            self.name = "<buffer>"
            self.size = self._buf.nbytes
        else:
            self.name = os.fspath(source)
            self._fd = open_regular_fd(self.name)  # a device or FIFO is refused, never mapped
            try:
                self.size = os.fstat(self._fd).st_size
            except BaseException:
                os.close(self._fd)
                raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, offset: int, n: int) -> bytes:
        """Up to n bytes at offset (fewer at end of file)."""
        n = max(0, min(n, self.size - offset))
        if n == 0:
            return b""
        if self._buf is not None:
            return bytes(self._buf[offset:offset + n])
        assert self._fd is not None
        return os.pread(self._fd, n, offset)

    def window(self, start: int, end: int) -> _Window:
        return _Window(self, start, end)


class _Window:
    """A mapped (or sliced) span [base, end) of the source; closes its mapping on exit."""

    def __init__(self, src: Source, start: int, end: int) -> None:
        self._map: mmap.mmap | None = None
        if src._buf is not None:
            self.base = start
            self.buf: Any = src._buf[start:end]
        else:
            self.base = start - start % mmap.ALLOCATIONGRANULARITY
            self._map = mmap.mmap(src._fd, end - self.base, offset=self.base,  # type: ignore[arg-type]
                                  access=mmap.ACCESS_READ)
            if hasattr(self._map, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                self._map.madvise(mmap.MADV_SEQUENTIAL)
            self.buf = self._map
        self.end = self.base + len(self.buf)
        self._src = src

    def find(self, sub: bytes, rel: int) -> int:
        """Window-relative index of `sub` at or after `rel`, or -1."""
        if self._map is not None:
            return self._map.find(sub, rel)
        i = self._src._findable.find(sub, self.base + rel, self.end)
        return -1 if i < 0 else i - self.base

    def __enter__(self) -> _Window:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._map is not None:
            self._map.close()

    def body(self, offset: int, length: int) -> bytes:
        """The body of the frame whose prefix is at absolute `offset`."""
        start = offset - self.base + 4
        return bytes(self.buf[start:start + length])


class Chunk(msgspec.Struct, frozen=True):
    """Rows for consecutive frames of one window, plus that window for byte access."""

    offset: npt.NDArray[np.int64]
    length: npt.NDArray[np.uint32]
    t_mono: npt.NDArray[np.float64]
    t_wall: npt.NDArray[np.float64]
    op: npt.NDArray[np.int32]
    nkeys: npt.NDArray[np.int32]
    status: npt.NDArray[np.uint8]
    window: _Window
    # Pure-Python scans of clean runs: the records' args bytes, already decoded once.
    args: tf.ArgsBlob | None = None

    def malformed_frames(self) -> list[tuple[int, int]]:
        """(offset, length) of the chunk's malformed frames."""
        import numpy as np

        bad = np.flatnonzero(self.status == tf.ROW_MALFORMED)
        return list(zip(self.offset[bad].tolist(), self.length[bad].tolist(), strict=True))

    def last_frame(self) -> tuple[int, int]:
        return int(self.offset[-1]), int(self.length[-1])


class TallyChunk(msgspec.Struct, frozen=True):
    """A chunk of a tallying kernel: its rows were folded into the kernel's tally in C, so
    it keeps only what the walk needs (malformed frames, the last frame, the window)."""

    frames: TalliedFrames
    window: _Window

    def malformed_frames(self) -> list[tuple[int, int]]:
        return self.frames.malformed

    def last_frame(self) -> tuple[int, int]:
        return self.frames.last


class PyFrameRows(FrameRows, frozen=True):
    """FrameRows plus the args blob of a batch scan (`_frame.scan_batch`)."""

    args: tf.ArgsBlob | None = None


class PythonFrameScanner:
    """The pure-Python twin of `lct_scan` (a `FrameScanner`: `_frame.scan_python`).

    With `keys`, runs of clean records are scanned by `_frame.scan_batch` (one msgspec call
    per run), whose rows carry the records' args bytes for key extraction; without, frame
    by frame (cheaper when no key is read: summaries, columns, exports)."""

    def __init__(self, keys: bool = False) -> None:
        self.interner = tf.PyInterner()
        self.keys = keys

    def names(self) -> list[str]:
        return list(self.interner.names)

    def size(self) -> int:
        return len(self.interner.names)

    def intern(self, name: bytes) -> int:
        q, it = name.decode("utf-8"), self.interner
        op = it.ids.get(q, -1)
        if op < 0 and len(name) <= tf.MAX_QUALNAME and len(it.names) < tf.MAX_OPS:
            op = it.ids[q] = len(it.names)
            it.names.append(q)
        return op

    def scan(self, buf: Any, pos: int, base: int, capacity: int, end: int | None = None
             ) -> tuple[int, int, FrameRows | None]:
        import numpy as np

        view = buf if end is None else memoryview(buf)[:end]
        fast = tf.scan_batch(view, pos, base, self.interner, capacity) if self.keys else None
        if fast is not None:
            stop, pos, cols, blob = fast
            return stop, pos, None if cols is None else PyFrameRows(*cols, args=blob)
        rows = tf.Rows()
        stop, pos = tf.scan_python(view, pos, base, self.interner, capacity, rows)
        if not rows.offset:
            return stop, pos, None
        return stop, pos, FrameRows(
            np.array(rows.offset, dtype=np.int64), np.array(rows.length, dtype=np.uint32),
            np.array(rows.t_mono, dtype=np.float64), np.array(rows.t_wall, dtype=np.float64),
            np.array(rows.op, dtype=np.int32), np.array(rows.nkeys, dtype=np.int32),
            np.array(rows.status, dtype=np.uint8))


class Kernel:
    """A frame scanner of one backend, turning its rows into `Chunk`s of a window."""

    def __init__(self, backend: Backend, keys: bool = False) -> None:
        self.backend: Backend = backend
        self._scanner: FrameScanner = (NativeFrameScanner() if backend == "native"
                                       else PythonFrameScanner(keys))

    def names(self) -> list[str]:
        return self._scanner.names()

    def size(self) -> int:
        """How many qualnames are interned (cheap; names() builds the list)."""
        return self._scanner.size()

    def full(self) -> bool:
        return self._scanner.size() >= tf.MAX_OPS

    def fork(self) -> Kernel:
        """A kernel with its own, empty interner (for a speculative second thread)."""
        return Kernel(self.backend)

    def adopt(self, chunks: list[Chunk], other: Kernel) -> list[Chunk]:
        """Re-express `other`'s op ids in this kernel's interner, as if scanned here."""
        import numpy as np

        mapping = np.array([self._scanner.intern(n.encode("utf-8")) for n in other.names()]
                           + [-1], dtype=np.int32)
        out = []
        for c in chunks:
            op = mapping[c.op]  # -1 stays -1 via the sentinel at the end
            status = c.status.copy()
            status[(c.op >= 0) & (op < 0)] = tf.ROW_OP_TABLE_FULL
            out.append(Chunk(c.offset, c.length, c.t_mono, c.t_wall, op, c.nkeys, status,
                             c.window))
        return out

    def scan(self, win: _Window, pos: int, limit: int | None = None
             ) -> tuple[int, int, Chunk | None]:
        """Rows for frames in win.buf[pos:limit] (limit: a window-relative end)."""
        rows = CHUNK_ROWS if self.backend == "native" else min(CHUNK_ROWS, PYTHON_CHUNK_ROWS)
        stop, pos, r = self._scanner.scan(win.buf, pos, win.base, rows, limit)
        if r is None:
            return stop, pos, None
        return stop, pos, Chunk(r.offset, r.length, r.t_mono, r.t_wall, r.op, r.nkeys,
                                r.status, win, getattr(r, "args", None))


class TallyKernel(Kernel):
    """A native kernel that folds its rows into a summary tally (`NativeTally`) as it scans
    and yields `TallyChunk`s: `trace info` without numpy. A fork has its own tally;
    `adopt` merges a proven second half's tally into this one, as `Kernel.adopt` re-maps
    rows."""

    def __init__(self) -> None:
        super().__init__("native")
        self.tally = NativeTally()

    def fork(self) -> TallyKernel:
        return TallyKernel()

    def adopt(self, chunks: list[Any], other: Kernel) -> list[Any]:
        assert isinstance(other, TallyKernel)
        mapping = [self._scanner.intern(n.encode("utf-8")) for n in other.names()]
        self.tally.merge(other.tally, mapping)
        return chunks

    def scan(self, win: _Window, pos: int, limit: int | None = None
             ) -> tuple[int, int, Any]:
        scanner = self._scanner
        assert isinstance(scanner, NativeFrameScanner)
        stop, pos, r = scanner.scan_tally(win.buf, pos, win.base, CHUNK_ROWS, limit,
                                          self.tally)
        return stop, pos, None if r is None else TallyChunk(r, win)


def make_kernel(backend: Backend, keys: bool = False) -> Kernel:
    """A kernel of the backend; `keys`: its chunks will go to key extraction."""
    return Kernel(backend, keys)


def _frame_decodes(src: Source, offset: int) -> bool:
    """Whether a complete, valid record frame starts at `offset` (used to resync)."""
    head = src.read(offset, 4)
    if len(head) < 4:
        return False
    (n,) = _BE32.unpack(head)
    if offset + 4 + n > src.size:
        return False
    return tf.decode_body(src.read(offset + 4, n)).status != tf.ROW_MALFORMED


def find_next_record(src: Source, start: int, window: int = DEFAULT_WINDOW) -> int | None:
    """Offset of the first valid record frame at or after `start`, found by its signature."""
    sig = RECORD_SIGNATURE
    pos = start + 5  # the signature sits after the 4-byte prefix and the map header
    step = max(window, 1 << 16)
    while pos < src.size:
        end = min(src.size, pos + step)
        with src.window(pos, end) as win:
            rel = pos - win.base
            while True:
                i = win.find(sig, rel)
                if i < 0:
                    break
                cand = win.base + i - 5
                if cand >= start and _frame_decodes(src, cand):
                    return cand
                rel = i + 1
        if end >= src.size:
            return None
        pos = end - len(sig) + 1
    return None


_executor: ThreadPoolExecutor | None = None
_executor_lock = _thread.allocate_lock()  # threading.Lock itself; `import threading` is
# ~1.5 ms of a small trace's start-up, and only a big trace's scan starts a thread


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            from concurrent.futures import ThreadPoolExecutor

            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inferguard-scan")
        return _executor


def _scan_run(kernel: Kernel, win: _Window, pos: int, limit: int | None = None
              ) -> tuple[list[Chunk], int, int]:
    chunks = []
    while True:
        stop, pos, chunk = kernel.scan(win, pos, limit)
        if chunk is not None:
            chunks.append(chunk)
        if stop != tf.STOP_FULL:
            return chunks, stop, pos


def _speculate(win: _Window, rel: int, kernel: Kernel) -> tuple[list[Chunk], int, int]:
    """Scan the rest of a window on two threads, exactly as one thread would.

    The second half starts at a guessed frame boundary (the first record signature past
    the middle). The first half is scanned up to that guess; only if it ends exactly there
    is the guess proven, and the second half's rows (op ids re-mapped) are kept. Otherwise
    they are dropped and the caller carries on sequentially from where the first half
    stopped, so the result never depends on the guess.
    """
    size = len(win.buf)
    mid = rel + (size - rel) // 2
    i = win.find(RECORD_SIGNATURE, mid + 5)
    cand = i - 5 if i >= 0 else -1
    if cand <= rel or cand + 4 > size or cand + 4 + _BE32.unpack_from(win.buf, cand)[0] > size:
        return _scan_run(kernel, win, rel)
    second = kernel.fork()
    future = _pool().submit(_scan_run, second, win, cand)
    chunks, stop, pos = _scan_run(kernel, win, rel, cand)
    chunks_b, stop_b, pos_b = future.result()
    if stop == tf.STOP_END and pos == cand and not second.full():
        return chunks + kernel.adopt(chunks_b, second), stop_b, pos_b
    if stop == tf.STOP_MALFORMED:
        return chunks, stop, pos
    # Not proven (a frame crosses the guess, or the op table filled up): one thread on.
    more, stop, pos = _scan_run(kernel, win, pos)
    return chunks + more, stop, pos


def _explain(body: bytes) -> str:
    d = tf.decode_body(body)
    return f"{d.reason} (body byte {d.at})" if d.at >= 0 else d.reason


def _note_malformed(findings: list[Finding], chunk: Chunk | TallyChunk) -> None:
    """One finding per malformed frame of the chunk, explained while the log keeps them."""
    bad = chunk.malformed_frames()
    for k, (off, flen) in enumerate(bad):
        if isinstance(findings, FindingLog) and len(findings) >= findings.limit:
            findings.omitted += len(bad) - k
            return
        findings.append(Finding(
            "malformed_record", off, f"frame of {flen} bytes is not a decodable record: "
            f"{_explain(chunk.window.body(off, flen))}"))


def scan_frames(src: Source, start: int, kernel: Kernel,
                findings: list[Finding], window: int = DEFAULT_WINDOW,
                threads: int | None = None) -> Iterator[Chunk]:
    """Yield row chunks for every frame from `start` to the end; append integrity findings.
    `threads` (default SCAN_THREADS): 2 splits each window across two threads (native).

    Frames are trusted by their length prefix while it holds. After a malformed body the
    next frame must look like a record, and a length that runs past the end of the file
    must not hide later records; otherwise the walk resynchronises on the record signature
    and reports the bytes it skipped.
    """
    size = src.size
    pos = start
    min_span = window
    split = (SCAN_THREADS if threads is None else threads) > 1 and kernel.backend == "native"
    while pos < size:
        end = min(size, max(pos + min_span, pos - pos % mmap.ALLOCATIONGRANULARITY + window))
        min_span = window
        with src.window(pos, end) as win:
            rel = pos - win.base
            while True:
                if split and len(win.buf) - rel >= PARALLEL_MIN_BYTES:
                    chunks, stop, rel = _speculate(win, rel, kernel)
                    for c in chunks:
                        _note_malformed(findings, c)
                        yield c
                    chunk = chunks[-1] if chunks else None
                else:
                    stop, rel, chunk = kernel.scan(win, rel)
                    if chunk is not None:
                        _note_malformed(findings, chunk)
                        yield chunk
                if stop == tf.STOP_FULL:
                    continue
                if stop == tf.STOP_END:
                    pos = win.base + rel
                    break
                if stop == tf.STOP_MALFORMED:
                    # The frame after the malformed one is not a complete valid record in
                    # this window: decide with the whole file in view.
                    assert chunk is not None
                    off, flen = chunk.last_frame()
                    nxt = off + 4 + flen
                    if nxt == size or _frame_decodes(src, nxt):
                        continue
                    pos = _resync(src, off + 4, findings, "after a malformed frame", window)
                    break
                # STOP_NEED_MORE: the frame at rel does not fit in this window.
                fpos = win.base + rel
                if size - fpos < 4:
                    findings.append(Finding(
                        "truncated_length_prefix", fpos,
                        f"{size - fpos} trailing bytes, too few for a 4-byte length prefix",
                        size - fpos))
                    pos = size
                    break
                (flen,) = _BE32.unpack(src.read(fpos, 4))
                if fpos + 4 + flen <= size:
                    pos = fpos
                    min_span = 4 + flen
                    break
                found = find_next_record(src, fpos + 4, window)
                if found is None:
                    findings.append(Finding(
                        "truncated_frame", fpos,
                        f"frame declares {flen} bytes but only {size - fpos - 4} remain "
                        "(last frame cut short)", size - fpos))
                    pos = size
                else:
                    findings.append(Finding(
                        "bad_length_prefix", fpos,
                        f"length prefix declares {flen} bytes, past the end of the file; "
                        f"resynchronised at offset {found} ({found - fpos} bytes skipped)",
                        found - fpos))
                    pos = found
                break


def _resync(src: Source, start: int, findings: list[Finding], why: str, window: int) -> int:
    found = find_next_record(src, start, window)
    target = src.size if found is None else found
    findings.append(Finding(
        "resynchronised", start,
        f"frame boundary lost {why}; "
        + (f"next record found at offset {found}" if found is not None
           else "no further record found")
        + f" ({target - start} bytes skipped)", target - start))
    return target
