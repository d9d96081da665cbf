"""The Python API: a final model loaded once, then the emotion distribution of any images.

    from ewmtcnn import Predictor
    predictor = Predictor.load("data/final/model.pt")
    predictions = predictor.predict(["photo.jpg", Image.open("other.png"), pixels])
    predictions[0].dominant, predictions[0].distribution["joy"], predictions.array  # (n, c)

- An image is a path (str or Path), a PIL image, or a uint8 numpy array, (H, W, 3) RGB or (H, W) greyscale;
  a list may mix them. A file, a PIL image and an array of the same pixels give the same prediction.
- Each goes the way the pipeline's images went: resized and centre-cropped to the stored square (as the
  preprocess stage), its features made as the features stage made them (the views, layers and input side
  the model records), then the head and a softmax (as evaluation).
- The model file is read with `torch.load(weights_only=True)` and every field checked (`load_final`);
  `Predictor.model` says which file, variant and commit it is (`ewmtcnn.predict.provenance`).
- A bad image, or a model whose predictions are not finite (NaN), is an InputError naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias, overload

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from ewmtcnn import InputError, paths
from ewmtcnn.config.sections import Extraction
from ewmtcnn.data import images as image_files
from ewmtcnn.features import extract
from ewmtcnn.io.checkpoint import FinalModel, load_final
from ewmtcnn.model import backbones
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.predict.provenance import ModelInfo, describe
from ewmtcnn.training import loop
from ewmtcnn.training.inputs import CachedFeatures, ImageViews, Inputs

#: What `Predictor.predict` takes for one image: a file's path, or the image in memory.
ImageInput: TypeAlias = str | os.PathLike[str] | Image.Image | np.ndarray
#: ImageInput's types, for isinstance: those of a path, then those of one image in any form.
PATH_TYPES = (str, os.PathLike)
ONE_IMAGE = (*PATH_TYPES, Image.Image, np.ndarray)
#: Images decoded and run through the network together: bounded memory on long lists.
CHUNK = 32
#: `device`: CUDA when torch sees a GPU else the CPU, or either named.
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Prediction:
    """One image's predicted distribution over the model's outputs.

    - `image`: the path as given, or `<image K>` for the K-th image (from 0) of the call when it is in memory.
    - `distribution`: each emotion's probability, in the model's output order; they sum to 1.
    """

    image: str
    distribution: dict[str, float]

    @property
    def dominant(self) -> str:
        """The most probable emotion (the first of equals, as numpy's argmax)."""
        return max(self.distribution, key=self.distribution.__getitem__)


@dataclass(frozen=True)
class Predictions(Sequence[Prediction]):
    """The predictions of one call, in the order of its images; `array` gives them as one (n, c) matrix.

    - `outputs`: the model's emotions, in output order: the array's columns.
    """

    outputs: tuple[str, ...]
    items: tuple[Prediction, ...]

    @property
    def array(self) -> np.ndarray:
        """(n, c) float64: row i the distribution of image i, columns in `outputs` order."""
        rows = [[p.distribution[e] for e in self.outputs] for p in self.items]
        return np.array(rows, dtype=np.float64).reshape(len(self.items), len(self.outputs))

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> Prediction: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Prediction, ...]: ...

    def __getitem__(self, index: int | slice) -> Prediction | tuple[Prediction, ...]:
        return self.items[index]


def choose_device(name: str) -> torch.device:
    """The torch device that `name` (one of DEVICES) names; cuda without a GPU is an InputError."""
    if name not in DEVICES:
        raise InputError(f"device {name!r}: expected one of {', '.join(DEVICES)}")
    if name == "auto":
        return loop.device()
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda: torch sees no CUDA GPU on this machine; use cpu (or auto)")
    return torch.device(name)


