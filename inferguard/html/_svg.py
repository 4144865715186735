"""Inline SVG charts, drawn on the Python side: no dependency, no script, no network.

Each chart is a `<figure>` with an SVG (`role="img"`, a `<title>` and a `<desc>`), a caption,
and the plotted numbers as a table (the text alternative, and the page's copy of the data).
Values arrive as given (the verdict's series); the only arithmetic here maps them to pixels
and picks round tick values. Colours are the Okabe-Ito set (distinguishable with the common
colour-vision deficiencies), and each series also differs by dash or marker, never by colour
alone. Every axis is labelled with its unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "4 4", "1 2", "10 4")
W, H = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 48


def num(x: float | int | None) -> str:
    """A number as the page prints it (the value itself, at most 6 significant digits)."""
    if x is None:
        return "-"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}" if abs(x) >= 1e4 else f"{int(x)}"
    return f"{x:.6g}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _frame(title: str, desc: str, cid: str, body: str, x_label: str, y_label: str,
           xt: list[tuple[float, str]], yt: list[tuple[float, str]], legend: str) -> str:
    x0, x1, y0, y1 = LEFT, W - RIGHT, H - BOTTOM, TOP
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
             f'aria-labelledby="{cid}-t {cid}-d" class="plot">',
             f'<title id="{cid}-t">{escape(title)}</title>',
             f'<desc id="{cid}-d">{escape(desc)}</desc>',
             f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="#fff" '
             'stroke="#767676"/>']
    for px, label in xt:
        parts.append(f'<line x1="{px:.1f}" y1="{y0}" x2="{px:.1f}" y2="{y0 + 4}" '
                     'stroke="#767676"/>')
        parts.append(f'<text x="{px:.1f}" y="{y0 + 16}" text-anchor="middle" '
                     f'class="tick">{escape(label)}</text>')
    for py, label in yt:
        parts.append(f'<line x1="{x0}" y1="{py:.1f}" x2="{x1}" y2="{py:.1f}" '
                     'stroke="#e0e0e0"/>')
        parts.append(f'<text x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end" '
                     f'class="tick">{escape(label)}</text>')
    parts.append(body)
    parts.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{H - 8}" text-anchor="middle" '
                 f'class="axis">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{(y0 + y1) / 2:.1f}" text-anchor="middle" class="axis" '
                 f'transform="rotate(-90 14 {(y0 + y1) / 2:.1f})">{escape(y_label)}</text>')
    parts.append("</svg>")
    return "".join(parts) + legend


def _legend(names: Sequence[str], markers: bool = False) -> str:
    items = []
    for i, n in enumerate(names):
        c, d = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        sw = (f'<svg width="28" height="10" aria-hidden="true"><line x1="0" y1="5" x2="28" '
              f'y2="5" stroke="{c}" stroke-width="{6 if markers else 2}" '
              f'stroke-dasharray="{d if not markers else ""}"/></svg>')
        items.append(f"<li>{sw} {escape(n)}</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> str:
    """An HTML table of already-formatted cells (escaped here)."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def figure(cid: str, title: str, caption: str, svg: str, data_table: str) -> str:
    return (f'<figure id="{cid}" class="chart"><h3>{escape(title)}</h3>{svg}'
            f'<figcaption>{escape(caption)}'
            f'</figcaption><details><summary>Data table</summary>{data_table}</details>'
            "</figure>")


def empty(cid: str, caption: str, why: str) -> str:
    """A chart with nothing to draw says so, and why (never a blank box)."""
    return (f'<figure id="{cid}" class="chart empty"><h3>{escape(caption)}</h3>'
            f'<p class="none">{escape(why)}</p></figure>')


