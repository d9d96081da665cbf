"""Pooled backbone features of the images' centre crops, computed once so that heads train on
them in seconds: the features stage's cache, and prediction's input for new pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ewmtcnn import InputError, augment
from ewmtcnn.backbones import Backbone

RANDOM_INIT_SEED = 0  # a random-init backbone (model.pretrained: false) is still reproducible
#: Channels-last batches of 16 were the fastest on a 2-core CPU (about 2x the default layout
#: with batches of 64).
BATCH_SIZE = 16


def feature_backbone(backbone: Backbone, pretrained: bool, weights: str | Path | None = None) -> nn.Module:
    """The backbone whose features the head learns from (the features stage's, and prediction's).

    A random init (model.pretrained: false) is drawn from RANDOM_INIT_SEED, so that prediction
    rebuilds the very backbone the cached features came from; torch's global generator is
    left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        return backbone.build(pretrained, weights)


def extract(module: nn.Module, images: np.ndarray, backbone: Backbone, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Pooled features (N, backbone.features) float32 of the centre `backbone.size` crops of
    uint8 (N, 3, S, S) `images`, normalised as `backbone`'s weights expect.

    Run in eval mode (BatchNorm's running statistics, no dropout) and without autograd, so the
    same images always give the same features. `module`'s training mode is restored afterwards.
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise InputError(f"expected a non-empty uint8 (N, 3, S, S) image store; got {images.dtype} {images.shape}")
    device = next(module.parameters()).device
    was_training = module.training
    module.eval().to(memory_format=torch.channels_last)
    out = []
    try:
        with torch.inference_mode(), tqdm(total=len(images), desc="features", unit="img") as bar:
            for start in range(0, len(images), batch_size):
                x = augment.centre(images[start : start + batch_size], backbone.size, backbone.mean, backbone.std)
                out.append(module(x.to(device, memory_format=torch.channels_last)).float().cpu().numpy())
                bar.update(len(x))
    finally:
        module.train(was_training)
    return np.concatenate(out)
