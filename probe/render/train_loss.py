"""Views of DataLoss (token loss over a training set) and of checkpoint tables. Pure, escaped."""

from __future__ import annotations

from html import escape

from .style import styled
from .phrases import clip

FLAG_ROWS = 10  # flagged examples listed per flag
HOT = ' style="background:#fde2e2;color:#111"'  # dark text: readable in the dark theme too


def _f(x: float) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def _groups_text(title: str, groups) -> list[str]:
    lines = [f"{title}:", f"  {'':<22} {'examples':>8} {'tokens':>8} {'base':>8} {'tuned':>8} {'change':>8}"]
    for g in groups:
        mark = "  OUTLIER (others' median {})".format(_f(g.rest_change)) if g.outlier else ""
        lines.append(f"  {clip(g.name, 22):<22} {g.examples:>8} {g.tokens:>8} {_f(g.base_loss):>8} "
                     f"{_f(g.tuned_loss):>8} {g.change:>+8.3f}{mark}")
    return lines


def _headline(d) -> str:
    cut = f"max_length {d.max_length}" if d.max_length is not None else "no max_length"
    return (f"DataLoss of {d.source}: {len(d.examples)} examples, {d.n_tokens} scored tokens "
            f"(mask {d.mask or 'trainer default'}, {cut}); mean loss base {_f(d.base_loss)} -> tuned "
            f"{_f(d.tuned_loss)} nats; {len(d.memorized)} memorized, {len(d.not_learned)} not learned, "
            f"{len(d.outliers)} outlier channels")


def _truncated(d) -> str:
    return (f"truncated {d.truncated}: longer than max_length={d.max_length} tokens, scored on the first "
            f"{d.max_length} (the tokens the trainer trained on)") if d.truncated else ""


def loss_text(d) -> str:
    lines = [_headline(d)]
    if d.truncated:
        lines.append(f"  {_truncated(d)}")
    if d.skipped:
        lines.append(f"  skipped {d.skipped}: " + "; ".join(f"line {s.line}: {s.reason}" for s in d.skipped_lines))
    lines += _groups_text(f"by channel ({d.channel or 'none'})", d.channels)
    lines += _groups_text("by token kind", d.kinds)
    for flag in ("memorized", "not_learned"):
        got = d.flagged(flag)
        if got:
            lines.append(f"{flag.replace('_', ' ')} ({len(got)}):")
            for e in got[:FLAG_ROWS]:
                lines.append(f"  line {e.line} [{clip(e.channel, 20)}] {e.n_scored} tokens: base "
                             f"{_f(e.base_loss)} -> tuned {_f(e.tuned_loss)}")
    return "\n".join(lines)


def _outlier_note(g) -> str:
    return f"outlier (others' median {_f(g.rest_change)})" if g.outlier else ""


def _groups_html(title: str, groups) -> str:
    rows = "".join(
        f"<tr{HOT if g.outlier else ''}><td>{escape(g.name)}</td><td>{g.examples}</td>"
        f"<td>{g.tokens}</td><td>{_f(g.base_loss)}</td><td>{_f(g.tuned_loss)}</td><td>{g.change:+.3f}</td>"
        f"<td>{_outlier_note(g)}</td></tr>" for g in groups)
    return (f"<h4>{escape(title)}</h4><table class=\"probe-reg\"><tr><th>name</th><th>examples</th>"
            f"<th>tokens</th><th>base loss</th><th>tuned loss</th><th>change</th><th>flag</th></tr>{rows}</table>")


def _tokens_html(e) -> str:
    """The scored tokens of an example, each with both losses on hover (escaped)."""
    if e.tuned is None:
        return ""
    out = []
    for s, b, t in zip(e.tuned.steps, e.base_losses, e.tuned_losses):
        tip = escape(f"{s.text!r}: base loss {b:.3f}, tuned loss {t:.3f}")
        shade = min(1.0, t / 5.0)
        out.append(f'<span title="{tip}" style="background:rgba(244,160,160,{shade:.2f})">'
                   f"{escape(s.text)}</span>")
    return f'<div style="white-space:pre-wrap;font-family:monospace;font-size:85%">{"".join(out)}</div>'


def loss_section(d) -> str:
    parts = [f"<p>{escape(_headline(d))}</p>"]
    if d.truncated:
        parts.append(f"<p>{escape(_truncated(d))}</p>")
    if d.skipped:
        parts.append("<p>skipped: " + escape("; ".join(f"line {s.line}: {s.reason}" for s in d.skipped_lines))
                     + "</p>")
    parts.append(_groups_html(f"by channel ({d.channel or 'none'})", d.channels))
    parts.append(_groups_html("by token kind", d.kinds))
    th = d.thresholds
    rules = {"memorized": f"tuned loss <= {th['memorized']} and base loss >= {th['high_base']}",
             "not_learned": f"base loss > {th['memorized']} and tuned > {1 - th['not_learned']:.2f} x base"}
    for flag, rule in rules.items():
        got = d.flagged(flag)
        rows = "".join(
            f"<tr><td>{e.line}</td><td>{escape(e.channel)}</td><td>{e.n_scored}</td><td>{_f(e.base_loss)}</td>"
            f"<td>{_f(e.tuned_loss)}</td><td><details><summary>tokens</summary>{_tokens_html(e)}</details></td></tr>"
            for e in got[:FLAG_ROWS])
        parts.append(f"<h4>{escape(flag.replace('_', ' '))}: {len(got)} ({escape(rule)})</h4>"
                     f"<table class=\"probe-reg\"><tr><th>line</th><th>channel</th><th>tokens</th>"
                     f"<th>base loss</th><th>tuned loss</th><th></th></tr>{rows}</table>")
    return "".join(parts)


def loss_html(d) -> str:
    return styled(loss_section(d))


def _v(x) -> str:
    return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


EPOCH_PARTS = (("examples", "tuned mean loss"), ("channels", "loss change"), ("cases", "P(expected) tuned"))


def epochs_text(e) -> str:
    names = list(e.checkpoints)
    lines = [f"Epochs: {', '.join(names)}" + (f" on {e.source}" if e.source else "")]
    for part, measure in EPOCH_PARTS:
        rows = getattr(e, part)
        if not rows:
            continue
        lines.append(f"{part} ({measure} [state]), first bad checkpoint:")
        for r in rows:
            cells = " ".join(f"{_v(v)} [{s}]" for v, s in zip(r.values, r.states))
            lines.append(f"  {clip(r.name, 28):<28} base {_v(r.base)}: {cells}  first bad: {r.first_bad or '-'}")
    return "\n".join(lines)


def epochs_html(e) -> str:
    head = "".join(f"<th>{escape(n)}</th>" for n in e.checkpoints)
    parts = []
    for part, measure in EPOCH_PARTS:
        rows = getattr(e, part)
        if not rows:
            continue
        body = "".join(
            f"<tr{HOT if r.first_bad else ''}><td>{escape(r.name)}</td><td>{_v(r.base)}</td>"
            + "".join(f"<td>{_v(v)} {escape(s)}</td>" for v, s in zip(r.values, r.states))
            + f"<td>{escape(r.first_bad or '-')}</td><td>{escape(r.learned_at or '-')}</td></tr>" for r in rows)
        parts.append(f"<h4>{escape(part)}: {escape(measure)}</h4><table class=\"probe-reg\"><tr><th></th>"
                     f"<th>base</th>{head}<th>first bad</th><th>learned at</th></tr>{body}</table>")
    return styled("".join(parts))
