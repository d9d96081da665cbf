"""Training views: crop boxes follow RandomResizedCrop's law; rendering matches torchvision."""

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from ewmtcnn import InputError
from ewmtcnn.data import augment

MEAN = torch.tensor(augment.IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(augment.IMAGENET_STD).view(3, 1, 1)


def to_uint8_units(view: torch.Tensor) -> torch.Tensor:
    """Undo ImageNet normalisation: back to 0..255 intensities."""
    return (view * STD + MEAN) * 255


def test_crop_boxes_stay_inside_and_follow_scale_and_ratio():
    boxes = augment.crop_boxes(5000, 256, 200, torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 256).all() and (left + w <= 200).all()
    area = (h * w).double() / (256 * 200)
    # rounding h and w to whole pixels moves the area and ratio a little past the nominal range
    assert area.min() > 0.08 * 0.9 and area.max() <= 1.0
    ratio = (w / h).double()
    assert ratio.min() > 0.75 * 0.95 and ratio.max() < 4 / 3 * 1.05


def test_crop_aspect_is_log_uniform_on_a_square_image():
    _, _, h, w = augment.crop_boxes(5000, 256, 256, torch.Generator().manual_seed(1)).T
    # as many wide crops as tall ones, since log(ratio) is uniform on a symmetric range
    wide, tall = (w > h).double().mean().item(), (w < h).double().mean().item()
    assert abs(wide - tall) < 0.05


def test_crop_boxes_are_reproducible_with_a_seeded_generator():
    a = augment.crop_boxes(64, 256, 256, torch.Generator().manual_seed(7))
    b = augment.crop_boxes(64, 256, 256, torch.Generator().manual_seed(7))
    c = augment.crop_boxes(64, 256, 256, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_impossible_aspect_falls_back_to_a_centre_crop_like_torchvision():
    # A 1000x10 strip: no 3/4..4/3 box of at least 8% of the area fits, as in torchvision.
    boxes = augment.crop_boxes(20, 10, 1000, torch.Generator().manual_seed(0))
    # torchvision's fallback: width clamped to height * 4/3, centred
    w = 13  # round(10 * 4/3)
    assert (boxes[:, 2] == 10).all() and (boxes[:, 3] == w).all()
    assert (boxes[:, 1] == (1000 - w) // 2 + 1).all() and (boxes[:, 0] == 0).all()  # round(493.5) = 494 as int(x + 0.5)


@pytest.fixture
def images() -> np.ndarray:
    """Smooth random images (bilinear implementations agree closely on smooth content)."""
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.uniform(0, 255, (4, 3, 16, 16)).astype(np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=(96, 96), mode="bicubic", align_corners=False)
    return smooth.clamp(0, 255).round().to(torch.uint8).numpy()


def test_enlarging_matches_torchvision_bilinear_resized_crop(images):
    boxes = [[5, 7, 40, 50], [30, 10, 60, 33], [0, 0, 64, 64], [50, 40, 20, 30]]
    out = augment.render(images, boxes, [False] * 4, size=64)
    assert out.shape == (4, 3, 64, 64) and out.dtype == torch.float32
    for i, (top, left, h, w) in enumerate(boxes):
        reference = TF.resized_crop(torch.from_numpy(images[i]).float(), top, left, h, w, [64, 64], antialias=True)
        error = (to_uint8_units(out[i]) - reference).abs()
        assert error.mean() < 0.5 and error.max() <= 1.5  # the store is uint8: rounding only


@pytest.mark.parametrize("factor", [2, 3])
def test_shrinking_averages_every_pixel(images, factor):
    # Shrinking a 96x96 crop by 2 or 3: an antialiased filter gives the mean of each block.
    out = augment.render(images, [[0, 0, 96, 96]] * 4, [False] * 4, size=96 // factor)
    reference = torch.nn.functional.avg_pool2d(torch.from_numpy(images).float(), factor)
    assert (to_uint8_units(out) - reference).abs().max() <= 0.5 + 1e-3  # uint8 rounding only


def test_flip_mirrors_the_view_exactly(images):
    boxes = [[5, 7, 40, 50]] * 4
    plain = augment.render(images, boxes, [False] * 4, size=32)
    mirrored = augment.render(images, boxes, [True, False, True, False], size=32)
    assert torch.equal(mirrored[0], plain[0].flip(-1)) and torch.equal(mirrored[1], plain[1])


def test_views_normalise_with_imagenet_statistics():
    grey = np.full((2, 3, 64, 64), 128, dtype=np.uint8)
    out = augment.views(grey, size=32, generator=torch.Generator().manual_seed(0))
    expected = (128 / 255 - MEAN) / STD
    assert torch.allclose(out, expected.expand(2, 3, 32, 32), atol=1e-6)


def test_views_are_reproducible_with_a_seeded_generator(images):
    a = augment.views(images, 48, torch.Generator().manual_seed(3))
    b = augment.views(images, 48, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_centre_view_is_the_middle_crop_normalised(images):
    out = augment.centre(images, size=64, mean=(0.5,) * 3, std=(0.5,) * 3)
    middle = torch.from_numpy(images[:, :, 16:80, 16:80]).float()
    assert torch.allclose(out, (middle / 255 - 0.5) / 0.5, atol=1e-6)


def test_centre_view_needs_images_at_least_the_crop():
    with pytest.raises(InputError, match="raise preprocess.size"):
        augment.centre(np.zeros((1, 3, 100, 100), np.uint8), size=224)
