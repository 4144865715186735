"""The collection side of `inferguard watch`: one round of read-only GETs over the watched
endpoints (LMCache and engine `/metrics`, vLLM `/health` + `/version`, the MP server's
allow-listed HTTP routes), and writing the scrapes taken so far as a packet.

Each scrape is kept with its bytes under a per-round name (`<url>#<round>`), so a series of
scrapes of one URL becomes a series of inputs of one packet; an endpoint that does not answer
is an evidence with the failure (status `malformed`, the error as its problem), never an
exception and never dropped."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from inferguard._packet import Packet, PacketInput, PacketSettings
from inferguard.collect._live import collect_engine_http, collect_http, scrape_metrics
from inferguard.evidence._model import Evidence
from inferguard.evidence._redact import redact_url


class WatchEndpoints(msgspec.Struct, frozen=True, omit_defaults=True):
    """What `watch` polls (every list may be empty; at least one endpoint in all)."""

    lmcache_metrics: list[str] = msgspec.field(default_factory=list)
    engine_metrics: list[str] = msgspec.field(default_factory=list)
    engine_http: list[str] = msgspec.field(default_factory=list)
    lmcache_http: list[str] = msgspec.field(default_factory=list)

    def count(self) -> int:
        return (len(self.lmcache_metrics) + len(self.engine_metrics) + len(self.engine_http)
                + len(self.lmcache_http))


class Taken(msgspec.Struct, frozen=True, omit_defaults=True):
    """One GET round's result for one endpoint: the evidence, and the scrape's bytes under
    the name the packet keeps them by (None when nothing came back or it is not a scrape)."""

    endpoint: str
    evidence: Evidence
    original: str | None = None
    data: bytes | None = None


def scrape_round(ep: WatchEndpoints, n: int, *, timeout: float = 5.0, transport: Any = None,
                 clock: Any = time.time) -> list[Taken]:
    """GET every endpoint once, in a fixed order; round `n` names the scrapes' copies."""
    out: list[Taken] = []
    for kind, urls in (("lmcache_metrics", ep.lmcache_metrics),
                       ("engine_metrics", ep.engine_metrics)):
        for url in urls:
            ev, data = scrape_metrics(url, kind, timeout=timeout,  # type: ignore[arg-type]
                                      transport=transport, clock=clock)
            shown = redact_url(url)  # credentials in a URL are used, never written
            out.append(Taken(shown, ev, f"{shown}#{n}" if data is not None else None, data))
    for base in ep.engine_http:
        out.append(Taken(redact_url(base), collect_engine_http(base, timeout=timeout,
                                                               transport=transport)))
    for base in ep.lmcache_http:
        out.append(Taken(redact_url(base), collect_http(base, timeout=timeout,
                                                        transport=transport)))
    return out


def write_watch_packet(directory: str | os.PathLike[str], taken: list[Taken], *,
                       settings: PacketSettings | None = None) -> Path:
    """Write every evidence taken so far as one packet (replacing the previous write of
    this run: each write holds everything, so an interrupted run loses at most the round in
    flight)."""
    inputs = [PacketInput(kind=t.evidence.kind, original=t.original,
                          sha256=hashlib.sha256(t.data).hexdigest(), size=len(t.data))
              for t in taken if t.original is not None and t.data is not None]
    blobs = {t.original: t.data for t in taken if t.original is not None and t.data is not None}
    packet = Packet(settings=settings or PacketSettings(),
                    evidence=[t.evidence for t in taken], inputs=inputs)
    return packet.write(directory, overwrite=True, blobs=blobs)
