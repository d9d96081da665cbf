"""params.yaml as one typed value: a frozen dataclass per section, under `Params`.

- `load` reads and checks the whole file once; `cli.run_stage` hands the result to each stage.
- Each section's allowed values stand beside it; a bad value is one `InputError` naming the param and what it may be.
- `model.backbone` is checked to be a name here, and against the registry where it is resolved
  (`ewmtcnn.model.backbones.selected`), which needs the libraries.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

from ewmtcnn import InputError
from ewmtcnn.config.checks import choice, get, integer, names, number, numbers, read, seed
from ewmtcnn.paths import PARAMS

#: `data.label`: the annotators' dominant emotion, or the search keyword (the image's folder).
LABELS = ("dominant", "folder")
#: `data.neutral`: drop neutral and renormalise the six emotions, or keep all seven outputs.
NEUTRALS = ("drop", "keep")
#: `prior.init`: no prior layer at all, the emotion wheel, identity, random, the wheel's singular values with
#: random singular vectors (`spectrum`: its scaling without its structure), or from the training labels' correlations.
INITS: tuple[str, ...] = ("none", "original", "eye", "rand", "spectrum", "corr", "corr_softmax", "corr_log_softmax")
#: `model.head`: fc -> prior, as in the paper; or fc -> ReLU -> Dropout(0.5) -> prior, as the public
#: reimplementation arranges it (negative logits zeroed before the prior mixes them), kept for comparison.
HEADS = ("direct", "seed")
#: `features.layers`: the pooled output, or every stage's channel mean and std.
LAYERS: tuple[str, ...] = ("pooled", "stats")
#: `features.views` (`ewmtcnn.data.augment.TEST_VIEWS`): the centre crop, its mirror image, the whole frame.
VIEWS: tuple[str, ...] = ("centre", "mirror", "full")
#: `train.recipe`: SGD settings chosen on an inner validation split, the paper's as given, or a head
#: fitted to convergence on standardised features with its weight decay chosen by inner cross-validation.
RECIPES = ("selected", "fixed", "converged")
#: `classic.methods`: the classic label distribution learning methods (`ewmtcnn.ldl.METHODS`, which this layer
#: may not import; a test keeps the two in step).
LDL_METHODS: tuple[str, ...] = ("sa_bfgs", "aa_knn", "pt_bayes", "ldl_lrr")

#: The largest store side: 1980 images of 1024 px already take 6.2 GB, and no backbone here reads more than ~500 px.
MAX_SIZE = 1024
#: The smallest input side a backbone is run at (five halvings leave one pixel).
MIN_SIZE = 32
#: More folds than this leave test folds too small to score (Emotion6's rarest class has 33 images).
MAX_FOLDS = 20
#: Repeats beyond this add hardly any precision to the corrected intervals, and cost time.
MAX_REPEATS = 10
#: The largest batch and number of epochs: far beyond any use, they catch typos (an extra zero) before hours are spent.
MAX_BATCH = 4096
MAX_EPOCHS = 10_000
#: More principal components than any backbone here has features: a typo.
MAX_PCA = 100_000


@dataclass(frozen=True)
class Data:
    """`data.*`: where Emotion6 comes from, the class label, and whether neutral is predicted."""

    source: str  # a URL, a local Emotion6.zip or an extracted folder
    sha256: str  # of the archive; "" when not set
    label: str
    neutral: str

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Data:
        return cls(
            source=get(p, "data.source", str),
            sha256=get(p, "data.sha256", (str, type(None))) or "",
            label=choice(p, "data.label", LABELS),
            neutral=choice(p, "data.neutral", NEUTRALS),
        )


@dataclass(frozen=True)
class Preprocess:
    """`preprocess.*`: the side of the square image store.

    - The stages that know the backbone also check it is at least the backbone's input side
      (`ewmtcnn.data.images.store_size`).
    """

    size: int

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Preprocess:
        return cls(size=integer(p, "preprocess.size", MIN_SIZE, MAX_SIZE))


@dataclass(frozen=True)
class Split:
    """`split.*`: repeated stratified k-fold cross-validation; repeat r splits with seed `seed + r`."""

    folds: int
    seed: int
    repeats: int

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Split:
        return cls(
            folds=integer(p, "split.folds", 2, MAX_FOLDS),
            seed=seed(p, "split.seed"),
            repeats=integer(p, "split.repeats", 1, MAX_REPEATS),
        )


@dataclass(frozen=True)
class Prior:
    """`prior.*`: the initial matrix of the prior layer, whether it trains, the wheel's width."""

    init: str
    freeze: bool
    sigma: float  # in steps round the wheel

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Prior:
        return cls(
            init=choice(p, "prior.init", INITS),
            freeze=get(p, "prior.freeze", bool),
            sigma=number(p, "prior.sigma", 0, lo_open=True),
        )


