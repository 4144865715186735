"""The one redaction home: what counts as a secret, and how it is removed before anything
reaches a packet, a report or a copy.

Every reader that keeps text an operator did not write for InferGuard (process environment,
`/conf` and `/inference_info` answers, launch flags) goes through here. A key is secret when
its name looks like a credential (`SECRET`, `TOKEN`, `PASSW`, `AUTH`, `API_KEY`, `*_KEY`, ...);
its value is replaced by `REDACTED` (`token` but not `tokens`: `max_num_batched_tokens` is
a count, not a credential). URL userinfo (`scheme://user:pass@host`) is removed from
any string value. The patterns were three near-copies in the HTTP, controller and launch
readers; their union is kept here, so nothing that was redacted before is kept now.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"
_SECRET_KEY = re.compile(
    r"(secret|token(?!s)|passw|credential|auth|cookie|private|api[-_]?key|_key$|^key)",
    re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
# Keys of a process environment worth keeping; everything else is dropped (counted only).
_ENV_KEEP = re.compile(
    r"^(LMCACHE_|VLLM_|SGLANG_|OTEL_|PYTHONHASHSEED$|PROMETHEUS_MULTIPROC_DIR$|DO_NOT_TRACK$|"
    r"CUDA_VISIBLE_DEVICES$|HF_HUB_OFFLINE$|TRANSFORMERS_OFFLINE$|UCX_|NIXL_)")
MAX_DEPTH = 64


def is_secret_key(key: str) -> bool:
    """Does this key (an env variable, a config key, a flag name) name a credential?"""
    return _SECRET_KEY.search(key) is not None


def redact_text(value: str) -> str:
    """A string with URL credentials removed (`redis://user:pass@h` → `redis://<redacted>@h`)."""
    if "@" not in value:
        return value
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", value)


def redact(obj: Any, depth: int = 0) -> Any:
    """A JSON value with secret-looking keys' values and URL credentials removed (bounded
    depth: anything nested deeper than 64 levels becomes None)."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(obj, dict):
        return {str(k): REDACTED if is_secret_key(str(k)) else redact(v, depth + 1)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, depth + 1) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def filter_env(env: Any) -> tuple[dict[str, str], int]:
    """Keep LMCache-relevant variables, redact secret-looking ones; count the dropped rest."""
    if not isinstance(env, dict):
        return {}, 0
    kept: dict[str, str] = {}
    for k, v in env.items():
        key = str(k)
        if not _ENV_KEEP.match(key):
            continue
        kept[key] = REDACTED if is_secret_key(key) else redact_text(str(v))
    return dict(sorted(kept.items())), len(env) - len(kept)
