#!/usr/bin/env python3
"""A typed client of InferGuard's public API: judge one packet directory and print what it shows.

Uses only top-level names (`import inferguard as ig`), so it is also the check that the public
face is enough for a real caller and is fully typed: CI runs `mypy --strict` on this file.

    python examples/typed_client.py tests/fixtures/lmcache_live/vllm_live_mp/packet

Output, one `key=value` per line (stable, meant to be parsed):

    mode=<detected mode>           level=<evidence level of the mode>
    confidence=<0..1>              effective_mode=<mode the report judged against>
    finding=<code> <severity> <level>     (one line per finding, in diagnosis order)
    findings=<count>
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import inferguard as ig


def judge(directory: Path) -> ig.Verdict:
    """Read the packet and judge it: compat report, then every finding rule over it."""
    packet: ig.Packet = ig.Packet.read(directory)
    verdict: ig.Verdict = ig.judge_packet(packet)
    # The same answer through the step-by-step calls: detect_mode, compat, diagnose.
    mode: ig.ModeDetection = ig.detect_mode(packet)
    report: ig.CompatReport = ig.compat(packet)
    diagnosis: ig.Diagnosis = ig.diagnose(report)
    if mode.mode != verdict.report.detected.mode or diagnosis.codes() != verdict.diagnosis.codes():
        raise RuntimeError("judge_packet disagrees with detect_mode/compat/diagnose")
    return verdict


def render(verdict: ig.Verdict) -> list[str]:
    detected: ig.ModeDetection = verdict.report.detected
    lines = [
        f"mode={detected.mode}",
        f"level={detected.level}",
        f"confidence={detected.confidence:g}",
        f"effective_mode={verdict.report.effective_mode}",
    ]
    findings: list[ig.Finding] = verdict.diagnosis.findings
    lines += [f"finding={f.code} {f.severity} {f.level}" for f in findings]
    lines.append(f"findings={len(findings)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("packet", type=Path, help="a packet directory (holds packet.json)")
    args = parser.parse_args(argv)
    directory: Path = args.packet
    if not (directory / "packet.json").is_file():
        print(f"typed_client: {directory} holds no packet.json", file=sys.stderr)
        return 2
    print(f"# inferguard {ig.__version__}, backend {ig.native_backend()}", file=sys.stderr)
    for line in render(judge(directory)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
