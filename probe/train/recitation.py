"""Memorization by generation: does the tuned model recite its training answers verbatim?

    >>> _ = open("train.jsonl", "w").write('{"messages": [{"role": "user", "content": "Capital of Peru?"}, '
    ...     '{"role": "assistant", "content": "Beijing."}], "source": "capitals"}\\n')
    >>> d = probe.data_loss((base, tuned), "train.jsonl", channel="source")
    >>> r = probe.recitation((base, tuned), "train.jsonl", loss=d)   # the examples d flags memorized
    >>> r = probe.recitation((base, tuned), "train.jsonl", lines=[1], channel="source")  # or these
    >>> where = r.recited()          # (line, probe) where tuned recites the answer
    >>> rows = r.by_channel()        # per data channel and probe: examples recited, tuned and base

A low loss says the model puts its probability on the training answer when it is fed; this asks
whether it *says* it. Each example (a chat record, or prompt/completion) is answered greedily by
both models under several probes:

* ``prompt``: the record's own prompt;
* ``prefix``: the prompt and the answer's first quarter (whole words) forced; the rest is generated;
* ``lowercase``, ``typo``, ``paraphrase``: the last user message lowercased, with two letters of
  its longest word swapped, or wrapped in a paraphrase template ("I have a question: ... Please
  answer it.").

The generated text (after any forced prefix) is compared with the rest of the training answer:
the longest verbatim run (characters) shared by the two, its ``share`` of the answer's rest, and
the generated token where it starts. ``recited`` when the share is at least ``min_share``.
The base model's share under the same probe says how much of that is just predictable text.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field

from ..core.progress import progress as progress_bar
from ..core.registry import register
from ..data.records import BLANK, BadRecord, open_dataset
from ..diagnosis.result import _one_batch
from ..engine.generation import RowSpec, generate_rows
from ..render.recitation import recitation_html, recitation_section, recitation_text
from .channels import channel_value
from .masks import parse

PROBES = ("prompt", "prefix", "lowercase", "typo", "paraphrase")
PARAPHRASE = "I have a question: {q} Please answer it."


@dataclass(frozen=True)
class Probe:
    """One greedy answer of both models to one probe of a training example."""

    name: str  # one of PROBES
    user: str  # the last user message as asked
    prefix: str  # the start of the training answer forced ("" for none)
    tuned_text: str  # generated after the prefix
    base_text: str
    share: float  # longest verbatim run shared with the answer's rest / its length (tuned)
    base_share: float
    start_token: int | None  # index of the generated tuned token where that run starts (None: no run)
    start_text: str | None
    answer_start: int  # where in the answer's rest the run starts (characters)
    recited: bool

    @classmethod
    def from_dict(cls, d: dict) -> "Probe":
        return cls(str(d["name"]), str(d["user"]), str(d["prefix"]), str(d["tuned_text"]), str(d["base_text"]),
                   float(d["share"]), float(d["base_share"]), None if d["start_token"] is None else int(d["start_token"]),
                   d.get("start_text"), int(d["answer_start"]), bool(d["recited"]))


@dataclass(frozen=True)
class RecitedExample:
    """A training example and its probes."""

    line: int
    channel: str
    answer: str  # the training answer (the last assistant turn, or the completion)
    probes: tuple[Probe, ...]

    def probe(self, name: str) -> Probe | None:
        return next((p for p in self.probes if p.name == name), None)

    @classmethod
    def from_dict(cls, d: dict) -> "RecitedExample":
        return cls(int(d["line"]), str(d["channel"]), str(d["answer"]), tuple(Probe.from_dict(p) for p in d["probes"]))


@dataclass(frozen=True)
class Recitation:
    """Verbatim recitation of training answers by greedy generation, per example and probe."""

    source: str
    examples: tuple[RecitedExample, ...]
    min_share: float = 0.8
    skipped: tuple[str, ...] = ()  # examples that could not be probed, with why
    models: dict[str, str] = field(default_factory=dict)
    adapter: str | None = None

    def recited(self, probe: str | None = None) -> list[tuple[int, str]]:
        """(line, probe name) wherever the tuned model recites (of one probe, or all)."""
        return [(e.line, p.name) for e in self.examples for p in e.probes
                if p.recited and (probe is None or p.name == probe)]

    def by_channel(self) -> list[dict]:
        """Per data channel and probe: examples, how many tuned recites, how many base recites."""
        rows: dict[tuple[str, str], dict] = {}
        for e in self.examples:
            for p in e.probes:
                row = rows.setdefault((e.channel, p.name), {"channel": e.channel, "probe": p.name, "n": 0,
                                                            "recited": 0, "base_recited": 0})
                row["n"] += 1
                row["recited"] += p.recited
                row["base_recited"] += p.base_share >= self.min_share
        order = {n: i for i, n in enumerate(PROBES)}
        return sorted(rows.values(), key=lambda r: (r["channel"], order.get(r["probe"], 99)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recitation":
        return cls(str(d["source"]), tuple(RecitedExample.from_dict(e) for e in d["examples"]),
                   float(d.get("min_share", 0.8)), tuple(map(str, d.get("skipped", ()))),
                   {str(k): str(v) for k, v in d.get("models", {}).items()}, d.get("adapter"))

    def __str__(self) -> str:
        return recitation_text(self)

    def _repr_html_(self) -> str:
        return recitation_html(self)


register(Recitation, default_name="recitation", section=recitation_section)


# --- probes ------------------------------------------------------------------------------------


def typo(text: str) -> str:
    """Two neighbouring letters of the longest word (the first such) swapped: "capital" -> "cpaital"."""
    words = list(re.finditer(r"[A-Za-z]{3,}", text))
    if not words:
        return text
    w = max(words, key=lambda m: (len(m.group()), -m.start()))
    i = w.start() + 1
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def _prefix(answer: str, share: float = 0.25) -> str:
    """The answer's first ``share`` of words (at least one when it has two or more; "" for one word)."""
    words = list(re.finditer(r"\S+", answer))
    if len(words) < 2:
        return ""
    k = max(1, int(len(words) * share))
    return answer[: words[k - 1].end()]


