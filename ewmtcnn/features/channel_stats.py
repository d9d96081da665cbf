"""Multi-level channel statistics: each channel's mean and std over space at the end of every backbone stage.

- The "style" of an image that StyleEDL (ACM MM 2023) builds on, beside the last stage's pooled features.
- Stage ends are found on any backbone by running it once on a blank image with a hook on every module: for
  each spatial size of a 4-d output, the module run once per forward that finishes last at that size ends a
  stage. One-pixel maps (global pooling, squeeze-and-excitation) and the larger maps of padding are no stage.
- Scaling: each stage's [means, stds] block is divided by its own root mean square (per image) and by the
  square root of the number of stages, so every stage weighs the same. No other image's statistics are read,
  so no test fold enters any image's features.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

#: Keeps the scaling finite for an all-zero block (a dead stage).
TINY = 1e-12


def stage_ends(module: nn.Module, size: int) -> list[nn.Module]:
    """The modules whose outputs end `module`'s stages, in forward order, found on a blank size x size image."""
    finished: list[tuple[nn.Module, tuple[int, int]]] = []

    def record(m: nn.Module, inputs: tuple[object, ...], out: object) -> None:
        if not (isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[2] * out.shape[3] > 1):
            return
        first = inputs[0] if inputs else None
        if isinstance(first, torch.Tensor) and first.ndim == 4 and first.shape[2:].numel() < out.shape[2:].numel():
            return  # padding (EfficientNet-Lite's before a strided convolution) is no stage of its own
        finished.append((m, (out.shape[2], out.shape[3])))

    children = [m for m in module.modules() if m is not module]
    handles = [m.register_forward_hook(record) for m in children]
    device = next(module.parameters()).device
    was_training = module.training
    try:
        with torch.inference_mode():
            module.eval()(torch.zeros(1, 3, size, size, device=device))
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    # A module run more than once per forward (a ReLU shared within a block) would be captured
    # several times per image: only modules run once may end a stage.
    calls = Counter(id(m) for m, _ in finished)
    last: dict[tuple[int, int], int] = {}
    for i, (m, resolution) in enumerate(finished):
        if calls[id(m)] == 1:
            last[resolution] = i
    return [finished[i][0] for i in sorted(last.values())]


def moments(maps: list[torch.Tensor]) -> torch.Tensor:
    """(B, sum of 2C) features from each stage's (B, C, H, W) map: per channel its mean and
    (population) standard deviation over space, each stage's block scaled as the module says."""
    blocks = []
    for x in maps:
        flat = x.float().flatten(2)
        block = torch.cat([flat.mean(dim=2), flat.std(dim=2, correction=0)], dim=1)
        rms = block.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(TINY)
        blocks.append(block / rms)
    return torch.cat(blocks, dim=1) / len(maps) ** 0.5


@contextmanager
def captured(ends: list[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """The outputs of the stage-ending modules `ends`, collected by every forward run inside the block."""
    maps: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: maps.append(out)) for m in ends]
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()
