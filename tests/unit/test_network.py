"""EW-MTCNN's head: the fc, the seed head's gate, the prior layer, and their learning rates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ewmtcnn import InputError
from ewmtcnn.model import backbones, network


@pytest.fixture(autouse=True)
def seeded() -> None:
    torch.manual_seed(0)


LITE0 = backbones.get("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    """A random-init EfficientNet-Lite0 backbone (cheap)."""
    torch.manual_seed(0)
    return LITE0.build(pretrained=False)


W6 = np.random.default_rng(1).uniform(0, 1, (6, 6))
W7 = np.random.default_rng(2).uniform(0, 1, (7, 7))


@pytest.mark.parametrize("head", network.HEADS)
@pytest.mark.parametrize(("outputs", "prior"), [(6, None), (6, W6), (7, W7)])
def test_head_output_shape(head: str, outputs: int, prior: np.ndarray | None):
    net = network.EmotionNet(32, outputs, head, prior, freeze_prior=True)
    assert net(torch.randn(4, 32)).shape == (4, outputs)


def test_without_prior_both_heads_are_the_fc_alone():
    direct = network.EmotionNet(32, 6, "direct", None, freeze_prior=True)
    seed = network.EmotionNet(32, 6, "seed", None, freeze_prior=True)
    for net in (direct, seed):
        assert [name for name, _ in net.named_modules()] == ["", "fc"]
    x = torch.randn(3, 32)
    seed.fc.load_state_dict(direct.fc.state_dict())
    seed.train()  # no dropout to draw even in training mode
    assert torch.equal(direct(x), seed(x)) and torch.equal(direct(x), direct.fc(x))


def test_prior_weight_is_the_given_matrix():
    net = network.EmotionNet(32, 6, "direct", W6, freeze_prior=False)
    assert net.prior.bias is None and net.prior.weight.dtype == torch.float32
    assert torch.equal(net.prior.weight, torch.from_numpy(W6.astype(np.float32)))


def test_direct_head_is_w_times_fc():
    net = network.EmotionNet(32, 6, "direct", W6, freeze_prior=True)
    x = torch.randn(5, 32)
    z = net.fc(x)
    expected = torch.from_numpy(W6.astype(np.float32)) @ z.T  # z' = W z, image by image
    torch.testing.assert_close(net(x), expected.T)
    assert torch.equal(net(x), net.prior(z))


def test_seed_head_zeroes_negative_logits_before_the_prior():
    net = network.EmotionNet(32, 6, "seed", W6, freeze_prior=True).eval()  # eval: dropout off
    assert [type(m) for m in net.gate] == [nn.ReLU, nn.Dropout] and net.gate[1].p == 0.5
    x = torch.randn(8, 32)
    z = net.fc(x)
    assert (z < 0).any()  # otherwise the check below proves nothing
    w = torch.from_numpy(W6.astype(np.float32))
    torch.testing.assert_close(net(x), torch.relu(z) @ w.T)
    assert not torch.allclose(net(x), z @ w.T)


def test_prior_of_the_wrong_size_and_unknown_head_are_refused():
    with pytest.raises(InputError, match=r"prior matrix has shape \(6, 6\); expected \(7, 7\)"):
        network.EmotionNet(32, 7, "direct", W6, freeze_prior=True)
    with pytest.raises(InputError, match="unknown head 'deep'; choose one of direct, seed"):
        network.EmotionNet(32, 6, "deep", W6, freeze_prior=True)


def one_step(net: network.EmotionNet, x: torch.Tensor) -> torch.Tensor:
    """Backward a loss and take one SGD step; returns the prior weight as it was before."""
    before = net.prior.weight.detach().clone()
    optimizer = torch.optim.SGD(net.parameter_groups(0.001, 0.01), momentum=0.9, weight_decay=5e-4)
    loss = nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 3, 4, 5]))
    loss.backward()
    optimizer.step()
    return before


@pytest.mark.parametrize("head", network.HEADS)
def test_frozen_prior_gets_no_gradient_and_does_not_move(head: str):
    net = network.EmotionNet(32, 6, head, W6, freeze_prior=True)
    groups = net.parameter_groups(0.001, 0.01)
    assert len(groups) == 1 and groups[0]["lr"] == 0.01
    assert all(p is not net.prior.weight for p in groups[0]["params"])
    assert {id(p) for p in groups[0]["params"]} == {id(net.fc.weight), id(net.fc.bias)}
    before = one_step(net, torch.randn(6, 32))
    assert net.fc.weight.grad is not None and net.fc.weight.grad.abs().sum() > 0
    assert net.prior.weight.requires_grad is False and net.prior.weight.grad is None
    assert torch.equal(net.prior.weight, before)


@pytest.mark.parametrize("head", network.HEADS)
def test_unfrozen_prior_is_trained_with_the_head(head: str):
    net = network.EmotionNet(32, 6, head, W6, freeze_prior=False)
    groups = net.parameter_groups(0.001, 0.01)
    assert any(p is net.prior.weight for p in groups[0]["params"])
    before = one_step(net, torch.randn(6, 32))
    assert net.prior.weight.grad is not None and net.prior.weight.grad.abs().sum() > 0
    assert not torch.equal(net.prior.weight, before)


def test_parameter_groups_with_a_backbone_use_both_learning_rates(lite0: nn.Module):
    net = network.EmotionNet(LITE0.features, 6, "direct", W6, freeze_prior=False, backbone=lite0)
    backbone, head = net.parameter_groups(0.001, 0.01)
    assert (backbone["lr"], head["lr"]) == (0.001, 0.01)
    assert len(backbone["params"]) == len(list(lite0.parameters()))
    assert len(head["params"]) == 3  # fc weight and bias, prior weight
    net.eval()
    with torch.inference_mode():
        assert net(torch.randn(2, 3, LITE0.size, LITE0.size)).shape == (2, 6)
