"""HTML pieces every page shares: escaping, badges, tables, the style sheet (screen and print).

Everything that reaches a page goes through :func:`text`: control codes made visible
(a name read from a probed system may hold a newline or an escape code), then HTML-escaped.
No page loads anything from the network: styles are inline, charts are inline SVG.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from pytest_maintcheck.redact import printable

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
VERDICT_ORDER = {"violation": 0, "error": 0, "degraded": 1, "waived": 2, "pass": 3, "skipped": 4}

STYLE = """
:root{--ink:#1f2328;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;
--pass:#1a7f37;--warn:#9a6700;--bad:#cf222e;--crit:#82071e;--info:#0969da}
.mc{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;font-size:14px;
color:var(--ink);line-height:1.45}
.mc h2{font-size:18px;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:1px solid var(--line)}
.mc h3{font-size:15px;margin:1em 0 .4em}
.mc p{color:var(--ink)}
.mc table{border-collapse:collapse;width:100%;margin:.3em 0 1em}
.mc th,.mc td{border:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top;
color:var(--ink)}
.mc th{background:var(--bg);font-weight:600}
.mc .muted{color:var(--muted)}
.mc .empty{color:var(--muted);font-style:italic}
.mc code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;
background:var(--bg);padding:0 3px;border-radius:3px;word-break:break-all}
.mc dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:.5em 0}
.mc dl.facts dt{color:var(--muted)}
.mc dl.facts dd{margin:0;font-weight:600}
.mc .tiles{display:flex;flex-wrap:wrap;gap:10px;margin:1em 0}
.mc .tile{border:1px solid var(--line);border-left:6px solid var(--muted);border-radius:6px;
padding:8px 14px;min-width:110px;background:#fff}
.mc .tile b{display:block;font-size:26px;line-height:1.1}
.mc .tile.pass{border-left-color:var(--pass)}.mc .tile.degraded{border-left-color:var(--warn)}
.mc .tile.violation,.mc .tile.error{border-left-color:var(--bad)}
.mc .badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;
font-weight:600;color:#fff;background:var(--muted);white-space:nowrap}
.mc .badge.pass,.mc .badge.compliant,.mc .badge.healthy,.mc .badge.resolved{background:var(--pass)}
.mc .badge.degraded,.mc .badge.warning,.mc .badge.waived{background:var(--warn)}
.mc .badge.violation,.mc .badge.error,.mc .badge.open{background:var(--bad)}
.mc .badge.critical{background:var(--crit)}.mc .badge.high{background:var(--bad)}
.mc .badge.medium{background:var(--warn)}.mc .badge.low{background:var(--info)}
.mc .badge.skipped,.mc .badge.unknown{background:var(--muted)}
.mc tr.violation td:first-child,.mc tr.error td:first-child{border-left:4px solid var(--bad)}
.mc tr.degraded td:first-child{border-left:4px solid var(--warn)}
.mc ol.steps{margin:.2em 0;padding-left:1.4em}
.mc .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:8px 24px}
.mc .chart{break-inside:avoid;page-break-inside:avoid;margin:.5em 0 1.2em}
.mc .chart svg{width:100%;height:auto}
.mc .filters{display:flex;gap:12px;flex-wrap:wrap;align-items:center;margin:.5em 0}
.mc .sign{min-width:140px}
@media print{
  .mc{font-size:10.5pt}
  .mc .noprint,.mc .filters{display:none !important}
  .mc h2{break-after:avoid;page-break-after:avoid}
  .mc tr,.mc .tile,.mc .chart{break-inside:avoid;page-break-inside:avoid}
  .mc .badge{border:1px solid #000;color:#000 !important;background:#fff !important}
  .mc a{color:inherit;text-decoration:none}
  @page{margin:14mm}
}
"""

# pytest-html's own page: its environment box only when asked (hidden when empty), its empty
# "Summary" heading gone, its results table readable, its controls off the printed page
PYTEST_HTML_STYLE = """
body{color:#1f2328;min-width:0;margin:1.2em 2em}
#environment-header:has(+ #environment:empty),#environment:empty{display:none}
.summary__data > h2:first-child{display:none}
.summary{display:block}.summary__data{flex:none}.summary__spacer{display:none}
#results-table,#results-table td{color:#1f2328;font-size:13px}
.col-verdict{font-weight:600}
#results-table .log{color:#1f2328}
@media print{
  body{margin:0;min-width:0}
  body > p:first-of-type,.filter,.controls,.summary__reload,#environment-header{display:none}
  #results-table .extras-row{display:none}
  #results-table .collapsible td{cursor:auto}
}
"""


def text(value: object, limit: int = 2000) -> str:
    """A value as page text: control codes visible, cut to ``limit``, HTML-escaped."""
    return escape(printable("" if value is None else value, limit))


def badge(word: object, kind: object | None = None, shown: object | None = None) -> str:
    """A coloured label; ``kind`` picks the colour (defaults to the word itself)."""
    css = "".join(ch for ch in str(kind if kind is not None else word) if ch.isalnum())
    return f'<span class="badge {css}">{text(shown if shown is not None else word, 60)}</span>'


def verdict_badge(verdict: str, waived: bool = False) -> str:
    """A verdict, coloured; a waived one says so and takes the waiver's colour."""
    if waived and verdict in ("violation", "degraded", "error"):
        return badge("waived", "waived", f"{verdict} (waived)")
    return badge(verdict)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    row_classes: Sequence[str] | None = None,
    empty: str = "none",
    table_id: str = "",
) -> str:
    """Cells are HTML already (callers escape); headers are our own words."""
    body = []
    for i, row in enumerate(rows):
        css = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'
    ident = f' id="{escape(table_id)}"' if table_id else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(ident: str, title: str, body: str, note: str = "") -> str:
    """A titled part of a page; ``note`` (escaped) says what it shows."""
    lead = f'<p class="muted">{escape(note)}</p>' if note else ""
    return f'<section id="{escape(ident)}"><h2>{escape(title)}</h2>{lead}{body}</section>'


def facts(pairs: Iterable[tuple[str, str]]) -> str:
    """A label/value list; values are HTML already."""
    items = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def standalone(title: str, body: str, script: str = "") -> str:
    """A whole self-contained page: inline style, no network reference."""
    js = f"<script>{script}</script>" if script else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{text(title, 300)}</title><style>{STYLE}"
        "body{margin:1.5em 2em;background:#fff}</style></head>"
        f'<body class="mc"><h1>{text(title, 300)}</h1>{body}{js}</body></html>\n'
    )


def system_label(system: str, environment: str) -> str:
    """ "System (environment)", the environment once even when the system's name says it."""
    if not environment or f"({environment})" in system or f"({environment} " in system:
        return system
    return f"{system} ({environment})"


def sort_key_for_finding(verdict: str, severity: str) -> tuple[int, int]:
    """Violations before warnings, then critical to low."""
    return (VERDICT_ORDER.get(verdict, 5), SEVERITY_ORDER.get(severity, 4))