@dataclass(frozen=True)
class Model:
    """`model.*`: the backbone, its weights, and the head."""

    backbone: str  # a registry name, timm/<name> or torchvision/<name>
    pretrained: bool
    weights: str | None  # a local state-dict file loaded instead of the pretrained weights
    head: str

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Model:
        return cls(
            backbone=get(p, "model.backbone", str),
            pretrained=get(p, "model.pretrained", bool),
            weights=get(p, "model.weights", (str, type(None))) or None,
            head=choice(p, "model.head", HEADS),
        )


@dataclass(frozen=True)
class Extraction:
    """`features.*`: how an image becomes a feature vector.

    - `layers`: one of LAYERS; `views`: the test-time views averaged; `size`: the input side
      (0: the backbone's native one).
    - A final model records it (`record`) so that prediction extracts the same way.
    """

    layers: str = "pooled"
    views: tuple[str, ...] = ("centre",)
    size: int = 0

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Extraction:
        layers = choice(p, "features.layers", LAYERS)
        views = names(p, "features.views", VIEWS, "views")
        size = get(p, "features.size", int)
        if isinstance(size, bool) or (size != 0 and not MIN_SIZE <= size <= MAX_SIZE):
            raise InputError(
                f"{PARAMS}: features.size must be 0 (the backbone's native side) or an integer in "
                f"[{MIN_SIZE}, {MAX_SIZE}]; found {size!r}"
            )
        return cls(layers, views, size)

    def record(self) -> dict[str, Any]:
        """As a final model stores it."""
        return {"layers": self.layers, "views": list(self.views), "size": self.size}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Extraction:
        """The extraction a final model recorded (`record`)."""
        return cls(str(record["layers"]), tuple(str(v) for v in record["views"]), int(record["size"]))


@dataclass(frozen=True)
class Train:
    """`train.*`: fine-tuning or not, the recipe, and the optimisation.

    - Under `recipe: selected` the head's epochs, lr_head and weight_decay are chosen (`Select`);
      under `fixed` they are these.
    """

    finetune: bool  # fine-tune the whole network, or train the head on cached features
    recipe: str
    epochs: int
    batch_size: int
    lr_backbone: float
    lr_head: float
    momentum: float
    weight_decay: float
    lam: float  # `train.lambda`: loss = (1 - lam) * CE + lam * KL
    seed: int  # repeat r trains with seed + r
    pca: int  # `converged`: principal components kept of the standardised features (0: all)

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Train:
        finetune = get(p, "train.finetune", bool)
        recipe = choice(p, "train.recipe", RECIPES)
        if finetune and recipe != "fixed":
            raise InputError(
                f"{PARAMS}: train.recipe {recipe} trains many heads on cached features; fine-tuning the "
                "whole network (train.finetune: true) needs train.recipe: fixed"
            )
        return cls(
            finetune=finetune,
            recipe=recipe,
            epochs=integer(p, "train.epochs", 1, MAX_EPOCHS),
            batch_size=integer(p, "train.batch_size", 1, MAX_BATCH),
            lr_backbone=number(p, "train.lr_backbone", 0),
            lr_head=number(p, "train.lr_head", 0),
            momentum=number(p, "train.momentum", 0, 1, hi_open=True),
            weight_decay=number(p, "train.weight_decay", 0),
            lam=number(p, "train.lambda", 0, 1),
            seed=seed(p, "train.seed"),
            pca=integer(p, "train.pca", 0, MAX_PCA),
        )


