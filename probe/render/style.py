"""The one style block of probe's HTML views: emitted once per page or notebook output.

A view's body functions (``*_body``) return HTML without any ``<style>``; the functions a
result's ``_repr_html_`` calls wrap one body with :func:`styled`. A page that holds many views
(the report, a case, a widget's panel) puts :data:`STYLE` once at its top and joins bodies.
"""

from __future__ import annotations

STYLE = (
    "<style>"
    # token strips and their hover cards
    ".probe-strip{font-family:ui-monospace,monospace;line-height:2;white-space:normal}"
    ".probe-tok{display:inline-block;padding:1px 2px;margin:0 1px;border-radius:3px;white-space:pre;position:relative}"
    ".probe-tip{display:none;position:absolute;left:0;top:1.8em;z-index:10;background:#fff;"
    "border:1px solid #999;border-radius:4px;padding:4px 6px;white-space:pre;font-size:85%;"
    "line-height:1.3;box-shadow:0 2px 6px rgba(0,0,0,.2);color:#000}"
    ".probe-tok:hover .probe-tip{display:block}"
    ".probe-forced{border-bottom:2px dashed #555}.probe-div{outline:2px solid #d00}"
    ".probe-ws{color:#888}.probe-head{font-family:sans-serif;font-size:90%;color:#333}"
    # a saved case
    ".probe-case{font-family:sans-serif;border:1px solid #ddd;border-radius:6px;"
    "padding:8px 12px;margin:12px 0}.probe-case h2{font-size:110%;margin:0 0 4px}"
    ".probe-badge{color:#fff;border-radius:3px;padding:1px 6px;font-size:85%}"
    ".probe-tag{background:#eee;border-radius:3px;padding:1px 5px;margin-right:4px;font-size:85%}"
    ".probe-kv td{padding:1px 8px 1px 0;vertical-align:top;border:none}"
    ".probe-kv code{white-space:pre-wrap;word-break:break-word}"
    ".probe-note{white-space:pre-wrap;background:#fffbe6;padding:4px 6px;border-radius:4px}"
    ".probe-result{margin-top:10px}.probe-result>h3{font-size:100%;margin:4px 0;color:#444}"
    # logit lens grid
    ".probe-lens{border-collapse:collapse;font-family:ui-monospace,monospace;font-size:85%}"
    ".probe-lens td,.probe-lens th{border:1px solid #ddd;padding:2px 6px;text-align:left;"
    "white-space:pre}.probe-lens .probe-rank{color:#555;font-size:85%}"
    ".probe-lens-head{font-family:sans-serif;font-size:90%;color:#333;margin:4px 0}"
    # data counts
    ".probe-data{border-collapse:collapse;font-size:85%;margin:4px 0}"
    ".probe-data td,.probe-data th{border:1px solid #ddd;padding:2px 8px;text-align:right}"
    ".probe-data th{font-family:ui-monospace,monospace;white-space:pre}"
    ".probe-data-head{font-family:sans-serif;font-size:90%;color:#333}"
    ".probe-data-ex{font-family:ui-monospace,monospace;font-size:80%;white-space:pre-wrap}"
    # training log (findings, channels)
    ".probe-findings td.l,.probe-findings th.l,.probe-channels td.l,.probe-channels th.l{text-align:left}"
    # sweep grid and rows
    ".probe-grid td,.probe-grid th,.probe-rows td,.probe-rows th{padding:2px 6px}"
    # corpus shift (shift map, promoted tokens, one position)
    ".probe-shift{font-family:sans-serif}.probe-shift h4{margin:8px 0 2px;font-size:95%}"
    ".probe-shift table{border-collapse:collapse;font-size:88%}"
    ".probe-shift td,.probe-shift th{border:1px solid #ddd;padding:1px 6px;text-align:right;vertical-align:top}"
    ".probe-shift td.l,.probe-shift th.l{text-align:left}.probe-shift .probe-prompt{color:#555;font-size:85%;"
    "margin-top:6px}.probe-key span{padding:0 6px;margin-right:6px;border-radius:3px}"
    # regression table
    ".probe-reg{border-collapse:collapse;font-family:sans-serif;font-size:90%}"
    ".probe-reg td,.probe-reg th{border:1px solid #ddd;padding:2px 8px;text-align:right;vertical-align:top}"
    ".probe-reg td:first-child{text-align:left}.probe-reg details{display:inline}"
    ".probe-reg summary{cursor:pointer}.probe-reg .probe-ids{text-align:left;font-size:85%}"
    "</style>"
)


def styled(body: str) -> str:
    """One view on its own (a notebook output): the style block, then the body."""
    return STYLE + body


def unstyled(html: str) -> str:
    """A view's HTML without the leading style block, for a page that has it already."""
    return html[len(STYLE):] if html.startswith(STYLE) else html
