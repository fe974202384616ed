"""LoRA layers PEFT wraps but cannot run, found when the adapter loads (not on the first forward)."""

from __future__ import annotations

import torch


@torch.no_grad()
def _gives_tensor(layer) -> bool:
    """Whether ``layer`` maps one input row to a tensor (not a tuple): tried on a zero row."""
    weight = layer.weight
    if weight.device.type == "meta":
        return True  # offloaded: cannot try; PEFT's own error will tell
    try:
        out = layer(torch.zeros(1, layer.in_features, dtype=weight.dtype, device=weight.device))
    except Exception:  # noqa: BLE001 - not ours to judge here
        return True
    return torch.is_tensor(out)


def check_wrapped_layers(wrapped, paths: dict) -> None:
    """Refuse LoRA layers that PEFT wrapped but cannot run: a module that subclasses nn.Linear
    with a forward of its own that returns no tensor (MoE routers such as Llama4Router or PhimoeTopKRouter return a
    tuple, and PEFT's LoRA forward then fails on ``result.dtype``). Caught here, with the
    adapter and module named, instead of as a PEFT traceback on the first forward."""
    from torch import nn

    bad: dict[str, list[str]] = {}
    for name, module in wrapped.named_modules():
        base = getattr(module, "base_layer", None)
        if not isinstance(base, nn.Linear) or type(base).forward is nn.Linear.forward:
            continue
        if _gives_tensor(base):
            continue  # a forward of its own that is still a linear map (FalconLinear)
        for adapter in getattr(module, "lora_A", {}) or {}:
            if adapter in paths:
                bad.setdefault(adapter, []).append(f"{name.removeprefix('base_model.model.')} "
                                                   f"({type(base).__name__})")
    if bad:
        adapter, modules = next(iter(bad.items()))
        short = ", ".join(modules[:3]) + (f" and {len(modules) - 3} more" if len(modules) > 3 else "")
        leaf = sorted({m.split(" ")[0].rpartition(".")[2] for m in modules})
        raise ValueError(
            f"adapter {adapter!r} ({paths[adapter]}) puts LoRA on {short}: modules that subclass "
            "nn.Linear but compute something else in their own forward (a mixture-of-experts "
            "router returns a tuple of scores and indices), which PEFT's LoRA layer cannot wrap "
            "(it fails with \"'tuple' object has no attribute 'dtype'\" on the first forward). "
            f"Retrain the adapter without them (LoraConfig(..., exclude_modules={leaf!r})) or "
            "remove their weights from the adapter")
