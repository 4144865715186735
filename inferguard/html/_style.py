"""The pages' shared style sheet and the one conversion they need: a result Struct as plain
data with every field (defaults included, which `msgspec.to_builtins` would omit)."""

from __future__ import annotations

from typing import Any

import msgspec

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;
margin:0 auto;max-width:980px;padding:16px 20px 48px;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;border-bottom:2px solid #ddd;
padding-bottom:.2em;margin-top:1.8em}h3{font-size:1.05em}
.answer{font-size:1.25em;font-weight:600;padding:.6em .8em;border-left:6px solid #0072B2;
background:#f2f7fb}.answer.neg{border-color:#D55E00;background:#fdf3ee}
.answer.unk{border-color:#767676;background:#f4f4f4}
table{border-collapse:collapse;margin:.5em 0;width:100%}caption{text-align:left;
font-weight:600;padding:.3em 0}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f0f0f0}td{overflow-wrap:break-word}
.sev{font-weight:700;text-transform:uppercase;padding:0 .4em;border-radius:3px}
.sev-error{background:#D55E00;color:#fff}.sev-warning{background:#E69F00;color:#000}
.sev-info{background:#56B4E9;color:#000}.finding{border:1px solid #ccc;padding:.4em .8em;
margin:.6em 0;border-radius:4px}.finding code{font-weight:700}
.chart{margin:1em 0}.plot{width:100%;height:auto;max-width:760px}.tick{font-size:11px;
fill:#333}.axis{font-size:12px;fill:#000}.legend{list-style:none;padding:0;display:flex;
flex-wrap:wrap;gap:.4em 1.2em;margin:.2em 0}.none{color:#444;font-style:italic}
.present{color:#006b4f;font-weight:700}.absent{color:#a33a00;font-weight:700}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}
dd{margin:0}.wide{overflow-x:auto}caption{font-size:1.05em}footer{margin-top:3em;color:#555;font-size:.9em}
"""


def plain(obj: Any) -> Any:
    """Structs as dicts with every field (defaults too), lists as lists."""
    if isinstance(obj, msgspec.Struct):
        return {k: plain(x) for k, x in msgspec.structs.asdict(obj).items()}
    if isinstance(obj, list | tuple):
        return [plain(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): plain(x) for k, x in obj.items()}
    return obj
