"""`Packet`: everything one run left behind — copied, fingerprinted, parsed — plus what the
operator declared about the run.

On disk a packet is a directory:

    packet.json                      manifest: schema, settings, inputs (hashes), evidence index
    inputs/<kind>/<file>             byte-identical copies of every input file
    metrics/<evidence file>.json     evidence per kind, named as the product page names them

`Packet.write` is atomic (a temporary sibling directory, then one rename) and never replaces
an existing packet unless asked to. Inputs are never modified: they are read and copied.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from inferguard._version import __version__
from inferguard.evidence._controller import filtered_capture
from inferguard.evidence._model import (
    EVIDENCE_KINDS,
    Evidence,
    EvidenceKind,
    EvidenceSource,
    Problem,
)
from inferguard.evidence._otel import strip_token_ids
from inferguard.evidence._readers import decode_evidence, read_evidence, read_evidence_all
from inferguard.evidence._redact import filter_env

PACKET_SCHEMA = "inferguard.packet/1"
EVIDENCE_SET_SCHEMA = "inferguard.evidence_set/1"
# Where a packet keeps the compat report written with it (collect-lmcache).
REPORT_FILE = "metrics/lmcache_compat_report.json"
MODES = ("mp", "embedded_vllm", "embedded_sglang", "p2p", "pd", "controller_only",
         "standalone_worker", "unknown")

# Evidence file names under metrics/ (the product page's names where it gives them).
EVIDENCE_FILES: dict[str, str] = {
    "engine_metrics": "engine_metrics_evidence.json",
    "lmcache_metrics": "lmcache_metrics_evidence.json",
    "http": "lmcache_http_evidence.json",
    "log": "lmcache_log_evidence.json",
    "trace": "lmcache_trace_evidence.json",
    "otel": "lmcache_otel_evidence.json",
    "lookup_hash": "lmcache_lookup_hash_evidence.json",
    "trace_replay": "lmcache_trace_replay_evidence.json",
    "launch_config": "launch_config_evidence.json",
    "controller": "lmcache_controller_evidence.json",
    "engine_http": "engine_http_evidence.json",
}


class PacketSettings(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the operator declares about the run (from the launch command, when known)."""

    expected_mode: str | None = None
    l2_configured: bool = False
    mp_prometheus_port: int | None = None
    mp_event_bus_queue_size: int | None = None
    mp_metrics_sample_rate: float | None = None
    mp_tracing_enabled: bool | None = None
    mp_trace_recording_enabled: bool | None = None
    http_thread_names: list[str] = msgspec.field(default_factory=list)


class PacketInput(msgspec.Struct, frozen=True, omit_defaults=True):
    """One input as given (path or URL) and where its copy lives in the packet."""

    kind: EvidenceKind
    original: str
    copied_as: str | None = None
    sha256: str | None = None
    size: int | None = None
    note: str | None = None


# Inputs that are fingerprinted but never copied, and why.
NOT_COPIED: dict[str, str] = {
    "lookup_hash": "not copied: lookup-hash logs hold raw chunk hashes (only aggregates are kept)",
}


class Manifest(msgspec.Struct, frozen=True, omit_defaults=True):
    schema: str
    created_at: str
    inferguard_version: str
    settings: PacketSettings
    inputs: list[PacketInput]
    evidence_files: dict[str, str]
    problems: list[Problem] = msgspec.field(default_factory=list)


class EvidenceSet(msgspec.Struct, frozen=True):
    schema: str
    kind: str
    evidence: list[Evidence]


