"""Feature extraction: the reproducible feature backbone, and the pooled features of the centre
crops, normalised and sized as each backbone expects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from ewmtcnn import InputError, backbones, features

LITE0 = backbones.get("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    """A random-init EfficientNet-Lite0 backbone (cheap, deterministic in eval mode)."""
    return features.feature_backbone(LITE0, pretrained=False)


def store(n: int, size: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


class ChannelMeans(nn.Module):
    """A probe 'backbone' that pools each channel of its input to its mean, to see what extract feeds it."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # extract reads the device from a parameter
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return x.mean(dim=(2, 3))


#: A backbone of side 4 with its own normalisation, pooling 3 channel means.
PROBE = dataclasses.replace(LITE0, name="probe", features=3, size=4, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0))


def test_feature_backbone_is_reproducible_and_leaves_the_global_generator_alone():
    before = torch.get_rng_state()
    first = features.feature_backbone(LITE0, pretrained=False).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(99)  # whatever the caller's seed, the same backbone
    again = features.feature_backbone(LITE0, pretrained=False).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    other = LITE0.build(pretrained=False).state_dict()  # drawn from seed 99's stream instead
    assert not torch.equal(first["_conv_stem.weight"], other["_conv_stem.weight"])


def test_extract_shape_dtype_and_determinism(lite0: nn.Module):
    images = store(5)
    lite0.train()
    first = features.extract(lite0, images, LITE0, batch_size=2)
    assert first.shape == (5, 1280) and first.dtype == np.float32
    assert lite0.training  # its mode is given back
    again = features.extract(lite0, images, LITE0, batch_size=2)
    np.testing.assert_array_equal(first, again)
    # other batch sizes agree within BLAS noise (the summation order may change)
    whole = features.extract(lite0, images, LITE0, batch_size=64)
    np.testing.assert_allclose(first, whole, rtol=1e-4, atol=1e-5)


def test_extract_sees_only_the_centre_crop(lite0: nn.Module):
    images = store(2)
    bordered = images.copy()
    bordered[:, :, :16] = 0
    bordered[:, :, -16:] = 255
    bordered[:, :, :, :16] = 7
    bordered[:, :, :, -16:] = 200
    centre_changed = images.copy()
    centre_changed[:, :, 100:120, 100:120] = 0
    pooled = features.extract(lite0, images, LITE0)
    np.testing.assert_array_equal(pooled, features.extract(lite0, bordered, LITE0))
    moved = np.abs(pooled - features.extract(lite0, centre_changed, LITE0)).max()
    assert moved > 1e-3 * np.abs(pooled).max()  # random-init features are tiny; compare relatively


def test_extract_crops_and_normalises_as_the_backbone_says():
    images = np.zeros((3, 3, 8, 8), dtype=np.uint8)
    images[:, :, 2:6, 2:6] = np.array([51, 102, 255], dtype=np.uint8)[None, :, None, None]  # the centre 4x4
    probe = ChannelMeans()
    pooled = features.extract(probe, images, PROBE, batch_size=2)
    assert [x.shape for x in probe.seen] == [(2, 3, 4, 4), (1, 3, 4, 4)]
    expected = [(51 / 255 - 0.1) / 0.5, (102 / 255 - 0.2) / 0.25, (1 - 0.3) / 2.0]
    np.testing.assert_allclose(pooled, np.tile(expected, (3, 1)), rtol=1e-6)


def test_extract_refuses_images_smaller_than_the_input(lite0: nn.Module):
    with pytest.raises(InputError, match="images of 200x200 px are smaller than the 224 px crop; raise preprocess"):
        features.extract(lite0, store(1, size=200), LITE0)


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((0, 3, 8, 8), np.uint8),
        np.zeros((1, 3, 8, 8), np.float32),
        np.zeros((1, 8, 8), np.uint8),
        np.zeros((1, 1, 8, 8), np.uint8),
    ],
)
def test_extract_refuses_what_is_not_an_image_store(images: np.ndarray):
    with pytest.raises(InputError, match=r"expected a non-empty uint8 \(N, 3, S, S\) image store"):
        features.extract(ChannelMeans(), images, PROBE)
