"""`watch` against a local HTTP server on 127.0.0.1 that serves a growing LMCache scrape and
then goes away mid-run: every round is kept (the failures as evidence), the last-window rate
equals the delta of what was served, the packet written after each round judges the same,
and only GETs were sent."""

from __future__ import annotations

from pathlib import Path

import pytest

import inferguard as ig
from inferguard.cli._main import main
from inferguard.collect._watch import WatchEndpoints
from inferguard.verdict._watch import Watcher

from .http_fake import RecordingServer, Reply

SERVED: list[tuple[float, float]] = [(10, 100), (70, 180), (170, 300), (400, 700)]


def scrape_text(hit: float, req: float) -> bytes:
    return ("# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1000.0\n"
            "# TYPE lmcache_mp_lookup_requested_tokens_total counter\n"
            f'lmcache_mp_lookup_requested_tokens_total{{model_name="m"}} {req}\n'
            "# TYPE lmcache_mp_lookup_hit_tokens_total counter\n"
            f'lmcache_mp_lookup_hit_tokens_total{{model_name="m"}} {hit}\n').encode()


class Growing:
    """Answers /metrics with the next SERVED pair on each GET."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, path: str) -> Reply:
        if path != "/metrics":
            return Reply(404, b"")
        hit, req = SERVED[min(self.n, len(SERVED) - 1)]
        self.n += 1
        return Reply(200, scrape_text(hit, req), "text/plain; version=0.0.4")


def test_endpoint_going_away_mid_run_is_recorded(tmp_path: Path) -> None:
    answer = Growing()
    out = tmp_path / "pk"
    with RecordingServer(answer) as srv:
        url = srv.url + "/metrics"
        naps: list[float] = []

        def sleep(s: float) -> None:
            naps.append(s)
            if len(naps) == 3:  # after the third round the server disappears
                srv.__exit__(None, None, None)

        w = Watcher(WatchEndpoints(lmcache_metrics=[url]), interval=0.01, rounds=5,
                    timeout=1.0, packet_dir=str(out), sleep=sleep)
        ticks = list(w.run())
        requests = list(srv.requests)
    assert [t.endpoints[0].up for t in ticks] == [True, True, True, False, False]
    assert any("went away" in c for c in ticks[3].changes)
    assert ticks[3].endpoints[0].detail and "scrape failed" in ticks[3].endpoints[0].detail
    # Round 2's window is scrapes 1 → 2 (what the server handed out, delta by hand).
    r2 = next(r for r in ticks[2].rates if r.name == "lmcache_mp_lookup_hit_rate")
    assert (r2.numerator, r2.denominator) == (SERVED[2][0] - SERVED[1][0],
                                             SERVED[2][1] - SERVED[1][1])
    assert r2.window.seconds is not None and r2.window.seconds >= 0
    r0 = next(r for r in ticks[0].rates if r.name == "lmcache_mp_lookup_hit_rate")
    assert r0.window.kind == "since_process_start" and r0.value == SERVED[0][0] / SERVED[0][1]
    # Whole run: first → last answered scrape.
    run = next(r for r in w.run_rates() if r.name == "lmcache_mp_lookup_hit_rate")
    assert (run.numerator, run.denominator) == (SERVED[2][0] - SERVED[0][0],
                                               SERVED[2][1] - SERVED[0][1])
    assert all(m == "GET" for m, _ in requests) and len(requests) == 3
    # Nothing lost: 5 scrapes in the packet (2 failed ones as malformed evidence), and the
    # packet judges to the same run rates.
    packet = ig.Packet.read(out)
    kinds = [e.status for e in packet.evidence if e.kind == "lmcache_metrics"]
    assert kinds == ["ok", "ok", "ok", "malformed", "malformed"]
    again = next(r for r in ig.compat(packet).rates if r.name == "lmcache_mp_lookup_hit_rate")
    assert (again.numerator, again.denominator) == (run.numerator, run.denominator)


def test_cli_watch_bounded_and_ctrl_c(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(Growing()) as srv:
        assert main(["watch", "--lmcache-metrics-url", srv.url + "/metrics", "--rounds", "2",
                     "--interval", "0.01"]) == 0
        text = capsys.readouterr().out
        assert "round 0:" in text and "round 1:" in text and "lmcache_mp_lookup_hit_rate" in text

        def interrupt(_s: float) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr("time.sleep", interrupt)
        out = tmp_path / "pk"
        assert main(["watch", "--lmcache-metrics-url", srv.url + "/metrics", "--interval",
                     "5", "--output-dir", str(out)]) == 0
        text = capsys.readouterr().out
        assert "stopped (Ctrl-C)" in text and (out / "packet.json").exists()
    assert main(["watch"]) == 2
