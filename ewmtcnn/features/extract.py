"""Backbone features of every image, computed once: the features stage's cache and prediction's input.

- What a vector holds follows `features.*` (`ewmtcnn.config.sections.Extraction`): the pooled output or the multi-level
  channel statistics (`ewmtcnn.features.channel_stats`), averaged over the test-time views
  (`ewmtcnn.data.augment.TEST_VIEWS`), at the backbone's native input side or another.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ewmtcnn import InputError
from ewmtcnn.config.sections import Extraction
from ewmtcnn.data import augment
from ewmtcnn.features import channel_stats
from ewmtcnn.model.backbones import Backbone

#: The default: the pooled features of the centre crop at the backbone's native side.
POOLED_CENTRE = Extraction()
RANDOM_INIT_SEED = 0  # a random-init backbone (model.pretrained: false) is still reproducible
BATCH_SIZE = 16  # images per forward pass, channels-last (benchmarks/features.py)


def feature_backbone(backbone: Backbone, pretrained: bool, weights: str | Path | None = None) -> nn.Module:
    """The backbone whose features the head learns from (the features stage's, and prediction's).

    A random init (model.pretrained: false) is drawn from RANDOM_INIT_SEED, so that prediction
    rebuilds the very backbone the cached features came from; torch's global generator is
    left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        return backbone.build(pretrained, weights)


def width(module: nn.Module, backbone: Backbone, how: Extraction) -> int:
    """The length of the feature vectors that `extract` makes."""
    if how.layers == "pooled":
        return backbone.features
    return int(extract(module, np.zeros((1, 3, backbone.size, backbone.size), np.uint8), backbone, how).shape[1])


def extract(
    module: nn.Module,
    images: np.ndarray,
    backbone: Backbone,
    how: Extraction = POOLED_CENTRE,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """Features (N, D) float32 of uint8 (N, 3, S, S) `images`, `how` says which, each view at
    `backbone.size` normalised as `backbone`'s weights expect; `backbone` is already `how.sized`.

    Run in eval mode (BatchNorm's running statistics, no dropout) and without autograd, so the
    same images always give the same features. `module`'s training mode is restored afterwards.
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise InputError(f"expected a non-empty uint8 (N, 3, S, S) image store; got {images.dtype} {images.shape}")
    device = next(module.parameters()).device
    was_training = module.training
    module.eval().to(memory_format=torch.channels_last)
    ends = channel_stats.stage_ends(module, backbone.size) if how.layers == "stats" else []
    views = [augment.TEST_VIEWS[name] for name in how.views]
    out = []
    try:
        with torch.inference_mode(), tqdm(total=len(images), desc="features", unit="img") as bar:
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size]
                total = None
                for view in views:
                    x = view(batch, backbone.size, backbone.mean, backbone.std)
                    with channel_stats.captured(ends) as maps:
                        pooled = module(x.to(device, memory_format=torch.channels_last))
                    vector = (channel_stats.moments(maps) if ends else pooled).float()
                    total = vector if total is None else total + vector
                out.append((total / len(views)).cpu().numpy())
                bar.update(len(batch))
    finally:
        module.train(was_training)
    return np.concatenate(out)