def lines(cid: str, title: str, x: Sequence[float], series: Sequence[tuple[str, Sequence[float]]],
          x_label: str, y_label: str, caption: str) -> str:
    """Lines of y over a shared x (one per series), with the values as a table."""
    xmax = max(x) if x else 1.0
    xmin = min(x) if x else 0.0
    ymax = max((v for _, ys in series for v in ys), default=1.0) or 1.0
    yt = _ticks(0.0, ymax)
    xt = _ticks(xmin, xmax)
    top = max(yt[-1], ymax)
    span = (xmax - xmin) or 1.0

    def px(v: float) -> float:
        return LEFT + (v - xmin) / span * (W - RIGHT - LEFT)

    def py(v: float) -> float:
        return (H - BOTTOM) - v / top * (H - BOTTOM - TOP)

    body = []
    for i, (name, ys) in enumerate(series):
        c, d = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        pts = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, ys, strict=False))
        body.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" '
                    f'stroke-dasharray="{d}" points="{pts}"><title>{escape(name)}</title>'
                    "</polyline>")
        if len(x) <= 40:
            body += [f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2.5" fill="{c}"/>'
                     for a, b in zip(x, ys, strict=False)]
    desc = f"{title}: {len(series)} series over {len(x)} points; " + "; ".join(
        f"{n}: peak {num(max(ys, default=0))}" for n, ys in series)
    svg = _frame(title, desc, cid, "".join(body), x_label, y_label,
                 [(px(v), num(v)) for v in xt if xmin <= v <= xmax],
                 [(py(v), num(v)) for v in yt], _legend([n for n, _ in series]))
    rows = [[num(a)] + [num(ys[j]) if j < len(ys) else "-" for _, ys in series]
            for j, a in enumerate(x)]
    return figure(cid, title, caption, svg,
                  table([x_label] + [f"{n} ({y_label})" for n, _ in series], rows, title))


def bars(cid: str, title: str, categories: Sequence[str],
         series: Sequence[tuple[str, Sequence[float]]], x_label: str, y_label: str,
         caption: str) -> str:
    """Grouped vertical bars: one group per category, one bar per series."""
    ymax = max((v for _, ys in series for v in ys), default=1.0) or 1.0
    yt = _ticks(0.0, ymax)
    top = max(yt[-1], ymax)
    n, k = max(len(categories), 1), max(len(series), 1)
    gw = (W - RIGHT - LEFT) / n
    bw = gw * 0.8 / k

    def py(v: float) -> float:
        return (H - BOTTOM) - v / top * (H - BOTTOM - TOP)

    body = []
    for i, (name, ys) in enumerate(series):
        c = PALETTE[i % len(PALETTE)]
        for j, v in enumerate(ys):
            x = LEFT + j * gw + gw * 0.1 + i * bw
            body.append(f'<rect x="{x:.1f}" y="{py(v):.1f}" width="{bw:.1f}" '
                        f'height="{(H - BOTTOM) - py(v):.1f}" fill="{c}" '
                        f'stroke="#000" stroke-width="{0.5 if i % 2 else 0}">'
                        f"<title>{escape(name)} {escape(categories[j])}: {num(v)}</title>"
                        "</rect>")
    xt = [(LEFT + (j + 0.5) * gw, c) for j, c in enumerate(categories)]
    desc = f"{title}: " + "; ".join(
        f"{name}: " + ", ".join(f"{c}={num(v)}" for c, v in zip(categories, ys, strict=False))
        for name, ys in series)
    svg = _frame(title, desc, cid, "".join(body), x_label, y_label, xt,
                 [(py(v), num(v)) for v in yt], _legend([n for n, _ in series], markers=True))
    rows = [[c] + [num(ys[j]) for _, ys in series] for j, c in enumerate(categories)]
    return figure(cid, title, caption, svg,
                  table([x_label] + [f"{n} ({y_label})" for n, _ in series], rows, title))


