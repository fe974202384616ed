"""Generation with per-token statistics: greedy or sampled, forced prefixes, watched strings.

    >>> g = probe.generate(lm, "List three colors.", force="```json\\n", watch=["{", " red"])
    >>> [(s.text, s.prob, s.forced) for s in g]

One forward per new token with the KV cache. The forced prefix is fed right after the
generation prompt; its tokens carry the probability the model would have given them. The
ids the model produced are kept as they are (never decoded and re-tokenized).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import torch

from .forward import feed_on_cache, forward, left_pad
from .prefill import kept_positions, scores_on_prefill
from .support import feeds_one_by_one, require, supports
from .prompts import Encoded, Prompt, encode, encode_prompt, render
from .trace import TokenStep, TokenTrace
from ..core.progress import progress as progress_bar
from .sampling import _choose, draw  # noqa: F401  (draw: re-exported)
from .settings import GenerationSettings, StopReason, check_forces
from .stats import make_steps, row_stats, step_at
from .forward import _appends_only
from .scoring import _batches, _score_encoded, _vocab_size


@dataclass
class _Row:
    """One prompt's generation state."""

    prompt: str
    ids: list[int]  # prompt + forced ids: the prefill
    forced: list[TokenStep]
    force_text: str
    watch_ids: dict[str, list[int]]
    free: list[int] = field(default_factory=list)
    steps: list[TokenStep] = field(default_factory=list)
    decoded: str = ""  # decode(free ids) committed so far
    done: bool = False
    stop_reason: StopReason | None = None
    gen: torch.Generator | None = None  # this row's own sampling stream (None: the batch's)
    seed: int | None = None  # the seed of ``gen``
    score_enc: Encoded | None = None  # a text to score teacher-forced after the prompt
    scored: TokenTrace | None = None  # its trace, read off this row's prefill where it can be


def _copies(rows: list[_Row], copies, device) -> list[_Row]:
    """Row ``copies[i][0]`` again for each continuation, with its own generator seeded
    ``copies[i][1]`` (None: greedy)."""
    out = []
    for i, seed in copies:
        gen = None
        if seed is not None:
            gen = torch.Generator(device=device)
            gen.manual_seed(seed)
        out.append(replace(rows[i], free=[], steps=[], gen=gen, seed=seed))
    return out


def _fan_out(rows: list[_Row], copies, last, mask, pos, past, extra):
    """One prefill, many continuations: decode row i continues prefill row ``copies[i][0]``
    with the seed ``copies[i][1]`` (None: greedy). The cache rows are copied, not recomputed."""
    src = [c[0] for c in copies]
    index = torch.tensor(src, device=last.device)
    out = _copies(rows, copies, last.device)
    past.reorder_cache(index)  # (batch, heads, seq, dim) per layer -> one row per continuation
    if "adapter_names" in extra:
        extra = {**extra, "adapter_names": [extra["adapter_names"][i] for i in src]}
    return out, last[index], mask[index], pos[index], extra


def _copies_as_rows(lm, rows: list[_Row], encs, copies, extra):
    """What :func:`_fan_out` makes, as rows to prefill each (a cache whose rows cannot be copied)."""
    if "adapter_names" in extra:
        extra = {**extra, "adapter_names": [extra["adapter_names"][i] for i, _ in copies]}
    return _copies(rows, copies, lm.device), [encs[i] for i, _ in copies], extra


def _watch_ids(lm, rendered, text: str) -> list[int]:
    """Token ids of a watched string as it would follow the prompt."""
    enc = encode(lm, rendered, text)
    if enc.straddles:  # it would merge with the prompt: take it on its own
        return list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    return enc.answer_ids


def _prepare(lm, prompt, force: str, watch: Sequence[str], raw, system, score: str | None = None):
    rendered = render(lm, prompt, raw=raw, system=system)
    watch_ids = {w: _watch_ids(lm, rendered, w) for w in watch}
    score_enc = None if score is None else encode(lm, rendered, score)
    if force:
        enc = encode(lm, rendered, force)
        return _Row(rendered.text, enc.ids, [], force, watch_ids, score_enc=score_enc), enc
    return _Row(rendered.text, encode_prompt(lm, rendered), [], "", watch_ids, score_enc=score_enc), None


