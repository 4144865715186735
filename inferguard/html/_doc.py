"""Any result document (a `compare` or `fleet` result, a diagnosis) as one self-contained
page: its scalar fields as a list, each list of records as a table, nested records as their
own sections, and the document's JSON embedded. Same rules as the verdict page: no script,
nothing fetched, every number a value of the embedded JSON.
"""

from __future__ import annotations

from html import escape
from typing import Any

import msgspec

from inferguard._version import __version__
from inferguard.html import _svg
from inferguard.html._style import CSS, plain
from inferguard.html._svg import num

MAX_DEPTH = 4


def _cell(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return "-" if x is None else str(x).lower()
    if isinstance(x, int | float):
        return num(x)
    if isinstance(x, dict):
        if isinstance(x.get("label"), str):  # a window or a target names itself
            return str(x["label"])
        return "; ".join(f"{k}: {_cell(v)}" for k, v in x.items()
                         if v not in (None, [], {}, ""))
    if isinstance(x, list):
        return ", ".join(_cell(v) for v in x)
    return str(x)


def _section(name: str, value: Any, depth: int, path: str) -> str:
    sid = "doc-" + path.replace(".", "-")
    title = escape(name.replace("_", " "))
    h = min(depth + 2, 6)
    if isinstance(value, dict) and depth < MAX_DEPTH:
        scalars = {k: x for k, x in value.items() if not isinstance(x, dict | list)}
        nested = {k: x for k, x in value.items() if isinstance(x, dict | list)}
        dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(_cell(x))}</dd>"
                     for k, x in scalars.items())
        inner = "".join(_section(k, x, depth + 1, f"{path}.{k}") for k, x in nested.items())
        return (f'<section id="{escape(sid)}"><h{h}>{title}</h{h}>'
                + (f"<dl>{dl}</dl>" if dl else "") + inner + "</section>")
    if isinstance(value, list):
        if not value:
            return (f'<section id="{escape(sid)}"><h{h}>{title}</h{h}>'
                    '<p class="none">none</p></section>')
        # The table's caption is its title (no heading repeating it).
        if all(isinstance(x, dict) for x in value):
            cols: list[str] = []
            for x in value:
                cols += [k for k in x if k not in cols]
            table = _svg.table(cols, [[_cell(x.get(c)) for c in cols] for x in value], name)
        else:
            table = _svg.table([name], [[_cell(x)] for x in value], name)
        return f'<section id="{escape(sid)}" class="wide">{table}</section>'
    return (f'<section id="{escape(sid)}"><h{h}>{title}</h{h}><p>{escape(_cell(value))}</p>'
            "</section>")


def render_document_html(doc: msgspec.Struct, *, title: str, document: Any = None) -> str:
    """One result document as a page (its JSON embedded as `script#document-json`: of
    `document`, the JSON form the caller prints, when given)."""
    data_plain = plain(doc)
    body = (_section("summary", data_plain, 0, "root") if isinstance(data_plain, dict)
            else _section("result", data_plain, 0, "root"))
    data = msgspec.json.encode(doc if document is None else document).decode()
    data = data.replace("<", "\\u003c")
    return "\n".join((
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{escape(title)}</h1><p>InferGuard {escape(__version__)}. Every value on "
        "this page is a value of the JSON document embedded at its end.</p></header>",
        body,
        f'<script type="application/json" id="document-json">{data}</script>',
        "</body></html>")) + "\n"
