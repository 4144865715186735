"""HTTP answers as data, the one shape both the MP server reader (`_http`) and the
control-plane reader (`_controller`) judge: an `Answer` per GET, typed JSON getters, and
`read_dir()` for the `GET_<name>.body` / `.headers` files lab harnesses save. Live answers
come from `inferguard.collect` (the only layer that touches the network), in the same shape.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from inferguard import _lazy
from inferguard._files import NotRegularFile, open_regular_fd
from inferguard.evidence._model import Problem

if TYPE_CHECKING:
    from pathlib import Path

BODY_LIMIT = 1 << 20  # larger bodies are truncated and flagged
HEADERS_LIMIT = 64 << 10  # a captured headers file is read up to this many bytes
_CAPTURE = _lazy.pattern(r"^GET_(.+?)\.body(\.filtered\.json)?$")


def read_capped(path: str | os.PathLike[str], cap: int, *, follow: bool = True
                ) -> tuple[bytes | None, str | None]:
    """At most `cap` + 1 bytes of a regular file (more means: over the cap), or why not.

    Devices, FIFOs and sockets are refused before a byte is read (`inferguard._files`).
    With `follow=False` a symlink is refused too (capture directories: nothing outside)."""
    try:
        fd = open_regular_fd(path, follow=follow)
    except NotRegularFile as exc:
        return None, exc.strerror
    except OSError as exc:
        if not follow and os.path.islink(path):
            return None, "a symlink: not followed"
        return None, f"cannot read file: {exc.strerror or exc}"
    try:
        chunks: list[bytes] = []
        left = cap + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks), None
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    finally:
        os.close(fd)


class Answer(NamedTuple):
    """One GET: where, what came back (raw body, at most BODY_LIMIT + 1 bytes), or why not."""

    path: str
    url: str | None
    status: int | None
    content_type: str | None
    date: float | None
    raw: bytes
    elapsed_ms: float | None = None
    error: str | None = None


def http_date(value: str | None) -> float | None:
    """Seconds since the epoch from an HTTP `date:` header, or None."""
    if not value:
        return None
    try:
        import email.utils  # only for an HTTP date (costs ~5 ms of start-up)

        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def json_at(d: Any, *path: str) -> Any:
    """The value at a key path of a parsed JSON answer, or None where the shape differs."""
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def as_int(v: Any) -> int | None:
    """An int (never a bool) from an answer, else None."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def as_num(v: Any, *, finite: bool = False) -> float | None:
    """A number (never a bool) from an answer as float, else None; `finite` drops NaN/inf."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    return None if finite and not math.isfinite(v) else float(v)


def as_bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def as_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def parse_json(raw: bytes) -> tuple[Any, str, bool]:
    """(parsed JSON or None, decoded text, truncated) of a body as kept."""
    import json

    truncated = len(raw) > BODY_LIMIT
    text = raw[:BODY_LIMIT].decode("utf-8", "replace")
    parsed: Any = None
    if not truncated:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
    return parsed, text, truncated


def capture_names(d: Path) -> dict[str, str] | Problem:
    """{capture name: body file name} of a capture directory, or the problem listing it.
    Only regular files count: a symlink is never followed (it could point out of the
    directory, at `/dev/zero` or a secret), a FIFO or device never opened."""
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError as exc:
        return Problem(f"cannot list directory: {exc.strerror or exc}")
    return {m.group(1): e.name for e in entries
            if (m := _CAPTURE.match(e.name)) and e.is_file(follow_symlinks=False)}


def not_followed(d: Path) -> list[Problem]:
    """Capture-looking entries of a directory that are not regular files (symlinks, FIFOs,
    devices): each a problem, never read."""
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError:
        return []
    return [Problem(f"{e.name}: {'a symlink' if e.is_symlink() else 'not a regular file'}; "
                    "not read (captures are read only from regular files inside the "
                    "directory)", where=e.name)
            for e in entries if e.name.startswith("GET_") and not e.is_file(follow_symlinks=False)]


def read_dir(d: Path, found: Mapping[str, str], routes: Mapping[str, str]
             ) -> tuple[list[Answer], list[Problem], bytes]:
    """Read the captures whose name maps to a route: (answers, problems, digest input).

    `found` is `capture_names(d)`; `routes` maps capture names to route paths. Status and
    content type come from `GET_<name>.headers` (first line and headers), the date too."""
    answers: list[Answer] = []
    problems: list[Problem] = not_followed(d)
    digest: list[bytes] = []
    for cap, fname in sorted(found.items()):
        route = routes.get(cap)
        if route is None:
            problems.append(Problem(f"unknown capture {fname!r}", where=fname))
            continue
        raw, why = read_capped(d / fname, BODY_LIMIT, follow=False)
        if raw is None:
            problems.append(Problem(f"{fname}: {why}", where=fname))
            continue
        digest.append(fname.encode() + b"\0" + raw)
        status = ctype = None
        date: float | None = None
        hraw, _ = read_capped(d / f"GET_{cap}.headers", HEADERS_LIMIT, follow=False)
        if hraw is not None:
            lines = hraw[:HEADERS_LIMIT].decode("utf-8", "replace").splitlines()
            sm = re.match(r"^HTTP/\S+\s+(\d{3})", lines[0]) if lines else None
            status = int(sm.group(1)) if sm else None
            for line in lines[1:]:
                k, _, v = line.partition(":")
                key = k.strip().lower()
                if key == "content-type":
                    ctype = v.strip()
                elif key == "date":
                    date = http_date(v.strip())
        answers.append(Answer(route, None, status, ctype, date, raw))
    return answers, problems, b"".join(digest)