@torch.no_grad()
def _watch_probs(lm, rows, logits, past, mask, pos, extra) -> list[dict[str, float]]:
    """P(each watched string comes next) for every row, from the current state.

    A one-token string is read off ``logits``; a longer one needs its tokens fed on top of
    the cache (then the cache is cropped back).
    """
    logp = torch.log_softmax(logits.float(), dim=-1)  # (batch, vocab)
    out: list[dict[str, float]] = [{} for _ in rows]
    names = list(rows[0].watch_ids)
    for name in names:
        seqs = [r.watch_ids[name] for r in rows]
        first = torch.tensor([s[0] for s in seqs], device=logp.device)
        total = logp.gather(1, first[:, None])[:, 0]  # (batch,)
        # the cache comes back as it was, even past a sliding window
        more = feed_on_cache(lm, [s[:-1] for s in seqs], past, mask, pos, one_by_one=feeds_one_by_one(lm),
                             **extra)
        if more is not None:
            k = more.shape[1]
            flat = torch.tensor([row * k + j - 1 for row, s in enumerate(seqs) for j in range(1, len(s))])
            wanted = torch.tensor([s[j] for s in seqs for j in range(1, len(s))])
            got = row_stats(more, wanted, 0, index=flat).logprob
            at = 0
            for row, s in enumerate(seqs):
                for _ in range(1, len(s)):
                    total[row] += got[at]
                    at += 1
        for row, value in enumerate(total.tolist()):
            out[row][name] = math.exp(value)
    return out


