"""Metric-name forms across exporters, and which names look like LMCache's.

The same LMCache counter reaches a lab as `lmcache:num_hit_tokens_total` (prometheus_client,
colons kept), `lmcache_num_hit_tokens_total` (OpenMetrics negotiation with underscore
escaping, OTel collectors), a family `lmcache:num_hit_tokens` (OpenMetrics), or, for the MP
server, as the OTel instrument `lmcache_mp.l1_write` with unit `chunks` that the Prometheus
exporter publishes as `lmcache_mp_l1_write_chunks_total`. `normalize_name` maps all of
these to one key; `otel_to_prometheus` reproduces the exporter's naming.
"""

from __future__ import annotations

import functools

from inferguard import _lazy

__all__ = ["lmcache_flavour", "names_match", "normalize_name", "otel_to_prometheus"]

_NON_NAME = _lazy.pattern(r"[^a-zA-Z0-9_]")
_SANITIZE = _lazy.pattern(r"[^a-zA-Z0-9:]+|_{2,}")  # the exporter's rule for names and units
_CURLY = _lazy.pattern(r"\{[!-~]*\}")

# UCUM unit -> Prometheus suffix word, as the OTel Prometheus exporter (and the OTel
# compatibility spec) map them. "1" maps to nothing.
_UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds",
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "%": "percent", "1": "",
}
# The denominator of a "x/y" unit, singular: "GB/s" -> "GB_per_second".
_PER_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week",
              "mo": "month", "y": "year"}


def normalize_name(name: str) -> str:
    """The key under which exporter spellings of one metric compare equal.

    Every byte outside `[a-zA-Z0-9_]` (the colon of `lmcache:`/`vllm:`, the dots of OTel
    names) becomes `_`, and one trailing `_total` is dropped, so the 0.0.4 counter name, the
    OpenMetrics family name and the underscore-escaped form all meet. `_created`, `_bucket`
    and the like are kept: they are different series.
    """
    return _normalized(name)


@functools.lru_cache(maxsize=1 << 14)  # a judgement normalises the same names many times
def _normalized(name: str) -> str:
    key = _NON_NAME.sub("_", name)
    return key[:-6] if key.endswith("_total") else key


def names_match(a: str, b: str) -> bool:
    """Whether two metric or family names denote the same metric (see normalize_name)."""
    return normalize_name(a) == normalize_name(b)


def _unit_word(unit: str) -> str:
    unit = _CURLY.sub("", unit)
    if unit in _UNIT_WORDS:
        return _UNIT_WORDS[unit]
    top, sep, bottom = unit.partition("/")
    if sep:
        bottom = _SANITIZE.sub("_", bottom)
        if bottom:
            top = _SANITIZE.sub("_", top)
            top = _UNIT_WORDS.get(top, top)
            bottom = _PER_WORDS.get(bottom, bottom)
            return f"{top}_per_{bottom}" if top else f"per_{bottom}"
    return _SANITIZE.sub("_", unit).strip("_")


def otel_to_prometheus(name: str, unit: str = "", *, counter: bool = False) -> str:
    """The name the OTel Prometheus exporter (0.50b0-0.61b0) gives instrument `name`.

    Runs of characters outside `[a-zA-Z0-9:]` and repeated underscores become one `_`
    (a leading digit too); the unit adds its suffix word unless the name already ends in
    it (`By` -> `_bytes`, `s` -> `_seconds`, `GB/s` -> `_GB_per_second`, `{chunks}` ->
    nothing); a monotonic counter ends in exactly one `_total`. Histograms and gauges get no
    type suffix here (`_bucket`/`_sum`/`_count` are sample names of the family).
    """
    out = _SANITIZE.sub("_", ("_" + name[1:]) if name[:1].isdigit() else name)
    if counter and out.endswith("_total"):
        out = out[:-6]
    word = _unit_word(unit)
    if word and not out.endswith("_" + word):
        out = f"{out}_{word}"
    return out + "_total" if counter else out


_FLAVOURS = (("lmcache_mp_", "lmcache_mp"), ("lmcache_blend_", "lmcache_blend"),
             ("lmcache:", "lmcache:"), ("lmcache_", "lmcache_"))


def lmcache_flavour(name: str) -> str | None:
    """Which LMCache naming a family name has: "lmcache_mp" (MP server), "lmcache_blend"
    (CacheBlend), "lmcache:" (embedded in an engine, colons kept), "lmcache_" (embedded,
    underscore-escaped, or another LMCache component); None if it is not LMCache's."""
    for prefix, flavour in _FLAVOURS:
        if name.startswith(prefix):
            return flavour
    return None
