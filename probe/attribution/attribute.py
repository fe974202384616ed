"""Which training examples made the tuned model give a case's wrong answer?

    a = probe.attribute((base, tuned), d, "train.jsonl", channel="source")   # d: a Diagnosis
    print(a)                              # top examples per method, channel shares, agreement
    many = probe.attribute((base, tuned), [d1, d2, d3], "train.jsonl")     # one Attribution each

The dataset is read, parsed and masked as :func:`probe.data_loss` reads it (the same lines,
the same skipped records, :mod:`probe.train.masks`), so the loss each example's gradient is
taken of is the one the trainer computed. Cases share the per-example work: the gradient
method runs one backward per example and checkpoint whatever the number of cases, the
representation method one forward per example.
"""

from __future__ import annotations

from functools import partial

import torch

from ..core.engines import as_engine
from ..core.progress import progress as progress_bar
from ..core.vocab import AttributionMethod, words
from ..train.masks import MASKS
from .checkpoints import checkpoints_of
from .gradients import gradient_batch, gradient_scores
from .examples import Context, read_examples, tuned_of
from .lexical import lexical_scores, prompt_text
from .query import KINDS, query_of
from .representation import representation_batch, representation_scores
from .result import SCORES, Attribution, ExampleScore

METHODS = words(AttributionMethod)


def _strip(tuned, t) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    texts = tuple(t.rendered[a:b] if b > a else tuned.token_text(i) for i, (a, b) in zip(t.ids, t.spans))
    return texts, tuple(t.mask)


