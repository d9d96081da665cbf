"""The emotion distribution of new images, from the model that `dvc repro final` trains on all of Emotion6.

    python -m ewmtcnn.predict IMAGE... [--model data/final/model.pt] [--json] [--plot OUT.png]

- Each image goes the way the pipeline's images went: resized and centre-cropped to the stored
  square (as the preprocess stage), its features made as the features stage made them (the views,
  layers and input side the model records), then the head and a softmax (as evaluation).
- A missing or unreadable image, or one that is no regular file (a FIFO, a device), is reported on
  stderr and skipped; the others are still predicted, and the exit status is 1 if any failed.
- A model whose predictions are not finite (NaN) is refused, naming the model file; `--json` is strict JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from ewmtcnn import InputError, cli, paths
from ewmtcnn.config.sections import Extraction
from ewmtcnn.data import images
from ewmtcnn.data.dataset import NEUTRAL
from ewmtcnn.features import extract
from ewmtcnn.io.atomic import written
from ewmtcnn.io.checkpoint import FinalModel, load_final
from ewmtcnn.model import backbones
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.model.wheel import MIKELS_WHEEL, ON_WHEEL
from ewmtcnn.training import loop
from ewmtcnn.training.inputs import CachedFeatures, ImageViews, Inputs

#: Images decoded and run through the network together: bounded memory on long lists.
CHUNK = 32
PLOT_COLUMNS = 3


@dataclass(frozen=True)
class Prediction:
    """One image's predicted distribution over the model's outputs."""

    image: str
    distribution: dict[str, float]

    @property
    def dominant(self) -> str:
        """The most probable output (the first of equals, as numpy's argmax)."""
        return max(self.distribution, key=self.distribution.__getitem__)

    def text(self) -> str:
        """`path: joy 0.62 (fear 0.12, ...)`, the rest from most to least probable."""
        ranked = sorted(self.distribution.items(), key=lambda item: -item[1])
        rest = ", ".join(f"{e} {p:.2f}" for e, p in ranked[1:])
        return f"{self.image}: {ranked[0][0]} {ranked[0][1]:.2f} ({rest})"

    def record(self) -> dict[str, object]:
        return {"image": self.image, "distribution": self.distribution, "dominant": self.dominant}


class Predictor:
    """A final model rebuilt for inference: its network, and the backbone that feeds its head.

    - The backbone feeds the head pooled features when the model was trained on cached ones.
    """

    def __init__(self, final: FinalModel, source: Path) -> None:
        self.source = source
        self.outputs = final.outputs
        self.size = final.size
        self.how = Extraction.from_record(final.extraction)
        try:
            self.backbone = backbones.get(final.backbone).at(self.how.size)
        except InputError as e:  # a backbone this version does not know
            raise InputError(f"{source}: {e}") from None
        self.device = loop.device()
        self.features: nn.Module | None
        backbone: nn.Module | None
        if final.finetune:  # the state holds the whole network, backbone included
            backbone, self.features = self.backbone.build(pretrained=False, weights=None), None
            width = self.backbone.features
        else:
            backbone = None
            self.features = extract.feature_backbone(self.backbone, final.pretrained, final.weights).to(self.device)
            width = extract.width(self.features, self.backbone, self.how)
        net = EmotionNet(width, len(final.outputs), final.head, final.prior_initial, True, backbone)
        self.net = net
        try:
            self.net.load_state_dict(final.state)
        except RuntimeError:
            raise InputError(f"{source}: its weights do not fit the network its settings describe") from None
        self.net.to(self.device)

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
                f"{self.source}: the model predicts NaN (its weights are not finite or overflow); "
                "retrain it with `dvc repro final`"
            )
        return q


def predictions(predictor: Predictor, files: Sequence[str]) -> Iterator[Prediction | InputError]:
    """Each image's prediction, or the error that names it, in order; one bad file fails alone."""
    for start in range(0, len(files), CHUNK):
        decoded: dict[str, np.ndarray] = {}
        failed: dict[str, InputError] = {}
        for path in files[start : start + CHUNK]:
            try:
                decoded[path] = images.square(Path(path), predictor.size)
            except InputError as e:
                failed[path] = e
        q = predictor.distributions(np.stack(list(decoded.values()))) if decoded else []
        results = {
            path: Prediction(path, dict(zip(predictor.outputs, map(float, row), strict=True)))
            for path, row in zip(decoded, q, strict=True)
        }
        for path in files[start : start + CHUNK]:
            yield results[path] if path in results else failed[path]