def _append_text(lm, row: _Row, token: int) -> str:
    """The exact text ``token`` adds, by decoding all free ids (multi-byte chars held back)."""
    text = lm.tokenizer.decode(row.free, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    if text.endswith("\ufffd") or not text.startswith(row.decoded):
        return ""  # an incomplete character: its text goes to the token that completes it
    added, row.decoded = text[len(row.decoded) :], text
    return added


def _run_batch(lm, rows: list[_Row], encs, settings: GenerationSettings, *, generator,
               special_ids, extra, copies=None) -> list[_Row]:
    """Generate for ``rows`` in one left-padded batch; ``extra`` goes to every forward.

    ``copies``: continue each prefilled row several times (see :func:`_fan_out`); the rows
    that were generated are returned.
    """
    max_new_tokens, top_k = settings.max_new_tokens, settings.top_k
    if copies is not None and not supports(lm, "select"):  # cache rows cannot be copied: prefill each copy
        rows, encs, extra = _copies_as_rows(lm, rows, encs, copies, extra)
        copies = None
    n_forced = [0 if e is None else len(e.answer_ids) for e in encs]
    keep = max(max(n_forced) + 1, max(kept_positions(r.score_enc, r.ids) for r in rows))
    ids, mask = left_pad([r.ids for r in rows], lm.pad_id, lm.device)
    logits, past = forward(lm, ids, mask, keep=keep, cache=True, **extra)  # (batch, keep, vocab)
    for b, (row, enc, n) in enumerate(zip(rows, encs, n_forced)):
        if n:
            flat = torch.arange(b * keep + keep - 1 - n, b * keep + keep - 1)  # logits before each forced token
            stats = row_stats(logits, torch.tensor(enc.answer_ids), top_k, index=flat)
            row.forced = make_steps(lm, stats, enc.answer_ids, enc.texts, enc.spans, forced=True,
                                    straddles_first=enc.straddles)
    last = logits.last()  # (batch, vocab): the distribution of the first free token
    pos = mask.sum(-1) - 1  # position of each row's last real token
    if any(r.score_enc is not None for r in rows) and supports(lm, "rollback"):  # else: scored apart
        scored = scores_on_prefill(lm, logits, past, mask, pos, extra, [r.ids for r in rows],
                                   [r.score_enc for r in rows], top_k)
        for row, trace in zip(rows, scored):
            row.scored = trace
    if copies is not None:
        rows, last, mask, pos, extra = _fan_out(rows, copies, last, mask, pos, past, extra)
    eos = lm.eos_ids
    stops = settings.stops
    generated, rows = rows, list(rows)  # ``rows``: the rows still in the batch
    for step in range(max_new_tokens):
        watch = _watch_probs(lm, rows, last, past, mask, pos, extra) if rows[0].watch_ids else None
        chosen, sampled = _choose(last, rows, settings, generator)
        stats = row_stats(last, chosen, top_k)
        for b, row in enumerate(rows):
            if row.done:
                continue
            token = int(chosen[b])
            row.free.append(token)
            special = token in special_ids
            text = lm.token_text(token) if special else _append_text(lm, row, token)
            row.steps.append(step_at(lm, stats, b, token, text, watch=watch[b] if watch else {},
                                     sampled_prob=None if sampled is None else sampled[b]))
            if token in eos:
                row.done, row.stop_reason = True, "eos"
            elif stops and any(s in row.decoded[-(len(s) + len(text)) :] for s in stops):
                row.done, row.stop_reason = True, "stop"
        if all(r.done for r in rows) or step == max_new_tokens - 1:
            break  # no forward for a token that will not be used
        if (generator is None and sum(r.done for r in rows) >= max(1, len(rows) // 4) and _can_drop(past)
                and supports(lm, "select")):
            rows, mask, pos, extra = _drop_done(rows, past, mask, pos, extra)
        feed = torch.tensor([[r.free[-1]] for r in rows], device=lm.device)  # done rows: ignored
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        pos = pos + 1
        logits, past = forward(lm, feed, mask, keep=1, past=past, pos=pos[:, None], **extra)
        last = logits.last()
    for row in generated:
        if not row.done:
            row.stop_reason = "length"
    return generated


def _can_drop(past) -> bool:
    """Whether finished rows can leave this cache: every layer an append-only key/value layer
    (``reorder_cache`` then selects rows exactly; state-space and linear-attention caches stay)."""
    layers = getattr(past, "layers", None)
    return bool(layers) and hasattr(past, "reorder_cache") and all(_appends_only(layer) for layer in layers)


def _drop_done(rows, past, mask, pos, extra):
    """The batch without its finished rows: they stop costing a forward per step. (Not with one
    batch-wide sampling generator: its draws per step would change with the batch's size.)"""
    keep = [b for b, r in enumerate(rows) if not r.done]
    index = torch.tensor(keep, device=mask.device)
    past.reorder_cache(index)
    if "adapter_names" in extra:
        extra = {**extra, "adapter_names": [extra["adapter_names"][b] for b in keep]}
    return [rows[b] for b in keep], mask[index], pos[index], extra


def _finish(lm, row: _Row, special_ids: set[int], settings: dict) -> TokenTrace:
    """Lay the steps on the final text: spans tile forced text + free text."""
    steps, text = list(row.forced), row.force_text
    cursor = len(text)
    final = lm.tokenizer.decode(row.free, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    free_steps = list(row.steps)
    if free_steps and row.decoded != final and final.startswith(row.decoded):
        # text still held back at the end (an incomplete character): give it to the last token
        k = max((i for i, s in enumerate(free_steps) if s.id not in special_ids), default=None)
        if k is not None:
            s = free_steps[k]
            free_steps[k] = replace(s, text=s.text + final[len(row.decoded):])
    for step in free_steps:
        is_special = step.id in special_ids
        width = 0 if is_special else len(step.text)
        steps.append(replace(step, index=len(steps), start=cursor, end=cursor + width))
        if not is_special:
            text += step.text
        cursor += width
    return TokenTrace(prompt=row.prompt, text=text, steps=tuple(steps), kind="generate",
                      model=lm.name, stop_reason=row.stop_reason, settings=settings)


@dataclass(frozen=True)
class RowSpec:
    """One generation of a batch: its prompt, forced prefix and prompt format."""

    prompt: Prompt
    force: str = ""
    raw: bool | None = None
    system: str | None = None
    adapter: str | None = None  # per-row PEFT adapter name (BASE_ADAPTER: none), mixed batches
    score: str | None = None  # also score this text after the prompt (see generate_and_score)


def generate_rows(lm, specs: Sequence[RowSpec], *, max_new_tokens: int = 64,
                  watch: Sequence[str] | str = (), stop=None, do_sample: bool = False,
                  temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                  top_k: int = 5, batch_size: int = 8, progress: bool = False,
                  settings: GenerationSettings | None = None,
                  fan_out: Sequence[Sequence[int | None]] | None = None) -> list[TokenTrace]:
    """The engine behind :func:`generate_many`: rows that may differ in prompt format, forced
    prefix and (on a PEFT model) adapter, generated in left-padded batches.

    Args:
        settings: a :class:`GenerationSettings` (then the generation keywords are ignored).
        fan_out: one list per spec of the seeds of the generations that continue that spec's
            one prefill (None in it: a greedy one). The traces come back spec by spec, each
            spec's in its list's order; a sampled one equals ``generate(..., do_sample=True,
            seed=that seed)`` of that spec alone.
    """
    if settings is None:
        settings = GenerationSettings(max_new_tokens=max_new_tokens, top_k=top_k, watch=watch,
                                      stop=stop, do_sample=do_sample, temperature=temperature,
                                      top_p=top_p, seed=seed)
    return _generate(lm, list(specs), settings, batch_size=batch_size, progress=progress,
                     fan_out=fan_out)[0]


def generate_and_score(lm, specs: Sequence[RowSpec], *, settings: GenerationSettings,
                       batch_size: int = 8, fan_out=None) -> tuple[list[TokenTrace], list[TokenTrace | None]]:
    """:func:`generate_rows`, plus each spec's ``score`` text scored teacher-forced after its
    prompt (None where a spec has none): read off the generation's prefill where the scored
    sequence starts with it (:mod:`probe.engine.prefill`), else in a batch of its own. Each
    equals ``probe.score`` of that prompt and text within the rounding of the model's dtype."""
    return _generate(lm, list(specs), settings, batch_size=batch_size, progress=False, fan_out=fan_out)


def _score_apart(lm, rows: list[_Row], adapters: list, top_k: int) -> None:
    """Score the rows' ``score_enc`` that their prefill could not give, in scoring's batches."""
    todo = [i for i, r in enumerate(rows) if r.score_enc is not None and r.scored is None]
    encoded = [rows[i].score_enc for i in todo]
    for chunk in _batches(encoded, 16, _vocab_size(lm)):
        names = [adapters[todo[c]] for c in chunk]
        extra = {} if names[0] is None else {"adapter_names": names}
        got = _score_encoded(lm, [encoded[c] for c in chunk], top_k, {"top_k": top_k}, **extra)
        for c, trace in zip(chunk, got):
            rows[todo[c]].scored = trace


def _generate(lm, specs: list[RowSpec], settings: GenerationSettings, *, batch_size: int,
              progress: bool, fan_out=None) -> tuple[list[TokenTrace], list[TokenTrace | None]]:
    check_forces([s.force for s in specs])
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if fan_out is not None and len(fan_out) != len(specs):
        raise ValueError(f"fan_out has {len(fan_out)} lists for {len(specs)} rows")
    adapters = [s.adapter for s in specs]
    if any(a is not None for a in adapters) and not all(a is not None for a in adapters):
        raise ValueError("give an adapter name for every row or for none")
    prepared = [_prepare(lm, s.prompt, s.force, settings.watch, s.raw, s.system, s.score) for s in specs]
    feature = "diagnose" if adapters and adapters[0] is not None else (
        "watch" if settings.watch else "force" if any(s.force for s in specs) else "generate")
    require(lm, "cache", feature)
    if settings.watch:
        require(lm, "rollback", feature)
    if len({len(r.ids) for r, _ in prepared}) > 1 and min(batch_size, len(prepared)) > 1:
        require(lm, "padding", f"{feature} in batches")
        require(lm, "padded-cache", f"{feature} in batches")
    generator = None
    if settings.do_sample and fan_out is None:
        generator = torch.Generator(device=lm.device)
        generator.manual_seed(settings.seed if settings.seed is not None else torch.seed())
    special_ids = set(lm.tokenizer.all_special_ids)
    traces = []
    with progress_bar(len(prepared), progress and len(prepared) > 1, "generate", "prompt") as bar:
        for lo in range(0, len(prepared), batch_size):
            chunk = prepared[lo : lo + batch_size]
            copies = None
            if fan_out is not None:
                copies = [(i, seed) for i, seeds in enumerate(fan_out[lo : lo + batch_size]) for seed in seeds]
            extra = {} if adapters[0] is None else {"adapter_names": adapters[lo : lo + batch_size]}
            rows = _run_batch(lm, [r for r, _ in chunk], [e for _, e in chunk], settings,
                              generator=generator, special_ids=special_ids, extra=extra, copies=copies)
            for r in rows:
                row_settings = settings if fan_out is None else settings.sampled(r.seed)
                traces.append(_finish(lm, r, special_ids, row_settings.trace_dict(r.force_text)))
            bar.update(len(chunk))
    rows = [r for r, _ in prepared]
    if any(r.score_enc is not None for r in rows):
        _score_apart(lm, rows, adapters, settings.top_k)
    return traces, [r.scored for r in rows]


def generate_many(
    lm,
    prompts: Iterable[Prompt],
    max_new_tokens: int = 64,
    force: str | Sequence[str] = "",
    watch: Sequence[str] | str = (),
    stop: str | Sequence[str] | None = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = None,
    top_k: int = 5,
    *,
    batch_size: int = 8,
    progress: bool = True,
    raw: bool | None = None,
    system: str | None = None,
) -> list[TokenTrace]:
    """:func:`generate` for many prompts in left-padded batches (same arguments).

    ``force`` may also be a list with one forced prefix per prompt ("" for none), so free and
    forced runs of the same prompt share a batch.
    """
    prompts = list(prompts)
    if not isinstance(force, (str, list, tuple)):
        raise TypeError(f"force must be a str (or one str per prompt), got {type(force).__name__}")
    forces = [force] * len(prompts) if isinstance(force, str) else list(force)
    if len(forces) != len(prompts):
        raise ValueError(f"got {len(forces)} forced prefixes for {len(prompts)} prompts")
    settings = GenerationSettings(max_new_tokens=max_new_tokens, top_k=top_k, watch=watch,
                                  stop=stop, do_sample=do_sample, temperature=temperature,
                                  top_p=top_p, seed=seed)
    specs = [RowSpec(prompt=p, force=f, raw=raw, system=system) for p, f in zip(prompts, forces)]
    return _generate(lm, specs, settings, batch_size=batch_size, progress=progress)[0]


def generate(
    lm,
    prompt: Prompt,
    max_new_tokens: int = 64,
    force: str = "",
    watch: Sequence[str] | str = (),
    stop: str | Sequence[str] | None = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = None,
    top_k: int = 5,
    *,
    raw: bool | None = None,
    system: str | None = None,
) -> TokenTrace:
    """Continue ``prompt`` and record, for every produced token, what the model thought.

    Args:
        prompt: text or messages (rendered with the chat template on a chat LM).
        max_new_tokens: how many tokens the model may add after the forced prefix.
        force: text fed right after the generation prompt (e.g. "```json\\n"); its steps have
            ``forced=True`` and the probability the model would have given them.
        watch: strings whose probability of coming next is recorded at every free step
            (a multi-token string: the exact product over its tokens).
        stop: a string or strings that end generation once produced.
        do_sample, temperature, top_p, seed: sampling; each step then also has
            ``sampled_prob``, the chosen token's probability after temperature/top-p.
        top_k: alternatives to report per token.

    Returns:
        A TokenTrace (``kind="generate"``) whose ``text`` is the forced prefix plus what the
        model wrote; an EOS step is kept (``text`` is the token's name, zero-width span).
    """
    return generate_many(lm, [prompt], max_new_tokens=max_new_tokens, force=force, watch=watch,
                         stop=stop, do_sample=do_sample, temperature=temperature, top_p=top_p,
                         seed=seed, top_k=top_k, batch_size=1, progress=False, raw=raw,
                         system=system)[0]
