"""The views of an image that a network sees, normalised as the backbone expects.

- Training: RandomResizedCrop(224) and a horizontal flip, as in the paper; evaluation: the centre crop.
- A whole batch at once from the uint8 store: crop boxes drawn as
  `torchvision.transforms.RandomResizedCrop.get_params` draws them, each crop resized by OpenCV in uint8
  (benchmarks/loading.py compares it with a per-image torchvision pipeline).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import torch

from ewmtcnn import InputError

Stats = tuple[float, float, float]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_TRIES = 10  # as torchvision: after 10 rejected draws, fall back to a centre crop


def crop_boxes(n: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 4) int boxes (top, left, h, w) distributed as torchvision's RandomResizedCrop."""
    area = torch.rand(n, CROP_TRIES, generator=generator) * (CROP_SCALE[1] - CROP_SCALE[0]) + CROP_SCALE[0]
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    ratio = torch.exp(torch.rand(n, CROP_TRIES, generator=generator) * (log_hi - log_lo) + log_lo)
    w = torch.round(torch.sqrt(area * height * width * ratio))
    h = torch.round(torch.sqrt(area * height * width / ratio))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = ok.int().argmax(dim=1)  # the first accepted try
    rows = torch.arange(n)
    h, w, found = h[rows, first], w[rows, first], ok.any(dim=1)
    # Centre-crop fallback, clamped to the allowed aspect ratios.
    in_ratio = width / height
    fw, fh = (width, height)
    if in_ratio < CROP_RATIO[0]:
        fh = round(width / CROP_RATIO[0])
    elif in_ratio > CROP_RATIO[1]:
        fw = round(height * CROP_RATIO[1])
    h = torch.where(found, h, torch.tensor(float(fh)))
    w = torch.where(found, w, torch.tensor(float(fw)))
    u = torch.rand(n, 2, generator=generator)
    top = torch.where(found, torch.floor(u[:, 0] * (height - h + 1)), torch.floor((height - h) / 2 + 0.5))
    left = torch.where(found, torch.floor(u[:, 1] * (width - w + 1)), torch.floor((width - w) / 2 + 0.5))
    return torch.stack([top, left, h, w], dim=1).long()


def render(
    images: np.ndarray,
    boxes: list[list[int]],
    flips: list[bool],
    size: int = 224,
    mean: Stats = IMAGENET_MEAN,
    std: Stats = IMAGENET_STD,
) -> torch.Tensor:
    """Float32 (B, 3, size, size) views: the `boxes` (top, left, h, w) of uint8 (B, 3, H, W) `images`.

    - Each crop resized to size x size, mirrored where `flips` says, normalised with `mean`, `std` (0..1 scale).
    - Bilinear while shrinking by up to 2x, where it already weighs every source pixel (a 256 px store's crop
      shrinks by at most 256/224); OpenCV's antialiased area averaging beyond that.
    """
    scale = 1 / (255 * np.asarray(std, np.float32))
    shift = np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    plane = np.empty((size, size), dtype=np.uint8)
    for i, (top, left, h, w) in enumerate(boxes):
        method = cv2.INTER_AREA if max(h, w) > 2 * size else cv2.INTER_LINEAR
        for c in range(3):
            cv2.resize(images[i, c, top : top + h, left : left + w], (size, size), dst=plane, interpolation=method)
            if flips[i]:
                cv2.flip(plane, 1, dst=plane)
            np.multiply(plane, scale[c], out=out[i, c], casting="unsafe")
            out[i, c] -= shift[c]
    return torch.from_numpy(out)


def views(
    images: np.ndarray,
    size: int = 224,
    generator: torch.Generator | None = None,
    mean: Stats = IMAGENET_MEAN,
    std: Stats = IMAGENET_STD,
) -> torch.Tensor:
    """Float32 (B, 3, size, size) normalised views: a random resized crop and coin-flip mirror per image.

    - `images` are uint8 (B, 3, H, W); randomness comes from `generator` (torch's global one when None),
      so a seeded run draws the same views.
    """
    images = np.asarray(images)
    n, _, height, width = images.shape
    boxes = crop_boxes(n, height, width, generator).tolist()
    flips = (torch.rand(n, generator=generator) < 0.5).tolist()
    return render(images, boxes, flips, size, mean, std)


def centre(
    images: np.ndarray, size: int = 224, mean: Stats = IMAGENET_MEAN, std: Stats = IMAGENET_STD, mirror: bool = False
) -> torch.Tensor:
    """The evaluation view: the centre size x size crop, normalised (no resize), mirrored if `mirror`."""
    images = np.asarray(images)
    n, _, height, width = images.shape
    if height < size or width < size:
        raise InputError(f"images of {height}x{width} px are smaller than the {size} px crop; raise preprocess.size")
    top, left = (height - size) // 2, (width - size) // 2
    return render(images, [[top, left, size, size]] * n, [mirror] * n, size, mean, std)


def mirror(images: np.ndarray, size: int = 224, mean: Stats = IMAGENET_MEAN, std: Stats = IMAGENET_STD) -> torch.Tensor:
    """The centre crop's mirror image: a test-time view whose features can be averaged with the centre's."""
    return centre(images, size, mean, std, mirror=True)


def full(images: np.ndarray, size: int = 224, mean: Stats = IMAGENET_MEAN, std: Stats = IMAGENET_STD) -> torch.Tensor:
    """The whole stored square resized to size x size: a test-time view that keeps what the centre crop cuts off."""
    images = np.asarray(images)
    n, _, height, width = images.shape
    return render(images, [[0, 0, height, width]] * n, [False] * n, size, mean, std)


#: The test-time views that the features stage can average, by their params.yaml names.
TEST_VIEWS: dict[str, Callable[[np.ndarray, int, Stats, Stats], torch.Tensor]] = {
    "centre": centre,
    "mirror": mirror,
    "full": full,
}