def strips(cid: str, title: str, rows: Sequence[tuple[str, int, Sequence[float]]],
           x_max: float, x_label: str, caption: str) -> str:
    """One row per kind: a mark at each time it happened (rows: label, count, times)."""
    rh = 26
    height = TOP + BOTTOM + rh * max(len(rows), 1)
    left = 220
    xt = _ticks(0.0, x_max or 1.0)
    top = max(xt[-1], x_max) or 1.0

    def px(v: float) -> float:
        return left + v / top * (W - RIGHT - left)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" role="img" '
             f'aria-labelledby="{cid}-t {cid}-d" class="plot">',
             f'<title id="{cid}-t">{escape(title)}</title>',
             f'<desc id="{cid}-d">{escape(title)}: ' + escape("; ".join(
                 f"{n}: {c} in all, {len(ts)} shown" for n, c, ts in rows)) + "</desc>"]
    y_axis = height - BOTTOM
    for i, (name, count, ts) in enumerate(rows):
        y = TOP + i * rh + rh / 2
        c = PALETTE[i % len(PALETTE)]
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                     f"{escape(name)} ({num(count)})</text>")
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" '
                     'stroke="#e0e0e0"/>')
        parts += [f'<rect x="{px(t) - 1.5:.1f}" y="{y - 8:.1f}" width="3" height="16" '
                  f'fill="{c}"><title>{escape(name)} at {num(t)} s</title></rect>' for t in ts]
    for v in xt:
        parts.append(f'<line x1="{px(v):.1f}" y1="{y_axis}" x2="{px(v):.1f}" '
                     f'y2="{y_axis + 4}" stroke="#767676"/>')
        parts.append(f'<text x="{px(v):.1f}" y="{y_axis + 16}" text-anchor="middle" '
                     f'class="tick">{num(v)}</text>')
    parts.append(f'<line x1="{left}" y1="{y_axis}" x2="{W - RIGHT}" y2="{y_axis}" '
                 'stroke="#767676"/>')
    parts.append(f'<text x="{(left + W - RIGHT) / 2:.1f}" y="{height - 8}" '
                 f'text-anchor="middle" class="axis">{escape(x_label)}</text></svg>')
    data = table(["kind", "count", f"times shown ({x_label})"],
                 [[n, num(c), ", ".join(num(t) for t in ts)] for n, c, ts in rows], title)
    return figure(cid, title, caption, "".join(parts), data)


def waterfall(cid: str, title: str, steps: Sequence[tuple[str, int, float, float | None]],
              caption: str) -> str:
    """One bar per span (label, depth, start ms, duration ms or None when open)."""
    rh = 22
    height = TOP + BOTTOM + rh * max(len(steps), 1)
    left = 240
    end = max((s + (d or 0.0) for _, _, s, d in steps), default=1.0) or 1.0
    xt = _ticks(0.0, end)
    top = max(xt[-1], end)

    def px(v: float) -> float:
        return left + v / top * (W - RIGHT - left)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" role="img" '
             f'aria-labelledby="{cid}-t {cid}-d" class="plot">',
             f'<title id="{cid}-t">{escape(title)}</title>',
             f'<desc id="{cid}-d">{escape(title)}: ' + escape("; ".join(
                 f"{n} starts at {num(s)} ms, lasts {num(d)} ms" for n, _, s, d in steps))
             + "</desc>"]
    y_axis = height - BOTTOM
    for i, (name, depth, start, dur) in enumerate(steps):
        y = TOP + i * rh
        c = PALETTE[depth % len(PALETTE)]
        parts.append(f'<text x="{8 + 12 * min(depth, 8)}" y="{y + 15}" class="tick">'
                     f"{escape(name)}</text>")
        w = max(px(start + (dur or 0.0)) - px(start), 1.5)
        dash = ' stroke-dasharray="3 2" fill-opacity="0.3"' if dur is None else ""
        parts.append(f'<rect x="{px(start):.1f}" y="{y + 4}" width="{w:.1f}" height="14" '
                     f'fill="{c}" stroke="{c}"{dash}><title>{escape(name)}: {num(dur)} ms'
                     "</title></rect>")
    for v in xt:
        parts.append(f'<line x1="{px(v):.1f}" y1="{TOP}" x2="{px(v):.1f}" y2="{y_axis + 4}" '
                     'stroke="#e0e0e0"/>')
        parts.append(f'<text x="{px(v):.1f}" y="{y_axis + 16}" text-anchor="middle" '
                     f'class="tick">{num(v)}</text>')
    parts.append(f'<text x="{(left + W - RIGHT) / 2:.1f}" y="{height - 8}" '
                 'text-anchor="middle" class="axis">time since the request\'s first span '
                 "started (ms)</text></svg>")
    data = table(["span", "depth", "start (ms)", "duration (ms)"],
                 [[n, str(dp), num(s), num(d) if d is not None else "open"]
                  for n, dp, s, d in steps], title)
    return figure(cid, title, caption, "".join(parts), data)
