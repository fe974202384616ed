"""Is the demo's shift more than noise? The noise floor of an adapter on the demo cases' expected answers.

    from probe.demo.noise import demo_noise_floor
    n = demo_noise_floor(base, tuned, "beijing")    # 10 random adapters of the same rank and norm
    n.prompt_percentiles("kl")                       # each case's KL against its own null

(A plain code block, not a doctest: it needs the demo pair; tests/demo/test_demo_noise.py runs it.)

The cheap form of :func:`probe.noise_floor`: the adapter's demo cases that have an expected
answer, those answers scored (teacher-forced, no generation) under base, the trained adapter and
``seeds`` random adapters matched to it module by module in update norm. With given answers the
shifted share is the same for every adapter (base ranks the same tokens), so only KL says
something here: KL(tuned || base) summed over each expected answer, as a percentile of the null.
"""

from __future__ import annotations

from .pair import CASES


def demo_cases(adapter: str, cases=CASES) -> list:
    """The cases of ``cases`` written for ``adapter`` (or for none) that have an expected answer."""
    from ..diagnosis.run import CaseSpec, read_cases

    return [s for s in read_cases(cases) if isinstance(s, CaseSpec) and s.expected and s.adapter in (None, adapter)]


def demo_noise_floor(base, tuned, adapter: str, *, seeds: int = 10, cache_dir=None, cases=CASES):
    """:func:`probe.noise_floor` of ``adapter`` on its demo cases' expected answers; the active
    adapter is restored afterwards, also on error."""
    from ..shifts.noise import noise_floor

    specs = demo_cases(adapter, cases)
    if not specs:
        raise ValueError(f"no demo case for adapter {adapter!r} has an expected answer")
    active = tuned.active_adapter
    tuned.use_adapter(adapter)
    try:
        return noise_floor(base, tuned, specs, answers="expected", seeds=seeds, cache_dir=cache_dir)
    finally:
        if active is not None:
            tuned.use_adapter(active)

