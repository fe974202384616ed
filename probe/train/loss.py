"""What did the model learn from its data? Token loss over the SFT set, base vs tuned.

    >>> _ = open("train.jsonl", "w").write(
    ...     '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}], '
    ...     '"source": "chat"}\\n{"prompt": "2 + 2 =", "completion": " 4", "source": "math"}\\n')
    >>> d = probe.data_loss((base, tuned), "train.jsonl", channel="source")
    >>> sorted(c.name for c in d.channels)   # per source: examples, tokens, mean loss base / tuned, change
    ['chat', 'math']
    >>> "special" in [k.name for k in d.kinds]   # the same per token kind (special, template, ...)
    True
    >>> flagged = d.memorized[:5], d.not_learned[:5], d.outliers
    >>> trace = d.examples[0].tuned            # a TokenTrace: every trace view works

Every example is tokenized and masked as the trainer does (:mod:`probe.train.masks`) and its
scored tokens are scored under both models (:mod:`probe.train.score`). The dataset is read
as ``probe.data.count`` reads it (JSON Lines, ``.gz``, an iterable), streamed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import partial

from ..core.engines import as_engine
from ..core.numbers import json_numbers
from ..core.progress import progress as progress_bar
from ..core.registry import register
from ..data.records import BLANK, MAX_SKIPPED, BadRecord, Skipped, open_dataset
from ..diagnosis.result import _one_batch
from ..engine.scoring import _batches, _vocab_size, check_top_k
from ..engine.trace import TokenTrace
from ..render.train_loss import loss_html, loss_section, loss_text
from ..shifts.map import _check_pair
from .channels import GroupLoss, Sums, channel_value, check_thresholds, example_flags, loss_in
from .masks import KINDS, MASKS, MAX_LENGTH, parse, tokenize
from .score import losses, mean, score_batch, seqs, trace

CHUNK = 256  # examples tokenized ahead and sorted by length before batching


@dataclass(frozen=True)
class ExampleLoss:
    """One training example under both models."""

    line: int  # 1-based line of the file (record number for an iterable)
    channel: str
    shape: str  # "messages" | "prompt_completion" | "text"
    n_tokens: int  # the whole sequence
    base_losses: tuple[float, ...]  # -log p of each scored token, nats
    tuned_losses: tuple[float, ...]
    kinds: tuple[str, ...]  # per scored token
    flags: tuple[str, ...] = ()  # "memorized", "not_learned"
    base: TokenTrace | None = None  # the scored tokens (traces=True)
    tuned: TokenTrace | None = None
    cut: int = 0  # tokens cut off the end by max_length (the trainer never trains on them)

    @property
    def n_scored(self) -> int:
        return len(self.base_losses)

    @property
    def base_loss(self) -> float:
        """Mean loss per scored token under the base model."""
        return mean(self.base_losses)

    @property
    def tuned_loss(self) -> float:
        return mean(self.tuned_losses)

    @property
    def base_total(self) -> float:
        return math.fsum(self.base_losses)

    @property
    def tuned_total(self) -> float:
        return math.fsum(self.tuned_losses)

    @property
    def change(self) -> float:
        return self.tuned_loss - self.base_loss

    @classmethod
    def from_dict(cls, d: dict) -> "ExampleLoss":
        tr = lambda k: None if d.get(k) is None else TokenTrace.from_dict(d[k])  # noqa: E731
        return cls(int(d["line"]), str(d["channel"]), str(d["shape"]), int(d["n_tokens"]),
                   tuple(map(loss_in, d["base_losses"])), tuple(map(loss_in, d["tuned_losses"])),
                   tuple(map(str, d["kinds"])), tuple(map(str, d.get("flags", ()))), tr("base"), tr("tuned"),
                   int(d.get("cut", 0)))


def _loss_batch(base, tuned, batch, *, top_k: int, settings: dict, traces, thresholds: dict) -> list:
    """One batch, ``(adapter, [(line, channel, tokens, shape), ...])``: an ExampleLoss each.

    Module-level and picklable: an engine (``probe.core.engines``) may run it on a worker that
    holds its own copy of the pair."""
    adapter, items = batch
    if adapter is not None and adapter != tuned.active_adapter:
        tuned.use_adapter(adapter)
    b_stats, t_stats = score_batch(base, tuned, _one_batch(base, tuned), [t for _, _, t, _ in items], top_k)
    out, lo = [], 0
    for line, chan, t, shape in items:
        n = t.n_scored
        bl, tl = losses(b_stats, lo, n), losses(t_stats, lo, n)
        kinds = tuple(k for k, m in zip(t.kinds, t.mask) if m)
        flags = example_flags(mean(bl), mean(tl), thresholds)
        keep = traces is True or (traces == "flagged" and bool(flags))
        out.append(ExampleLoss(
            line, chan, shape, len(t.ids), bl, tl, kinds, flags,
            trace(base, t, b_stats, lo, settings) if keep else None,
            trace(tuned, t, t_stats, lo, settings) if keep else None, t.cut))
        lo += n
    return out


@dataclass(frozen=True)
class DataLoss:
    """Token loss of a training set under base and tuned, by example, channel and token kind."""

    source: str
    examples: tuple[ExampleLoss, ...]
    channels: tuple[GroupLoss, ...]
    kinds: tuple[GroupLoss, ...]
    channel: str | None  # the field the channels come from ("<function>" for a function)
    mask: str | None  # the mask asked for (None: the trainer's default for each shape)
    thresholds: dict[str, float]
    blank: int = 0
    skipped: int = 0
    skipped_lines: tuple[Skipped, ...] = ()
    models: dict[str, str] = field(default_factory=dict)
    adapter: str | None = None
    max_length: int | None = None  # examples cut to this many tokens (None: none cut)
    truncated: int = 0  # examples longer than max_length, scored on their first max_length tokens

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def n_tokens(self) -> int:
        return sum(e.n_scored for e in self.examples)

    @property
    def base_loss(self) -> float:
        """Token-weighted mean loss over every scored token, base model."""
        return math.fsum(e.base_total for e in self.examples) / self.n_tokens if self.n_tokens else math.nan

    @property
    def tuned_loss(self) -> float:
        return math.fsum(e.tuned_total for e in self.examples) / self.n_tokens if self.n_tokens else math.nan

    def flagged(self, flag: str) -> list[ExampleLoss]:
        """Examples with ``flag``, the strongest evidence first (largest |change|)."""
        return sorted((e for e in self.examples if flag in e.flags), key=lambda e: (e.change, e.line)
                      if flag == "memorized" else (-e.tuned_loss, e.line))

    @property
    def memorized(self) -> list[ExampleLoss]:
        return self.flagged("memorized")

    @property
    def not_learned(self) -> list[ExampleLoss]:
        return self.flagged("not_learned")

    @property
    def outliers(self) -> list[GroupLoss]:
        return [c for c in self.channels if c.outlier]

    def kind(self, name: str) -> GroupLoss | None:
        return next((k for k in self.kinds if k.name == name), None)

    def example(self, line: int) -> ExampleLoss:
        for e in self.examples:
            if e.line == line:
                return e
        raise KeyError(f"no example from line {line}")

    def to_dict(self) -> dict:
        """Plain data, strict JSON: a loss of +inf (a token the model gives probability 0), an
        infinite threshold or change is saved as "inf" / "-inf" and read back as the float;
        traces save their own way."""
        d = asdict(self)
        for e, saved in zip(self.examples, d["examples"]):
            saved["base"] = e.base.to_dict() if e.base is not None else None
            saved["tuned"] = e.tuned.to_dict() if e.tuned is not None else None
        return json_numbers(d)

    @classmethod
    def from_dict(cls, d: dict) -> "DataLoss":
        return cls(str(d["source"]), tuple(ExampleLoss.from_dict(e) for e in d["examples"]),
                   tuple(GroupLoss.from_dict(c) for c in d["channels"]),
                   tuple(GroupLoss.from_dict(c) for c in d["kinds"]), d.get("channel"), d.get("mask"),
                   {str(k): float(v) for k, v in d["thresholds"].items()}, int(d.get("blank", 0)),
                   int(d.get("skipped", 0)),
                   tuple(Skipped(int(s["line"]), str(s["reason"])) for s in d.get("skipped_lines", ())),
                   {str(k): str(v) for k, v in d.get("models", {}).items()}, d.get("adapter"),
                   None if d.get("max_length") is None else int(d["max_length"]), int(d.get("truncated", 0)))

    def __str__(self) -> str:
        return loss_text(self)

    def _repr_html_(self) -> str:
        return loss_html(self)


register(DataLoss, default_name="data_loss", section=loss_section)


def _pair(lm_or_pair):
    if isinstance(lm_or_pair, (tuple, list)):
        if len(lm_or_pair) != 2:
            raise TypeError("give one LM or a (base, tuned) pair")
        return lm_or_pair[0], lm_or_pair[1]
    return lm_or_pair, lm_or_pair


def data_loss(lm_or_pair, dataset, *, mask: str | None = None, channel=None, top_k: int = 3,
              traces: bool | str = True, batch_size: int = 16, limit: int | None = None,
              thresholds: dict | None = None, progress: bool = False, engine=None,
              max_length: int | None = MAX_LENGTH) -> DataLoss:
    """Token loss of every example of ``dataset`` under base and tuned, with the trainer's mask.

    Args:
        lm_or_pair: ``(base, tuned)`` (``probe.load_pair``; a LoRA pair runs both in one batch)
            or one LM (both sides the same).
        dataset: a JSONL file (``.gz`` too), or an iterable of records (dicts or strings).
        mask: "all", "assistant", "last_assistant", "completion", or None for what TRL's
            SFTTrainer does with each shape (messages: all; prompt/completion: completion + EOS;
            text: all + EOS).
        channel: a record field ("source", "meta.task"; a list value joins its items) or a
            function ``record -> str``; None puts every example in one channel.
        top_k: alternatives kept per token in the traces.
        traces: keep each example's per-token TokenTrace for both models (True), none (False:
            the per-token losses are still kept), or only the flagged examples' ("flagged"):
            a trace holds ``top_k`` alternatives per token, the bulk of a large run's memory.
        batch_size: examples per batch (the logits budget may cut a batch shorter).
        engine: where the batches run: None (here) or ``probe.ray_engine(...)`` (workers that
            rebuild the pair); the batches and the results are the same either way.
        limit: stop after this many scored examples.
        max_length: score only the first ``max_length`` tokens of each example, as TRL's
            SFTTrainer trains only on them (``SFTConfig.max_length``, 1024 by default, keeping
            the start); None scores every token. An example with nothing to score left is
            skipped, as the trainer drops it; ``truncated`` counts the examples cut.
        thresholds: overrides of ``probe.train.channels.THRESHOLDS`` (memorized, high_base,
            not_learned, outlier).

    Records of an unknown shape, lines that are not UTF-8 or not JSON and records with nothing
    to score under the mask (no assistant turn) are counted as skipped, with the first few lines
    named.

    Raises:
        ValueError: an empty dataset (nothing scored), a bad mask or threshold, base and tuned
            with different vocabularies.
    """
    top_k = check_top_k(top_k)
    th = check_thresholds(thresholds)
    if mask is not None and mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS} or None (the trainer's default), got {mask!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if traces not in (True, False, "flagged"):
        raise ValueError(f"traces must be True, False or 'flagged', got {traces!r}")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool)
                                   or max_length < 1):
        raise ValueError(f"max_length must be a positive int or None (no truncation), got {max_length!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    if channel is not None and not (callable(channel) or isinstance(channel, str)):
        raise TypeError(f"channel must be a field name or a function of the record, got {type(channel).__name__}")
    base, tuned = _pair(lm_or_pair)
    if base is not tuned:
        _check_pair(base, tuned)
    # rows per example in a batch: 2 where a LoRA pair can run base and tuned together. Read from
    # the pair's structure alone, so that a driver without weights forms the batches a local run
    # forms (where PEFT cannot mix adapters per row, OPT's MLP, MoE experts, the worker runs the
    # two sides one after the other, within the same budget).
    rows_per = 2 if (base is not tuned and base.model is tuned.model and base.adapter_enabled is False
                     and bool(tuned.adapter_enabled) and tuned.active_adapter is not None) else 1
    vocab = _vocab_size(tuned)
    engine = as_engine(engine)
    source, total, unit, open_records = open_dataset(dataset)
    settings = {"top_k": top_k, "mask": mask, "max_length": max_length}
    out: list[ExampleLoss] = []
    skipped: list[Skipped] = []
    counts = {"blank": 0, "skipped": 0, "truncated": 0}
    by_channel, by_kind = Sums(), Sums()

    fn = partial(_loss_batch, top_k=top_k, settings=settings, traces=traces, thresholds=th)

    def flush(pending):
        toks = [p[2] for p in pending]
        batches = [(tuned.active_adapter, [pending[i] for i in chunk])
                   for chunk in _batches(seqs(toks), batch_size, vocab, rows_per=rows_per)]
        for done in engine.map_batches(fn, batches, pair=(base, tuned)):
            for e in done:
                for b, tt, k in zip(e.base_losses, e.tuned_losses, e.kinds):
                    by_channel.add(e.channel, e.line, b, tt)
                    by_kind.add(k, e.line, b, tt)
                out.append(e)

    def skip(line, reason):
        counts["skipped"] += 1
        if len(skipped) < MAX_SKIPPED:
            skipped.append(Skipped(line, reason))

    pending: list = []
    taken = 0
    truncated: list[str] = []  # a .gz that ends mid-stream: scored so far, then named
    line = 0
    with progress_bar(total, progress, "data_loss", unit) as bar:
        for line, record in open_records(bar, truncated):
            if record is BLANK:
                counts["blank"] += 1
                continue
            if record is None:
                skip(line, "null is not a record")
                continue
            if isinstance(record, BadRecord):
                skip(line, str(record))
                continue
            try:
                parsed = parse(record)
                shape = parsed.shape
                t = tokenize(tuned, parsed, mask, max_length=max_length)
            except BadRecord as err:
                skip(line, str(err))
                continue
            limit_len = tuned.max_length
            if limit_len is not None and len(t.ids) > limit_len:
                skip(line, f"{len(t.ids)} tokens, longer than the model's context of {limit_len}")
                continue
            counts["truncated"] += bool(t.cut)
            pending.append((line, channel_value(record, channel), t, shape))
            taken += 1
            if len(pending) >= CHUNK:
                flush(pending)
                pending = []
            if limit is not None and taken >= limit:
                break
        if pending:
            flush(pending)
    if truncated:
        skip(line + 1, truncated[0])
    if not out:
        why = f"; skipped {counts['skipped']}, first: line {skipped[0].line}: {skipped[0].reason}" if skipped else ""
        raise ValueError(f"dataset {source} has no example to score{why}")
    out.sort(key=lambda e: e.line)
    return DataLoss(
        source=source, examples=tuple(out), channels=by_channel.groups(outlier=th["outlier"]),
        kinds=by_kind.groups(order=KINDS), channel=None if channel is None else (
            channel if isinstance(channel, str) else "<function>"),
        mask=mask, thresholds=th, blank=counts["blank"], skipped=counts["skipped"],
        skipped_lines=tuple(skipped), models={"base": base.name, "tuned": tuned.name},
        adapter=tuned.active_adapter, max_length=max_length, truncated=counts["truncated"])
