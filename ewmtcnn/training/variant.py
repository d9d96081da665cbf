"""The variant that `params.yaml` selects: class label, outputs, prior, network and optimisation.

Shared by the train stage (every fold) and the final stage (every image), and read in one
place so that every value is checked, with its allowed range, before either writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ewmtcnn import InputError, params
from ewmtcnn.data import dataset
from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS
from ewmtcnn.features import spec
from ewmtcnn.model import backbones, network, wheel

#: `data.neutral`: drop neutral and renormalise the six emotions, or keep all seven outputs.
NEUTRAL_CHOICES = ("drop", "keep")
#: `train.recipe`: settings chosen on inner validation splits, or the paper's as given.
RECIPES = ("selected", "fixed")
#: The largest batch and number of epochs accepted: far beyond any use, they catch typos
#: (an extra zero) before hours are spent.
MAX_BATCH = 4096
MAX_EPOCHS = 10_000


@dataclass(frozen=True)
class Settings:
    """The `train.*` params that shape the optimisation."""

    epochs: int
    batch_size: int
    lr_backbone: float
    lr_head: float
    momentum: float
    weight_decay: float
    lam: float
    seed: int


@dataclass(frozen=True)
class Selection:
    """The `select.*` params: how the `selected` recipe chooses epochs, learning rate and weight decay."""

    share: float  # inner validation share of an outer training fold
    epochs: int  # early stopping up to this many epochs
    patience: int  # ... or once no setting has improved for this many
    lr_head: tuple[float, ...]
    weight_decay: tuple[float, ...]


@dataclass(frozen=True)
class Variant:
    """What to train and how."""

    label: str
    neutral: str
    init: str
    freeze: bool
    sigma: float
    backbone: backbones.Backbone  # at the input side of `extraction`
    extraction: spec.Extraction
    pretrained: bool
    weights: str | None
    head: str
    finetune: bool
    recipe: str
    run: Settings  # under `fixed` the settings; under `selected`, lr_head, weight_decay and epochs are chosen
    select: Selection

    @property
    def emotions(self) -> tuple[str, ...]:
        """The emotions the network predicts, in output order."""
        return outputs(self.neutral)


def outputs(neutral: str) -> tuple[str, ...]:
    """The emotions predicted under `data.neutral`, in output order."""
    return DISTRIBUTION if neutral == "keep" else EMOTIONS


def settings(p: Mapping[str, Any]) -> Settings:
    """The `train.*` optimisation params, each within its range."""
    return Settings(
        epochs=params.integer(p, "train.epochs", 1, MAX_EPOCHS),
        batch_size=params.integer(p, "train.batch_size", 1, MAX_BATCH),
        lr_backbone=params.number(p, "train.lr_backbone", 0),
        lr_head=params.number(p, "train.lr_head", 0),
        momentum=params.number(p, "train.momentum", 0, 1, hi_open=True),
        weight_decay=params.number(p, "train.weight_decay", 0),
        lam=params.number(p, "train.lambda", 0, 1),
        seed=params.seed(p, "train.seed"),
    )


def selection(p: Mapping[str, Any]) -> Selection:
    """The `select.*` params, each within its range."""
    return Selection(
        share=params.number(p, "select.share", 0.05, 0.5),
        epochs=params.integer(p, "select.epochs", 1, MAX_EPOCHS),
        patience=params.integer(p, "select.patience", 1, MAX_EPOCHS),
        lr_head=params.numbers(p, "select.lr_head", 0, lo_open=True),
        weight_decay=params.numbers(p, "select.weight_decay", 0),
    )


def from_params(p: Mapping[str, Any]) -> Variant:
    """The variant that the params select, every value checked."""
    finetune = params.get(p, "train.finetune", bool)
    recipe = params.choice(p, "train.recipe", RECIPES)
    if finetune and recipe == "selected":
        raise InputError(
            f"{params.PARAMS}: train.recipe selected chooses settings by training many heads on cached "
            "features; fine-tuning the whole network (train.finetune: true) needs train.recipe: fixed"
        )
    how = spec.extraction(p)
    return Variant(
        label=params.choice(p, "data.label", dataset.LABELS),
        neutral=params.choice(p, "data.neutral", NEUTRAL_CHOICES),
        init=params.choice(p, "prior.init", wheel.INITS),
        freeze=params.get(p, "prior.freeze", bool),
        sigma=params.number(p, "prior.sigma", 0, lo_open=True),
        backbone=how.sized(backbones.selected(p)),
        extraction=how,
        pretrained=params.get(p, "model.pretrained", bool),
        weights=params.get(p, "model.weights", (str, type(None))) or None,
        head=params.choice(p, "model.head", network.HEADS),
        finetune=finetune,
        recipe=recipe,
        run=settings(p),
        select=selection(p),
    )
