"""Backbones, weight loading, the EW-MTCNN head and its prior layer, and feature extraction."""
from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image, ImageOps
from sklearn.datasets import load_sample_image
from torch import nn

from ewmtcnn import InputError, augment, models

LITE0_FILE = models.EfficientnetLite0ModelFile.get_model_file_path()
#: ImageNet classes a photograph of a Chinese palace may fairly be called.
BUILDINGS = {"palace", "castle", "monastery", "church", "mosque", "pagoda", "stupa", "dome", "boathouse"}


@pytest.fixture(autouse=True)
def seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    """A random-init EfficientNet-Lite0 backbone (cheap, deterministic in eval mode)."""
    torch.manual_seed(0)
    return models.build_backbone("efficientnet_lite0", pretrained=False)[0]


def store(n: int, size: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


# --- backbones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "d", "batch"),
    [("efficientnet_lite0", 1280, 2), ("resnet50", 2048, 2), ("vgg16", 4096, 1), ("vgg19_bn", 4096, 2)],
)
def test_backbone_pools_a_batch_to_its_feature_width(name: str, d: int, batch: int):
    net, width = models.build_backbone(name, pretrained=False)
    assert width == d
    net.eval()  # as extract_features runs it
    with torch.inference_mode():
        out = net(torch.randn(batch, 3, 224, 224))
    assert out.shape == (batch, d) and torch.isfinite(out).all()
    if name.startswith("vgg"):  # fc6 and fc7 kept, only the ImageNet class layer dropped
        assert [type(m) for m in net.classifier] == [nn.Linear, nn.ReLU, nn.Dropout] * 2


def test_normalisation_matches_each_family_of_weights():
    assert models.normalisation("efficientnet_lite0") == ((0.5,) * 3, (0.5,) * 3)
    for name in ("vgg16", "vgg19_bn", "resnet50"):
        assert models.normalisation(name) == (augment.IMAGENET_MEAN, augment.IMAGENET_STD)


def test_unknown_backbone_is_refused_with_the_choices():
    for call in (lambda: models.build_backbone("alexnet", True), lambda: models.normalisation("alexnet")):
        with pytest.raises(InputError, match="unknown backbone 'alexnet'.*efficientnet_lite0"):
            call()


# --- weight files and downloads --------------------------------------------------------------


def test_local_weights_file_is_loaded(tmp_path: Path):
    torch.manual_seed(123)
    saved = torchvision.models.resnet50().state_dict()
    path = tmp_path / "resnet50.pth"
    torch.save(saved, path)
    torch.manual_seed(0)  # a different random init, so equality means the file was loaded
    net, _ = models.build_backbone("resnet50", pretrained=False, weights=path)
    assert torch.equal(net.conv1.weight, saved["conv1.weight"])
    assert torch.equal(net.layer4[2].bn3.running_var, saved["layer4.2.bn3.running_var"])
    assert isinstance(net.fc, nn.Identity)


def test_weights_file_with_other_keys_is_refused_naming_file_and_keys(tmp_path: Path):
    path = tmp_path / "features-only.pth"
    torch.save(torchvision.models.resnet50().fc.state_dict(), path)  # not the whole model
    with pytest.raises(InputError) as info:
        models.build_backbone("resnet50", pretrained=True, weights=path)
    message = str(info.value)
    assert str(path) in message and "conv1.weight" in message and "unexpected keys [weight, bias]" in message
    assert "\n" not in message


def test_weights_file_with_wrong_shapes_is_refused(tmp_path: Path):
    state = torchvision.models.resnet50().state_dict()
    state["fc.weight"] = torch.zeros(10, 2048)
    path = tmp_path / "ten-classes.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"ten-classes\.pth: tensors of the wrong shape.*fc\.weight"):
        models.build_backbone("resnet50", pretrained=False, weights=path)


def test_missing_or_unreadable_weights_file_is_refused(tmp_path: Path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(InputError, match=f"{missing}: weights file not found"):
        models.build_backbone("efficientnet_lite0", pretrained=True, weights=missing)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=f"{junk}: cannot be read as a PyTorch state dict"):
        models.build_backbone("efficientnet_lite0", pretrained=True, weights=junk)


def test_failed_torchvision_download_says_to_set_model_weights(monkeypatch: pytest.MonkeyPatch):
    def offline(*args: object, **kwargs: object) -> dict:
        raise URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)  # never the network
    with pytest.raises(InputError, match="vgg16: cannot download.*no network.*model.weights.*efficientnet_lite0"):
        models.build_backbone("vgg16", pretrained=True)


