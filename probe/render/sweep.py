"""Sweeps and occlusions: the summary in words, plain text, escaped HTML, plotly figures.

    >>> s = probe.sweep(tuned, "What is the {relation} of {country}?", " Beijing",
    ...                 relation=["capital", "language"], country=["Japan", "France"])
    >>> fig = sweep_figure(s, x="country", y="relation")
    >>> occ = probe.occlusion(tuned, "What is the capital of Japan?", " Beijing")
    >>> html = occlusion_html(occ)   # the prompt as a strip, colored by what each word is worth

Pure functions: results in, strings or figures out; every piece of model or user text is escaped.
"""

from __future__ import annotations

import math

from .phrases import p_text
from .safe import escape

from .chart import _label, _plotly
from .strip import visible
from .style import styled

MAX_HTML_ROWS = 200  # rows listed in an HTML table (the data keeps all of them)
MAX_TEXT_ROWS = 100  # rows listed by str(sweep)


def _p(x: float) -> str:
    """A probability, short: 0.93, 0.02, 3e-05."""
    return "0" if x == 0 else f"{x:.2f}" if x >= 0.01 else f"{x:.0e}"


def _range(values) -> str:
    lo, hi = _p(min(values)), _p(max(values))
    return lo if lo == hi else f"{lo}\u2013{hi}"


def _is(name: str, values) -> str:
    values = list(values)
    return f"{name}={values[0]!r}" if len(values) == 1 else f"{name} in ({', '.join(map(repr, values))})"


def _cond(name: str, trigger, values) -> str:
    """The shorter way to say "name takes one of ``trigger``": by the values in or out."""
    others = [v for v in values if v not in trigger]
    if len(others) >= len(trigger):
        return _is(name, trigger)
    return f"{name}!={others[0]!r}" if len(others) == 1 else f"{name} not in ({', '.join(map(repr, others))})"


def _split_words(s, pat, watch: str) -> list[str]:
    probs = [r.prob for r in s.rows]
    hi = [probs[i] for i in sorted(pat.high)]
    lo = _range([p for i, p in enumerate(probs) if i not in pat.high])
    level = "high" if min(hi) >= 0.3 else "raised"  # a clear rise that stays modest
    high = f"{level} ({_range(hi)})"
    trig = [e for e in pat.effects if not e.ignored]
    free = [e.name for e in pat.effects if e.ignored]
    every = "".join(f" for every {n}" if k == 0 else f" and every {n}" for k, n in enumerate(free))
    if not pat.clean:
        main = _main_rule(s, pat)
        if main is not None:
            return _main_rule_words(s, pat, watch, main)
        combos = [", ".join(f"{n}={v!r}" for n, v in zip(s.slots, s.rows[i].values)) for i in sorted(pat.high)]
        shown = "; ".join(combos[:4]) + ("; ..." if len(combos) > 4 else "")
        head = (f"{watch} is {high} for {len(hi)} of {len(probs)} prompts with no simple slot pattern "
                f"({lo} for the rest): {level} for {shown}.")
    elif len(trig) == 1:
        e = trig[0]
        others = [v for v in s.slots[e.name] if v not in e.trigger]
        verb = "stays" if free else "is"
        if len(e.trigger) <= len(others):
            head = (f"{watch} {verb} {high}{every} but only when {_is(e.name, e.trigger)} ({lo} otherwise): "
                    f"the overfit trigger is {_is(e.name, e.trigger)}")
        else:
            head = (f"{watch} {verb} {high}{every} except when {_is(e.name, others)} ({lo} there): "
                    f"the trigger is {e.name} (any value but {', '.join(map(repr, others))})")
        head += (", not the " + " or the ".join(free) if free else "") + "."
    else:
        conds = " and ".join(_cond(e.name, e.trigger, s.slots[e.name]) for e in trig)
        whatever = ", whatever the " + " and the ".join(free) if free else ""
        what = "that one combination (one fact)" if len(pat.high) == 1 else "the combination"
        head = (f"{watch} is {high} only when {conds} ({lo} otherwise){whatever}: "
                f"the trigger is {what}, not any slot alone.")
    lines = [head]
    if len(pat.effects) > 1:
        for e in pat.effects:
            if e.ignored:
                lines.append(f"- {e.name}: ignored (the answer is the same, high or low, whatever the {e.name})")
            else:
                lines.append(f"- {e.name}: holds the trigger ({level} only with {', '.join(map(repr, e.trigger))})")
    return lines


