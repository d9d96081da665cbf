"""Multi-level channel statistics: the modules that end each stage of a backbone, found without
a per-architecture table; each stage's channel means and stds, scaled per stage as numpy computes
them by hand; the hooks that collect stage outputs, gone afterwards."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from ewmtcnn.features import channel_stats, extract
from ewmtcnn.model import backbones


def has_hooks(module: nn.Module) -> bool:
    return any(m._forward_hooks for m in module.modules())


def plain_net() -> nn.Sequential:
    """16 px in: conv (16) -> ReLU (16) -> conv /2 (8) -> ReLU (8) -> conv /2 (4) -> pool (1) -> flatten."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=1, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(5, 6, 3, stride=2, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


class SharedActivation(nn.Module):
    """One ReLU applied after two convolutions at two resolutions: run twice per forward."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Conv2d(3, 4, 3, padding=1)  # 16 px
        self.act = nn.ReLU()
        self.second = nn.Conv2d(4, 5, 3, stride=2, padding=1)  # 8 px
        self.third = nn.Conv2d(5, 6, 3, stride=2, padding=1)  # 4 px
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.first(x))
        x = self.act(self.second(x))
        return self.pool(self.third(x)).flatten(1)


def test_stage_ends_are_the_last_module_run_once_at_each_resolution() -> None:
    net = plain_net().train()
    ends = channel_stats.stage_ends(net, 16)
    assert [id(m) for m in ends] == [id(net[1]), id(net[3]), id(net[4])]  # ReLU 16, ReLU 8, conv 4; pool 1x1 out
    assert net.training and not has_hooks(net)  # its mode given back, its hooks removed
    assert all(p.grad is None for p in net.parameters())


def test_stage_ends_follow_the_input_side() -> None:
    net = plain_net()
    # at 2 px the second convolution gives 1 px (no stage) and the third too
    assert [id(m) for m in channel_stats.stage_ends(net, 2)] == [id(net[1])]
    assert [id(m) for m in channel_stats.stage_ends(net, 32)] == [id(net[1]), id(net[3]), id(net[4])]


def test_a_module_run_twice_per_forward_never_ends_a_stage() -> None:
    net = SharedActivation()
    ends = channel_stats.stage_ends(net, 16)
    assert net.act not in ends
    assert [id(m) for m in ends] == [id(net.first), id(net.second), id(net.third)]


def test_a_padded_map_is_no_stage() -> None:
    """Static 'same' padding before a strided convolution (as EfficientNet-Lite's convolutions
    pad) makes a map one pixel larger than its stage for a moment: that is no stage of its own."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # 16
        nn.ReLU(),  # 16
        nn.ZeroPad2d((0, 1, 0, 1)),  # 17
        nn.Conv2d(4, 5, 3, stride=2),  # 8
        nn.ReLU(),  # 8
        nn.AdaptiveAvgPool2d(1),
    )
    assert [id(m) for m in channel_stats.stage_ends(net, 16)] == [id(net[1]), id(net[4])]


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    return extract.feature_backbone(backbones.get("efficientnet_lite0"), pretrained=False)


def test_efficientnet_lite0_has_five_stages_of_halving_resolution(lite0: nn.Module) -> None:
    ends = channel_stats.stage_ends(lite0, 224)
    shapes: list[tuple[int, ...]] = []
    calls: Counter[int] = Counter()

    def hook(m: nn.Module, _: object, out: torch.Tensor) -> None:
        shapes.append(tuple(out.shape))
        calls[id(m)] += 1

    handles = [m.register_forward_hook(hook) for m in ends]
    try:
        with torch.inference_mode():
            lite0.eval()(torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    finally:
        for handle in handles:
            handle.remove()
    assert [s[2:] for s in shapes] == [(112, 112), (56, 56), (28, 28), (14, 14), (7, 7)], shapes
    assert all(calls[id(m)] == 1 for m in ends)
    assert shapes[-1][1] == 1280  # the last stage: the head convolution's channels


def by_hand(maps: list[np.ndarray]) -> np.ndarray:
    """statistics() in float64 numpy: per stage [means, population stds] over space, each image's
    block divided by its root mean square, all divided by sqrt(number of stages)."""
    blocks = []
    for x in maps:
        flat = x.reshape(x.shape[0], x.shape[1], -1).astype(np.float64)
        block = np.concatenate([flat.mean(axis=2), flat.std(axis=2, ddof=0)], axis=1)
        rms = np.sqrt((block**2).mean(axis=1, keepdims=True))
        blocks.append(block / rms)
    return np.concatenate(blocks, axis=1) / math.sqrt(len(maps))


def test_statistics_of_a_map_by_hand() -> None:
    # one image, one channel, 2x2: mean 2.5, population std sqrt(1.25) (the sample std would be sqrt(5/3))
    out = channel_stats.moments([torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])])
    rms = math.sqrt((2.5**2 + 1.25) / 2)
    np.testing.assert_allclose(out.numpy(), [[2.5 / rms, math.sqrt(1.25) / rms]], rtol=1e-6)