@dataclass(frozen=True)
class Select:
    """`select.*`: how the `selected` recipe chooses epochs, the head's learning rate and weight decay,
    and the `converged` recipe its weight decay (inner cross-validation over `folds`)."""

    share: float  # inner validation share of an outer training fold
    epochs: int  # early stopping up to this many epochs
    patience: int  # ... or once no setting has improved for this many
    lr_head: tuple[float, ...]
    weight_decay: tuple[float, ...]
    folds: int  # `converged`: inner cross-validation folds that choose the weight decay

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Select:
        return cls(
            folds=integer(p, "select.folds", 2, MAX_FOLDS),
            share=number(p, "select.share", 0.05, 0.5),
            epochs=integer(p, "select.epochs", 1, MAX_EPOCHS),
            patience=integer(p, "select.patience", 1, MAX_EPOCHS),
            lr_head=numbers(p, "select.lr_head", 0, lo_open=True),
            weight_decay=numbers(p, "select.weight_decay", 0),
        )


@dataclass(frozen=True)
class Classic:
    """`classic.*`: the classic LDL methods that the `classic` stage cross-validates on the cached features."""

    methods: tuple[str, ...]
    pca: int  # principal components kept of each training fold's standardised features (0: all)
    folds: int  # inner cross-validation folds of each training fold that choose a method's hyperparameters

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Classic:
        return cls(
            methods=names(p, "classic.methods", LDL_METHODS, "methods"),
            pca=integer(p, "classic.pca", 0, MAX_PCA),
            folds=integer(p, "classic.folds", 2, MAX_FOLDS),
        )


@dataclass(frozen=True)
class Params:
    """Every section of params.yaml, each value checked."""

    data: Data
    preprocess: Preprocess
    split: Split
    prior: Prior
    model: Model
    features: Extraction
    train: Train
    select: Select
    classic: Classic

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Params:
        """The params in `p` (params.yaml's nested mappings); the first bad value is an `InputError`.

        - A param this project does not know (a typo such as `prior.iint`) is refused with the
          nearest known name, so that it never silently leaves the default in force.
        """
        _refuse_unknown(p)
        return cls(
            data=Data.parse(p),
            preprocess=Preprocess.parse(p),
            split=Split.parse(p),
            prior=Prior.parse(p),
            model=Model.parse(p),
            features=Extraction.parse(p),
            train=Train.parse(p),
            select=Select.parse(p),
            classic=Classic.parse(p),
        )


def dotted(section: str, field: str) -> str:
    """A section's field by its dotted name in params.yaml (`train.lam` is `train.lambda`)."""
    return f"{section}.{'lambda' if field == 'lam' else field}"


def known() -> list[str]:
    """Every param of params.yaml by its dotted name, in the order of the sections' fields."""
    types = get_type_hints(Params)
    return [dotted(section.name, key.name) for section in fields(Params) for key in fields(types[section.name])]


def _refuse_unknown(p: Mapping[str, Any]) -> None:
    """An `InputError` for the first section or param in `p` that params.yaml has no place for."""
    names = known()
    sections = list(dict.fromkeys(name.split(".")[0] for name in names))
    for section, keys in p.items():
        if section not in sections:
            _unknown("section", "", str(section), sections)
        ours = [name.split(".", 1)[1] for name in names if name.startswith(f"{section}.")]
        for key in keys if isinstance(keys, Mapping) else ():
            if key not in ours:
                _unknown("param", f"{section}.", str(key), ours)


def _unknown(what: str, prefix: str, name: str, known: list[str]) -> None:
    """Refuse `prefix + name`, naming the nearest of the `known` names, or all of them when none is near."""
    near = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {prefix}{near[0]}?" if near else f"expected one of {', '.join(prefix + k for k in known)}"
    raise InputError(f"{PARAMS}: unknown {what} {prefix}{name}; {hint}")


def load(path: Path = PARAMS) -> Params:
    """params.yaml, read and checked."""
    return Params.parse(read(path))
