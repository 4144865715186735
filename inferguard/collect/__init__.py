"""Collection: the only layer that touches the network or writes a packet. Builds a
`Packet` from files, capture directories and live URLs (read-only GETs from allow-lists;
state-changing routes are recorded as skipped, never called) and writes it atomically."""

from inferguard.collect._build import CollectOptions, collect_lmcache
from inferguard.collect._fetch import fetch
from inferguard.collect._live import (
    ControlPlaneCapture,
    collect_control_plane,
    collect_http,
    scrape_metrics,
)
from inferguard.collect._prometheus import (
    PromError,
    PromGroup,
    PromPacket,
    PromTarget,
    PromWindow,
    group_targets,
    list_targets,
    prometheus_packet,
)

__all__ = ["CollectOptions", "ControlPlaneCapture", "PromError", "PromGroup", "PromPacket",
           "PromTarget", "PromWindow", "collect_control_plane", "collect_http",
           "collect_lmcache", "fetch", "group_targets", "list_targets", "prometheus_packet",
           "scrape_metrics"]