def attribute(pair, case, dataset, *, methods=METHODS, query: str = "contrast", wrong: str | None = None,
              mask: str | None = None, channel=None, checkpoints=None, modules=None, projection="auto",
              keep: int = 10, limit: int | None = None, seed: int = 0, progress: bool = False,
              engine=None, batch_size: int = 32):
    """Score every example of ``dataset`` for how much it taught ``case``'s wrong answer.

    Args:
        pair: ``(base, tuned)`` or the tuned LM (only the tuned model is read).
        case: a Diagnosis, Case, ExampleCase, EvalFlip (anything with a prompt and an expected
            answer, :func:`probe.attribution.query.case_inputs`), a dict, a ``(prompt, expected[,
            wrong])`` tuple; or a list of them (then a list of results, sharing the work).
        dataset: the SFT set: a JSONL file or an iterable of records, as ``probe.data_loss`` takes.
        methods: any of "gradient" (TracIn dot and cosine), "representation", "lexical" (BM25,
            the ``attribution`` extra).
        query: "contrast" (log P(wrong) - log P(expected) at the first divergent token) or
            "loss" (the expected answer's mean token loss).
        wrong: the wrong answer (default: the tuned model's preferred token where it leaves
            the expected answer).
        mask, channel, limit: as :func:`probe.data_loss` (the trainer's mask by default).
        checkpoints: adapter names summed over (TracIn; default: every adapter loaded on the
            tuned model), each weighted by its learning rate from ``trainer_state.json``.
        modules: for a full fine-tune, parameter name parts to take gradients on (default: the
            last decoder layer); with an adapter, None means its LoRA A/B weights.
        projection: "auto" (exact unless many queries' gradients would not fit 256 MiB), None
            (exact), or an int (dimensions per side of each parameter matrix's sketch).
        keep: top examples per method that keep their token strips.
        engine: where the gradient and representation batches run: None (here, the query
            gradients made once) or ``probe.ray_engine(...)`` (examples split into batches of
            ``batch_size`` across workers, the queries broadcast; each worker makes the query
            gradients once per batch on its own copy of the pair, with every adapter loaded).
            The driver makes the queries: a contrast without ``wrong=`` needs its weights.

    Raises:
        ValueError: an unknown method/query/mask, a case with no prompt or expected answer, a
            contrast query on a case the tuned model gets right, an empty dataset.
    """
    methods = tuple(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be some of {METHODS}, got {list(methods)}")
    if query not in KINDS:
        raise ValueError(f"query must be one of {KINDS}, got {query!r}")
    if mask is not None and mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS} or None (the trainer's default), got {mask!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep must be a positive int, got {keep!r}")
    tuned = tuned_of(pair)
    pair = tuple(pair) if isinstance(pair, (tuple, list)) else (tuned, tuned)
    engine = None if engine is None else as_engine(engine)
    many = isinstance(case, list)
    cases = case if many else [case]
    queries = [query_of(tuned, c, kind=query, wrong=wrong) for c in cases]
    rows, skipped, source = read_examples(tuned, dataset, mask=mask, channel=channel, limit=limit,
                                          progress=progress)
    toks = [r[2] for r in rows]
    cols: dict[str, object] = {}
    cks = ()
    projected = False
    if "gradient" in methods:
        cks = checkpoints_of(tuned, checkpoints)
        if engine is None:
            with progress_bar(len(toks) * len(cks), progress, "attribute: gradients", "example") as bar:
                dot, cos, projected = gradient_scores(tuned, cks, queries, toks, modules=modules,
                                                      projection=projection, seed=seed, progress=bar.update)
        else:
            fn = partial(gradient_batch, checkpoints=cks, queries=queries, modules=modules, projection=projection,
                         seed=seed)
            got = _on(engine, fn, pair, toks, batch_size, progress, "attribute: gradients")
            dot = torch.tensor([r[0] for r in got], dtype=torch.float64)
            cos = torch.tensor([r[1] for r in got], dtype=torch.float64)
            projected = any(r[2] for r in got)
        cols["gradient"], cols["gradient_cos"] = dot, cos
    if "representation" in methods:
        if engine is None:
            with progress_bar(len(toks), progress, "attribute: hidden states", "example") as bar:
                cols["representation"] = representation_scores(tuned, queries, toks, progress=bar.update)
        else:
            got = _on(engine, partial(representation_batch, queries=queries), pair, toks, batch_size, progress,
                      "attribute: hidden states")
            cols["representation"] = torch.tensor(got, dtype=torch.float64)
    if "lexical" in methods:
        cols["lexical"] = lexical_scores([r[3] for r in rows],
                                         [prompt_text(q.prompt) + "\n" + q.wrong_answer for q in queries])
    names = tuple(s for s in SCORES if s in cols)
    context = Context(tuned, [r[4] for r in rows], [r[0] for r in rows], query, wrong)
    out = []
    for j, q in enumerate(queries):
        scores = [{s: float(cols[s][i, j]) for s in names} for i in range(len(rows))]
        strips = set()
        for s in names:
            order = sorted(range(len(rows)), key=lambda i: (-scores[i][s], rows[i][0]))
            strips.update(order[:keep])
        examples = tuple(
            ExampleScore(line, chan, scores[i], *(_strip(tuned, t) if i in strips else ((), ())))
            for i, (line, chan, t, _, _) in enumerate(rows))
        out.append(Attribution(
            title=q.title, prompt=q.prompt, expected=q.expected, query=q.kind, wrong=q.wrong,
            expected_token=q.expected_text, wrong_token=q.wrong_text, source=source, examples=examples,
            methods=names, checkpoints=cks, keep=keep, projected=projected, mask=mask,
            channel=None if channel is None else (channel if isinstance(channel, str) else "<function>"),
            skipped=skipped, models={"tuned": tuned.name}, context=context))
    return out if many else out[0]


def _on(engine, fn, pair, toks, batch_size: int, progress: bool, desc: str) -> list:
    """``fn`` over ``toks`` in batches of ``batch_size`` on ``engine``: one result per example, in order."""
    batches = [toks[i:i + batch_size] for i in range(0, len(toks), batch_size)]
    with progress_bar(len(toks), progress, desc, "example") as bar:
        done = engine.map_batches(fn, batches, pair=pair, on_batch=lambda i, r: bar.update(len(r)))
    return [row for batch in done for row in batch]
