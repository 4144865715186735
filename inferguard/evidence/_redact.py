"""The one redaction home: what counts as a secret, and how it is removed before anything
reaches a packet, a report or a copy.

Every reader that keeps text an operator did not write for InferGuard (process environment,
`/config`, `/conf` and `/inference_info` answers, capture bodies, launch flags, log and
launch copies, base URLs) goes through here. Two rules, always both:

- by key: a key (env variable, JSON key, flag name, `key=value` pair) whose name looks like a
  credential (`SECRET`, `TOKEN`, `PASSW`, `AUTH`, `COOKIE`, `API_KEY`, `*_KEY`, ...) has its
  value replaced by `<redacted>` (`token` but not `tokens`: `max_num_batched_tokens` is a
  count, not a credential);
- by value shape, in any string: URL userinfo (`scheme://user:pass@host`), `Bearer`/`Basic`/
  `Token` credentials, `Authorization: ...` headers, PEM private keys, and the well-known
  token shapes (`hf_…`, `sk-…`, `ghp_…`, `AKIA…`, JWTs).

What was redacted is recorded in a `Tally` — rule names (and key names, which are not
secret) with counts, never a value. Redacting redacted text changes nothing, and counts the
same placeholders again, so a packet's redacted copy reads back to the same facts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from inferguard import _lazy

REDACTED = "<redacted>"
_SECRET_KEY = _lazy.pattern(
    r"(secret|token(?!s)|passw|credential|auth|cookie|private|api[-_]?key|_key$|^key$|"
    r"signature|session[-_]?id)",
    re.IGNORECASE)
# Keys of a process environment worth keeping; everything else is dropped (counted only).
_ENV_KEEP = _lazy.pattern(
    r"^(LMCACHE_|VLLM_|SGLANG_|OTEL_|PYTHONHASHSEED$|PROMETHEUS_MULTIPROC_DIR$|DO_NOT_TRACK$|"
    r"CUDA_VISIBLE_DEVICES$|HF_HUB_OFFLINE$|TRANSFORMERS_OFFLINE$|UCX_|NIXL_)")
MAX_DEPTH = 64
MAX_NAMES = 200  # distinct names a tally keeps; the rest are counted under "other"

_P = re.escape(REDACTED)
# (rule name, pattern, replacement). Each pattern also matches its own replacement, so
# counts are the same when a redacted copy is read again.
_SHAPES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("private_key", _lazy.pattern(
        r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
        re.DOTALL), r"-----BEGIN \1PRIVATE KEY-----" + REDACTED + r"-----END \1PRIVATE KEY-----"),
    ("url_userinfo", _lazy.pattern(r"(?P<s>\b[a-z][a-z0-9+.-]*://)[^/@\s\"'<>]*(?:" + _P
                                + r")?[^/@\s\"'<>]*@", re.IGNORECASE), r"\g<s>" + REDACTED + "@"),
    ("authorization", _lazy.pattern(
        r"(?P<k>\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token|"
        r"digest|negotiate)\s+)?(?:" + _P + r"|[^\s,;&\"']+)", re.IGNORECASE),
     r"\g<k>" + REDACTED),
    ("bearer", _lazy.pattern(r"(?P<k>\b(?:bearer|basic)\s+)(?:" + _P
                          + r"|[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE), r"\g<k>" + REDACTED),
    ("token_shape", _lazy.pattern(
        r"\b(?:hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|"
        r"xox[abpr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|"
        r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})\b"), REDACTED),
)
# `name=value` / `name: value` / `--flag value` in free text: redacted when `name` is secret.
_PAIR = _lazy.pattern(
    r"(?P<k>(?P<dash>--)?(?P<name>[A-Za-z_][A-Za-z0-9_.-]{0,80})[\"']?"
    r"(?(dash)(?:=|\s+)|\s*(?:=|:\s)\s*)[\"']?)(?P<v>" + _P + r"|[^\s,;&\"'<>]+)")


class Tally:
    """What one read redacted: rule and key names with counts (never a value)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, name: str, n: int = 1) -> None:
        if n <= 0:
            return
        if name not in self.counts and len(self.counts) >= MAX_NAMES:
            name = "other"
        self.counts[name] = self.counts.get(name, 0) + n

    def merge(self, other: dict[str, int]) -> None:
        for k, v in other.items():
            self.add(k, v)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def is_secret_key(key: str) -> bool:
    """Does this key (an env variable, a config key, a flag name) name a credential?"""
    return _SECRET_KEY.search(key) is not None