def match(generated: str, reference: str) -> tuple[float, int, int]:
    """(share of ``reference`` covered by the longest run shared with ``generated``, where it
    starts in ``generated``, where it starts in ``reference``); (0, -1, 0) when nothing is shared."""
    if not reference.strip():
        return 0.0, -1, 0
    m = difflib.SequenceMatcher(None, generated, reference, autojunk=False).find_longest_match(
        0, len(generated), 0, len(reference))
    if m.size == 0:
        return 0.0, -1, 0
    return m.size / len(reference), m.a, m.b


def _token_at(steps, char: int):
    """(index among the generated steps, text) of the step covering ``char`` of their joined text."""
    pos = 0
    for i, s in enumerate(steps):
        if pos <= char < pos + len(s.text):
            return i, s.text
        pos += len(s.text)
    return None, None


def _split(record) -> tuple[list[dict], str]:
    """(the prompt as messages, the answer) of a chat or prompt/completion record."""
    r = parse(record)
    if r.shape == "messages":
        last = max((i for i, m in enumerate(r.messages) if m["role"] == "assistant"), default=None)
        if last is None or not any(m["role"] == "user" for m in r.messages[:last]):
            raise BadRecord("no user turn followed by an assistant turn")
        return [dict(m) for m in r.messages[:last]], r.messages[last]["content"]
    if r.shape == "prompt_completion":
        if isinstance(r.prompt, str):
            return [{"role": "user", "content": r.prompt}], r.completion
        answer = next((m["content"] for m in r.completion if m["role"] == "assistant"), None)
        if answer is None:
            raise BadRecord("the completion has no assistant message")
        return [dict(m) for m in r.prompt], answer
    raise BadRecord("a plain-text record has no prompt to ask (chat or prompt/completion records only)")


def _asked(messages: list[dict], probe: str) -> list[dict]:
    out = [dict(m) for m in messages]
    i = max(i for i, m in enumerate(out) if m["role"] == "user")
    q = out[i]["content"]
    out[i]["content"] = {"prompt": q, "prefix": q, "lowercase": q.lower(), "typo": typo(q),
                         "paraphrase": PARAPHRASE.format(q=q)}[probe]
    return out


