"""Views of an Attribution (which training examples a case comes from) and of its Verification.

Pure functions of the result's data, every piece of model or user text escaped. The token
strip of an example shows every token of the sequence the trainer fed; the tokens in the loss
mask (whose loss carries the gradient) are boxed, the others greyed.
"""

from __future__ import annotations

import math

from .palette import INFLUENCE, INFLUENCE_BG
from .phrases import clip
from .safe import escape
from .strip import visible
from .style import styled, unstyled

ROWS = 10  # top examples listed per method
LABELS = {"gradient": "gradient (TracIn dot)", "gradient_cos": "gradient (cosine)",
          "representation": "representation (cosine)", "lexical": "lexical (BM25)"}


def _g(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3g}"


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.0f}%"


def _prompt(p) -> str:
    return p if isinstance(p, str) else " | ".join(f"{m.get('role')}: {m.get('content')}" for m in p)


def _what(a) -> str:
    if a.query == "contrast":
        return (f"log P({a.wrong_token!r}) - log P({a.expected_token!r}) at the first divergent token "
                f"of {a.expected!r}")
    return f"the loss of the expected answer {a.expected!r}"


def headline(a) -> str:
    main = "gradient" if "gradient" in a.methods else a.methods[0]
    chans = a.channels(main)
    lead = ""
    if chans and chans[0].share == chans[0].share:
        lead = f"; {chans[0].name} holds {_pct(chans[0].share)} of the positive {main} score"
    title = f" {a.title}" if a.title else ""
    return f"Attribution{title}: {_examples_of(a)} scored for {_what(a)}{lead}"


def _examples_of(a) -> str:
    """"80 examples of sft.jsonl"; records given in Python (no file to name): "80 records"."""
    n = len(a.examples)
    if not a.source or a.source == "<iterable>":
        return f"{n} record{'s' if n != 1 else ''}"
    return f"{n} example{'s' if n != 1 else ''} of {a.source}"


def _ckpts(a) -> str:
    if not a.checkpoints:
        return ""
    parts = [f"{c.name} (lr {_g(c.lr) if c.lr is not None else 'unknown: weight 1'})" for c in a.checkpoints]
    proj = ", randomly projected" if a.projected else ""
    return "TracIn over " + ", ".join(parts) + proj


def attribution_text(a) -> str:
    lines = [headline(a), f"  prompt: {clip(_prompt(a.prompt), 100)!r}"]
    if a.checkpoints:
        lines.append("  " + _ckpts(a))
    if a.skipped:
        lines.append(f"  {a.skipped} records skipped (unreadable or nothing under the mask)")
    for m in a.methods:
        lines.append(f"top {min(ROWS, len(a.examples))} by {LABELS.get(m, m)}:")
        for e in a.top(m, ROWS):
            text = "".join(t for t, s in zip(e.tokens, e.scored) if s)
            lines.append(f"  line {e.line:>5} [{clip(e.channel, 20)}] {_g(e.scores[m]):>9}  {clip(text, 60)!r}")
    main = "gradient" if "gradient" in a.methods else a.methods[0]
    lines.append(f"by channel ({a.channel or 'none'}), {main}: share of the positive score, mean, in the top {a.keep}:")
    for c in a.channels(main):
        lines.append(f"  {clip(c.name, 22):<22} {c.examples:>5} examples  {_pct(c.share):>5}  "
                     f"mean {_g(c.mean):>9}  top {c.in_top}")
    agree = a.agreement()
    if agree:
        lines.append("agreement (Spearman over every example; top-k overlap):")
        for g in agree:
            lines.append(f"  {g.a} ~ {g.b}: {_g(g.spearman)}; {_pct(g.overlap)} of the top {g.k}")
    return "\n".join(lines)


def example_strip(e) -> str:
    """The example's tokens, the loss-mask tokens boxed (empty when its strip was not kept)."""
    if not e.tokens:
        return ""
    cells = []
    for t, s in zip(e.tokens, e.scored):
        style = (f"outline:1px solid {INFLUENCE};background:{INFLUENCE_BG}" if s
                 else "color:var(--probe-fg2);background:transparent")  # theme grey: readable in both
        cells.append(f'<span class="probe-tok" style="{style}">{visible(t)}</span>')
    return f'<div class="probe-strip">{"".join(cells)}</div>'


