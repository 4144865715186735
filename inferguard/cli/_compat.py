"""`inferguard lmcache-compat` and `inferguard diagnose-bottleneck`: parse, call, print.

Exit codes (documented in docs/compatibility.md):
  0  the report was produced and no --fail-on condition holds
  1  a --fail-on condition holds
  2  bad usage or unreadable input (packet directory, report file)
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:
    from inferguard._packet import Packet
    from inferguard.evidence._model import Evidence
    from inferguard.findings._registry import Diagnosis
    from inferguard.judge._report import CompatReport
    from inferguard.verdict._verdict import Verdict

from inferguard.cli._common import (
    EXAMPLES,
    HelpFormatter,
    add_fail_on,
    add_json,
    add_packet,
    add_paths,
    add_run_settings,
    emit_json,
    run_settings,
)
from inferguard.cli._rates import rate_lines

FAIL_CLASSES = ("missing-required", "zero-required", "mode-mismatch", "malformed-evidence",
                "error-finding", "never")


FAIL_HELP = ("exit 1 when this holds (repeatable): missing-required / zero-required "
             "families, mode-mismatch with --expect-mode, malformed-evidence, error-finding; "
             "never = always 0")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `lmcache-compat` and `diagnose-bottleneck` to the top-level subcommands."""
    p = sub.add_parser(
        "lmcache-compat", help="judge LMCache telemetry: families, mode, checklist, claims",
        description="Judge a packet (from collect-lmcache) and/or evidence files: each metric "
                    "family populated / zero / missing, the detected mode and what decided "
                    "it, the evidence checklist, the claims the evidence allows, findings.",
        epilog=EXAMPLES + "  inferguard lmcache-compat --packet examples/vllm-lmcache-mp/packet\n"
               "  inferguard lmcache-compat --lmcache-metrics-file lmcache.txt "
               "--engine-metrics-file vllm.txt --expect-mode mp --fail-on missing-required\n"
               "  inferguard lmcache-compat --packet pkt --json > verdict.json\n",
        formatter_class=HelpFormatter)

    add_packet(p)
    add_paths(p, "--engine-metrics-file", "vLLM/SGLang /metrics text")
    add_paths(p, "--lmcache-metrics-file", "LMCache /metrics text")
    for kind in ("http", "log", "trace", "otel", "lookup-hash", "controller"):
        add_paths(p, f"--lmcache-{kind}-evidence-file",
                  f"{kind} evidence JSON (as collect-lmcache writes under metrics/)")
    add_paths(p, "--lmcache-log-file", "LMCache server log (raw)")
    add_paths(p, "--lmcache-trace-file", ".lct trace recording (raw)")
    add_paths(p, "--lmcache-otel-file", "OTLP JSON lines (raw)")
    add_paths(p, "--launch-file", "launch command lines / environment excerpt")
    add_run_settings(p, expect_help="the mode the run was meant to use; the report says "
                                    "whether it matches",
                     l2_help="the run configured an MP L2 adapter (else L2 is not_applicable)")
    add_fail_on(p, FAIL_CLASSES, FAIL_HELP)
    add_json(p, "print the verdict as JSON (schema inferguard.verdict/1)")
    p.set_defaults(func=_compat, heavy=True)

    d = sub.add_parser(
        "diagnose-bottleneck", help="findings with stable codes, re-judged from a packet",
        description="Re-judge a packet's evidence with today's rules and print the findings: "
                    "stable codes, severity, evidence level, what was seen, the next step.",
        epilog=EXAMPLES + "  inferguard diagnose-bottleneck --packet "
               "examples/vllm-lmcache-mp/packet\n"
               "  inferguard diagnose-bottleneck --packet pkt --json --fail-on error-finding\n",
        formatter_class=HelpFormatter)
    add_packet(d, required=True)
    add_json(d, "print the findings as JSON (schema inferguard.diagnosis/1)")
    add_fail_on(d, FAIL_CLASSES, FAIL_HELP)
    d.set_defaults(func=_diagnose, heavy=True)


