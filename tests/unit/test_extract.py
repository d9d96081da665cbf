"""Feature extraction: the reproducible feature backbone, and the pooled features of the centre
crops, normalised and sized as each backbone expects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from ewmtcnn import InputError
from ewmtcnn.config.sections import Extraction
from ewmtcnn.data import augment
from ewmtcnn.features import channel_stats, extract
from ewmtcnn.model import backbones

LITE0 = backbones.get("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    """A random-init EfficientNet-Lite0 backbone (cheap, deterministic in eval mode)."""
    return extract.feature_backbone(LITE0, pretrained=False)


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
    first = extract.feature_backbone(LITE0, pretrained=False).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(99)  # whatever the caller's seed, the same backbone
    again = extract.feature_backbone(LITE0, pretrained=False).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    other = LITE0.build(pretrained=False).state_dict()  # drawn from seed 99's stream instead
    assert not torch.equal(first["_conv_stem.weight"], other["_conv_stem.weight"])


def test_extract_shape_dtype_and_determinism(lite0: nn.Module):
    images = store(5)
    lite0.train()
    first = extract.extract(lite0, images, LITE0, batch_size=2)
    assert first.shape == (5, 1280) and first.dtype == np.float32
    assert lite0.training  # its mode is given back
    again = extract.extract(lite0, images, LITE0, batch_size=2)
    np.testing.assert_array_equal(first, again)
    # other batch sizes agree within BLAS noise (the summation order may change)
    whole = extract.extract(lite0, images, LITE0, batch_size=64)
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
    pooled = extract.extract(lite0, images, LITE0)
    np.testing.assert_array_equal(pooled, extract.extract(lite0, bordered, LITE0))
    moved = np.abs(pooled - extract.extract(lite0, centre_changed, LITE0)).max()
    assert moved > 1e-3 * np.abs(pooled).max()  # random-init features are tiny; compare relatively


def test_extract_crops_and_normalises_as_the_backbone_says():
    images = np.zeros((3, 3, 8, 8), dtype=np.uint8)
    images[:, :, 2:6, 2:6] = np.array([51, 102, 255], dtype=np.uint8)[None, :, None, None]  # the centre 4x4
    probe = ChannelMeans()
    pooled = extract.extract(probe, images, PROBE, batch_size=2)
    assert [x.shape for x in probe.seen] == [(2, 3, 4, 4), (1, 3, 4, 4)]
    expected = [(51 / 255 - 0.1) / 0.5, (102 / 255 - 0.2) / 0.25, (1 - 0.3) / 2.0]
    np.testing.assert_allclose(pooled, np.tile(expected, (3, 1)), rtol=1e-6)


def test_extract_refuses_images_smaller_than_the_input(lite0: nn.Module):
    with pytest.raises(InputError, match="images of 200x200 px are smaller than the 224 px crop; raise preprocess"):
        extract.extract(lite0, store(1, size=200), LITE0)


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
        extract.extract(ChannelMeans(), images, PROBE)


# --- test-time views and multi-level statistics (features.*) ------------------------------------


class Pixels(nn.Module):
    """A probe 'backbone' whose features are the pixels it is fed, to compare each view pixel by pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


#: PROBE's side and normalisation; its 3 x 4 x 4 input is its feature vector.
PIXELS = dataclasses.replace(PROBE, name="pixels", features=48)


def levels_of(vectors: np.ndarray) -> np.ndarray:
    """PIXELS features back to (N, 3, 4, 4) grey levels 0..255: the normalisation undone."""
    x = vectors.reshape(-1, 3, 4, 4).astype(np.float64)
    mean = np.asarray(PIXELS.mean)[None, :, None, None]
    std = np.asarray(PIXELS.std)[None, :, None, None]
    return (x * std + mean) * 255


def box_means(images: np.ndarray, k: int) -> np.ndarray:
    """The mean of every k x k block of (N, 3, 4k, 4k) images: (N, 3, 4, 4)."""
    n = len(images)
    return images.astype(np.float64).reshape(n, 3, 4, k, 4, k).mean(axis=(3, 5))


def view(name: str, images: np.ndarray) -> np.ndarray:
    return extract.extract(Pixels(), images, PIXELS, Extraction("pooled", (name,), 0))


