"""The one style block of probe's HTML views: emitted once per page or notebook output.

A view's body functions (``*_body``) return HTML without any ``<style>``; the functions a
result's ``_repr_html_`` calls wrap one body with :func:`styled`. A page that holds many views
(the report, a case, a widget's panel) puts :data:`STYLE` once at its top and joins bodies.

Every view's root element carries :data:`ROOT` classes: ``tex2jax_ignore`` and
``mathjax_ignore`` make JupyterLab's MathJax (2 and 3) leave model and check text alone (a
``\\[`` in a regex, a ``$`` in an answer). Text and background colours follow JupyterLab's
theme variables (``--jp-content-font-color1``, ``--jp-layout-color0``, ...) with light
fallbacks, so a view reads in the light and the dark theme; coloured backgrounds (token
strips, badges) carry their own text colour. What each colour means is in
:mod:`probe.render.palette`.
"""

from __future__ import annotations

ROOT = "probe-view tex2jax_ignore mathjax_ignore"

STYLE = (
    "<style>"
    # theme: JupyterLab's variables where they exist, light fallbacks elsewhere (the report)
    ".probe-view{--probe-fg:var(--jp-content-font-color1,#1a1a1a);--probe-fg2:var(--jp-content-font-color2,#4a4a4a);"
    "--probe-bg:var(--jp-layout-color0,#fff);--probe-bg2:var(--jp-layout-color2,#eee);"
    "--probe-line:var(--jp-border-color2,#ccc);color:var(--probe-fg);max-width:100%}"
    ".probe-view code{color:inherit;background:transparent}"
    ".probe-view a{color:var(--jp-content-link-color,#1565c0)}"
    # JupyterLab's output area scrolls (.jp-OutputArea, .jp-OutputArea-output) and hides what
    # overflows its rows (.jp-OutputArea-child), so it clips a hover card, at its bottom too: not
    # around a probe view. (A cell whose outputs the user scrolls keeps its scrolling: that rule,
    # .jp-mod-outputsScrolled .jp-Cell-outputArea, is more specific.)
    ".jp-OutputArea:has(.probe-tok),.jp-OutputArea-child:has(.probe-tok),.jp-OutputArea-output:has(.probe-tok),"
    ".widget-html-content:has(.probe-tok){overflow:visible}"
    # token strips, their legends and hover cards
    ".probe-strip{font-family:ui-monospace,monospace;line-height:2;white-space:normal}"
    ".probe-tok{display:inline-block;padding:1px 2px;margin:0 1px;border-radius:3px;white-space:pre;"
    "position:relative;color:#111}"
    ".probe-tip{display:none;position:absolute;left:0;top:1.8em;z-index:30;background:var(--probe-bg);"
    "color:var(--probe-fg);border:1px solid var(--probe-line);border-radius:4px;padding:4px 6px;white-space:pre;"
    "font-size:85%;line-height:1.3;box-shadow:0 2px 6px rgba(0,0,0,.3)}"
    ".probe-tok:hover .probe-tip{display:block}"
    ".probe-tip.probe-up{top:auto;bottom:1.8em}.probe-tip.probe-left{left:auto;right:0}"
    ".probe-forced{background-image:repeating-linear-gradient(135deg,transparent 0 4px,rgba(0,0,0,.18) 4px 6px)"
    "!important;font-style:italic;border-bottom:2px dashed #555}"
    ".probe-div{outline:3px solid #c62828;outline-offset:1px}"
    ".probe-want{display:inline-block;font-family:sans-serif;font-size:85%;margin:0 4px;padding:0 5px;"
    "border:1px solid #c62828;border-radius:3px;white-space:nowrap;color:var(--probe-fg)}"
    ".probe-ws{color:#444}.probe-head{font-family:sans-serif;font-size:90%;color:var(--probe-fg)}"
    ".probe-legend{font-family:sans-serif;font-size:80%;color:var(--probe-fg2);line-height:1.6;margin:0 0 4px}"
    ".probe-legend .probe-key{display:inline-block;color:#111;padding:0 5px;margin:0 2px;border-radius:3px}"
    ".probe-legend .probe-key.probe-div{outline-width:2px}"
    # badges: white words on a dark colour (verdicts, outcomes); errors marked, not coloured
    ".probe-badge{color:#fff;border-radius:3px;padding:1px 6px;font-size:85%;white-space:nowrap}"
    ".probe-error,.probe-errors{border-left:4px solid #c62828;padding-left:6px}"
    ".probe-num{white-space:nowrap}"
    # a saved case
    ".probe-case{font-family:sans-serif;border:1px solid var(--probe-line);border-radius:6px;"
    "padding:8px 12px;margin:12px 0}.probe-case h2{font-size:110%;margin:0 0 4px}"
    ".probe-tag{background:var(--probe-bg2);color:var(--probe-fg);border-radius:3px;padding:1px 5px;"
    "margin-right:4px;font-size:85%}"
    ".probe-id{color:var(--probe-fg2);font-weight:normal}"
    ".probe-kv td{padding:1px 8px 1px 0;vertical-align:top;border:none}"
    ".probe-kv code{white-space:pre-wrap;word-break:break-word}"
    ".probe-note{white-space:pre-wrap;background:var(--probe-bg2);color:var(--probe-fg);padding:4px 6px;"
    "border-radius:4px}"
    ".probe-result{margin-top:10px}.probe-result>h3{font-size:100%;margin:4px 0;color:var(--probe-fg)}"
    ".probe-scroll{overflow-x:auto;max-width:100%}"
    # logit lens grid
    ".probe-lens{border-collapse:collapse;font-family:ui-monospace,monospace;font-size:85%}"
    ".probe-lens td,.probe-lens th{border:1px solid var(--probe-line);padding:2px 6px;text-align:left;"
    "white-space:pre}.probe-lens td{color:#111}.probe-lens .probe-rank{color:#333;font-size:85%}"
    ".probe-lens-head{font-family:sans-serif;font-size:90%;color:var(--probe-fg);margin:4px 0}"
    # data counts
    ".probe-data{border-collapse:collapse;font-size:85%;margin:4px 0}"
    ".probe-data td,.probe-data th{border:1px solid var(--probe-line);padding:2px 8px;text-align:right}"
    ".probe-data th{font-family:ui-monospace,monospace;white-space:pre}"
    ".probe-data-head{font-family:sans-serif;font-size:90%;color:var(--probe-fg)}"
    ".probe-data-ex{font-family:ui-monospace,monospace;font-size:80%;white-space:pre-wrap}"
    # training log (findings, channels)
    ".probe-findings td.l,.probe-findings th.l,.probe-channels td.l,.probe-channels th.l{text-align:left}"
    # sweep grid and rows
    ".probe-grid td,.probe-grid th,.probe-rows td,.probe-rows th{padding:2px 6px}.probe-grid td{color:#111}"
    # corpus shift (shift map, promoted tokens, one position)
    ".probe-shift{font-family:sans-serif}.probe-shift h4{margin:8px 0 2px;font-size:95%}"
    ".probe-shift table{border-collapse:collapse;font-size:88%}"
    ".probe-shift td,.probe-shift th{border:1px solid var(--probe-line);padding:1px 6px;text-align:right;"
    "vertical-align:top}"
    ".probe-shift td.l,.probe-shift th.l{text-align:left}.probe-shift .probe-prompt{color:var(--probe-fg2);"
    "font-size:85%;margin-top:6px}.probe-key span{padding:0 6px;margin-right:6px;border-radius:3px;color:#111}"
    # regression table
    ".probe-reg{border-collapse:collapse;font-family:sans-serif;font-size:90%}"
    ".probe-reg td,.probe-reg th{border:1px solid var(--probe-line);padding:2px 8px;text-align:right;"
    "vertical-align:top}"
    ".probe-reg td:first-child{text-align:left}.probe-reg details{display:inline}"
    ".probe-reg summary{cursor:pointer}.probe-reg .probe-ids{text-align:left;font-size:85%}"
    # plain tables (verdict tables in notebooks)
    ".probe-table{border-collapse:collapse;font-family:sans-serif;font-size:88%}"
    ".probe-table td,.probe-table th{border:1px solid var(--probe-line);padding:2px 8px;text-align:left;"
    "vertical-align:top}"
    "</style>"
)


def root(body: str) -> str:
    """``body`` inside the root element every view has (MathJax skips it, theme colours)."""
    return f'<div class="{ROOT}">{body}</div>'


def styled(body: str) -> str:
    """One view on its own (a notebook output): the style block, then the body in its root."""
    return STYLE + root(body)


def unstyled(html: str) -> str:
    """A view's HTML without the leading style block, for a page that has it already."""
    return html[len(STYLE):] if html.startswith(STYLE) else html
