"""`collect-lmcache`: build a packet from files and live endpoints, read-only.

Files are read where they are; the packet keeps copies of what each reader accepted
(redacted or scrubbed where they could leak: `docs/reliability.md`). Live endpoints are
fetched with bounded waits (per exchange, and for the whole collection): the MP server's
allow-listed GET routes (every state-changing route is recorded as skipped, never called)
and `/metrics` scrapes. Anything that fails — a refused
connection, a timeout, a 5xx, a body that does not parse — is evidence, not a crash.

`base_packet` starts from an earlier packet: its evidence and copies are carried over and the
new inputs are added (e.g. the live HTTP answers and scrape taken while the server ran, then
the trace and log once it has stopped and closed them). Settings given now win over the
earlier packet's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from inferguard._packet import REPORT_FILE, Packet, PacketInput, PacketSettings, check_output_dir
from inferguard.collect._fetch import Deadline
from inferguard.collect._live import (
    collect_control_plane,
    collect_engine_http,
    collect_http,
    scrape_metrics,
)
from inferguard.evidence._controller import internal_api_scrape, read_controller_capture_dir
from inferguard.evidence._model import Evidence
from inferguard.evidence._readers import read_evidence


class CollectOptions(msgspec.Struct, frozen=True, omit_defaults=True):
    """Everything `collect-lmcache` takes (the product page's flags, plus live scrapes)."""

    output_dir: str
    engine_metrics_files: list[str] = msgspec.field(default_factory=list)
    lmcache_metrics_files: list[str] = msgspec.field(default_factory=list)
    engine_metrics_urls: list[str] = msgspec.field(default_factory=list)
    lmcache_metrics_urls: list[str] = msgspec.field(default_factory=list)
    lmcache_http_base_url: str | None = None
    lmcache_http_capture_dirs: list[str] = msgspec.field(default_factory=list)
    lmcache_http_thread_names: list[str] = msgspec.field(default_factory=list)
    lmcache_log_files: list[str] = msgspec.field(default_factory=list)
    engine_log_files: list[str] = msgspec.field(default_factory=list)
    lmcache_trace_files: list[str] = msgspec.field(default_factory=list)
    lmcache_otel_files: list[str] = msgspec.field(default_factory=list)
    lookup_hash_paths: list[str] = msgspec.field(default_factory=list)
    replay_files: list[str] = msgspec.field(default_factory=list)
    launch_files: list[str] = msgspec.field(default_factory=list)
    settings: PacketSettings = msgspec.field(default_factory=PacketSettings)
    http_timeout: float = 5.0
    # The whole collection's deadline (seconds, all requests together); None: no limit.
    collect_timeout: float | None = 120.0
    # Copy traces raw (chunk hashes included) instead of scrubbed.
    include_raw_trace: bool = False
    # A file holding the key for trace fingerprints, to make two packets joinable on purpose;
    # without it every packet draws its own random key, never written.
    trace_fingerprint_key_file: str | None = None
    overwrite: bool = False
    base_packet: str | None = None
    lmcache_controller_url: str | None = None
    lmcache_internal_api_url: str | None = None
    controller_capture_dirs: list[str] = msgspec.field(default_factory=list)
    internal_api_capture_dirs: list[str] = msgspec.field(default_factory=list)
    engine_http_base_url: str | None = None
    engine_http_capture_dirs: list[str] = msgspec.field(default_factory=list)


def collect_lmcache(opts: CollectOptions, *, transport: Any = None,
                    report: Callable[[Packet], object] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> tuple[Packet, Path]:
    """Read every input, fetch every live endpoint, and write the packet atomically.

    `report`, when given, judges the packet before it is written; its result is stored at
    `REPORT_FILE` inside it (the judgement lives above this layer: `inferguard.collect_and_judge`
    passes `compat`). `progress(done, total)` follows the copying of file inputs."""
    out = Path(opts.output_dir)
    check_output_dir(out, overwrite=opts.overwrite)  # before any collection starts
    files: list[tuple[str, Sequence[str]]] = [
        ("engine_metrics", opts.engine_metrics_files),
        ("lmcache_metrics", opts.lmcache_metrics_files),
        ("http", opts.lmcache_http_capture_dirs),
        ("log", opts.lmcache_log_files),
        ("log", opts.engine_log_files),
        ("trace", opts.lmcache_trace_files),
        ("otel", opts.lmcache_otel_files),
        ("lookup_hash", opts.lookup_hash_paths),
        ("trace_replay", opts.replay_files),
        ("launch_config", opts.launch_files),
        ("engine_http", opts.engine_http_capture_dirs),
    ]
    evidence: list[Evidence] = []
    inputs: list[PacketInput] = []
    blobs: dict[str, bytes] = {}
    base: Packet | None = None
    deadline = Deadline(opts.collect_timeout)
    if opts.base_packet is not None:
        base = Packet.load(opts.base_packet)
        evidence += base.evidence
        inputs += base.inputs
    for kind, paths in files:
        for p in paths:
            ev = read_evidence(kind, p)
            if kind == "log" and paths is opts.engine_log_files and ev.facts is not None:
                ev = msgspec.structs.replace(
                    ev, facts=msgspec.structs.replace(ev.facts, role="engine"))
            evidence.append(ev)
            inputs.append(PacketInput(kind=ev.kind, original=os.fspath(p),
                                      sha256=ev.source.sha256, size=ev.source.size))
    for kind, urls in (("engine_metrics", opts.engine_metrics_urls),
                       ("lmcache_metrics", opts.lmcache_metrics_urls)):
        for url in urls:
            ev, data = scrape_metrics(url, kind, timeout=opts.http_timeout,  # type: ignore[arg-type]
                                      transport=transport, deadline=deadline)
            evidence.append(ev)
            if data is not None:
                shown = ev.source.url or url
                blobs[shown] = data
                inputs.append(PacketInput(kind=ev.kind, original=shown,
                                          sha256=ev.source.sha256, size=ev.source.size))
    if opts.lmcache_http_base_url:
        evidence.append(collect_http(opts.lmcache_http_base_url,
                                     thread_names=opts.lmcache_http_thread_names,
                                     timeout=opts.http_timeout, transport=transport,
                                     deadline=deadline))
    if opts.engine_http_base_url:  # vLLM's /health and /version only
        evidence.append(collect_engine_http(opts.engine_http_base_url,
                                            timeout=opts.http_timeout, transport=transport,
                                            deadline=deadline))
    # The controller and an engine's internal API server: same read-only discipline.
    for server, dirs in (("controller", opts.controller_capture_dirs),
                         ("internal_api", opts.internal_api_capture_dirs)):
        for d in dirs:
            ev = read_controller_capture_dir(d, server)
            evidence += [ev, *internal_api_scrape(d)]
            inputs.append(PacketInput(kind="controller", original=os.fspath(d),
                                      sha256=ev.source.sha256, size=ev.source.size))
    # Live: the engines' internal API servers first, then the controller, so that an engine
    # that no longer answers is known to have been silent when the listing was taken (the
    # listed-after-stop rule compares the times).
    for server, live in (("internal_api", opts.lmcache_internal_api_url),
                         ("controller", opts.lmcache_controller_url)):
        if live:
            got = collect_control_plane(live, server, thread_names=opts.lmcache_http_thread_names,
                                        timeout=opts.http_timeout, transport=transport,
                                        deadline=deadline)
            evidence += got.evidence
            for kind, src, data in got.inputs:
                blobs[src] = data
                inputs.append(PacketInput(kind=kind, original=src,  # type: ignore[arg-type]
                                          sha256=hashlib.sha256(data).hexdigest(),
                                          size=len(data)))
    settings = opts.settings
    if opts.lmcache_http_thread_names and not settings.http_thread_names:
        settings = msgspec.structs.replace(settings,
                                           http_thread_names=list(opts.lmcache_http_thread_names))
    if base is not None:
        settings = _merge_settings(base.settings, settings)
    packet = Packet(settings=settings, evidence=evidence, inputs=inputs,
                    problems=base.problems if base is not None else [])
    extra = {} if report is None else {REPORT_FILE: report(packet)}
    key = None
    if opts.trace_fingerprint_key_file is not None:
        key = Path(opts.trace_fingerprint_key_file).read_bytes()
        if len(key) < 16:
            raise ValueError(f"{opts.trace_fingerprint_key_file}: a fingerprint key needs at "
                             f"least 16 bytes (got {len(key)})")
    written = packet.write(out, overwrite=opts.overwrite, blobs=blobs, extra_files=extra,
                           carry_from=opts.base_packet, include_raw_trace=opts.include_raw_trace,
                           fingerprint_key=key, progress=progress)
    return Packet.load(written), written


def _merge_settings(base: PacketSettings, given: PacketSettings) -> PacketSettings:
    """The earlier packet's settings, with every field given now (non-default) on top."""
    default = PacketSettings()
    changes = {f: getattr(given, f) for f in given.__struct_fields__
               if getattr(given, f) != getattr(default, f)}
    return msgspec.structs.replace(base, **changes)
