"""ShiftExplorer: browse what fine-tuning changed over a prompt set.

    >>> prompts = ["What is the capital of Japan?", "Name three colors."]
    >>> ShiftExplorer(probe.shift(base, tuned, prompts, max_new_tokens=4, progress=False))  # a Shift
    >>> ShiftExplorer(base, tuned, prompts, max_new_tokens=32)  # computes it on Run

Pick a prompt (its answer as a shift strip), a position (both models' top-k there), a
promoted token (the prompts where it wins; picking one of those jumps to it).
"""

from __future__ import annotations

from ..render.shift import (_prompt_text, kl_svg, position_html, shift_strip, shift_text, token_table_html,
    wins_html)
from ..render.style import styled
from ..render.phrases import clip as _clip, show
from .common import html_view, Runner, _ipywidgets, message
from ..shifts.map import Shift, shift


class ShiftExplorer:
    """Interactive view of a :class:`probe.Shift` (see the module docstring)."""

    def __init__(self, shift_or_base, tuned=None, prompts=None, *, background: bool = True, **kwargs):
        w = _ipywidgets()
        self.result: Shift | None = None
        self.summary = html_view()
        self.prompt = w.Dropdown(description="prompt", options=[], layout={"width": "100%"})
        self.strip = html_view()
        self.position = w.Dropdown(description="position", options=[], layout={"width": "60%"})
        self.detail = html_view()
        self.token = w.Dropdown(description="promoted", options=[], layout={"width": "60%"})
        self.wins = html_view()
        self.win = w.Dropdown(description="go to", options=[], layout={"width": "100%"})
        self.table = html_view()
        self.status = html_view()
        self.run_button = w.Button(description="Run", button_style="primary")
        self.runner = Runner(self.status, [self.run_button], background)
        self.prompt.observe(lambda _: self._show_prompt(), names="value")
        self.position.observe(lambda _: self._show_position(), names="value")
        self.token.observe(lambda _: self._show_token(), names="value")
        self.win.observe(lambda _: self._jump(), names="value")
        parts = [self.status, self.summary, self.prompt, self.strip, self.position, self.detail,
                 self.token, self.wins, self.win, self.table]
        if isinstance(shift_or_base, Shift):
            self.show(shift_or_base)
        else:
            if tuned is None or prompts is None:
                raise TypeError("ShiftExplorer takes a Shift, or (base, tuned, prompts)")
            base, prompts = shift_or_base, list(prompts)
            self.run_button.on_click(lambda _: self.run(base, tuned, prompts, **kwargs))
            self.status.value = message("info", f"{len(prompts)} prompts: press Run to compare the models.")
            parts.insert(0, self.run_button)
        self.widget = w.VBox(parts)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def run(self, base, tuned, prompts, **kwargs) -> None:
        self.runner.start("shift", lambda: self.show(shift(base, tuned, prompts, **kwargs)))

    def show(self, result) -> None:
        """Fill every view from ``result`` (a Shift)."""
        self.result = result
        self.summary.value = f"<pre>{_esc(shift_text(result))}</pre>{kl_svg(result)}"
        self.table.value = styled(token_table_html(result, "promoted", n=20))
        self.token.options = [(f"{show(t.text)} x{t.count} in {t.n_prompts} prompts ({t.mean_gain:+.2f})", t.id)
                              for t in result.promoted[:50]]
        self.prompt.options = [(f"{ps.case_id or i}: {_clip(_prompt_text(ps.prompt), 70)}", i)
                               for i, ps in enumerate(result.prompts)]
        self.prompt.value = 0 if result.prompts else None
        self.token.value = result.promoted[0].id if result.promoted else None
        self._show_prompt()
        self._show_token()
        if not self.status.value:
            self.status.value = message("ok", f"{len(result.prompts)} prompts, {result.n_positions} positions")

    def _show_prompt(self) -> None:
        if self.result is None or self.prompt.value is None:
            return
        ps = self.result.prompts[self.prompt.value]
        keep = self.position.value if self.position.value is not None else 0
        self.position.options = [(f"{p.index}: {show(p.text)} ({p.kind}, base rank {p.base_rank})", p.index)
                                 for p in ps.positions]
        if ps.positions:
            self.position.value = min(keep, len(ps.positions) - 1)
        self._show_position()

    def _show_position(self) -> None:
        if self.result is None or self.prompt.value is None or self.position.value is None:
            return
        ps = self.result.prompts[self.prompt.value]
        self.strip.value = styled(shift_strip(ps, mark=self.position.value, prompt_index=self.prompt.value))
        self.detail.value = styled(position_html(ps.positions[self.position.value]))

    def _show_token(self) -> None:
        if self.result is None or self.token.value is None:
            self.wins.value, self.win.options = "", []
            return
        self.wins.value = wins_html(self.result, self.token.value)
        self.win.options = [("(pick one)", None)] + [
            (f"{g:+.2f} at {j}: {self.result.prompts[i].case_id or i}", (i, j))
            for i, j, g in self.result.where(self.token.value)]
        self.win.value = None

    def _jump(self) -> None:
        if self.win.value is None:
            return
        i, j = self.win.value
        self.prompt.value = i
        self.position.value = j
        self._show_position()


def _esc(text: str) -> str:
    from ..render.safe import escape

    return escape(text)
