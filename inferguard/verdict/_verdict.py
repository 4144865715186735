"""The whole judgement of one packet as library calls, so the CLI only parses and prints:
`judge_packet(packet)` (compat, then the findings, then the claims they allow),
`diagnose_packet(dir)` (re-judge a packet directory from its evidence, never from a stored
report), `collect_and_judge(opts)`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from inferguard._packet import Packet
from inferguard.findings._diagnose import diagnose
from inferguard.findings._registry import Diagnosis
from inferguard.judge._compat import compat
from inferguard.judge._report import CompatReport
from inferguard.verdict._claims import Claims, derive_claims
from inferguard.verdict._views import Views, views_of

if TYPE_CHECKING:  # the collecting layer loads when a collection runs, not to judge
    from pathlib import Path

    from inferguard.collect import CollectOptions

VERDICT_SCHEMA = "inferguard.verdict/1"


class Verdict(msgspec.Struct, frozen=True):
    """The compat report, the findings drawn from it, and the claims they allow."""

    report: CompatReport
    diagnosis: Diagnosis
    claims: Claims
    schema: str = VERDICT_SCHEMA
    # The aggregated series for pictures (empty when judged from a report alone).
    views: Views = msgspec.field(default_factory=Views)


def judge_report(report: CompatReport) -> Verdict:
    """Findings and claims for a compat report."""
    diagnosis = diagnose(report)
    return Verdict(report, diagnosis, derive_claims(report, diagnosis))


def judge_packet(packet: Packet) -> Verdict:
    """Judge a packet: its compat report, every finding rule over it, then the claims."""
    return msgspec.structs.replace(judge_report(compat(packet)), views=views_of(packet))


def diagnose_packet(directory: str | os.PathLike[str]) -> Verdict:
    """Re-judge a packet directory from its evidence (the stored report is not trusted: the
    same evidence gives the same verdict whichever InferGuard wrote the packet)."""
    return judge_packet(Packet.read(directory))


def collect_and_judge(opts: CollectOptions, *, transport: Any = None,
                      progress: Callable[[int, int], None] | None = None
                      ) -> tuple[Packet, Path]:
    """`collect_lmcache` with the compat report written into the packet; `progress(done,
    total)` follows the copying of file inputs."""
    from inferguard.collect import collect_lmcache

    return collect_lmcache(opts, transport=transport, report=compat, progress=progress)