# Cheap tests that must hold before a rule's regex can match (most text matches none).
_NEEDS: dict[str, Callable[[str, str], bool]] = {
    "private_key": lambda s, low: "PRIVATE KEY" in s,
    "url_userinfo": lambda s, low: "@" in s and "://" in s,
    "authorization": lambda s, low: "authorization" in low,
    "bearer": lambda s, low: "bearer" in low or "basic" in low,
    "token_shape": lambda s, low: any(t in s for t in ("hf_", "sk-", "gh", "xox", "AKIA",
                                                        "eyJ")),
}
# Words one of which any secret key name contains (a superset test, done with `in`).
_SECRET_WORDS = ("secret", "token", "passw", "credential", "auth", "cookie", "private", "key",
                 "signature", "session")


def redact_text(value: str, tally: Tally | None = None) -> str:
    """A string with every credential shape and secret `name=value` pair redacted."""
    low = value.lower()
    for name, rx, repl in _SHAPES:
        if not _NEEDS[name](value, low):
            continue
        value, n = rx.subn(repl, value)
        if tally is not None:
            tally.add(name, n)
    if ("=" in value or ":" in value or "--" in value) and any(w in low for w in _SECRET_WORDS):
        def pair(m: re.Match[str]) -> str:
            if not is_secret_key(m.group("name")):
                return m.group(0)
            if tally is not None:
                tally.add(f"key:{m.group('name')}")
            return m.group("k") + REDACTED
        value = _PAIR.sub(pair, value)
    return value