def _packet_from_args(args: argparse.Namespace) -> Packet:
    from inferguard._packet import Packet, PacketSettings
    from inferguard.evidence._readers import load_evidence_set, read_evidence_many

    evidence: list[Evidence] = []
    settings = PacketSettings()
    if args.packet:
        base = Packet.read(args.packet)
        evidence += base.evidence
        settings = base.settings
    evidence += read_evidence_many([
        (kind, p) for kind, paths in (
            ("engine_metrics", args.engine_metrics_file),
            ("lmcache_metrics", args.lmcache_metrics_file),
            ("log", args.lmcache_log_file), ("trace", args.lmcache_trace_file),
            ("otel", args.lmcache_otel_file), ("launch_config", args.launch_file))
        for p in paths])
    for kind, paths in (("http", args.lmcache_http_evidence_file),
                        ("log", args.lmcache_log_evidence_file),
                        ("trace", args.lmcache_trace_evidence_file),
                        ("otel", args.lmcache_otel_evidence_file),
                        ("lookup_hash", args.lmcache_lookup_hash_evidence_file),
                        ("controller", args.lmcache_controller_evidence_file)):
        for p in paths:
            evidence += load_evidence_set(p, kind)
    import msgspec.structs

    settings = msgspec.structs.replace(settings, **run_settings(args))
    return Packet(settings=settings, evidence=evidence)


def failed_classes(report: CompatReport, diagnosis: Diagnosis, classes: list[str]) -> list[str]:
    """Which requested --fail-on classes hold for this report."""
    held = {
        "missing-required": bool(report.missing_required),
        "zero-required": bool(report.zero_required),
        "mode-mismatch": report.mode_match is False,
        "malformed-evidence": any(e.status == "malformed" for e in report.evidence),
        "error-finding": any(f.severity == "error" for f in diagnosis.findings),
        "never": False,
    }
    return [c for c in classes if held[c]]


def _cut(items: list[str], n: int = 12) -> str:
    """A list for a terminal: at most n items, then how many more."""
    head = ", ".join(items[:n])
    return head + (f" … and {len(items) - n} more" if len(items) > n else "")


def render_report(v: Verdict) -> str:
    """The human `lmcache-compat` view: mode, groups with reasons, checklist, claims (made and
    withheld), findings. Every line is escaped once, at the end."""
    from inferguard.evidence._logs import safe_text

    r = v.report
    out = [f"detected_mode={r.detected.mode} confidence={r.detected.confidence:g} "
           f"level={r.detected.level}"
           + (f" flavor={r.detected.flavor}" if r.detected.flavor else "")
           + (f" expected={r.expected_mode} match={r.mode_match}" if r.expected_mode else "")]
    out += [f"  note: {n}" for n in r.detected.notes]
    out += version_lines(r)
    out += rate_lines(r.rates)
    out.append("")
    out.append(f"{'group':<22} {'status':<15} {'pop':>4} {'zero':>4} {'miss':>4}  "
               "required  reason")
    for g in r.groups:
        if g.status == "not_applicable" and not g.required:
            continue
        out.append(f"{g.id:<22} {g.status:<15} {g.populated:>4} {g.zero:>4} {g.missing:>4}  "
                   f"{'yes' if g.required else '':<8}  {g.reason or ''}".rstrip())
    if r.missing_required:
        out.append("")
        out.append("missing required: " + _cut(r.missing_required))
    if r.zero_required:
        out.append("zero required: " + _cut(r.zero_required))
    if r.unknown_lmcache_families:
        out.append("unknown LMCache-like families (kept): "
                   + _cut(r.unknown_lmcache_families))
    out.append("")
    if r.coverage is None:
        out.append(f"evidence coverage: n/a (mode {r.effective_mode}: no checklist to cover)")
    else:
        out.append(f"evidence coverage for {r.effective_mode}: {r.coverage:.0%}")
    for c in r.checklist:
        out.append(f"  [{'x' if c.present else ' '}] {c.description}")
    obs = r.lmcache_mp_observability
    if obs is not None:
        out.append("")
        out.append("lmcache_mp_observability:")
        out.append(f"  service_instance_ids: {_cut(obs.service_instance_ids) or '-'}")
        out.append(f"  cache_salt cardinality: {obs.cache_salt_cardinality}")
        out.append(f"  L2 adapter labels: {_cut(obs.l2_adapter_labels) or '-'}")
        out.append(f"  EventBus: {obs.event_bus.tail_drop_risk}")
        out.append(f"  sampling: {obs.sampled_histograms.explanation}")
        if obs.prometheus_port_note:
            out.append(f"  note: {obs.prometheus_port_note}")
    out.append("")
    out.append("claims:" + ("" if v.claims.made else " none"))
    out += [f"  {c.id}: {c.statement} [{c.level}]"
            + (f" (decided by {c.decided_by})" if c.decided_by else "") for c in v.claims.made]
    if v.claims.withheld:
        out.append("not claimed:")
        out += [f"  {w.id}: {w.statement} — {w.reason}" for w in v.claims.withheld]
    out.append("")
    out += diagnosis_lines(v.diagnosis)
    return "\n".join(safe_text(line) for line in out)