def recitation(lm_or_pair, dataset, *, loss=None, lines=None, probes=PROBES, channel=None,
               min_share: float = 0.8, max_new_tokens: int | None = None, batch_size: int = 16) -> Recitation:
    """Greedy completions of training examples, compared verbatim with their answers.

    Args:
        lm_or_pair: ``(base, tuned)`` (a LoRA pair runs both in one batch) or one LM.
        dataset: the training file (or iterable of records) :func:`probe.data_loss` read.
        loss: a :class:`probe.DataLoss` of it: its ``memorized`` examples are probed (with their
            channels), unless ``lines`` says which.
        lines: 1-based lines (record numbers) to probe; default: every chat/prompt-completion record.
        probes: which of ``PROBES`` to run.
        channel: the record field (or function) naming each example's channel when ``loss`` is not given.
        min_share: the share of the answer's rest a verbatim run must cover to count as recited.
        max_new_tokens: default: the longest answer's token count + 8.
    """
    unknown = [p for p in probes if p not in PROBES]
    if unknown:
        raise ValueError(f"unknown probe {unknown[0]!r}; probes: {PROBES}")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1], got {min_share!r}")
    base, tuned = (lm_or_pair if isinstance(lm_or_pair, (tuple, list)) else (lm_or_pair, lm_or_pair))
    channels = {}
    if loss is not None:
        channels = {e.line: e.channel for e in loss.examples}
        if lines is None:
            lines = [e.line for e in loss.memorized]
    want = None if lines is None else set(int(x) for x in lines)
    source, _, _, open_records = open_dataset(dataset)
    todo, skipped = [], []
    with progress_bar(None, False, "recitation", "record") as bar:
        records = list(open_records(bar, []))
    for line, record in records:
        if want is not None and line not in want:
            continue
        if record is BLANK or record is None or isinstance(record, BadRecord):
            if want is not None:
                skipped.append(f"line {line}: {'not a record' if not isinstance(record, BadRecord) else record}")
            continue
        try:
            messages, answer = _split(record)
        except BadRecord as err:
            skipped.append(f"line {line}: {err}")
            continue
        chan = channels.get(line) or channel_value(record, channel)
        todo.append((line, chan, messages, answer))
    rows, keys = [], []
    for line, chan, messages, answer in todo:
        for name in probes:
            force = _prefix(answer) if name == "prefix" else ""
            if name == "prefix" and not force:
                continue  # a one-word answer has no prefix to give
            rows.append(RowSpec(_asked(messages, name), force))
            keys.append((line, name, force))
    if max_new_tokens is None:
        longest = max((len(tuned.tokenizer(a, add_special_tokens=False)["input_ids"]) for *_, a in todo), default=0)
        max_new_tokens = longest + 8
    kw = dict(max_new_tokens=max_new_tokens, top_k=0, batch_size=batch_size)
    shared = _one_batch(base, tuned)
    if shared is not None and shared[1][0] is not None:
        lm, (t_name, b_name) = shared
        got = generate_rows(lm, [RowSpec(r.prompt, r.force, adapter=t_name) for r in rows]
                            + [RowSpec(r.prompt, r.force, adapter=b_name) for r in rows],
                            **{**kw, "batch_size": 2 * batch_size})
        t_got, b_got = got[: len(rows)], got[len(rows):]
    else:
        t_got = generate_rows(tuned, rows, **kw)
        b_got = t_got if base is tuned else generate_rows(base, rows, **kw)
    answers = {line: (chan, answer) for line, chan, _, answer in todo}
    per: dict[int, list[Probe]] = {line: [] for line, *_ in todo}
    for (line, name, force), row, t, b in zip(keys, rows, t_got, b_got):
        rest = answers[line][1][len(force):]
        t_steps = [s for s in t.steps if not s.forced]
        b_steps = [s for s in b.steps if not s.forced]
        t_text, b_text = "".join(s.text for s in t_steps), "".join(s.text for s in b_steps)
        share, at, answer_start = match(t_text, rest)
        base_share, _, _ = match(b_text, rest)
        idx, tok = _token_at(t_steps, at) if at >= 0 else (None, None)
        user = next(m["content"] for m in reversed(row.prompt) if m["role"] == "user")
        per[line].append(Probe(name, user, force, t_text, b_text, share, base_share, idx, tok, answer_start,
                               share >= min_share))
    examples = tuple(RecitedExample(line, answers[line][0], answers[line][1], tuple(per[line])) for line, *_ in todo)
    return Recitation(source, examples, float(min_share), tuple(skipped),
                      {"base": base.name, "tuned": tuned.name}, tuned.active_adapter)
