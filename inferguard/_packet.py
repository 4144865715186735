"""`Packet`: everything one run left behind — copied, fingerprinted, parsed — plus what the
operator declared about the run.

On disk a packet is a directory:

    packet.json                      manifest: schema, settings, inputs (hashes), evidence index
    inputs/<kind>/<file>             copies of what each reader accepted (`evidence/_copies`):
                                     byte-identical, or redacted (logs, launch files, capture
                                     directories), or scrubbed (traces: `lct/_scrub`)
    metrics/<evidence file>.json     evidence per kind, named as the product page names them

`Packet.write` is atomic (a temporary sibling directory named with the writer's PID, which
the next write removes if that writer died, then one rename) and never replaces an existing
directory unless asked to, and then only a packet. Inputs are never modified: they are read
and copied. What a packet may contain: `docs/reliability.md`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from inferguard._files import open_regular_fd, sha256_file
from inferguard._modes import MODES as MODES
from inferguard._version import __version__
from inferguard.evidence._capture import read_capped
from inferguard.evidence._controller import filtered_capture
from inferguard.evidence._copies import (
    CAPTURE_KINDS,
    REDACTED_COPY_KINDS,
    capture_copy,
    redacted_lines,
)
from inferguard.evidence._model import (
    EVIDENCE_KINDS,
    Evidence,
    EvidenceKind,
    EvidenceSource,
    Problem,
)
from inferguard.evidence._otel import strip_token_ids
from inferguard.evidence._readers import decode_evidence, read_evidence, read_evidence_all
from inferguard.evidence._redact import Tally, filter_env, redact_text

if TYPE_CHECKING:
    from pathlib import Path

PACKET_SCHEMA = "inferguard.packet/1"
EVIDENCE_SET_SCHEMA = "inferguard.evidence_set/1"
# Where a packet keeps the compat report written with it (collect-lmcache).
REPORT_FILE = "metrics/lmcache_compat_report.json"

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
    # A redacted copy: its own hash, and what was redacted (names and counts, never values).
    copy_sha256: str | None = None
    redacted: dict[str, int] = msgspec.field(default_factory=dict)


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
              include_raw_trace: bool = False,
              fingerprint_key: bytes | None = None,
              progress: Callable[[int, int], None] | None = None) -> Path:
        """Write the packet atomically: copies of the inputs, evidence files, manifest.

        `blobs` holds the bytes of inputs that are not files (live scrapes, by URL);
        `extra_files` maps packet-relative paths to objects written as JSON (reports);
        `carry_from` is an earlier packet directory whose copies (inputs already
        `copied_as`) are carried over byte for byte, under the same relative paths.
        Refuses an existing directory unless `overwrite`; then the old packet is replaced
        by one rename and removed only after the new one is in place — and only when it is
        a packet. A trace is copied scrubbed (`lct/_scrub`: chunk hashes replaced by
        fingerprints keyed with `fingerprint_key`, else a fresh random key that is never
        written); the raw bytes only with `include_raw_trace`. `progress(done, total)`
        is told the bytes of file inputs copied so far (big traces take seconds)."""
        import secrets
        import shutil
        import tempfile
        from pathlib import Path

        dest = Path(directory)
        check_output_dir(dest, overwrite=overwrite)
        dest.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(dest)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(dest)}{os.getpid()}-",
                                    dir=dest.parent))
        try:
            inputs, evidence, problems = self._copy_inputs(
                tmp, blobs or {}, None if carry_from is None else Path(carry_from), progress,
                raw_trace=include_raw_trace,
                key=fingerprint_key if fingerprint_key is not None else secrets.token_bytes(32))
            files = self._write_evidence(tmp, evidence)
            for rel, obj in (extra_files or {}).items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                _write_json(tmp / rel, obj)
            manifest = Manifest(PACKET_SCHEMA, self.created_at or _now(), __version__,
                                self.settings, inputs, files, self.problems + problems)
            _write_json(tmp / "packet.json", manifest)
            _fsync_dir(tmp)
            if dest.exists():
                old = dest.with_name(f"{_temp_prefix(dest)}{os.getpid()}-old")
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
                     *, raw_trace: bool = False, key: bytes = b""
                     ) -> tuple[list[PacketInput], list[Evidence], list[Problem]]:
        """Copy each file input (hash-checked against what was parsed)."""
        from pathlib import Path

        meter = _CopyMeter(progress, sum(
            i.size or 0 for i in self.inputs
            if i.copied_as is None and i.original not in blobs and i.kind not in NOT_COPIED))
        out: list[PacketInput] = []
        problems: list[Problem] = []
        evidence = list(self.evidence)
        used: set[str] = {i.copied_as for i in self.inputs if i.copied_as is not None}
        for item in self.inputs:
            if item.copied_as is not None and carry_from is not None:
                scrubbed = _carry(carry_from, root, item.copied_as, problems, item.kind,
                                  raw_trace=raw_trace, key=key)
                out.append(item if scrubbed is None else msgspec.structs.replace(
                    item, copy_sha256=scrubbed, note="scrubbed copy (carried from the base "
                    "packet): chunk hashes replaced by keyed fingerprints (the key is not "
                    "kept); the original is referenced by path, size and sha256"))
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
            if item.copied_as is not None or not (src.exists() or src.is_symlink()):
                out.append(item)
                continue
            if item.kind in NOT_COPIED:
                out.append(msgspec.structs.replace(item, note=NOT_COPIED[item.kind]))
                continue
            if src.is_dir():
                if item.kind not in CAPTURE_KINDS:
                    out.append(msgspec.structs.replace(
                        item, note="not copied: a directory, which this reader does not read"))
                    continue
                rel = _unique(f"inputs/{item.kind}/{src.name}", used)
                cc = capture_copy(item.kind, src)
                (root / rel).mkdir(parents=True, exist_ok=True)
                for name, data in cc.files:
                    _write_bytes(root / rel / name, data)
                note = (f"only the captures the reader accepts were copied; left out: "
                        f"{', '.join(cc.left_out[:20])}"
                        + (f" and {len(cc.left_out) - 20} more" if len(cc.left_out) > 20 else "")
                        if cc.left_out else None)
                out.append(msgspec.structs.replace(item, copied_as=rel, note=note,
                                                   redacted=cc.redacted))
                evidence = _mark_copied(evidence, item.original, rel)
                continue
            if item.sha256 is None:
                out.append(msgspec.structs.replace(
                    item, note="not copied: the reader did not accept this file (see the "
                               "evidence's problems)"))
                continue
            rel = _unique(f"inputs/{item.kind}/{src.name}", used)
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            cap = item.size if item.size is not None else 0
            if item.kind == "trace" and not raw_trace:
                try:
                    from inferguard.lct._scrub import scrub_trace  # writing packets only

                    with _open_regular(src):
                        pass
                    rep = scrub_trace(src, target, key, redact_config=redact_text)
                except (OSError, ValueError) as exc:
                    target.unlink(missing_ok=True)
                    out.append(msgspec.structs.replace(item, note=f"not copied: {exc}"))
                    continue
                meter.add(item.size or 0)
                out.append(msgspec.structs.replace(
                    item, copied_as=rel, copy_sha256=sha256_file(target),
                    redacted={"chunk_hash": rep.hashes_replaced,
                              "token_ids": rep.token_ids_zeroed,
                              **({"sm_config_json": 1} if rep.config_redacted else {})},
                    note=(f"scrubbed copy: {rep.records} records, chunk hashes replaced by "
                          "keyed fingerprints (the key is not kept), token ids zeroed"
                          + (f", {rep.frames_dropped} undecodable frames dropped"
                             if rep.frames_dropped else "")
                          + "; the original is referenced by path, size and sha256")))
                evidence = _mark_copied(evidence, item.original, rel)
                continue
            try:
                if item.kind in REDACTED_COPY_KINDS:
                    digest, copy_digest, redacted = _copy_redacted(src, target, cap, meter)
                elif item.kind == "otel":
                    digest, copy_digest, redacted = _copy_otel(src, target, cap, meter)
                else:
                    digest = copy_digest = _copy_file(src, target, cap, meter)
                    redacted = {}
            except (OSError, ValueError) as exc:
                target.unlink(missing_ok=True)
                problems.append(Problem(f"{src}: not copied: {exc}", where=str(src)))
                out.append(msgspec.structs.replace(item, note=f"not copied: {exc}"))
                continue
            if digest != item.sha256:
                problems.append(Problem(f"{src} changed while the packet was written "
                                        f"(parsed sha256 {item.sha256[:12]}…, copied "
                                        f"{digest[:12]}…)", where=str(src)))
            note = ("copy differs from the original: "
                    f"{redacted.get('token_ids', 0)} token-id attribute(s) removed (prompt "
                    "token ids are user content); sha256 is the original's"
                    if item.kind == "otel" and copy_digest != digest else
                    "copied redacted, line by line" if copy_digest != digest else
                    "raw copy (--include-raw-trace): holds the raw chunk hashes"
                    if item.kind == "trace" else None)
            out.append(msgspec.structs.replace(
                item, copied_as=rel, sha256=digest, size=item.size,
                copy_sha256=copy_digest if copy_digest != digest else None,
                redacted=redacted, note=note))
            evidence = _mark_copied(evidence, item.original, rel)
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
        from pathlib import Path

        stored = Packet.load(directory)
        root = Path(directory)
        evidence = [_reread(root, e) for e in stored.evidence]
        return msgspec.structs.replace(stored, evidence=evidence)

    @staticmethod
    def load(directory: str | os.PathLike[str]) -> Packet:
        """A packet directory exactly as written by `write()`: the stored evidence (`read`
        re-reads the copies for judging)."""
        from pathlib import Path

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


def is_packet_dir(path: Path) -> bool:
    """Does this directory hold an InferGuard packet (its manifest says so)?"""
    try:
        doc = msgspec.json.decode(_read_small(path / "packet.json"))
    except (OSError, ValueError, msgspec.DecodeError):
        return False
    return isinstance(doc, dict) and str(doc.get("schema", "")).startswith("inferguard.packet/")


def _read_small(path: Path, cap: int = 64 << 20) -> bytes:
    data, why = read_capped(path, cap, follow=False)
    if data is None or len(data) > cap:
        raise ValueError(why or "too large")
    return data


def check_output_dir(dest: Path, *, overwrite: bool) -> None:
    """Refuse an output directory that cannot be written safely, with a clear error: an
    existing one without `overwrite`, anything that is not a packet even with it (`--force`
    replaces packets only), a dangling symlink, a path through a file."""
    if dest.is_symlink() and not dest.exists():
        raise FileExistsError(f"{dest}: is a dangling symlink (to {os.readlink(dest)!r}); "
                              "refusing to write through it (remove it or choose another "
                              "--output-dir)")
    if dest.exists():
        if not overwrite:
            raise FileExistsError(f"{dest}: already exists; refusing to overwrite a packet "
                                  "(choose a new --output-dir, or pass --force)")
        if dest.is_symlink() or not dest.is_dir() or not is_packet_dir(dest):
            raise FileExistsError(f"{dest}: exists and is not an InferGuard packet (no "
                                  "packet.json manifest with an inferguard.packet schema); "
                                  "--force only replaces a packet")
    for parent in dest.parents:
        if parent.exists() and not parent.is_dir():
            raise FileExistsError(f"{dest}: {parent} is not a directory")
        if parent.exists():
            break


def _temp_prefix(dest: Path) -> str:
    return f".{dest.name}.inferguard-tmp-"


def clean_stale_temps(dest: Path) -> list[Path]:
    """Remove the temporary directories an earlier writer of `dest` left behind when it was
    killed (named `.<name>.inferguard-tmp-<pid>-…`; removed when that PID is no longer
    running). An old packet set aside by `--force` (`…-<pid>-old`) whose replacement never
    arrived is put back instead. Returns what was removed."""
    import shutil
    from pathlib import Path

    prefix = _temp_prefix(dest)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return removed
    for e in entries:
        if not e.name.startswith(prefix) or not e.is_dir(follow_symlinks=False):
            continue
        pid_s = e.name[len(prefix):].split("-", 1)[0]
        if not pid_s.isdigit() or (int(pid_s) != os.getpid() and _alive(int(pid_s))):
            continue
        if e.name.endswith("-old") and not os.path.lexists(dest):
            # killed between the two renames of --force: the old packet goes back in place
            os.rename(e.path, dest)
            continue
        shutil.rmtree(e.path, ignore_errors=True)
        removed.append(Path(e.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def _carry(base: Path, root: Path, rel: str, problems: list[Problem], kind: str = "",
           *, raw_trace: bool = False, key: bytes = b"") -> str | None:
    """Carry one copy from an earlier packet, refusing paths that leave it, under today's
    rules: a capture directory through `capture_copy` (an older packet may hold more), a
    trace scrubbed again unless raw traces were asked for (returns the scrubbed copy's
    sha256), nothing but regular files."""
    src, dst = base / rel, root / rel
    try:
        src.resolve().relative_to(base.resolve())
    except ValueError:
        problems.append(Problem(f"{rel}: not inside {base}; not carried over", where=rel))
        return None
    if not src.exists() or src.is_symlink():
        problems.append(Problem(f"{rel}: missing from {base}; not carried over", where=rel))
        return None
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if src.is_dir() and kind in CAPTURE_KINDS:
            dst.mkdir(parents=True, exist_ok=True)
            for name, data in capture_copy(kind, src).files:
                _write_bytes(dst / name, data)
        elif src.is_dir():
            _copy_tree(src, dst)
        elif kind == "trace" and not raw_trace:
            from inferguard.lct._scrub import scrub_trace

            scrub_trace(src, dst, key, redact_config=redact_text)
            return sha256_file(dst)
        else:
            _copy_file(src, dst)
    except (OSError, ValueError) as exc:
        problems.append(Problem(f"{rel}: not carried over: {exc}", where=rel))
    return None


def _mark_copied(evidence: list[Evidence], original: str, rel: str) -> list[Evidence]:
    return [msgspec.structs.replace(e, source=msgspec.structs.replace(e.source, copied_as=rel))
            if e.source.path == original and e.source.copied_as is None else e
            for e in evidence]


def _open_regular(src: Path) -> Any:
    """A regular file opened for reading (`inferguard._files`: a FIFO never hangs), else
    `NotRegularFile` (an OSError) naming what it is."""
    return os.fdopen(open_regular_fd(src), "rb")


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


def _copy_otel(src: Path, dst: Path, cap: int, meter: _CopyMeter | None = None
               ) -> tuple[str, str, dict[str, int]]:
    """An OTLP export copied with its prompt token ids (`--enable-token-trace` spans)
    replaced: (sha256 of what was read, sha256 of what was written, what was removed). The
    readers never keep token ids either, so the copy judges the same. OTel inputs are capped
    (docs/reliability.md), so the capped bytes are held whole."""
    with _open_regular(src) as fi:
        data = fi.read(cap if cap else -1)
    stripped, n = strip_token_ids(data)
    _write_bytes(dst, stripped)
    if meter is not None:
        meter.add(len(data))
    return (hashlib.sha256(data).hexdigest(), hashlib.sha256(stripped).hexdigest(),
            {"token_ids": n} if n else {})


def _copy_file(src: Path, dst: Path, cap: int | None = None,
               meter: _CopyMeter | None = None) -> str:
    """Copy at most `cap` bytes of a regular file (the bytes its reader accepted), fsync,
    and return the sha256 of what was written."""
    h = hashlib.sha256()
    left = cap if cap is not None else 1 << 62
    with _open_regular(src) as fi, open(dst, "wb") as fo:
        while left > 0:
            block = fi.read(min(left, 1 << 20))
            if not block:
                break
            left -= len(block)
            h.update(block)
            fo.write(block)
            if meter is not None:
                meter.add(len(block))
        fo.flush()
        os.fsync(fo.fileno())
    return h.hexdigest()


def _copy_redacted(src: Path, dst: Path, cap: int, meter: _CopyMeter | None = None
                   ) -> tuple[str, str, dict[str, int]]:
    """A text input copied line by line with every line redacted: (sha256 of what was read,
    sha256 of what was written, what was redacted)."""
    tally = Tally()
    hi, ho = hashlib.sha256(), hashlib.sha256()
    with open(dst, "wb") as fo:
        for line, clean in redacted_lines(src, cap, tally):
            hi.update(line)
            ho.update(clean)
            fo.write(clean)
            if meter is not None:
                meter.add(len(line))
        fo.flush()
        os.fsync(fo.fileno())
    return hi.hexdigest(), ho.hexdigest(), tally.as_dict()




def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy a directory input (bytes only, fresh permissions). A raw `/env` capture is
    never copied: only its filtered form is written, as the HTTP reader keeps it; nor is a
    raw internal-API `/conf`, `/inference_info` or `/meta` (allow-listed / redacted)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
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
