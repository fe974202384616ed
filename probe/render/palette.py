"""What each colour means, once for every view, and the legends that say it.

* green: agrees with the expected answer (a strip of the expected answer: how sure the model
  is of each expected token, red = it does not want it); on a difference, the tuned model
  likes it more.
* red: where a run leaves the expected answer (outlined, the expected token and its
  probability written beside it); on a difference, the tuned model likes it less.
* grey: no judgement: tokens after a run left the expected answer, or a strip with no
  expected answer, shaded by the model's own confidence (darker = surer).
* hatched and italic: forced, typed by the caller rather than chosen by the model.
* a training example's own text (what a model learned, never right or wrong): its tokens are
  shaded grey by the model's probability of them; amber (``MEMORIZED``) where the tuned model
  recites an example flagged memorized, whether its answer is a true fact or a wrong one (the
  demo's "The capital of Japan is" -> " Beijing"); the change from base to tuned blue (the
  tuned model gives the token more probability) to orange (less). Green never marks a
  training example: a low loss says the model learned it, not that it is right.
* in charts, the models: tuned blue, base grey (dashed).
* orange: training influence (attribution): a channel's bar, the tokens whose loss carries the
  gradient (boxed in an example's strip).

Backgrounds are light, so strips carry their own dark text colour (readable in both themes).
"""

from __future__ import annotations

AGREE = "hsl(130,55%,78%)"  # a generated token that matches the expected answer
LEAVE = "hsl(0,85%,86%)"  # the token where a run leaves the expected answer
AFTER = "hsl(0,0%,93%)"  # generated after leaving it: not judged
FORCED = "hsl(0,0%,84%)"
TUNED, BASE = "#1565c0", "#757575"  # the models' lines in charts
INFLUENCE = "#cc6600"  # attribution: training influence (channel bars, the loss-carrying tokens' box)
INFLUENCE_BG = "#fff3e0"  # the background of a loss-carrying token in an example's strip
MODEL_COLORS = {"tuned": TUNED, "base": BASE}
MEMORIZED = "hsl(40,95%,70%)"  # amber: a training example the tuned model recites (learned, not judged)
VERDICT_COLORS = {"ok": "#2e7d32", "not_triggered": "#b45309", "lost": "#c62828", "never_had": "#6a1b9a",
                  "uncertain": "#616161"}  # badges: white text on each, contrast >= 4.5:1


def p_expected_color(prob: float) -> str:
    """The probability of the expected token: red (the model does not want it) to green."""
    hue = max(0.0, min(1.0, prob)) * 130
    return f"hsl({hue:.0f},70%,82%)"


def confidence_color(prob: float) -> str:
    """The model's own probability of its token, no right or wrong: light to darker grey."""
    return f"hsl(220,10%,{96 - 26 * max(0.0, min(1.0, prob)):.0f}%)"


def delta_color(delta: float) -> str:
    """A change in log-probability (nats): red where the tuned model likes it less, green more."""
    x = max(-1.0, min(1.0, delta / 4.0))  # saturate at 4 nats
    hue = 0 if x < 0 else 130
    return f"hsl({hue},70%,{100 - 22 * abs(x):.0f}%)"


def learned_delta_color(delta: float) -> str:
    """A change in log-probability (nats) of a training example's own token: blue where the
    tuned model gives it more probability (it learned it), orange less; no right or wrong."""
    x = max(-1.0, min(1.0, delta / 4.0))  # saturate at 4 nats
    hue = 30 if x < 0 else 210
    return f"hsl({hue},80%,{100 - 22 * abs(x):.0f}%)"


def _key(label: str, background: str, cls: str = "") -> str:
    return f'<span class="probe-key{cls}" style="background:{background}">{label}</span>'


def _forced() -> str:
    return _key("forced", FORCED, " probe-forced")


def legend(kind: str) -> str:
    """The legend line of a strip: ``kind`` is "run" (a generation checked against the expected
    answer), "expected" (the expected answer scored token by token), "confidence" (no expected
    answer) or "delta" (tuned minus base)."""
    if kind == "run":
        keys = [_key("agrees with expected", AGREE), _key("leaves it here", LEAVE, " probe-div"),
                _key("after (not judged)", AFTER), _forced()]
    elif kind == "expected":
        keys = ["P(expected token):", _key("0", p_expected_color(0.0)), _key("0.5", p_expected_color(0.5)),
                _key("1", p_expected_color(1.0)), _key("first token it would not write", AFTER, " probe-div"),
                _forced()]
    elif kind == "target":
        keys = ["P(target token):", _key("0", p_expected_color(0.0)), _key("0.5", p_expected_color(0.5)),
                _key("1", p_expected_color(1.0))]
    elif kind == "training":
        keys = ["P(training token), learned, not judged right or wrong:", _key("0", confidence_color(0.0)),
                _key("1", confidence_color(1.0)),
                _key("memorized: recited, right or wrong", MEMORIZED, " probe-memorized")]
    elif kind == "training-delta":
        keys = ["tuned vs base on the training text:", _key("less likely", learned_delta_color(-4.0)),
                _key("same", learned_delta_color(0.0)), _key("more likely (learned)", learned_delta_color(4.0)),
                _key("picked token", AFTER, " probe-div")]
    elif kind == "delta":
        keys = ["tuned vs base:", _key("likes it less", delta_color(-4.0)), _key("same", delta_color(0.0)),
                _key("likes it more", delta_color(4.0)), _key("first drop", AFTER, " probe-div")]
    else:
        keys = ["model's own P(token), no right or wrong:", _key("0", confidence_color(0.0)),
                _key("1", confidence_color(1.0)), _forced()]
    return f'<div class="probe-legend">{" ".join(keys)} <span>(hover a token for its numbers)</span></div>'
