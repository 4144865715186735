"""What a packet may hold of an input: the bytes to write for its copy, decided here (the
evidence layer knows what each reader accepted) and written by `_packet.py`.

- a capture directory: only the captures the reader accepts (the live allow-list), only
  regular files (never a symlink), each body within `BODY_LIMIT`, every JSON body and
  every text body redacted (`_redact`), `/env` filtered; nothing else of the directory;
- a log or launch file: copied line by line with every line redacted, within the reader's
  cap;
- any other file: its bytes, within the reader's cap;
- a file the reader refused (not a regular file, over its cap, unreadable): nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from inferguard._files import open_regular_fd
from inferguard.evidence._capture import BODY_LIMIT, HEADERS_LIMIT, capture_names, read_capped
from inferguard.evidence._controller import accepted_captures as controller_accepted
from inferguard.evidence._controller import detect_server, filtered_capture
from inferguard.evidence._engine_http import _CAPTURE_NAMES as ENGINE_CAPTURES
from inferguard.evidence._http import accepted_captures as http_accepted
from inferguard.evidence._redact import Tally, filter_env, redact, redact_bytes, redact_lines

if TYPE_CHECKING:
    pass

CAPTURE_KINDS = ("http", "controller", "engine_http")
BLOCK = 1 << 20  # bytes read at a time for a redacted copy
REDACTED_COPY_KINDS = ("log", "launch_config")


class CaptureCopy(NamedTuple):
    """The files to write for a capture directory's copy, what was left out, and why."""

    files: list[tuple[str, bytes]]
    left_out: list[str]
    redacted: dict[str, int]


def capture_copy(kind: str, directory: str | os.PathLike[str]) -> CaptureCopy:
    """The copy of a capture directory a packet may hold (see the module docstring)."""
    from pathlib import Path

    d = Path(directory)
    found = capture_names(d)
    if not isinstance(found, dict):
        return CaptureCopy([], [], {})
    if kind == "http":
        accepted = set(http_accepted(found)[0])
    elif kind == "controller":
        accepted = set(controller_accepted(detect_server(found)))
    else:
        accepted = set(ENGINE_CAPTURES)
    tally = Tally()
    files: list[tuple[str, bytes]] = []
    left_out: list[str] = []
    for entry in sorted(os.listdir(d)):
        if entry not in found.values() and not entry.endswith(".headers"):
            left_out.append(entry)
    for cap, fname in sorted(found.items()):
        if cap not in accepted:
            left_out.append(fname)
            continue
        raw, why = read_capped(d / fname, BODY_LIMIT, follow=False)
        if raw is None or len(raw) > BODY_LIMIT:
            left_out.append(f"{fname} ({why or f'over {BODY_LIMIT} bytes'})")
            continue
        files.append(_body(fname, raw, tally))
        hname = f"GET_{cap}.headers"
        hraw, _ = read_capped(d / hname, HEADERS_LIMIT, follow=False)
        if hraw is not None:
            files.append((hname, redact_bytes(hraw[:HEADERS_LIMIT], tally)))
    return CaptureCopy(files, sorted(set(left_out)), tally.as_dict())


def _body(fname: str, raw: bytes, tally: Tally) -> tuple[str, bytes]:
    """One accepted body as the packet keeps it: redacted (a changed body is written as
    `<name>.filtered.json`, which the readers read like the body)."""
    import json

    out = fname if fname.endswith(".filtered.json") else f"{fname}.filtered.json"
    if fname.startswith("GET_env.body"):
        try:
            env = json.loads(raw.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            env = {}
        kept, dropped = filter_env(env, tally)
        return out, json.dumps({"_inferguard_note": f"{dropped} keys dropped, secrets redacted",
                                **kept}, indent=1).encode()
    safe = filtered_capture(fname, raw)
    if safe is not None:
        return safe
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        text = redact_bytes(raw, tally)
        return (fname, raw) if text == raw else (out, text)
    clean = redact(doc, tally=tally)
    return (fname, raw) if clean == doc else (out, json.dumps(clean, sort_keys=True).encode())


def redacted_lines(path: str | os.PathLike[str], cap: int, tally: Tally
                   ) -> Iterator[tuple[bytes, bytes]]:
    """(original bytes, redacted bytes) of a regular text file, at most `cap` bytes, in
    blocks of whole lines (the last may end at the cap), each line redacted alone
    (`redact_lines`); raises OSError/ValueError when the file is not one a reader would
    accept."""
    with os.fdopen(open_regular_fd(path), "rb") as f:
        left = cap
        part = b""
        while left > 0:
            block = f.read(min(left, BLOCK))
            if not block:
                break
            left -= len(block)
            cut = block.rfind(b"\n") + 1
            if not cut:
                part += block
                continue
            whole, part = part + block[:cut], block[cut:]
            yield whole, redact_lines(whole, tally)
        if part:
            yield part, redact_lines(part, tally)