def strip_legend() -> str:
    """The legend of :func:`example_strip`."""
    return (f'<div class="probe-legend"><span class="probe-key" style="outline:1px solid {INFLUENCE};'
            f'background:{INFLUENCE_BG}">boxed</span> in the loss (these tokens\' loss carries the gradient) '
            '<span class="probe-key" style="color:var(--probe-fg2);background:transparent">grey</span> '
            'fed to the model, '
            'not scored</div>')


def example_body(a, e, method: str) -> str:
    """One ranked example: its rank and scores under every method, then its token strip."""
    rank = next((i + 1 for i, x in enumerate(a.top(method, len(a.examples))) if x.line == e.line), None)
    scores = ", ".join(f"{escape(LABELS.get(m, m))} {_g(e.scores[m])}" for m in a.methods)
    head = (f'<div class="probe-head"><b>line {e.line}</b> of {escape(a.source)} '
            f'(channel {escape(e.channel)}): #{rank} of {len(a.examples)} by {escape(LABELS.get(method, method))}; '
            f"{scores}</div>")
    strip = example_strip(e) or ('<div class="probe-head">its token strip was not kept (only the top '
                                 f"{a.keep} of each method keep theirs)</div>")
    return head + strip_legend() + strip


def _bar(share: float) -> str:
    w = 0 if share != share else max(0.0, min(1.0, share)) * 120
    return f'<span style="display:inline-block;height:10px;width:{w:.0f}px;background:{INFLUENCE}"></span>'


def attribution_body(a) -> str:
    parts = [f"<h3>{escape(headline(a))}</h3>",
             f"<p>prompt: <code>{escape(_prompt(a.prompt))}</code>; query: {escape(_what(a))}</p>"]
    if a.checkpoints:
        parts.append(f"<p>{escape(_ckpts(a))}</p>")
    main = "gradient" if "gradient" in a.methods else a.methods[0]
    rows = "".join(f"<tr><td>{escape(c.name)}</td><td>{c.examples}</td><td>{_bar(c.share)} {_pct(c.share)}</td>"
                   f"<td>{_g(c.mean)}</td><td>{c.in_top}</td></tr>" for c in a.channels(main))
    parts.append(f"<h4>by channel ({escape(a.channel or 'none')}), {escape(main)}</h4><table class=\"probe-reg\">"
                 f"<tr><th>channel</th><th>examples</th><th>share of the positive score</th><th>mean</th>"
                 f"<th>in the top {a.keep}</th></tr>{rows}</table>")
    for m in a.methods:
        cells = "".join(
            f"<tr><td>{e.line}</td><td>{escape(e.channel)}</td>"
            + "".join(f"<td>{_g(e.scores[s])}</td>" for s in a.methods)
            + f'<td style="text-align:left">{example_strip(e)}</td></tr>' for e in a.top(m, ROWS))
        heads = "".join(f"<th>{escape(s)}</th>" for s in a.methods)
        parts.append(f"<h4>top by {escape(LABELS.get(m, m))}</h4><table class=\"probe-reg\"><tr><th>line</th>"
                     f"<th>channel</th>{heads}<th>tokens (boxed: in the loss)</th></tr>{cells}</table>")
    agree = a.agreement()
    if agree:
        rows = "".join(f"<tr><td>{escape(g.a)} ~ {escape(g.b)}</td><td>{_g(g.spearman)}</td><td>{_pct(g.overlap)}</td></tr>"
                       for g in agree)
        parts.append(f"<h4>agreement between methods</h4><table class=\"probe-reg\"><tr><th>pair</th>"
                     f"<th>Spearman</th><th>top-{agree[0].k} overlap</th></tr>{rows}</table>")
    return f'<div class="probe-attribution">{"".join(parts)}</div>'


