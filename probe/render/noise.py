"""The noise floor (a shift's figures as percentiles of random adapters') as text and escaped HTML."""

from __future__ import annotations

import math

from .phrases import clip
from .safe import escape
from .style import styled


def _pct(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.0f}"


def _fig(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.4g}"


def _rows(n, top: int):
    kl, sh = n.prompt_percentiles("kl"), n.prompt_percentiles("shifted")
    order = sorted(range(len(kl)), key=lambda i: (-(kl[i] if not math.isnan(kl[i]) else -1), i))
    return [(i, kl[i], sh[i]) for i in order[:top]]


def _prompt_text(p) -> str:
    return p if isinstance(p, str) else " / ".join(str(m.get("content", "")) for m in p)


def noise_text(n, top: int = 10) -> str:
    lines = [f"Noise floor: {len(n.seeds)} random adapters of the same rank, modules and update norm"
             + (f" as {n.adapter}" if n.adapter else "") + (" (from cache)" if n.from_cache else "")]
    for fig in ("mean_kl", "shifted_ratio"):
        null = sorted(x[fig] for x in n.null if not math.isnan(x[fig]))
        rng = f"null {_fig(null[0])}..{_fig(null[-1])}" if null else "null -"
        lines.append(f"  {fig:<14} {_fig(n.observed[fig]):>10}  percentile {_pct(n.percentile(fig)):>3}  ({rng})")
    lines.append(f"  prompts by KL percentile (of {len(n.observed['kl'])}): pct(KL) pct(shifted)  prompt")
    for i, k, s in _rows(n, top):
        lines.append(f"    {_pct(k):>6} {_pct(s):>12}  {clip(_prompt_text(n.prompts[i]) if i < len(n.prompts) else str(i), 60)}")
    return "\n".join(lines)


def noise_body(n, top: int = 20) -> str:
    head = (f"<div style=\"font-family:sans-serif\"><b>Noise floor</b> &middot; {len(n.seeds)} random adapters of the "
            f"same rank, modules and update norm{' (from cache)' if n.from_cache else ''}</div>")
    figs = "".join(f"<tr><td>{f}</td><td>{_fig(n.observed[f])}</td><td>{_pct(n.percentile(f))}</td></tr>"
                   for f in ("mean_kl", "shifted_ratio"))
    table = f'<table class="probe-reg"><tr><th>figure</th><th>trained</th><th>percentile of null</th></tr>{figs}</table>'
    rows = "".join(f"<tr><td>{_pct(k)}</td><td>{_pct(s)}</td><td>"
                   f"{escape(clip(_prompt_text(n.prompts[i]) if i < len(n.prompts) else str(i), 80))}</td></tr>"
                   for i, k, s in _rows(n, top))
    per = (f'<table class="probe-reg"><tr><th>pct KL</th><th>pct shifted</th><th>prompt</th></tr>{rows}</table>')
    return f'<div class="probe-noise">{head}{table}{per}</div>'


def noise_html(n) -> str:
    return styled(noise_body(n))