class Packet(msgspec.Struct, frozen=True, omit_defaults=True):
    """The evidence for one run and its declared settings."""

    settings: PacketSettings
    evidence: list[Evidence]
    inputs: list[PacketInput] = msgspec.field(default_factory=list)
    problems: list[Problem] = msgspec.field(default_factory=list)
    created_at: str = ""
    schema: str = PACKET_SCHEMA

    # -- queries -----------------------------------------------------------------------

    def of_kind(self, *kinds: str) -> list[Evidence]:
        """Evidence of the given kinds, in packet order."""
        return [e for e in self.evidence if e.kind in kinds]

    def facts(self, *kinds: str) -> list[Any]:
        """Facts of readable evidence of the given kinds."""
        return [e.facts for e in self.of_kind(*kinds)
                if e.facts is not None and e.status in ("ok", "partial")]

    # -- building ----------------------------------------------------------------------

    @staticmethod
    def from_files(inputs: Iterable[tuple[str, str | os.PathLike[str]]], *,
                   settings: PacketSettings | None = None,
                   extra: Sequence[Evidence] = ()) -> Packet:
        """Read (kind, path) inputs in place; nothing is copied until `write()`."""
        evidence: list[Evidence] = []
        pin: list[PacketInput] = []
        for kind, path in inputs:
            ev, *more = read_evidence_all(kind, path)
            evidence += [ev, *more]
            pin.append(PacketInput(kind=ev.kind, original=os.fspath(path),
                                   sha256=ev.source.sha256, size=ev.source.size))
        evidence.extend(extra)
        return Packet(settings=settings or PacketSettings(), evidence=evidence, inputs=pin,
                      created_at=_now())

    # -- disk --------------------------------------------------------------------------

    def write(self, directory: str | os.PathLike[str], *, overwrite: bool = False,
              blobs: dict[str, bytes] | None = None,
              extra_files: dict[str, Any] | None = None,
              carry_from: str | os.PathLike[str] | None = None,
              progress: Callable[[int, int], None] | None = None) -> Path:
        """Write the packet atomically: copies of the inputs, evidence files, manifest.

        `blobs` holds the bytes of inputs that are not files (live scrapes, by URL);
        `extra_files` maps packet-relative paths to objects written as JSON (reports);
        `carry_from` is an earlier packet directory whose copies (inputs already
        `copied_as`) are carried over byte for byte, under the same relative paths.
        Refuses an existing directory unless `overwrite`; then the old packet is replaced
        by one rename and removed only after the new one is in place. `progress(done, total)`
        is told the bytes of file inputs copied so far (big traces take seconds)."""
        dest = Path(directory)
        if dest.exists() and not overwrite:
            raise FileExistsError(f"{dest}: already exists; refusing to overwrite a packet "
                                  "(choose a new --output-dir, or pass --force)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        try:
            inputs, evidence, problems = self._copy_inputs(
                tmp, blobs or {}, None if carry_from is None else Path(carry_from), progress)
            files = self._write_evidence(tmp, evidence)
            for rel, obj in (extra_files or {}).items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                _write_json(tmp / rel, obj)
            manifest = Manifest(PACKET_SCHEMA, self.created_at or _now(), __version__,
                                self.settings, inputs, files, self.problems + problems)
            _write_json(tmp / "packet.json", manifest)
            _fsync_dir(tmp)
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
                os.rename(dest, old)
                os.rename(tmp, dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def _copy_inputs(self, root: Path, blobs: dict[str, bytes], carry_from: Path | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[list[PacketInput], list[Evidence], list[Problem]]:
        """Copy each file input (hash-checked against what was parsed)."""
        meter = _CopyMeter(progress, sum(
            i.size or 0 for i in self.inputs
            if i.copied_as is None and i.original not in blobs and i.kind not in NOT_COPIED))
        out: list[PacketInput] = []
        problems: list[Problem] = []
        evidence = list(self.evidence)
        used: set[str] = {i.copied_as for i in self.inputs if i.copied_as is not None}
        for item in self.inputs:
            if item.copied_as is not None and carry_from is not None:
                _carry(carry_from, root, item.copied_as, problems)
                out.append(item)
                continue
            if item.original in blobs:
                name = "".join(c if c.isalnum() or c in "-_." else "_"
                               for c in item.original.split("://", 1)[-1])[:100]
                rel = _unique(f"inputs/{item.kind}/{name}.txt", used)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(blobs[item.original])
                out.append(msgspec.structs.replace(item, copied_as=rel))
                continue
            src = Path(item.original)
            if item.copied_as is not None or not src.exists():
                out.append(item)
                continue
            if item.kind in NOT_COPIED:
                out.append(msgspec.structs.replace(item, note=NOT_COPIED[item.kind]))
                continue
            rel = _unique(f"inputs/{item.kind}/{src.name}", used)
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                _copy_tree(src, target)
                out.append(msgspec.structs.replace(item, copied_as=rel))
                continue
            digest, note = _copy_input(item.kind, src, target, meter)
            if item.sha256 is not None and digest != item.sha256:
                problems.append(Problem(f"{src} changed while the packet was written "
                                        f"(parsed sha256 {item.sha256[:12]}…, copied "
                                        f"{digest[:12]}…)", where=str(src)))
            out.append(msgspec.structs.replace(item, copied_as=rel, sha256=digest,
                                               size=target.stat().st_size,
                                               note=note or item.note))
            evidence = [msgspec.structs.replace(
                e, source=msgspec.structs.replace(e.source, copied_as=rel))
                if e.source.path == item.original and e.source.copied_as is None else e
                for e in evidence]
        return out, evidence, problems

    @staticmethod
    def _write_evidence(root: Path, evidence: list[Evidence]) -> dict[str, str]:
        files: dict[str, str] = {}
        (root / "metrics").mkdir(exist_ok=True)
        for kind in EVIDENCE_KINDS:
            items = [e for e in evidence if e.kind == kind]
            if not items:
                continue
            rel = f"metrics/{EVIDENCE_FILES[kind]}"
            _write_json(root / rel, EvidenceSet(EVIDENCE_SET_SCHEMA, kind, items))
            files[kind] = rel
        return files

    def with_settings(self, **changes: Any) -> Packet:
        """The same evidence with some settings replaced (the one road for a setting)."""
        return msgspec.structs.replace(
            self, settings=msgspec.structs.replace(self.settings, **changes))

    @staticmethod
    def read(directory: str | os.PathLike[str]) -> Packet:
        """Read a packet directory for judging: every input the packet holds a copy of is
        read again from that copy by today's readers (so a packet written by an older
        InferGuard is judged by the same rules as fresh files); evidence without a copy
        (live HTTP answers, lookup-hash aggregates) is taken as stored."""
        stored = Packet.load(directory)
        root = Path(directory)
        evidence = [_reread(root, e) for e in stored.evidence]
        return msgspec.structs.replace(stored, evidence=evidence)

    @staticmethod
    def load(directory: str | os.PathLike[str]) -> Packet:
        """A packet directory exactly as written by `write()`: the stored evidence (`read`
        re-reads the copies for judging)."""
        root = Path(directory)
        try:
            manifest = msgspec.json.decode((root / "packet.json").read_bytes(), type=Manifest)
        except FileNotFoundError:
            raise FileNotFoundError(f"{root}: no packet.json (not an InferGuard packet; "
                                    "`inferguard collect-lmcache --output-dir DIR` writes one)"
                                    ) from None
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"{root / 'packet.json'}: not a packet manifest: {exc}") from None
        evidence: list[Evidence] = []
        problems = list(manifest.problems)
        for kind, rel in manifest.evidence_files.items():
            try:
                doc = msgspec.json.decode((root / rel).read_bytes())
                evidence += [decode_evidence(e) for e in doc["evidence"]]
            except (OSError, KeyError, TypeError, msgspec.DecodeError,
                    msgspec.ValidationError) as exc:
                problems.append(Problem(f"{rel}: {kind} evidence unreadable: {exc}", where=rel))
        return Packet(settings=manifest.settings, evidence=evidence, inputs=manifest.inputs,
                      problems=problems, created_at=manifest.created_at)


def _reread(root: Path, ev: Evidence) -> Evidence:
    """One evidence read again from its copy in the packet, keeping where it came from; the
    stored one when there is no copy (or it cannot be read: that is said)."""
    rel = ev.source.copied_as
    if rel is None or ev.kind in NOT_COPIED:
        return ev
    path = root / rel
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return ev
    if not path.exists():
        return msgspec.structs.replace(ev, problems=[*ev.problems, Problem(
            f"{rel}: the packet's copy is gone; judged from the stored evidence", where=rel)])
    fresh = read_evidence(ev.kind, path)
    role = getattr(ev.facts, "role", None)
    if role is not None and hasattr(fresh.facts, "role"):
        fresh = msgspec.structs.replace(fresh, facts=msgspec.structs.replace(fresh.facts,
                                                                             role=role))
    # When a scrape was taken is not in its bytes: keep what was recorded with it.
    when = getattr(ev.facts, "scraped_at", None)
    if when is not None and getattr(fresh.facts, "scraped_at", 0) is None:
        fresh = msgspec.structs.replace(fresh, facts=msgspec.structs.replace(
            fresh.facts, scraped_at=when))
    return msgspec.structs.replace(fresh, source=msgspec.structs.replace(
        ev.source, sha256=fresh.source.sha256 or ev.source.sha256,
        size=fresh.source.size if fresh.source.size is not None else ev.source.size))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _unique(rel: str, used: set[str]) -> str:
    base, n = rel, 1
    while rel in used:
        stem, dot, ext = base.rpartition(".")
        rel = f"{stem}-{n}.{ext}" if dot and stem else f"{base}-{n}"
        n += 1
    used.add(rel)
    return rel


def _carry(base: Path, root: Path, rel: str, problems: list[Problem]) -> None:
    """Carry one copy from an earlier packet, refusing paths that leave it."""
    src, dst = base / rel, root / rel
    try:
        src.resolve().relative_to(base.resolve())
    except ValueError:
        problems.append(Problem(f"{rel}: not inside {base}; not carried over", where=rel))
        return
    if not src.exists() or src.is_symlink():
        problems.append(Problem(f"{rel}: missing from {base}; not carried over", where=rel))
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        _copy_tree(src, dst)
    else:
        _copy_file(src, dst)


class _CopyMeter:
    """Bytes copied so far against the inputs' recorded sizes, for a progress callback."""

    def __init__(self, progress: Callable[[int, int], None] | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0

    def add(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


def _copy_input(kind: str, src: Path, dst: Path, meter: _CopyMeter | None = None
                ) -> tuple[str, str | None]:
    """Copy one file input: (sha256 of the bytes read, a note when the copy differs). An
    OTLP export's prompt token ids (`--enable-token-trace` spans) are replaced in the copy;
    the readers never keep them either, so the copy judges the same."""
    if kind != "otel":
        return _copy_file(src, dst, meter), None
    data = src.read_bytes()
    stripped, n = strip_token_ids(data)
    if not n:
        return _copy_file(src, dst, meter), None
    _write_bytes(dst, stripped)
    if meter is not None:
        meter.add(len(data))
    return (hashlib.sha256(data).hexdigest(),
            f"copy differs from the original: {n} token-id attribute(s) removed "
            "(prompt token ids are user content); sha256 is the original's")


def _write_bytes(dst: Path, data: bytes) -> None:
    with open(dst, "wb") as fo:
        fo.write(data)
        fo.flush()
        os.fsync(fo.fileno())


def _copy_file(src: Path, dst: Path, meter: _CopyMeter | None = None) -> str:
    """Copy bytes, fsync, and return the sha256 of what was written."""
    h = hashlib.sha256()
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for block in iter(lambda: fi.read(1 << 20), b""):
            h.update(block)
            fo.write(block)
            if meter is not None:
                meter.add(len(block))
        fo.flush()
        os.fsync(fo.fileno())
    return h.hexdigest()


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy a directory input (bytes only, fresh permissions). A raw `/env` capture is
    never copied: only its filtered form is written, as the HTTP reader keeps it; nor is a
    raw internal-API `/conf`, `/inference_info` or `/meta` (allow-listed / redacted)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_symlink():
            continue
        if entry.is_dir():
            _copy_tree(entry, target)
        elif entry.name.startswith("GET_env.body"):
            try:
                env = msgspec.json.decode(entry.read_bytes())
            except msgspec.DecodeError:
                env = {}
            kept, dropped = filter_env(env)
            _write_json(dst / "GET_env.body.filtered.json",
                        {"_inferguard_note": f"{dropped} keys dropped, secrets redacted", **kept})
        elif (safe := filtered_capture(entry.name, entry.read_bytes())) is not None:
            (dst / safe[0]).write_bytes(safe[1])
        else:
            _copy_file(entry, target)


def _write_json(path: Path, obj: Any) -> None:
    data = msgspec.json.format(msgspec.json.encode(obj), indent=1)
    with open(path, "wb") as f:
        f.write(data + b"\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def source_for_url(url: str, data: bytes) -> EvidenceSource:
    return EvidenceSource.of_bytes(data, url=url)
