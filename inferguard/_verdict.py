"""The whole judgement of one packet as library calls, so the CLI only parses and prints:
`judge_packet(packet)` (compat, then diagnose), `diagnose_packet(dir)` (re-judge a packet
directory from its evidence, never from a stored report), `collect_and_judge(opts)`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from inferguard._packet import Packet
from inferguard.collect import CollectOptions, collect_lmcache
from inferguard.findings._diagnose import diagnose
from inferguard.findings._registry import Diagnosis
from inferguard.judge._compat import compat
from inferguard.judge._report import CompatReport

VERDICT_SCHEMA = "inferguard.verdict/1"


class Verdict(msgspec.Struct, frozen=True):
    """The compat report and the findings drawn from it, for one packet."""

    report: CompatReport
    diagnosis: Diagnosis
    schema: str = VERDICT_SCHEMA


def judge_packet(packet: Packet) -> Verdict:
    """Judge a packet: its compat report, then every finding rule over it."""
    report = compat(packet)
    return Verdict(report, diagnose(report))


def diagnose_packet(directory: str | os.PathLike[str]) -> Verdict:
    """Re-judge a packet directory from its evidence (the stored report is not trusted: the
    same evidence gives the same verdict whichever InferGuard wrote the packet)."""
    return judge_packet(Packet.read(directory))


def collect_and_judge(opts: CollectOptions, *, transport: Any = None) -> tuple[Packet, Path]:
    """`collect_lmcache` with the compat report written into the packet."""
    return collect_lmcache(opts, transport=transport, report=compat)