# --- the plot --------------------------------------------------------------------------------


def wheel_chart(ax: Axes, prediction: Prediction, top: float) -> None:
    """The distribution as bars on Mikels' wheel, clockwise from the top.

    - The wheel's emotions without an Emotion6 counterpart (contentment, excitement) are empty, in grey.
    """
    step = 2 * math.pi / len(MIKELS_WHEEL)
    from_wheel = {spot: emotion for emotion, spot in ON_WHEEL.items()}
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)  # MIKELS_WHEEL lists the wheel clockwise
    labels = []
    for k, spot in enumerate(MIKELS_WHEEL):
        emotion = from_wheel.get(spot)
        if emotion is None:
            ax.bar(k * step, top, width=0.9 * step, color="0.92", edgecolor="0.8")
            labels.append(f"({spot})")
            continue
        colour = "tab:red" if emotion == prediction.dominant else "tab:blue"
        ax.bar(k * step, prediction.distribution[emotion], width=0.9 * step, color=colour)
        labels.append(emotion if emotion == spot else f"{emotion}\n({spot})")
    ax.set_xticks([k * step for k in range(len(MIKELS_WHEEL))], labels, fontsize=8)
    ax.set_ylim(0, top)
    ax.tick_params(axis="y", labelsize=7)
    best = prediction.dominant
    title = f"{Path(prediction.image).name}\n{best} {prediction.distribution[best]:.2f}"
    if NEUTRAL in prediction.distribution:  # neutral has no place on the wheel
        title += f", {NEUTRAL} {prediction.distribution[NEUTRAL]:.2f}"
    ax.set_title(title, fontsize=9, pad=14)


def plot(predictions: Sequence[Prediction], path: Path) -> None:
    """One wheel chart per image, in a grid, on one shared radial scale; written whole or not at all.

    - A link at `path` is written through, as the shell's `>` does: its target gets the plot, the link stays.
    - An existing `path` that is no regular file (a folder, a FIFO, a device) is refused, left as it was.
    """
    columns = min(len(predictions), PLOT_COLUMNS)
    rows = math.ceil(len(predictions) / columns)
    fig = Figure(figsize=(4.4 * columns, 4.6 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, subplot_kw={"projection": "polar"})
    largest = max(p.distribution[e] for p in predictions for e in ON_WHEEL)
    top = math.ceil(largest * 10) / 10  # the next 0.1 above the longest bar
    for ax, prediction in zip(axes.flat, predictions, strict=True):
        wheel_chart(ax, prediction, top)
    for ax in axes.flat[len(predictions) :]:
        ax.set_visible(False)
    fig.suptitle(
        "predicted probability on Mikels' emotion wheel (Emotion6's name, the wheel's in brackets; "
        "grey: no Emotion6 counterpart)",
        fontsize=8,
    )
    try:
        target = Path(os.path.realpath(path))  # a loop of links is left as it is: stat then fails with ELOOP
        if (kind := images.special_kind(target)) is not None:
            raise InputError(f"{path}: is {kind}; give --plot the path of a PNG file to write")
        with written(target) as tmp:
            fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    except OSError as e:
        raise InputError(f"{path}: cannot write the plot ({e.strerror or e})") from None


# --- the command -----------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ewmtcnn-predict",
        description="The emotion distribution and dominant emotion of each image, "
        "from the model that `dvc repro final` trains.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument(
        "--model",
        type=Path,
        default=paths.FINAL,
        help=f"the trained model (default: {paths.FINAL}, relative to the current folder)",
    )
    parser.add_argument(
        "--json", action="store_true", help='print a JSON list of {"image", "distribution", "dominant"} instead of text'
    )
    parser.add_argument(
        "--plot", type=Path, metavar="OUT.png", help="draw each distribution on the emotion wheel into this PNG"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Predict, print, plot; the exit status: 1 if any image failed."""
    predictor = Predictor(load_final(args.model), args.model)
    done: list[Prediction] = []
    failures = 0
    for result in predictions(predictor, args.images):
        if isinstance(result, InputError):
            failures += 1
            print(f"error: {result}", file=sys.stderr)
            continue
        done.append(result)
        if not args.json:
            print(result.text(), flush=True)
    if args.json:
        print(json.dumps([p.record() for p in done], indent=2, allow_nan=False))
    if args.plot is not None and done:
        plot(done, args.plot)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> None:
    """The `ewmtcnn-predict` command."""
    args = parse(argv)
    cli.run(lambda: sys.exit(run(args)))


if __name__ == "__main__":
    main()
