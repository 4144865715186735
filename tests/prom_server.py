"""A real Prometheus server for the tests (Debian's `prometheus` binary, run directly: never
the packaged service): a generated config, a temp TSDB, 127.0.0.1 on a free port, readiness
polled on /-/ready, stopped by PID, its log printed when a test fails.

`PROMETHEUS_BIN` overrides the binary. Absent binary: the tests skip with the reason, except
when `INFERGUARD_REQUIRE_PROMETHEUS=1` (set by .ci/run), where its absence is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest


def prometheus_binary() -> str | None:
    """The binary to run, or None (the caller skips, or fails in CI)."""
    path = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
    if path is None and os.environ.get("INFERGUARD_REQUIRE_PROMETHEUS") == "1":
        pytest.fail("INFERGUARD_REQUIRE_PROMETHEUS=1 but no prometheus binary "
                    "(apt-get install prometheus; .ci/run does this)")
    return path


def require_prometheus() -> str:
    path = prometheus_binary()
    if path is None:
        pytest.skip("no prometheus binary (apt-get install prometheus, or set PROMETHEUS_BIN)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _yaml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid YAML flow scalar


class PromTargetSpec:
    """One scrape target: a job, an explicit instance label, address and metrics path."""

    def __init__(self, job: str, instance: str, address: str, path: str = "/metrics",
                 labels: dict[str, str] | None = None) -> None:
        self.job, self.instance, self.address, self.path = job, instance, address, path
        self.labels = labels or {}


def config_text(targets: list[PromTargetSpec], interval: str = "1s") -> str:
    """A scrape config: one scrape job per job name, one static target per spec (the
    instance label and metrics path set per target)."""
    jobs: dict[str, list[PromTargetSpec]] = {}
    for t in targets:
        jobs.setdefault(t.job, []).append(t)
    out = ["global:", f"  scrape_interval: {interval}", f"  scrape_timeout: {interval}",
           "  evaluation_interval: 1m", "scrape_configs:"]
    for job, specs in jobs.items():
        out += [f"  - job_name: {_yaml_str(job)}", "    static_configs:"]
        for t in specs:
            out.append(f"      - targets: [{_yaml_str(t.address)}]")
            out.append("        labels:")
            labels = {"instance": t.instance, "__metrics_path__": t.path, **t.labels}
            out += [f"          {k}: {_yaml_str(v)}" for k, v in labels.items()]
    return "\n".join(out) + "\n"


class PrometheusServer:
    """Start with `start()`, stop with `stop()` (by PID); `log()` is its stderr so far."""

    def __init__(self, binary: str, targets: list[PromTargetSpec], interval: str = "1s"
                 ) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="inferguard-prom-"))
        (self.dir / "prometheus.yml").write_text(config_text(targets, interval))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = (self.dir / "prometheus.log").open("wb")

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir,
            stdin=subprocess.DEVNULL,
            # Not ours under test: no sanitizer runtimes preloaded into it (fuzz/sanitizer-tests).
            env={k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n"
                                   + self.log())
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("prometheus not ready in time:\n" + self.log())

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return json.loads(r.read())["data"]

    def wait_scraped(self, n_targets: int, after: float | None = None,
                     timeout: float = 30.0) -> None:
        """Until every one of `n_targets` active targets has been scraped (after `after`)."""
        from datetime import datetime

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ts = self.api("/api/v1/targets?state=active")["activeTargets"]
            done = 0
            for t in ts:
                last = t.get("lastScrape", "")
                if last.startswith("0001-"):
                    continue
                when = datetime.fromisoformat(last[:26].rstrip("Z") + "+00:00"
                                              if "." in last else last.replace("Z", "+00:00"))
                if after is None or when.timestamp() > after:
                    done += 1
            if len(ts) >= n_targets and done >= n_targets:
                return
            time.sleep(0.2)
        raise RuntimeError("targets not scraped in time:\n" + json.dumps(ts, indent=1)
                           + "\n" + self.log())

    def log(self) -> str:
        self._log.flush()
        return (self.dir / "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