def redact(obj: Any, depth: int = 0, tally: Tally | None = None) -> Any:
    """A JSON value with secret-looking keys' values and credential shapes removed (bounded
    depth: anything nested deeper than 64 levels becomes None)."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = str(k)
            if is_secret_key(key) and v is not None and v != "" and not isinstance(v, bool):
                if tally is not None:
                    tally.add(f"key:{key}")
                out[key] = REDACTED
            else:
                out[key] = redact(v, depth + 1, tally)
        return out
    if isinstance(obj, list):
        return [redact(v, depth + 1, tally) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj, tally)
    return obj


def filter_env(env: Any, tally: Tally | None = None) -> tuple[dict[str, str], int]:
    """Keep LMCache-relevant variables, redact secret-looking ones by name and every value
    by shape (a token inside `OTEL_EXPORTER_OTLP_HEADERS`); count the dropped rest."""
    if not isinstance(env, dict):
        return {}, 0
    kept: dict[str, str] = {}
    for k, v in env.items():
        key = str(k)
        if not _ENV_KEEP.match(key):
            continue
        if is_secret_key(key):
            if tally is not None:
                tally.add(f"key:{key}")
            kept[key] = REDACTED
        else:
            kept[key] = redact_text(str(v), tally)
    return dict(sorted(kept.items())), len(env) - len(kept)


def redact_url(url: str) -> str:
    """A URL as it may be written down: without userinfo, query secrets redacted."""
    return redact_text(url)


def redact_bytes(data: bytes, tally: Tally | None = None) -> bytes:
    """Text bytes (a log or launch file line) redacted; undecodable bytes kept as they are
    where nothing was redacted (the line is returned unchanged when no rule matched)."""
    text = data.decode("utf-8", "surrogateescape")
    out = redact_text(text, tally)
    return data if out == text else out.encode("utf-8", "surrogateescape")


def _rule_anchors() -> list[list[bytes]]:
    """Per rule (the five `_SHAPES`, then the secret `name=value` pair) 4-grams a line must
    hold for the rule to change it: its `_NEEDS` test (or its regex's literals), as bytes of
    the UTF-8 line. Case-insensitive words are matched in their ASCII cases: `str.lower` maps
    no other character to these letters but KELVIN SIGN to k, and the `key`/`token` tests are
    on key names, which are ASCII (`_PAIR`)."""
    from inferguard.evidence._scan import cases, followed

    not_name = bytes(b for b in range(256) if not (chr(b).isascii() and (chr(b).isalnum()
                                                                        or chr(b) in "_.-")))
    name_end = bytes(b for b in range(256) if b not in not_name)
    return [
        [b"PRIV"],                                              # "PRIVATE KEY" in s
        followed(b"://"),                                       # "@" and "://" in s
        cases("auth"),                                          # "authorization" in low
        cases("bear") + cases("basi"),                          # "bearer"/"basic" in low
        [*followed(b"hf_"), *followed(b"sk-"), *(b"gh%c_" % c for c in b"pousr"),
         *(b"xox%c" % c for c in b"abpr"), b"AKIA", *followed(b"eyJ")],  # the regex's
        [*cases("secr"), *cases("pass"), *cases("cred"), *cases("auth"), *cases("cook"),
         *cases("priv"), *cases("sign"), *cases("sess"), *cases("apik"), *cases("pi_k"),
         *cases("pi-k"),
         *(g for k in cases("ken") for g in followed(k, b"sS")),       # token(?!s)
         *(g for k in cases("key") for g in followed(k, name_end))],   # _key$, ^key$
    ]


PAIR_RULE = 5


def _index() -> Any:
    from inferguard.evidence import _scan

    global _INDEX
    if _INDEX is None:
        _INDEX = _scan.GramIndex(_rule_anchors())
    return _INDEX


_INDEX: Any = None
# Never inside a `_PAIR` match: `_PAIR.sub` of a line is that of each part between two.
_SEPARATORS = bytes.maketrans(b";&", b",,")


def _pair_part(part: bytes) -> tuple[bytes | None, tuple[str, ...]]:
    """`_PAIR` applied to one part of a line (between separators): the part as redacted
    (None: unchanged) and the tally names in the order `redact_text` adds them."""
    text = part.decode("utf-8", "surrogateescape")
    names: list[str] = []

    def pair(m: re.Match[str]) -> str:
        if not is_secret_key(m.group("name")):
            return m.group(0)
        names.append(f"key:{m.group('name')}")
        return m.group("k") + REDACTED

    new = _PAIR.sub(pair, text)
    return (None if new == text else new.encode("utf-8", "surrogateescape")), tuple(names)


# Short parts repeat (`max_tokens=16`, `prompt_token_ids: [1`): their results are kept.
_pair_part_cached = functools.lru_cache(maxsize=4096)(_pair_part)
CACHED_PART = 256


def _pairs_at(line: bytes, offsets: list[int], base: int, tally: Tally | None) -> bytes:
    """`redact_bytes` of a line no `_SHAPES` rule changes, whose secret key names can only
    be at `offsets` (minus `base`): `_PAIR` applied to the parts between separators holding
    one (UTF-8 decoding is split there too: the separators are ASCII)."""
    marks = line.translate(_SEPARATORS)
    spans = set()
    for p in offsets:
        p -= base
        e = marks.find(b",", p)
        spans.add((marks.rfind(b",", 0, p) + 1, len(line) if e < 0 else e))
    out: list[bytes] = []
    done = 0
    for s, e in sorted(spans) if len(spans) > 1 else spans:
        part = line[s:e]
        new, names = (_pair_part_cached if len(part) <= CACHED_PART else _pair_part)(part)
        if tally is not None:
            for name in names:
                tally.add(name)
        if new is not None:
            out += (line[done:s], new)
            done = e
    if not out:
        return line
    out.append(line[done:])
    return b"".join(out)


def redact_lines(data: bytes, tally: Tally | None = None) -> bytes:
    """Every line of `data` (split after each b"\n") redacted as `redact_bytes` redacts it
    alone, in one pass over the block: only lines holding an anchor of some rule are looked
    at (most lines of a log hold none); in pieces of about 64 KiB (see `_logs.SCAN_BLOCK`)."""
    if len(data) > PIECE:
        from inferguard.evidence._scan import whole_line_pieces

        return b"".join(_redact_piece(p, tally) for p in whole_line_pieces(data, PIECE))
    return _redact_piece(data, tally)


PIECE = 64 << 10


def _redact_piece(data: bytes, tally: Tally | None) -> bytes:
    scan = data if data.endswith(b"\n") else data + b"\n"
    ends, lines = _index().line_hits(scan)
    out: list[bytes] = []
    done = 0
    for i, mask, where in lines:
        s, e = ends[i - 1] + 1 if i else 0, min(ends[i] + 1, len(data))
        line = data[s:e]
        if mask == 1 << PAIR_RULE:
            new = _pairs_at(line, where, s, tally)
        else:
            new = redact_bytes(line, tally)
        if new is not line:
            out += (data[done:s], new)
            done = e
    if not out:
        return data
    out.append(data[done:])
    return b"".join(out)