def test_statistics_against_numpy() -> None:
    rng = np.random.default_rng(0)
    maps = [
        rng.normal(2, 3, (3, 4, 5, 6)),
        np.abs(rng.normal(0, 0.01, (3, 7, 3, 3))),  # a small-scale stage (as after ReLU)
        rng.normal(-1, 50, (3, 2, 2, 4)),
    ]
    out = channel_stats.moments([torch.from_numpy(m.astype(np.float32)) for m in maps])
    assert out.dtype == torch.float32 and out.shape == (3, 2 * (4 + 7 + 2))
    np.testing.assert_allclose(out.numpy(), by_hand(maps), rtol=1e-5, atol=1e-6)
    # Each stage weighs the same, whatever its scale and width: mean square 1/3 per block.
    bounds = np.cumsum([0, 8, 14, 4])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        np.testing.assert_allclose((out.numpy()[:, lo:hi] ** 2).mean(axis=1), 1 / 3, rtol=1e-5)


def test_statistics_read_no_other_image_and_ignore_a_stages_scale() -> None:
    rng = np.random.default_rng(1)
    maps = [torch.from_numpy(rng.normal(size=(4, 3, 4, 4)).astype(np.float32)) for _ in range(2)]
    whole = channel_stats.moments(maps)
    for i in range(4):
        alone = channel_stats.moments([m[i : i + 1] for m in maps])
        np.testing.assert_allclose(alone.numpy(), whole[i : i + 1].numpy(), rtol=1e-6)
    scaled = channel_stats.moments([maps[0] * 1000, maps[1]])
    np.testing.assert_allclose(scaled.numpy(), whole.numpy(), rtol=1e-5, atol=1e-6)


def test_an_all_zero_stage_stays_finite() -> None:
    rng = np.random.default_rng(2)
    live = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    out = channel_stats.moments([torch.zeros(2, 5, 4, 4), torch.from_numpy(live)])
    assert torch.isfinite(out).all()
    np.testing.assert_array_equal(out[:, :10].numpy(), 0)  # a dead stage: zeros
    np.testing.assert_allclose(out[:, 10:].numpy(), by_hand([live]) / math.sqrt(2), rtol=1e-5)
    assert torch.isfinite(channel_stats.moments([torch.zeros(1, 2, 3, 3)])).all()


def test_captured_collects_each_forward_and_removes_its_hooks() -> None:
    net = plain_net().eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = [torch.relu(net[0](x)), net[:5](x)]  # before any hook: a slice runs the same modules
    with torch.inference_mode(), channel_stats.captured([net[1], net[4]]) as maps:
        net(x)
        assert len(maps) == 2
        torch.testing.assert_close(maps, expected)
        net(x)
        assert len(maps) == 4  # every forward inside the block
    assert not has_hooks(net)
    net(x)
    assert len(maps) == 4


def test_captured_removes_its_hooks_when_the_forward_fails() -> None:
    net = plain_net()
    with pytest.raises(RuntimeError), channel_stats.captured([net[1]]):
        net(torch.zeros(1, 4, 16, 16))  # the wrong number of channels
    assert not has_hooks(net)