def attribution_html(a) -> str:
    return styled(attribution_body(a))


def attribution_section(a) -> str:
    return unstyled(attribution_html(a))


def _p(s, token) -> str:
    return f"P({token!r}) {_g(s)}"


def _run_line(v, r) -> str:
    t, c = v.tuned.case, r.case
    what = f"without the top {v.k} ({v.method})" if r.label == "top" else f"without {v.k} {r.label} (same channel mix)"
    out = f"{what}: P({v.expected_token or 'expected'!r}) {_g(t.p_expected)} -> {_g(c.p_expected)}"
    if c.p_wrong is not None:
        out += f", P({v.wrong_token!r}) {_g(t.p_wrong)} -> {_g(c.p_wrong)}"
    out += f", verdict {t.verdict} -> {c.verdict}"
    broke = [o.title or f"case {i + 1}" for i, (o0, o) in enumerate(zip(v.tuned.others, r.others))
             if o0.verdict == "ok" and o.verdict != "ok"]
    fixed = [o.title or f"case {i + 1}" for i, (o0, o) in enumerate(zip(v.tuned.others, r.others))
             if o0.verdict != "ok" and o.verdict == "ok"]
    if r.others:
        out += f"; other cases: {len(fixed)} fixed, {len(broke)} broken"
        if broke:
            out += " (" + ", ".join(broke[:5]) + ")"
    return out


def verification_text(v) -> str:
    title = f" of {v.title}" if v.title else ""
    lines = [f"Verification{title}: retrained without the top {v.k} and without {len(v.controls)} random "
             f"sets of {v.k} (seed {v.seed}); evidence from these retrains, not proof"]
    lines += ["  " + _run_line(v, r) for r in v.runs[1:]]
    lines.append("  reading: " + verification_reading(v))
    return "\n".join(lines)


def verification_reading(v) -> str:
    """What the outcome supports, in words: the top k fixed the case and no control did (the
    evidence sought); the controls did as well as the top (their channels carry it, not these
    examples); or nothing fixed it (more than k examples teach it)."""
    top_ok = v.top.case.verdict == "ok"
    ctl_ok = [c.case.verdict == "ok" for c in v.controls]
    k = v.k
    if top_ok and not any(ctl_ok):
        return (f"only the retrain without the top {k} gets the case right: evidence that these examples "
                "teach the wrong answer")
    if top_ok:
        return (f"removing {k} random examples of the same channels fixed it too: the channels teach it, "
                f"not these {k} examples in particular")
    if any(ctl_ok):
        return f"a random removal fixed it and the top {k} did not: the ranking is not supported here"
    return (f"no retrain gets the case right: more than these {k} examples teach the wrong answer "
            "(look at the channel totals; verify with a larger k)")


def verification_summary(v) -> str:
    """One line: P(expected token) and the verdict, tuned -> retrained, without the top k, then
    without each random k ("without the top 10: P('To') 1.4e-06 -> 0.41, verdict ok; 10 random: ...")."""
    p = f"P({v.expected_token!r})" if v.expected_token is not None else "P(expected answer)"
    t = v.tuned.case

    def runs(rs) -> str:
        return (f"{p} {_g(t.p_expected)} -> {', '.join(_g(r.case.p_expected) for r in rs)}, "
                f"verdict {', '.join(r.case.verdict for r in rs)}")

    out = f"without the top {v.k}: {runs([v.top])}"
    if v.controls:
        out += f"; {v.k} random ({len(v.controls)} sets): {runs(v.controls)}"
    return out


def verification_body(v) -> str:
    head = escape(verification_text(v).split("\n")[0])
    rows = "".join(f"<li>{escape(_run_line(v, r))}</li>" for r in v.runs[1:])
    return (f'<div class="probe-verification"><h4>{head}</h4><p>{escape(verification_summary(v))}</p>'
            f'<ul>{rows}</ul><p><b>Reading:</b> {escape(verification_reading(v))}</p></div>')


def verification_html(v) -> str:
    return styled(verification_body(v))


def verification_section(v) -> str:
    return verification_body(v)
