"""Rate lines for people: one line per rate (value, numerator/denominator, window, level),
shared by `lmcache-compat`, `compare` and `watch` (the caller escapes each line once)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING as _TYPE_CHECKING

if _TYPE_CHECKING:
    from inferguard.judge._rates import Rate



def _n(v: float) -> str:
    return f"{v:.0f}" if v == int(v) else f"{v:g}"


def rate_line(r: Rate, *, window: bool = True) -> str:
    """`name  66.7%  (1024/1536)  [level]  window`, with a reset mark when one was crossed."""
    reset = f"  resets: {len(r.window.resets)}" if r.window.resets else ""
    return (f"{r.name:<36} {r.percent():>7}  ({_n(r.numerator)}/{_n(r.denominator)})  "
            f"[{r.level}]" + (f"  {r.window.label}" if window else "") + reset)


def rate_lines(rates: Sequence[Rate]) -> list[str]:
    """The rates block: grouped by target, 'rates: none' when no scrape has the families."""
    if not rates:
        return ["rates: none (no scrape holds a hit/lookup counter pair)"]
    out = ["rates:"]
    target, label = None, None
    for r in rates:
        if r.target != target:
            target, label = r.target, r.window.label
            out.append(f"  {target}, window {label}:")
        out.append(f"    {rate_line(r, window=r.window.label != label)}")
        if r.note:
            out.append(f"      note: {r.note}")
        out += [f"      reset: {x}" for x in r.window.resets]
    return out