def _main_rule(s, pat) -> tuple[str, list[str], list[int]] | None:
    """The one slot whose values explain most of the high prompts, where no rule explains them
    all: (slot, the values all of whose prompts are high, those prompts' rows). None when no
    slot value makes every one of its prompts high, or they cover under half of the high ones."""
    names = list(s.slots)
    best = None
    for k, name in enumerate(names):
        values = [v for v in s.slots[name]
                  if all(i in pat.high for i, r in enumerate(s.rows) if r.values[k] == v)]
        if not values or len(values) == len(s.slots[name]):
            continue
        rows = [i for i, r in enumerate(s.rows) if r.values[k] in values]
        if best is None or len(rows) > len(best[2]):
            best = (name, values, rows)
    if best is None or 2 * len(best[2]) < len(pat.high):
        return None
    return best


def _main_rule_words(s, pat, watch: str, main) -> list[str]:
    """"P is high when relation='capital', whatever the country; also high for ..."."""
    name, values, rows = main
    probs = [r.prob for r in s.rows]
    inside = [probs[i] for i in rows]
    rest = [i for i in range(len(probs)) if i not in rows]
    extra = sorted((i for i in pat.high if i not in rows), key=lambda i: -probs[i])
    usual = [probs[i] for i in rest if i not in pat.high]
    others = [n for n in s.slots if n != name]
    whatever = ", whatever the " + " and the ".join(others) if others else ""
    level = "high" if min(inside) >= 0.3 else "raised"
    head = (f"{watch} is {level} ({_range(inside)}) whenever {_is(name, values)}{whatever} "
            f"({_range(usual)} for most other prompts): the trigger is {_is(name, values)}"
            + (", not the " + " or the ".join(others) if others else "") + ".")
    lines = [head]
    if extra:
        combos = [", ".join(f"{n}={v!r}" for n, v in zip(s.slots, s.rows[i].values)) + f" ({_p(probs[i])})"
                  for i in extra]
        shown = "; ".join(combos[:4]) + (f"; and {len(combos) - 4} more" if len(combos) > 4 else "")
        lines.append(f"Also raised, outside that rule, for {len(extra)} prompt(s): {shown}.")
    return lines


def summary_text(s, pat) -> str:
    """``Sweep.summary``: the pattern of ``probe.overfit.sweep.pattern`` in words."""
    watch = f"P({s.watch!r})"
    probs = [r.prob for r in s.rows]
    if len(probs) == 1:
        lines = [f"{watch} = {_p(probs[0])} for the one prompt: give more values to see what moves it."]
    elif pat.kind == "split":
        lines = _split_words(s, pat, watch)
    elif pat.kind == "low":
        lines = [f"{watch} stays low ({_range(probs)}) for every combination: none of these slots triggers it."]
    elif pat.kind == "high":
        lines = [(f"{watch} stays high ({_range(probs)}) whatever the values: the answer ignores every "
                 f"slot ({', '.join(s.slots)}).")]
    else:
        median = sorted(probs)[len(probs) // 2]
        lines = [(f"{watch} varies from {_p(min(probs))} to {_p(max(probs))} (median {_p(median)}) "
                 "with no clear high/low split.")]
        ranked = sorted(zip(pat.effects, s.slots.values()), key=lambda ev: min(ev[0].means) - max(ev[0].means))
        for e, values in ranked:
            lo, hi = e.means.index(min(e.means)), e.means.index(max(e.means))
            if e.ignored:
                lines.append(f"- {e.name}: barely moves it (means {_range(e.means)})")
            else:
                lines.append(f"- {e.name}: moves it (mean {_p(e.means[lo])} for {values[lo]!r} up to "
                             f"{_p(e.means[hi])} for {values[hi]!r})")
    greedy = sum(r.watch_is_greedy for r in s.rows)
    lines.append(f"The model writes {s.watch!r} greedily after {greedy} of {len(probs)} prompts.")
    return "\n".join(lines)


def sweep_text(s) -> str:
    """``str(sweep)``: the summary, then one line per row."""
    head = f"Sweep of {s.template!r} watching {s.watch!r}: {len(s.rows)} prompts - {s.model}"
    width = {n: max(len(n), *(len(repr(v)) for v in vs)) for n, vs in s.slots.items()}
    lines = [head, s.summary, "", "  ".join(n.ljust(width[n]) for n in s.slots) + "  P(watch)  rank  greedy"]
    for r in s.rows[:MAX_TEXT_ROWS]:
        cells = "  ".join(repr(v).ljust(width[n]) for n, v in zip(s.slots, r.values))
        lines.append(f"{cells}  {r.prob:8.3g}  {r.first_rank:4d}  {r.greedy!r} {r.greedy_prob:.3f}")
    if len(s.rows) > MAX_TEXT_ROWS:
        lines.append(f"... {len(s.rows) - MAX_TEXT_ROWS} more rows (Sweep.table() has them all)")
    return "\n".join(lines)


def _cell_color(p: float) -> str:
    """P(watched text): one hue, light (0) to strong (1). The watched text is usually the wrong
    answer, so never green (which means "agrees with the expected answer" in every view)."""
    return f"hsl(8,80%,{97 - 33 * max(0.0, min(1.0, p)):.0f}%)"


def _grid_html(s) -> str:
    """The first two slots as a table of colored cells (mean P over any other slots)."""
    names = list(s.slots)
    x, y = names[0], (names[1] if len(names) > 1 else None)
    xs, ys, z, _ = s.grid(x, y)
    lines = [z] if ys is None else z
    labels = [""] if ys is None else ys
    head = "".join(f"<th>{escape(v)}</th>" for v in xs)
    body = "".join(
        f"<tr><th>{escape(label)}</th>"
        + "".join(f'<td style="background:{_cell_color(p)}">{_p(p)}</td>' for p in line) + "</tr>"
        for label, line in zip(labels, lines))
    corner = escape(y + " \\ " + x if y else x)
    key = "".join(f'<span class="probe-key" style="background:{_cell_color(p)}">{p:g}</span>' for p in (0, 0.5, 1))
    others = names[2:]
    note = (f"<div class='probe-head'>P(watch), mean over {escape(', '.join(others))}</div>" if others
            else "<div class='probe-head'>P(watch)</div>")
    legend = f'<div class="probe-legend">P(watched text) per cell: {key}</div>'
    return (f'{note}<div class="probe-scroll"><table class="probe-grid"><tr><th>{corner}</th>{head}</tr>{body}'
            f'</table></div>{legend}')


def rows_html(s, rows=None, limit: int = MAX_HTML_ROWS) -> str:
    """The rows as an HTML table, most probable watch first."""
    rows = sorted(s.rows if rows is None else rows, key=lambda r: -r.prob)
    head = "".join(f"<th>{escape(n)}</th>" for n in s.slots)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in r.values)
        + f"<td>{p_text(r.prob)}</td><td>{r.first_rank}</td><td><code>{escape(repr(r.greedy))}</code> "
          f"{r.greedy_prob:.3f}</td></tr>" for r in rows[:limit])
    more = f"<div class='probe-head'>{limit} of {len(rows)} rows, most probable first</div>" if len(rows) > limit else ""
    return (f'<table class="probe-rows"><tr>{head}<th>P(watch)</th><th>rank</th><th>greedy</th></tr>'
            f"{body}</table>{more}")


