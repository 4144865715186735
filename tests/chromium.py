"""Headless Chromium for tests, driven over the DevTools protocol with a tiny stdlib
websocket client (no new dependency).

`Browser` starts Debian's `chromium` on 127.0.0.1 with a free DevTools port (port 0; the
browser writes the one it chose to `DevToolsActivePort` in its profile), a throwaway
profile, and everything that would reach the network by itself switched off. `load(url)`
navigates one page and returns what it saw: console messages, uncaught exceptions, log
entries, every network request, the DOM, the text and a screenshot on request. Every wait
is bounded; the browser is stopped by its PID (terminate, then kill).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED_ENV = "INFERGUARD_REQUIRE_CHROMIUM"
"""Set to 1 (by .ci/run): a missing browser fails the tests instead of skipping them."""

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--no-default-browser-check", "--disable-features=Translate,MediaRouter",
         "--remote-allow-origins=*", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Socket:
    """Just enough RFC 6455 for DevTools: client text frames (masked), server frames read
    whole (fragments joined), ping answered, every read bounded by the socket timeout."""

    def __init__(self, url: str, timeout: float) -> None:
        assert url.startswith("ws://"), url
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        assert host == "127.0.0.1", url  # tests talk only to 127.0.0.1
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed during the websocket handshake")
            head += chunk
        status, _, rest = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {status[:200]!r}")
        self.buf = rest

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("DevTools closed the websocket")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> str:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else b""
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            op = b0 & 0x0F
            if op == 0x9:  # ping: answer, keep reading
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                continue
            if op == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts).decode()

    def close(self) -> None:
        self.sock.close()


@dataclass
class PageLoad:
    """What one navigation showed."""

    url: str
    console: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    log_entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dom: str = ""
    text: str = ""
    screenshot: bytes | None = None

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors, as text."""
        out = [json.dumps(c)[:2000] for c in self.console if c.get("type") in ("error", "assert")]
        out += [json.dumps(e)[:2000] for e in self.exceptions]
        out += [json.dumps(e)[:2000] for e in self.log_entries if e.get("level") == "error"]
        return out


class Browser:
    def __init__(self, timeout: float = 30.0) -> None:
        exe = find_chromium()
        if exe is None:
            raise FileNotFoundError("chromium not found on PATH")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="inferguard-chromium-")
        self.log = open(Path(self.profile) / "stderr.log", "w+b")  # noqa: SIM115
        # The browser is not the code under test: no sanitizer runtime preloaded into it
        # (fuzz/sanitizer-tests preloads ASan into the test process).
        env = {k: v for k, v in os.environ.items()
               if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], stdout=subprocess.DEVNULL,
                                     stderr=self.log, start_new_session=True, env=env)
        self.ws: _Socket | None = None
        self._id = 0
        try:
            self.ws = _Socket(self._page_ws(), timeout)
        except BaseException:
            self.close()
            raise

    def _page_ws(self) -> str:
        active = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}: "
                                   f"{self.stderr()[-2000:]}")
            if active.exists():
                lines = active.read_text().split("\n")
                if len(lines) >= 2 and lines[0].strip():
                    port = int(lines[0])
                    import urllib.request

                    for _ in range(50):
                        try:
                            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                                        timeout=5) as r:
                                targets = json.loads(r.read())
                        except OSError:  # not listening yet
                            targets = []
                        pages = [t for t in targets if t.get("type") == "page"]
                        if pages:
                            url: str = pages[0]["webSocketDebuggerUrl"]
                            return url
                        time.sleep(0.1)
            time.sleep(0.05)
        raise TimeoutError(f"chromium gave no DevTools port in {self.timeout} s: "
                           f"{self.stderr()[-2000:]}")

    def stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def call(self, method: str, params: dict[str, Any] | None = None,
             events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Send one command and wait (bounded) for its answer; events seen meanwhile go to
        `events`."""
        assert self.ws is not None
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if events is not None and "method" in msg:
                events.append(msg)
        raise TimeoutError(f"{method}: no answer in {self.timeout} s")

    def _eval(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        return r.get("result", {}).get("value")

    def load(self, url: str, *, screenshot: bool = False, settle_s: float = 0.3) -> PageLoad:
        events: list[dict[str, Any]] = []
        for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.call(m, events=events)
        events.clear()
        self.call("Page.navigate", {"url": url}, events=events)
        deadline = time.monotonic() + self.timeout
        assert self.ws is not None
        while not any(e["method"] == "Page.loadEventFired" for e in events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: no load event in {self.timeout} s")
            events.append(json.loads(self.ws.recv()))
        # Anything the page does right after load (it should do nothing) is seen too.
        end = time.monotonic() + settle_s
        self.ws.sock.settimeout(0.1)
        try:
            while time.monotonic() < end:
                with contextlib.suppress(TimeoutError):
                    events.append(json.loads(self.ws.recv()))
        finally:
            self.ws.sock.settimeout(self.timeout)
        out = PageLoad(url)
        for e in events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled":
                out.console.append({"type": p.get("type"),
                                    "args": [a.get("value") for a in p.get("args", [])]})
            elif m == "Runtime.exceptionThrown":
                out.exceptions.append(p.get("exceptionDetails", {}))
            elif m == "Log.entryAdded":
                out.log_entries.append(p.get("entry", {}))
            elif m == "Network.requestWillBeSent":
                out.requests.append(p.get("request", {}).get("url", ""))
            elif m == "Network.loadingFailed":
                out.failed.append(p.get("errorText", ""))
        out.dom = self._eval("document.documentElement.outerHTML") or ""
        out.text = self._eval("document.body.innerText") or ""
        if screenshot:
            shot = self.call("Page.captureScreenshot",
                             {"format": "png", "captureBeyondViewport": True})
            out.screenshot = base64.b64decode(shot["data"])
        return out

    def evaluate(self, expr: str) -> Any:
        return self._eval(expr)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # Its helpers (zygote, renderers) share the process group we started it in.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