# --- the shipped EfficientNet-Lite0 weights --------------------------------------------------


def test_shipped_lite0_weights_are_real_and_features_match_the_package():
    backbone, _ = models.build_backbone("efficientnet_lite0", pretrained=True)
    photo = Image.fromarray(load_sample_image("china.jpg"))
    square = np.asarray(ImageOps.fit(photo, (256, 256), method=Image.Resampling.BICUBIC)).transpose(2, 0, 1)[None]
    features = models.extract_features(backbone, square, *models.normalisation("efficientnet_lite0"))

    shipped = torch.load(LITE0_FILE, weights_only=True)
    logits = torch.from_numpy(features) @ shipped["_fc.weight"].T + shipped["_fc.bias"]
    categories = torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"]
    top1 = categories[logits.argmax().item()]
    print(f"china.jpg top-1: {top1}")
    assert top1 in BUILDINGS

    package = EfficientNet.from_name("efficientnet-lite0")
    package.load_state_dict(shipped)
    package.eval()
    crop = torch.from_numpy(square[:, :, 16:240, 16:240].copy()).float() / 255
    with torch.inference_mode():
        expected = package((crop - 0.5) / 0.5)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)


# --- EmotionNet ------------------------------------------------------------------------------

W6 = np.random.default_rng(1).uniform(0, 1, (6, 6))
W7 = np.random.default_rng(2).uniform(0, 1, (7, 7))


@pytest.mark.parametrize("head", models.HEADS)
@pytest.mark.parametrize(("outputs", "prior"), [(6, None), (6, W6), (7, W7)])
def test_head_output_shape(head: str, outputs: int, prior: np.ndarray | None):
    net = models.EmotionNet(32, outputs, head, prior, freeze_prior=True)
    assert net(torch.randn(4, 32)).shape == (4, outputs)


def test_without_prior_both_heads_are_the_fc_alone():
    direct = models.EmotionNet(32, 6, "direct", None, freeze_prior=True)
    seed = models.EmotionNet(32, 6, "seed", None, freeze_prior=True)
    for net in (direct, seed):
        assert [name for name, _ in net.named_modules()] == ["", "fc"]
    x = torch.randn(3, 32)
    seed.fc.load_state_dict(direct.fc.state_dict())
    seed.train()  # no dropout to draw even in training mode
    assert torch.equal(direct(x), seed(x)) and torch.equal(direct(x), direct.fc(x))


def test_prior_weight_is_the_given_matrix():
    net = models.EmotionNet(32, 6, "direct", W6, freeze_prior=False)
    assert net.prior.bias is None and net.prior.weight.dtype == torch.float32
    assert torch.equal(net.prior.weight, torch.from_numpy(W6.astype(np.float32)))


def test_direct_head_is_w_times_fc():
    net = models.EmotionNet(32, 6, "direct", W6, freeze_prior=True)
    x = torch.randn(5, 32)
    z = net.fc(x)
    expected = torch.from_numpy(W6.astype(np.float32)) @ z.T  # z' = W z, image by image
    torch.testing.assert_close(net(x), expected.T)
    assert torch.equal(net(x), net.prior(z))


def test_seed_head_zeroes_negative_logits_before_the_prior():
    net = models.EmotionNet(32, 6, "seed", W6, freeze_prior=True).eval()  # eval: dropout off
    assert [type(m) for m in net.gate] == [nn.ReLU, nn.Dropout] and net.gate[1].p == 0.5
    x = torch.randn(8, 32)
    z = net.fc(x)
    assert (z < 0).any()  # otherwise the check below proves nothing
    w = torch.from_numpy(W6.astype(np.float32))
    torch.testing.assert_close(net(x), torch.relu(z) @ w.T)
    assert not torch.allclose(net(x), z @ w.T)


def test_prior_of_the_wrong_size_and_unknown_head_are_refused():
    with pytest.raises(InputError, match=r"prior matrix has shape \(6, 6\); expected \(7, 7\)"):
        models.EmotionNet(32, 7, "direct", W6, freeze_prior=True)
    with pytest.raises(InputError, match="unknown head 'deep'; choose one of direct, seed"):
        models.EmotionNet(32, 6, "deep", W6, freeze_prior=True)