class Predictor:
    """A final model rebuilt for inference on one device: `Predictor.load(path)`, then `predict(images)`.

    - `model`: which file, variant and commit (ModelInfo); `outputs`: its emotions in output order;
      `device`: where it runs.
    - The backbone feeds the head pooled features when the model was trained on cached ones.
    """

    def __init__(self, final: FinalModel, model: ModelInfo, device: torch.device) -> None:
        self.model = model
        self.outputs = final.outputs
        self.size = final.size
        self.device = device
        self.how = Extraction.from_record(final.extraction)
        try:
            self.backbone = backbones.get(final.backbone).at(self.how.size)
        except InputError as e:  # a backbone this version does not know
            raise InputError(f"{model.path}: {e}") from None
        self.features: nn.Module | None
        backbone: nn.Module | None
        if final.finetune:  # the state holds the whole network, backbone included
            backbone, self.features = self.backbone.build(pretrained=False, weights=None), None
            width = self.backbone.features
        else:
            backbone = None
            self.features = extract.feature_backbone(self.backbone, final.pretrained, final.weights).to(device)
            width = extract.width(self.features, self.backbone, self.how)
        self.net = EmotionNet(width, len(final.outputs), final.head, final.prior_initial, True, backbone)
        try:
            self.net.load_state_dict(final.state)
        except RuntimeError:
            raise InputError(f"{model.path}: its weights do not fit the network its settings describe") from None
        self.net.to(device)

    @classmethod
    def load(cls, path: str | os.PathLike[str] = paths.FINAL, device: str = "auto") -> Predictor:
        """The final model at `path` (relative to the current folder) on `device` (one of DEVICES).

        - A missing, foreign or tampered model file is an InputError naming it, as is cuda without a GPU.
        """
        chosen = choose_device(device)
        final = load_final(Path(path))
        return cls(final, describe(final, Path(path)), chosen)

    def predict(self, images: ImageInput | Iterable[ImageInput]) -> Predictions:
        """The distribution of each image, in order; one image alone gives Predictions of one.

        - The first bad image (missing, unreadable, no image, an array of another shape or type) raises
          an InputError naming it.
        """
        done: list[Prediction] = []
        for result in self.results(images):
            if isinstance(result, InputError):
                raise result
            done.append(result)
        return Predictions(self.outputs, tuple(done))

    def results(self, images: ImageInput | Iterable[ImageInput]) -> Iterator[Prediction | InputError]:
        """Each image's prediction, or the InputError naming it, in order: one bad image fails alone (as the command
        reports them)."""
        one = isinstance(images, ONE_IMAGE) or not isinstance(images, Iterable)
        given: list[ImageInput] = [images] if one else list(images)  # type: ignore[list-item]
        names = [os.fspath(image) if isinstance(image, PATH_TYPES) else f"<image {k}>" for k, image in enumerate(given)]
        for start in range(0, len(given), CHUNK):
            chunk = range(start, min(start + CHUNK, len(given)))
            squares: dict[int, np.ndarray] = {}
            failed: dict[int, InputError] = {}
            for k in chunk:
                try:
                    squares[k] = self.square(given[k], names[k])
                except InputError as e:
                    failed[k] = e
            q = self.distributions(np.stack(list(squares.values()))) if squares else []
            done = {
                k: Prediction(names[k], dict(zip(self.outputs, map(float, row), strict=True)))
                for k, row in zip(squares, q, strict=True)
            }
            for k in chunk:
                yield done[k] if k in done else failed[k]

    def square(self, image: ImageInput, name: str) -> np.ndarray:
        """`image` resized and centre-cropped as the preprocess stage does: (3, size, size) uint8.

        - A file goes through `square` (ewmtcnn.data.images), the stage's own function; an image in memory is made
          RGB as `decode` makes a file's (EXIF orientation applied, 16-bit scaled to 8), then cropped the same way.
        """
        if isinstance(image, PATH_TYPES):
            return image_files.square(Path(image), self.size)
        fitted = ImageOps.fit(in_memory(image, name), (self.size, self.size), method=Image.Resampling.BICUBIC)
        return np.asarray(fitted, dtype=np.uint8).transpose(2, 0, 1)

    def distributions(self, store: np.ndarray) -> np.ndarray:
        """(N, outputs) float64 for uint8 (N, 3, size, size) images, as evaluation computes them; NaN refused."""
        inputs: Inputs
        if self.features is None:
            inputs = ImageViews(store, self.backbone)
        else:
            inputs = CachedFeatures(extract.extract(self.features, store, self.backbone, self.how))
        q = loop.predict(self.net, inputs, np.arange(len(store)), CHUNK, self.device)
        if not np.isfinite(q).all():
            raise InputError(
                f"{self.model.path}: the model predicts NaN (its weights are not finite or overflow); "
                "retrain it with `dvc repro final`"
            )
        return q


def in_memory(image: object, name: str) -> Image.Image:
    """A PIL image or a uint8 (H, W, 3) / (H, W) numpy array as an RGB PIL image; anything else an InputError."""
    if isinstance(image, Image.Image):
        try:  # a lazily opened image is read now
            return image_files.eight_bit(ImageOps.exif_transpose(image), Path(name)).convert("RGB")
        except (OSError, SyntaxError, ValueError) as e:  # as `decode` reports a file that Pillow cannot read
            raise InputError(f"{name}: cannot be decoded as an image ({e})") from None
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name}: a {type(image).__name__}; expected a path, a PIL image or a numpy array")
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.shape[2:] not in ((), (3,)) or image.size == 0:
        raise InputError(
            f"{name}: a numpy array of {image.dtype} {image.shape}; expected uint8 pixels, (H, W, 3) RGB or (H, W) grey"
        )
    return Image.fromarray(image).convert("RGB")