def test_the_centre_and_mirror_views_are_the_centre_crop_and_its_mirror_image():
    images = store(3, size=10, seed=1)
    crop = images[:, :, 3:7, 3:7].astype(np.float64)  # (10 - 4) // 2 = 3
    np.testing.assert_allclose(levels_of(view("centre", images)), crop, atol=1e-3)
    np.testing.assert_allclose(levels_of(view("mirror", images)), crop[..., ::-1], atol=1e-3)
    # odd margins: the crop starts at (9 - 4) // 2 = 2 rows and (11 - 4) // 2 = 3 columns in
    uneven = np.random.default_rng(2).integers(0, 256, (1, 3, 9, 11), dtype=np.uint8)
    np.testing.assert_allclose(levels_of(view("mirror", uneven)), uneven[:, :, 2:6, 3:7][..., ::-1], atol=1e-3)


@pytest.mark.parametrize("k", [2, 3])
def test_the_full_view_is_the_whole_square_shrunk(k: int):
    """8 px to 4 px is bilinear, which at exactly 2x averages each 2 x 2 block; 12 px to 4 px shrinks
    by more than 2x, where render averages each 3 x 3 block (bilinear would sample its centre
    pixel). Either way within OpenCV's rounding to whole grey levels."""
    images = store(2, size=4 * k, seed=k)
    full = levels_of(view("full", images))
    assert np.abs(full - box_means(images, k)).max() <= 0.5 + 1e-3
    assert np.abs(full - np.rint(full)).max() < 1e-3  # whole grey levels, as OpenCV's uint8 resize gives


@pytest.mark.parametrize("names", [("centre", "mirror"), ("mirror", "centre"), ("centre", "mirror", "full")])
def test_the_views_features_are_averaged(names: tuple[str, ...]):
    images = store(5, size=12, seed=3)
    each = [view(name, images) for name in names]
    probe = Pixels()
    averaged = extract.extract(probe, images, PIXELS, Extraction("pooled", names, 0), batch_size=2)
    assert averaged.shape == (5, 48) and averaged.dtype == np.float32
    np.testing.assert_allclose(averaged, np.mean(each, axis=0), rtol=1e-6, atol=1e-6)
    assert np.abs(each[0] - each[1]).max() > 0.1  # the views differ: the average is no single one


def test_each_view_runs_the_backbone_on_every_batch():
    images = store(3, size=8)
    probe = ChannelMeans()
    extract.extract(probe, images, PROBE, Extraction("pooled", ("centre", "mirror", "full"), 0), batch_size=2)
    assert [tuple(x.shape) for x in probe.seen] == [(2, 3, 4, 4)] * 3 + [(1, 3, 4, 4)] * 3


def test_a_sized_extraction_feeds_the_backbone_at_its_side():
    images = store(2, size=8)
    probe = ChannelMeans()
    how = Extraction("pooled", ("centre",), 6)
    pooled = extract.extract(probe, images, PROBE.at(how.size), how)
    assert [tuple(x.shape) for x in probe.seen] == [(2, 3, 6, 6)]
    mean, std = np.asarray(PROBE.mean), np.asarray(PROBE.std)
    expected = (images[:, :, 1:7, 1:7].mean(axis=(2, 3)) / 255 - mean) / std
    np.testing.assert_allclose(pooled, expected, rtol=1e-5)


def stage_maps(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of `module`'s stage ends on `x`, hooked here rather than by extract."""
    maps: list[torch.Tensor] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, out: maps.append(out.clone()))
        for m in channel_stats.stage_ends(module, 224)
    ]
    try:
        with torch.inference_mode():
            module.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return maps


def test_stats_features_of_lite0(lite0: nn.Module):
    how = Extraction("stats", ("centre",), 0)
    images = store(3)
    lite0.train()
    first = extract.extract(lite0, images, LITE0, how, batch_size=2)
    assert lite0.training  # its mode given back
    assert not any(m._forward_hooks for m in lite0.modules())  # and no hook left behind
    maps = stage_maps(lite0, augment.centre(images, 224, LITE0.mean, LITE0.std))
    width = 2 * sum(m.shape[1] for m in maps)  # each stage end's channel means and stds
    assert first.shape == (3, width) and first.dtype == np.float32
    assert extract.width(lite0, LITE0, how) == width
    assert np.isfinite(first).all()
    np.testing.assert_allclose(first, channel_stats.moments(maps).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(first, extract.extract(lite0, images, LITE0, how, batch_size=2))
    np.testing.assert_allclose(first, extract.extract(lite0, images, LITE0, how, batch_size=3), rtol=1e-4, atol=1e-5)
    # scaled per stage, unlike random-init pooled features (about 1e-8 apart): images tell apart
    assert np.abs(first[0] - first[1]).max() > 1e-2