def one_step(net: models.EmotionNet, x: torch.Tensor) -> torch.Tensor:
    """Backward a loss and take one SGD step; returns the prior weight as it was before."""
    before = net.prior.weight.detach().clone()
    optimizer = torch.optim.SGD(net.parameter_groups(0.001, 0.01), momentum=0.9, weight_decay=5e-4)
    loss = nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 3, 4, 5]))
    loss.backward()
    optimizer.step()
    return before


@pytest.mark.parametrize("head", models.HEADS)
def test_frozen_prior_gets_no_gradient_and_does_not_move(head: str):
    net = models.EmotionNet(32, 6, head, W6, freeze_prior=True)
    groups = net.parameter_groups(0.001, 0.01)
    assert len(groups) == 1 and groups[0]["lr"] == 0.01
    assert all(p is not net.prior.weight for p in groups[0]["params"])
    assert {id(p) for p in groups[0]["params"]} == {id(net.fc.weight), id(net.fc.bias)}
    before = one_step(net, torch.randn(6, 32))
    assert net.fc.weight.grad is not None and net.fc.weight.grad.abs().sum() > 0
    assert net.prior.weight.requires_grad is False and net.prior.weight.grad is None
    assert torch.equal(net.prior.weight, before)


@pytest.mark.parametrize("head", models.HEADS)
def test_unfrozen_prior_is_trained_with_the_head(head: str):
    net = models.EmotionNet(32, 6, head, W6, freeze_prior=False)
    groups = net.parameter_groups(0.001, 0.01)
    assert any(p is net.prior.weight for p in groups[0]["params"])
    before = one_step(net, torch.randn(6, 32))
    assert net.prior.weight.grad is not None and net.prior.weight.grad.abs().sum() > 0
    assert not torch.equal(net.prior.weight, before)


def test_parameter_groups_with_a_backbone_use_both_learning_rates(lite0: nn.Module):
    net = models.EmotionNet(1280, 6, "direct", W6, freeze_prior=False, backbone=lite0)
    backbone, head = net.parameter_groups(0.001, 0.01)
    assert (backbone["lr"], head["lr"]) == (0.001, 0.01)
    assert len(backbone["params"]) == len(list(lite0.parameters()))
    assert len(head["params"]) == 3  # fc weight and bias, prior weight
    net.eval()
    with torch.inference_mode():
        assert net(torch.randn(2, 3, 224, 224)).shape == (2, 6)


# --- feature extraction ----------------------------------------------------------------------


def test_extract_features_shape_dtype_and_determinism(lite0: nn.Module):
    images = store(5)
    lite0.train()
    first = models.extract_features(lite0, images, (0.5,) * 3, (0.5,) * 3, batch_size=2)
    assert first.shape == (5, 1280) and first.dtype == np.float32
    assert lite0.training  # its mode is given back
    again = models.extract_features(lite0, images, (0.5,) * 3, (0.5,) * 3, batch_size=2)
    np.testing.assert_array_equal(first, again)
    # other batch sizes agree within BLAS noise (the summation order may change)
    whole = models.extract_features(lite0, images, (0.5,) * 3, (0.5,) * 3, batch_size=64)
    np.testing.assert_allclose(first, whole, rtol=1e-4, atol=1e-5)


def test_extract_features_sees_only_the_centre_crop(lite0: nn.Module):
    images = store(2)
    bordered = images.copy()
    bordered[:, :, :16] = 0
    bordered[:, :, -16:] = 255
    bordered[:, :, :, :16] = 7
    bordered[:, :, :, -16:] = 200
    centre_changed = images.copy()
    centre_changed[:, :, 100:120, 100:120] = 0
    mean, std = augment.IMAGENET_MEAN, augment.IMAGENET_STD
    features = models.extract_features(lite0, images, mean, std)
    np.testing.assert_array_equal(features, models.extract_features(lite0, bordered, mean, std))
    moved = np.abs(features - models.extract_features(lite0, centre_changed, mean, std)).max()
    assert moved > 1e-3 * np.abs(features).max()  # random-init features are tiny; compare relatively


def test_extract_features_refuses_images_smaller_than_the_input(lite0: nn.Module):
    with pytest.raises(InputError, match="images of 200x200 px are smaller than the 224 px crop; raise preprocess.size"):
        models.extract_features(lite0, store(1, size=200), (0.5,) * 3, (0.5,) * 3)
