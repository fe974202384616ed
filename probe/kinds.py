"""The small closed vocabularies of results, as Literal types (no imports: any module may use them)."""

from __future__ import annotations

from typing import Final, Literal

StopReason = Literal["eos", "stop", "length"]  # why a generation ended
BaseAdapter = Literal["__base__"]
BASE_ADAPTER: Final[BaseAdapter] = "__base__"  # row adapter name that means "no adapter" (PEFT)
Verdict = Literal["ok", "not_triggered", "lost", "never_had", "uncertain"]
Label = Literal["not_triggered", "lost", "never_had", "too_hard_for_size", "undertrained",
                "pattern_overfit"]
