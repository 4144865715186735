"""One recording HTTP server on 127.0.0.1 for the tests: every request is recorded, GETs are
answered by the test's `answer(path)`, anything else is 405 (a state-changing call is thus
both refused and visible in `requests`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple, TypeVar


class Reply(NamedTuple):
    """An answer: status, body, content type (None: no header), Date (None: now)."""

    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    date: str | None = None


Answer = Callable[[str], Reply]
S = TypeVar("S", bound="RecordingServer")


class RecordingServer:
    """Serves `answer` on a free port of 127.0.0.1; a context manager that stops it."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append((self.command, self.path))
                self._send(answer(self.path))

            def _other(self) -> None:
                outer.requests.append((self.command, self.path))
                self._send(Reply(405, b"no", "text/plain"))

            do_POST = do_PUT = do_DELETE = do_PATCH = _other

            def _send(self, r: Reply) -> None:
                self.send_response_only(r.status)
                if r.content_type:
                    self.send_header("content-type", r.content_type)
                self.send_header("content-length", str(len(r.body)))
                self.send_header("date", r.date or self.date_time_string())
                self.end_headers()
                self.wfile.write(r.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self: S) -> S:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
