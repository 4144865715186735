"""The one HTTP client: GET only the paths it is given (the callers pass their allow-lists),
no redirects, a body cap, and bounded waits; a failed request is an `Answer` with an error,
never an exception.

Waits are bounded twice: every request has a deadline on the whole exchange (connect,
headers and body together — a server dribbling one byte a second cannot stretch it), and
a collection may pass a `Deadline` shared by all its requests; once it has passed, the
remaining paths are answered "not requested" without touching the network. Bodies go into a
bounded buffer (at most `limit` + 1 bytes, never a quadratic `bytes +=`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from inferguard.evidence._capture import BODY_LIMIT, Answer, http_date
from inferguard.evidence._redact import redact_text, redact_url


class Deadline:
    """A point in monotonic time shared by a whole collection (None: no overall limit)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def passed(self) -> bool:
        left = self.left()
        return left is not None and left <= 0


class _Clock:
    """The deadline of the request in flight, read by every socket operation."""

    at: float = float("inf")

    def remaining(self, timeout: float | None) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            import httpcore
            raise httpcore.ReadTimeout("request deadline passed")
        return left if timeout is None else min(timeout, left)


def _transport(clock: _Clock) -> Any:
    """An httpx transport whose every socket read/write/connect is bounded by the clock's
    deadline (httpx's own timeouts are per operation, not per exchange)."""
    import httpcore
    import httpx

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return bytes(self.inner.read(max_bytes, clock.remaining(timeout)))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.inner.write(buffer, clock.remaining(timeout))

        def close(self) -> None:
            self.inner.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                      timeout: float | None = None) -> Any:
            return Stream(self.inner.start_tls(ssl_context, server_hostname,
                                               clock.remaining(timeout)))

        def get_extra_info(self, info: str) -> Any:
            return self.inner.get_extra_info(info)

    class Backend(httpcore.SyncBackend):
        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None,
                        socket_options: Any = None) -> Any:
            return Stream(super().connect_tcp(host, port, clock.remaining(timeout),
                                              local_address, socket_options))

    t = httpx.HTTPTransport()
    t._pool = httpcore.ConnectionPool(network_backend=Backend())  # the one seam httpx offers
    return t


def fetch(base_url: str, paths: Iterable[str], *, timeout: float = 5.0,
          transport: Any = None, limit: int = BODY_LIMIT,
          deadline: Deadline | None = None) -> list[Answer]:
    """GET each path under base_url, in order, each within `timeout` seconds for the whole
    exchange and all within `deadline`; read at most `limit` + 1 bytes of a body (more
    means too large). Never raises for a failed request. The URLs recorded in the answers
    carry no userinfo (credentials in a base URL are used, never written down)."""
    import httpx

    base = base_url.rstrip("/")
    shown = redact_url(base)
    out: list[Answer] = []
    clock = _Clock()
    own = transport is None
    tr = _transport(clock) if own else transport
    with httpx.Client(timeout=timeout, transport=tr, follow_redirects=False,
                      trust_env=False) as client:
        for path in paths:
            url = base + path
            left = deadline.left() if deadline is not None else None
            if left is not None and left <= 0:
                out.append(Answer(path, shown + path, None, None, None, b"", 0.0,
                                  f"not requested: the collection deadline "
                                  f"({deadline.seconds:g} s) had passed"
                                  if deadline is not None else "not requested"))
                continue
            budget = timeout if left is None else min(timeout, left)
            t0 = time.perf_counter()
            clock.at = time.monotonic() + budget
            try:
                with client.stream("GET", url) as resp:
                    raw = bytearray()
                    for part in resp.iter_bytes():
                        raw += part[:limit + 1 - len(raw)]
                        if len(raw) > limit:
                            break
                        if time.monotonic() > clock.at:  # (also for a given transport)
                            raise httpx.ReadTimeout("request deadline passed")
                    out.append(Answer(path, shown + path, resp.status_code,
                                      resp.headers.get("content-type"),
                                      http_date(resp.headers.get("date")), bytes(raw),
                                      (time.perf_counter() - t0) * 1e3))
            except (httpx.HTTPError, OSError) as exc:
                elapsed = time.perf_counter() - t0
                what = (f"{type(exc).__name__}: timed out after {elapsed:.1f} s (deadline "
                        f"{budget:g} s for the whole exchange)"
                        if isinstance(exc, httpx.TimeoutException)
                        else f"{type(exc).__name__}: {redact_text(str(exc))}")
                out.append(Answer(path, shown + path, None, None, None, b"", elapsed * 1e3,
                                  what))
            finally:
                clock.at = float("inf")
    return out
