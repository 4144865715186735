"""`Watcher`: the live form of rates — poll the endpoints every `interval` seconds for a
bounded number of rounds or time, and after each round say what the endpoints answered,
the rates over the last window (the last two readable scrapes of each target; the first
round gives "since process start"), and what changed (an endpoint went away or came back, a
rate appeared). Every scrape, failed ones included, is kept (`taken`) and, when a packet
directory is given, written after each round, so the run can be judged afterwards with
`lmcache-compat --packet` or `compare`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from inferguard._packet import Packet, PacketSettings
from inferguard.collect._watch import Taken, WatchEndpoints, scrape_round, write_watch_packet
from inferguard.evidence._model import Evidence
from inferguard.judge._facts import readable
from inferguard.judge._rates import Rate, packet_rates


class EndpointStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    """What one endpoint did in one round: answered (`up`) or not, and why not."""

    endpoint: str
    kind: str
    up: bool
    detail: str | None = None


WATCH_SCHEMA = "inferguard.watch_round/1"
"""The `schema` of each `watch --json` line."""


class WatchTick(msgspec.Struct, frozen=True, omit_defaults=True):
    """One round: when (seconds since the epoch), each endpoint, the last-window rates and
    the changes since the round before."""

    round: int
    at: float
    endpoints: list[EndpointStatus]
    rates: list[Rate]
    changes: list[str] = msgspec.field(default_factory=list)
    packet_dir: str | None = None
    schema: str = WATCH_SCHEMA


def _status(t: Taken) -> EndpointStatus:
    ev = t.evidence
    up = ev.status in ("ok", "partial")
    healthy = getattr(ev.facts, "healthy", None)
    detail = None if up else "; ".join(p.message for p in ev.problems[:1]) or ev.status
    if up and healthy is False:
        detail = "answered, not healthy"
    return EndpointStatus(t.endpoint, ev.kind, up, detail)


class Watcher:
    """Runs the rounds; `taken` holds every scrape of the run, in order."""

    def __init__(self, endpoints: WatchEndpoints, *, interval: float = 10.0,
                 rounds: int | None = None, duration: float | None = None,
                 timeout: float = 5.0, packet_dir: str | None = None,
                 settings: PacketSettings | None = None, transport: Any = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] | None = None) -> None:
        if endpoints.count() == 0:
            raise ValueError("watch: give at least one endpoint")
        if interval <= 0 or timeout <= 0:
            raise ValueError("watch: --interval and --timeout must be > 0")
        self.endpoints, self.interval, self.rounds = endpoints, interval, rounds
        self.duration, self.timeout, self.packet_dir = duration, timeout, packet_dir
        self.settings = settings or PacketSettings()
        self.transport, self.clock = transport, clock
        self.sleep: Callable[[float], None] = sleep or (lambda s: time.sleep(s))
        self.taken: list[Taken] = []

    def run(self) -> Iterator[WatchTick]:
        """Yield one tick per round until `rounds` or `duration` is reached."""
        start = self.clock()
        prev: dict[str, EndpointStatus] = {}
        seen_rates: set[tuple[str, str]] = set()
        n = 0
        while True:
            t0 = self.clock()
            got = scrape_round(self.endpoints, n, timeout=self.timeout,
                               transport=self.transport, clock=self.clock)
            self.taken += got
            statuses = [_status(t) for t in got]
            changes = []
            for s in statuses:
                old = prev.get(s.endpoint)
                if old is None:
                    changes.append(f"{s.endpoint}: {'up' if s.up else 'down'}"
                                   + (f" ({s.detail})" if s.detail else ""))
                elif old.up != s.up:
                    changes.append(f"{s.endpoint}: went {'up' if s.up else 'away'}"
                                   + (f" ({s.detail})" if s.detail else ""))
                prev[s.endpoint] = s
            rates = self.window_rates()
            for r in rates:
                if (r.target, r.name) not in seen_rates:
                    seen_rates.add((r.target, r.name))
                    if n > 0:
                        changes.append(f"{r.target}: {r.name} appeared")
            written = None
            if self.packet_dir is not None:
                written = str(write_watch_packet(self.packet_dir, self.taken,
                                                 settings=self.settings))
            yield WatchTick(n, t0, statuses, rates, changes, written)
            n += 1
            now = self.clock()
            if self.rounds is not None and n >= self.rounds:
                return
            if self.duration is not None and now + self.interval - start > self.duration:
                return
            self.sleep(max(0.0, self.interval - (now - t0)))

    def _scrapes(self) -> list[Evidence]:
        return [t.evidence for t in self.taken
                if t.evidence.kind in ("lmcache_metrics", "engine_metrics")]

    def window_rates(self) -> list[Rate]:
        """Rates over the last window: the last two readable scrapes of each target."""
        packet = Packet(settings=self.settings, evidence=self._scrapes())
        last: dict[str, list[Evidence]] = {}
        for ev in readable(packet, "lmcache_metrics", "engine_metrics"):
            last.setdefault(ev.source.url or ev.kind, []).append(ev)
        window = [e for evs in last.values() for e in evs[-2:]]
        return packet_rates(Packet(settings=self.settings, evidence=window))

    def run_rates(self) -> list[Rate]:
        """Rates over the whole run (first to last readable scrape of each target)."""
        return packet_rates(Packet(settings=self.settings, evidence=self._scrapes()))

    def written(self) -> Path | None:
        return None if self.packet_dir is None else Path(self.packet_dir)
