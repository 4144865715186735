"""The LMCache controller and an engine's internal API server: control-plane state."""

from __future__ import annotations

from collections.abc import Iterator

from inferguard.evidence._controller import (
    INACTIVE_HEARTBEAT_S,
    STALE_HEARTBEAT_S,
    WORKER_LIST_CACHE_S,
)
from inferguard.findings._reads import hints_of, measured_or_log
from inferguard.findings._registry import Finding, finding, rule
from inferguard.judge._mode import PARTIAL, SUPPORTED
from inferguard.judge._report import CompatReport

# Heartbeat ages are judged with the controller's 30-s worker-list cache added: a listing
# can be that old, so only ages beyond threshold + cache are certain.
_STALE_S = STALE_HEARTBEAT_S + WORKER_LIST_CACHE_S
_INACTIVE_S = INACTIVE_HEARTBEAT_S + WORKER_LIST_CACHE_S


@rule(emits=("lmcache_controller_only_evidence",))
def controller_only(r: CompatReport) -> Iterator[Finding]:
    if r.detected.mode == "controller_only":
        ev = [f"{c.source}: {c.workers_listed} worker(s) listed, "
              f"{c.total_key_count} key(s)" for c in r.facts.controllers() if c.reachable]
        yield finding("lmcache_controller_only_evidence",
                      "the packet's only measured evidence is the controller's answers",
                      PARTIAL, ev)


@rule(emits=("lmcache_controller_worker_stale",))
def controller_stale_workers(r: CompatReport) -> Iterator[Finding]:
    ev = []
    for c in r.facts.controllers():
        for w in c.workers:
            age = w.heartbeat_age_s
            if age is None or age < _STALE_S:
                continue
            state = "inactive" if age >= _INACTIVE_S else "stale"
            never = "" if w.heartbeat_seen else (
                ", none since registration (heartbeats are off unless "
                "lmcache_worker_heartbeat_time is set)")
            ev.append(f"{w.instance_id}/{w.worker_id}: last heartbeat {age:.0f} s "
                      f"before the answer ({state}{never})")
    if ev:
        yield finding("lmcache_controller_worker_stale", "; ".join(ev), SUPPORTED, ev)


@rule(emits=("lmcache_controller_worker_listed_after_stop",))
def controller_listed_after_stop(r: CompatReport) -> Iterator[Finding]:
    engines = r.facts.controllers("internal_api")
    interval = {e.instance_id: e.heartbeat_interval_s for e in engines
                if e.instance_id and e.heartbeat_interval_s}
    env_hb = r.facts.launch_env.get("LMCACHE_LMCACHE_WORKER_HEARTBEAT_TIME", [])
    default_hb = next((float(v) for v in env_hb if v.replace(".", "", 1).isdigit()), None)
    ident = {e.base_url: e.instance_id for e in engines
             if e.reachable and e.base_url and e.instance_id}
    gone = [e for e in engines if e.reachable is False and e.base_url]
    ev: list[str] = []
    level = SUPPORTED
    for c in r.facts.controllers():
        # Only engines that had stopped answering when this listing was taken (Date has
        # whole seconds: 1 s of slack); without times the order is unknown and all count.
        gone_then = [g for g in gone if c.collected_at is None
                     or g.collected_at is None
                     or g.collected_at <= c.collected_at + 1.0]
        for w in c.workers:
            name = f"{w.instance_id}/{w.worker_id}"
            hb = interval.get(w.instance_id, default_hb)
            age = w.heartbeat_age_s
            if (hb and age is not None and w.heartbeat_seen
                    and age > 2 * hb + WORKER_LIST_CACHE_S):
                ev.append(f"{name}: heartbeat every {hb:g} s, last one {age:.1f} s before "
                          "the controller answered (more than two periods plus the 30-s list "
                          "cache), still listed")
            for g in gone_then:
                url = g.base_url or ""
                host = url.split("://", 1)[-1].split(":", 1)[0].split("/", 1)[0]
                if ident.get(url) == w.instance_id:
                    ev.append(f"{name}: its internal API server {url} no longer "
                              "answers, the controller still lists it")
                elif url not in ident and host in (w.ip, "localhost"):
                    ev.append(f"{name}: the internal API server at {url} (same host) "
                              "did not answer, the controller still lists it")
                    level = PARTIAL
    if ev and hints_of(r).get("ctrl_deregistered"):
        ev.append(f"log: Deregistered instance-worker x{hints_of(r)['ctrl_deregistered']}: a "
                  "deregistered worker can stay listed up to 30 s (list cache)")
    if ev:
        yield finding("lmcache_controller_worker_listed_after_stop", "; ".join(ev), level, ev)


@rule(emits=("lmcache_controller_full_sync_gauge_stuck",))
def controller_full_sync_gauge(r: CompatReport) -> Iterator[Finding]:
    done = hints_of(r).get("ctrl_full_sync_completed", 0)
    if not done:
        return
    for c in r.facts.controllers():
        g = c.gauges
        if g.get("full_sync_workers_completed") == 0:
            ev = [f"log: full sync completed ({done} line(s))",
                  f"{c.source}: full_sync_workers_completed=0, registered_workers_count="
                  f"{g.get('registered_workers_count', 0):g}, {c.workers_listed} "
                  "worker(s) listed"]
            if hints_of(r).get("controller_registration") and not c.workers_listed:
                ev.append("the log registered a worker the listing does not show: the "
                          "listing and gauges came from a cache filled before")
            yield finding("lmcache_controller_full_sync_gauge_stuck", "; ".join(ev), PARTIAL, ev)
            return


@rule(emits=("lmcache_controller_peer_init_url_missing",))
def controller_peer_init_url(r: CompatReport) -> Iterator[Finding]:
    engines = r.facts.controllers("internal_api")
    why = []
    if r.expected_mode == "p2p":
        why.append("--expect-mode p2p")
    why += [f"{e.source}: enable_p2p=true" for e in engines if e.enable_p2p]
    why += [ref.detail for c in r.detected.candidates if c.mode == "p2p" for ref in c.evidence
            if "enable_p2p" in ref.detail and ref.kind == "launch_config"]
    if not why:
        return
    ev = [f"{c.source}: {w.instance_id}/{w.worker_id} has no peer_init_url"
          for c in r.facts.controllers() for w in c.workers if not w.peer_init_url]
    if hints_of(r).get("ctrl_no_peer_init_url"):
        ev.append(f"log: peer init url is None x{hints_of(r)['ctrl_no_peer_init_url']}")
    if ev:
        yield finding("lmcache_controller_peer_init_url_missing",
                      "P2P expected (" + ", ".join(why[:3]) + "); " + "; ".join(ev),
                      measured_or_log(ev), ev)


@rule(emits=("lmcache_controller_threads_unhealthy",))
def controller_threads(r: CompatReport) -> Iterator[Finding]:
    bad = [f"{c.source} ({c.server}): unhealthy periodic threads "
           + ", ".join(c.unhealthy_threads or ["?"])
           for c in r.facts.controller if c.periodic_threads_healthy is False]
    if bad:
        yield finding("lmcache_controller_threads_unhealthy", "; ".join(bad), SUPPORTED, bad)