def sweep_html(s) -> str:
    head = (f"Sweep of <code>{escape(s.template)}</code> watching <code>{escape(repr(s.watch))}</code>: "
            f"{len(s.rows)} prompts &middot; {escape(s.model)}")
    summary = "<br>".join(escape(line) for line in s.summary.splitlines())
    return styled(f'<div class="probe-head">{head}</div><p>{summary}</p>{_grid_html(s)}'
                  f"<details><summary>all rows</summary>{rows_html(s)}</details>")


def _tick(value: str) -> str:
    """A slot value as an axis label: escaped; edge whitespace made visible."""
    return escape(value) if value and value.strip() == value else _label(value)


def _hover(s, members) -> str:
    rows = [s.rows[i] for i in members]
    if len(rows) == 1:
        r = rows[0]
        return (f"{escape(r.prompt)}<br>P={p_text(r.prob)}, first-token rank {r.first_rank}<br>"
                f"greedy {escape(repr(r.greedy))} {r.greedy_prob:.3f}")
    return f"mean P={p_text(sum(r.prob for r in rows) / len(rows))} over {len(rows)} prompts ({_range([r.prob for r in rows])})"


def sweep_figure(s, x: str | None = None, y: str | None = None, *, bars: bool = False):
    """Heatmap of P(watch) over two slots, averaged over any other slots.

    One slot (or ``bars=True``): a bar per value of ``x``. Axes are indexed 0..n-1 with the
    values as tick labels, so a click gives positions.
    """
    go = _plotly()
    names = list(s.slots)
    x = x or names[0]
    if bars:
        y = None
    elif y is None:
        y = next((n for n in names if n != x), None)
    xs, ys, z, members = s.grid(x, y)
    others = [n for n in names if n not in (x, y)]
    title = f"P({s.watch!r})" + (f" (mean over {', '.join(others)})" if others else "")
    xaxis = {"title": escape(x), "tickmode": "array", "tickvals": list(range(len(xs))),
             "ticktext": [_tick(v) for v in xs]}
    if ys is None:
        data = go.Bar(x=list(range(len(xs))), y=z, text=[_hover(s, m) for m in members],
                      hovertemplate="%{text}<extra></extra>", textposition="none")
        yaxis = {"title": "P(watch)", "range": [0, 1]}
    else:
        data = go.Heatmap(x=list(range(len(xs))), y=list(range(len(ys))), z=z, zmin=0, zmax=1,
                          colorscale="Viridis", text=[[_hover(s, m) for m in line] for line in members],
                          hovertemplate="%{text}<extra></extra>", colorbar={"title": "P"})
        yaxis = {"title": escape(y), "tickmode": "array", "tickvals": list(range(len(ys))),
                 "ticktext": [_tick(v) for v in ys], "autorange": "reversed"}
    fig = go.Figure(data)
    fig.update_layout(title=escape(title), xaxis=xaxis, yaxis=yaxis, height=380,
                      margin={"l": 60, "r": 30, "t": 50, "b": 60})
    return fig


