"""The one HTTP client: GET only the paths it is given (the callers pass their allow-lists),
with a timeout, no redirects and a body cap; a failed request is an `Answer` with an error,
never an exception."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from inferguard.evidence._capture import BODY_LIMIT, Answer, http_date


def fetch(base_url: str, paths: Iterable[str], *, timeout: float = 5.0,
          transport: Any = None, limit: int = BODY_LIMIT) -> list[Answer]:
    """GET each path under base_url, in order; read at most `limit` + 1 bytes of a body
    (more means too large). Never raises for a failed request."""
    import httpx

    base = base_url.rstrip("/")
    out: list[Answer] = []
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
        for path in paths:
            url = base + path
            t0 = time.perf_counter()
            try:
                with client.stream("GET", url) as resp:
                    raw = b""
                    for part in resp.iter_bytes():
                        raw += part
                        if len(raw) > limit:
                            break
                    out.append(Answer(path, url, resp.status_code,
                                      resp.headers.get("content-type"),
                                      http_date(resp.headers.get("date")), raw,
                                      (time.perf_counter() - t0) * 1e3))
            except httpx.HTTPError as exc:
                out.append(Answer(path, url, None, None, None, b"",
                                  (time.perf_counter() - t0) * 1e3,
                                  f"{type(exc).__name__}: {exc}"))
    return out
