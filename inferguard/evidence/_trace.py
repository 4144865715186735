"""A `.lct` trace recording as evidence: the summary with its integrity section and the
analytics findings."""

from __future__ import annotations

import os

import msgspec

from inferguard._files import NotRegularFile
from inferguard.evidence._model import Evidence, EvidenceSource, Problem, open_input
from inferguard.lct._file import TraceFile, TraceFormatError, TraceSummary
from inferguard.lct._stats import TraceStatsFinding, trace_stats


class TraceFacts(msgspec.Struct, frozen=True, tag="trace"):
    """A `.lct` recording: the trace summary with its integrity section, and the findings
    of the trace analytics (lifecycle breaks, reuse, write amplification, ...)."""

    summary: TraceSummary
    analytics: list[TraceStatsFinding] = msgspec.field(default_factory=list)


def read_trace(path: str | os.PathLike[str]) -> Evidence:
    """A `.lct` file as evidence; a damaged trace is partial, a non-trace malformed."""
    p = os.fspath(path)
    try:
        with open_input(p) as f:  # a device or FIFO is refused before it is mapped
            size = os.fstat(f.fileno()).st_size
        with TraceFile(p) as t:
            stats = trace_stats(t)
        summary = stats.summary
    except TraceFormatError as exc:
        return Evidence(kind="trace", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(str(exc), offset=0)])
    except NotRegularFile as exc:
        return Evidence(kind="trace", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(exc.strerror or str(exc))])
    except OSError as exc:
        return Evidence(kind="trace", source=EvidenceSource(path=p), status="malformed",
                        problems=[Problem(f"cannot read file: {exc.strerror or exc}")])
    problems = [Problem(f"{f.kind}: {f.detail}", offset=f.offset)
                for f in summary.integrity.findings]
    source = EvidenceSource(path=p, sha256=_sha256_file(p), size=size)
    return Evidence(kind="trace", source=source, status="partial" if problems else "ok",
                    facts=TraceFacts(summary, stats.findings), problems=problems)


def _sha256_file(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


