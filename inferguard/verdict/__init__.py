"""The verdict: a packet's compat report, its findings, and the claims the findings allow.

Names load on first access: judging one packet does not load the fleet (Prometheus
collection, Parquet) or the comparison modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inferguard import _lazy

if TYPE_CHECKING:
    from inferguard.verdict._claims import Claim, Claims, WithheldClaim, derive_claims
    from inferguard.verdict._compare import Comparison, compare_packet_dirs, compare_packets
    from inferguard.verdict._fleet import (
        FleetOptions,
        FleetOutcome,
        FleetReport,
        FleetRow,
        collect_prometheus_packets,
        judge_fleet,
        write_fleet_parquet,
    )
    from inferguard.verdict._verdict import (
        Verdict,
        collect_and_judge,
        diagnose_packet,
        judge_packet,
        judge_report,
    )

__all__ = ["Claim", "Claims", "Comparison", "FleetOptions", "FleetOutcome", "FleetReport",
           "FleetRow", "Verdict", "WithheldClaim", "collect_and_judge",
           "collect_prometheus_packets", "compare_packet_dirs", "compare_packets",
           "derive_claims", "diagnose_packet", "judge_fleet", "judge_packet", "judge_report",
           "write_fleet_parquet"]

_WHERE: dict[str, str] = {
    "Claim": "._claims", "Claims": "._claims", "WithheldClaim": "._claims",
    "derive_claims": "._claims",
    "Comparison": "._compare", "compare_packet_dirs": "._compare",
    "compare_packets": "._compare",
    "FleetOptions": "._fleet", "FleetOutcome": "._fleet", "FleetReport": "._fleet",
    "FleetRow": "._fleet", "collect_prometheus_packets": "._fleet", "judge_fleet": "._fleet",
    "write_fleet_parquet": "._fleet",
    "Verdict": "._verdict", "collect_and_judge": "._verdict", "diagnose_packet": "._verdict",
    "judge_packet": "._verdict", "judge_report": "._verdict",
}

__getattr__, __dir__ = _lazy.exports(__name__, _WHERE, __all__)
