"""Controller evidence reduced to what the controller findings read (typed report facts)."""

from __future__ import annotations

import msgspec

from inferguard._packet import Packet
from inferguard.evidence._controller import GAUGE_PREFIX, ControllerFacts, _num
from inferguard.evidence._model import source_label


class WorkerDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    instance_id: str
    worker_id: int | None = None
    ip: str | None = None
    peer_init_url: str | None = None
    heartbeat_age_s: float | None = None
    heartbeat_seen: bool | None = None
    key_count: int | None = None


class ControllerDigest(msgspec.Struct, frozen=True, omit_defaults=True):
    """One controller-kind evidence, reduced to what diagnose() reads."""

    source: str
    server: str
    reachable: bool | None = None
    collected_at: float | None = None
    base_url: str | None = None
    workers: list[WorkerDigest] = msgspec.field(default_factory=list)
    workers_listed: int | None = None
    total_key_count: int | None = None
    gauges: dict[str, float] = msgspec.field(default_factory=dict)
    periodic_threads_healthy: bool | None = None
    unhealthy_threads: list[str] = msgspec.field(default_factory=list)
    instance_id: str | None = None
    enable_p2p: bool | None = None
    enable_controller: bool | None = None
    heartbeat_interval_s: float | None = None


def controller_digest(packet: Packet) -> list[ControllerDigest]:
    """Every controller-kind evidence of the packet, reduced to what the rules read."""
    out = []
    for e in packet.evidence:
        f = e.facts
        if not isinstance(f, ControllerFacts) or e.status not in ("ok", "partial", "malformed"):
            continue
        cfg = f.config
        hb = _num(cfg.get("lmcache_worker_heartbeat_time"))
        out.append(ControllerDigest(
            source=source_label(e),
            server=f.server, reachable=f.reachable, collected_at=f.collected_at,
            base_url=f.base_url,
            workers=[WorkerDigest(w.instance_id, w.worker_id, w.ip, w.peer_init_url,
                                  w.heartbeat_age_s, w.heartbeat_seen, w.key_count)
                     for w in f.workers],
            workers_listed=f.workers_listed, total_key_count=f.total_key_count,
            gauges={k.removeprefix(GAUGE_PREFIX): v for k, v in f.gauges.items()},
            periodic_threads_healthy=f.periodic_threads_healthy,
            unhealthy_threads=f.unhealthy_threads, instance_id=f.instance_id,
            enable_p2p=cfg.get("enable_p2p") if isinstance(cfg.get("enable_p2p"), bool)
            else None,
            enable_controller=cfg.get("enable_controller")
            if isinstance(cfg.get("enable_controller"), bool) else None,
            heartbeat_interval_s=hb if hb is not None and hb > 0 else None))
    return out