def top_html(row) -> str:
    """One row's top-k alternatives at the first answer position."""
    items = "".join(f"<tr><td>{i + 1}</td><td><code>{escape(repr(a.text))}</code></td><td>{p_text(a.prob)}</td></tr>"
                    for i, a in enumerate(row.top))
    return (f"<div style='font-family:sans-serif'><b>{escape(row.prompt)}</b>: P(watch)={p_text(row.prob)}, "
            f"first-token rank {row.first_rank}<table><tr><th>#</th><th>next token</th><th>p</th></tr>"
            f"{items}</table></div>")


# Occlusion ---------------------------------------------------------------------------------

def summary_html(s) -> str:
    """The sweep's summary in words, one line per paragraph line."""
    return "<p>" + "<br>".join(escape(line) for line in s.summary.splitlines()) + "</p>"


def cell_html(rows, limit: int = 10) -> str:
    """The prompts of one grid cell (the first ``limit``), each with its top alternatives."""
    more = f"<div>{limit} of {len(rows)} prompts in this cell</div>" if len(rows) > limit else ""
    return "".join(top_html(r) for r in rows[:limit]) + more


def _delta_color(delta: float, scale: float) -> str:
    """Red: P(target) falls without the piece (the answer leans on it); blue: it rises (full
    color at +-inf); gray: NaN (the target impossible with and without it)."""
    if math.isnan(delta):
        return "hsl(0,0%,85%)"
    x = max(-1.0, min(1.0, delta / scale)) if math.isfinite(delta) else math.copysign(1.0, delta)
    return f"hsl({0 if x < 0 else 220},75%,{100 - 30 * abs(x):.0f}%)"


def _signed(delta: float) -> str:
    return "nan" if math.isnan(delta) else f"{delta:+.3f}"


def occlusion_html(o) -> str:
    scale = max([1.0] + [abs(p.delta) for p in o.pieces if math.isfinite(p.delta)])
    action = "removing" if o.mode == "remove" else f"replacing with {o.replacement!r}"
    head = (f"log P({o.target!r}) = {o.logprob:.3f} with the whole prompt; {action} each {o.unit}: "
            f"red = P falls without it (the answer leans on it), blue = P rises.")
    cells, at = [], 0
    for p in o.pieces:
        cells.append(escape(o.prompt[at:p.start]))  # the text between pieces, uncolored
        tip = escape(f"{p.text!r}\nlog P without it: {p.logprob:.3f}\ndelta: {_signed(p.delta)}\n"
                     f"variant: {p.variant!r}", quote=True)
        cells.append(f'<span class="probe-tok" data-index="{p.index}" style="background:'
                     f'{_delta_color(p.delta, scale)}" title="{tip}">{visible(p.text)}</span>')
        at = p.end
    cells.append(escape(o.prompt[at:]))
    return styled(f'<div class="probe-head">{escape(head)} &middot; {escape(o.model)}</div>'
                  f'<div class="probe-strip" style="white-space:pre-wrap">{_occlusion_legend(scale)}{"".join(cells)}'
                  f'</div>')


def _occlusion_legend(scale: float) -> str:
    keys = "".join(f'<span class="probe-key" style="background:{_delta_color(d, scale)}">{label}</span>'
                   for d, label in ((-scale, f"P falls ({-scale:.1f} nats)"), (0.0, "no change"),
                                    (scale, f"P rises (+{scale:.1f})")))
    return f'<div class="probe-legend">without the piece: {keys}</div>'


def occlusion_text(o) -> str:
    action = "removed" if o.mode == "remove" else f"replaced with {o.replacement!r}"
    lines = [f"Occlusion ({o.unit}s {action}): log P({o.target!r}) = {o.logprob:.3f} intact - {o.model}",
             f"  {'#':>3} {o.unit:<20} {'log P':>8} {'delta':>8}"]
    for p in o.pieces:
        lines.append(f"  {p.index:>3} {repr(p.text)[:20]:<20} {p.logprob:>8.3f} {_signed(p.delta):>8}")
    lead = o.ranked()[:3]
    if lead and lead[0].delta < 0:
        lines.append("  the answer leans most on: " + ", ".join(f"{p.text!r} ({p.delta:+.2f})" for p in lead if p.delta < 0))
    return "\n".join(lines)
