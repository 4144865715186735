"""The verdict: a packet's compat report, its findings, and the claims the findings allow."""

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
