"""Presentation: one verdict as a self-contained HTML page (`render_html`), charts drawn as
inline SVG on the Python side. Reads `verdict/` outputs only; judges nothing."""

from inferguard.html._page import CHART_IDS, hit_answer, render_html, verdict_json

__all__ = ["CHART_IDS", "hit_answer", "render_html", "verdict_json"]
