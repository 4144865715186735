"""Presentation: one verdict as a self-contained HTML page (`render_html`), charts drawn as
inline SVG on the Python side; any other result document (compare, fleet) as a page of its
fields and tables (`render_document_html`). Reads `verdict/` outputs only; judges nothing."""

from inferguard.html._doc import render_document_html
from inferguard.html._page import CHART_IDS, hit_answer, render_html, verdict_json

__all__ = ["CHART_IDS", "hit_answer", "render_document_html", "render_html", "verdict_json"]