def version_lines(r: CompatReport) -> list[str]:
    """Versions seen, the version-keyed rules they selected, and the counting caveats."""
    vr = r.versions
    if vr is None:
        return []
    seen = ", ".join(f"{p} {v}" for p, v in vr.versions.items()) or "none stated"
    out = [f"versions: {seen}"
           + (f" (deployment={r.detected.deployment})" if r.detected.deployment else "")
           + (f" (MP connector: {r.detected.mp_connector})" if r.detected.mp_connector else "")]
    gated_out: dict[str, list[str]] = {}
    gated_in: dict[str, list[str]] = {}
    rules: list[str] = []
    for sel in vr.selected:  # "family:NAME:SPEC[ (not this version)]" or another rule id
        kind, _, rest = sel.partition(":")
        name, _, spec = rest.partition(":")
        if kind != "family" or not spec:
            rules.append(sel)
            continue
        out_of_range = spec.endswith(" (not this version)")
        spec = spec.removesuffix(" (not this version)")
        (gated_out if out_of_range else gated_in).setdefault(spec, []).append(name)
    for spec, names in gated_out.items():
        out.append(f"  not expected at these versions ({spec}): " + _cut(names))
    for spec, names in gated_in.items():
        out.append(f"  expected at these versions ({spec}): " + _cut(names))
    if rules:
        out.append("  rules selected: " + _cut(rules))
    out += [f"  note: {n}" for n in vr.notes]
    out += [f"  caveat {c.id} ({', '.join(c.figures)}): {c.text}" for c in r.caveats]
    return out


def diagnosis_lines(d: Diagnosis) -> list[str]:
    """The findings block, unescaped (the caller escapes each line once)."""
    if not d.findings:
        return ["findings: none"]
    out = ["findings:"]
    for f in d.findings:
        out.append(f"  {f.severity.upper():<7} {f.code} [{f.level}]")
        out.append(f"          {f.message}")
        out.append(f"          next: {f.next_step}")
    return out


def render_diagnosis(d: Diagnosis) -> str:
    from inferguard.evidence._logs import safe_text

    return "\n".join(safe_text(line) for line in diagnosis_lines(d))


def _compat(args: argparse.Namespace) -> int:
    from inferguard.evidence._logs import safe_text
    from inferguard.verdict._verdict import judge_packet

    if not (args.packet or any(v for k, v in vars(args).items() if k.endswith("_file"))):
        print("inferguard: error: give --packet or at least one evidence file", file=sys.stderr)
        return 2
    try:
        packet = _packet_from_args(args)
    except (OSError, ValueError) as exc:
        print(f"inferguard: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    verdict = judge_packet(packet)
    if args.json:
        emit_json(verdict)
    else:
        print(render_report(verdict))
    failed = failed_classes(verdict.report, verdict.diagnosis, args.fail_on)
    if failed:
        print(f"inferguard: failing on: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from inferguard.evidence._logs import safe_text
    from inferguard.verdict._verdict import diagnose_packet

    try:
        verdict = diagnose_packet(args.packet)
    except (OSError, ValueError) as exc:
        print(f"inferguard: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        emit_json(verdict.diagnosis)
    else:
        print(f"mode={verdict.diagnosis.mode}")
        print(render_diagnosis(verdict.diagnosis))
    failed = failed_classes(verdict.report, verdict.diagnosis, args.fail_on)
    if failed:
        print(f"inferguard: failing on: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
