"""What Emotion6 says about its own images: which input files are Emotion6's, and (--truth) their annotators'
distribution and out-of-fold prediction.

- A file is matched to an Emotion6 image by content (SHA-256, compared only with images of the same size),
  not by name: a copy or a renamed file is still recognised, and a user's own `photos/images/joy/1.jpg` is not
  mistaken for one. A re-encoded or resized copy is not recognised (nothing short of the pixels would tell).
- The final model trained on every Emotion6 image, so its prediction for one is fitted, not held out.
- The annotators' distribution comes from ground_truth.txt over the model's outputs, as it trained on them:
  with six outputs (data.neutral: drop) neutral's votes are left out and the six renormalised.
- The out-of-fold prediction is the mean, over the repeats, of metrics/predictions.csv's rows for the image:
  each made by a fold model that never saw it. That table holds the variant the workspace last evaluated;
  its outputs must be the model's.
"""

from __future__ import annotations

import hashlib
import stat
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ewmtcnn import InputError
from ewmtcnn.data import dataset
from ewmtcnn.data.dataset import IMAGE_DIR, NEUTRAL
from ewmtcnn.evaluation import predictions
from ewmtcnn.predict.predictor import Prediction
from ewmtcnn.training.inputs import distributions
from ewmtcnn.training.variant import outputs as variant_outputs

HINT = "`dvc pull` or `dvc repro download` brings it; or name another with --emotion6"


@dataclass(frozen=True)
class Truth:
    """Emotion6's record of one of its images, over a model's outputs."""

    annotators: dict[str, float]
    out_of_fold: dict[str, float] | None  # None: the image has no row in the predictions table
    repeats: int  # how many repeats' out-of-fold predictions `out_of_fold` is the mean of

    def record(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ImageReport:
    """One predicted image as the command shows it: its prediction, the Emotion6 image it is, and its truth."""

    prediction: Prediction
    emotion6: str | None = None  # `<emotion>/<n>.jpg`: the final model trained on it
    truth: Truth | None = None  # with --truth, for an Emotion6 image


class Emotion6:
    """An Emotion6 folder (ground_truth.txt, images/<emotion>/<n>.jpg): which files are its images."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_size: dict[int, list[Path]] = defaultdict(list)
        for path in sorted((root / IMAGE_DIR).rglob("*.jpg")):
            self._by_size[path.stat().st_size].append(path)
        self._digests: dict[Path, str] = {}

    @classmethod
    def at(cls, root: Path, *, required: bool) -> Emotion6 | None:
        """The folder at `root`; when it has no images/ folder, None, or an InputError if `required`."""
        if (root / IMAGE_DIR).is_dir():
            return cls(root)
        if required:
            raise InputError(f"{root}: not an Emotion6 folder (no {IMAGE_DIR}/ in it); {HINT}")
        return None

    def name_of(self, path: Path) -> str | None:
        """The Emotion6 image whose bytes `path` holds, as `<emotion>/<n>.jpg`; None for any other file."""
        try:
            status = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(status.st_mode) or not (candidates := self._by_size.get(status.st_size)):
            return None
        digest = _sha256(path)
        for candidate in candidates:
            if candidate not in self._digests:
                self._digests[candidate] = _sha256(candidate)
            if self._digests[candidate] == digest:
                return candidate.relative_to(self.root / IMAGE_DIR).as_posix()
        return None


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


@dataclass(frozen=True)
class Truths:
    """Every Emotion6 image's Truth over one model's outputs."""

    annotators: pd.DataFrame  # index: `<emotion>/<n>.jpg`; columns: the outputs
    out_of_fold: pd.DataFrame  # the same, the mean over the repeats
    repeats: pd.Series

    @classmethod
    def read(cls, root: Path, table: Path, outputs: tuple[str, ...]) -> Truths:
        """From `root`/ground_truth.txt and the predictions `table`; either unusable is an InputError naming it."""
        neutral = "keep" if NEUTRAL in outputs else "drop"
        if variant_outputs(neutral) != outputs:
            raise InputError(f"the model predicts {', '.join(outputs)}: not the outputs Emotion6's table gives")
        labels = dataset.read_ground_truth(root)
        annotators = pd.DataFrame(distributions(labels, neutral), index=labels["image"], columns=list(outputs))
        mean, repeats = out_of_fold(table, outputs)
        return cls(annotators, mean, repeats)

    def of(self, name: str) -> Truth | None:
        """The truth of Emotion6's image `name`; None when ground_truth.txt does not list it."""
        if name not in self.annotators.index:
            return None
        held_out = self.out_of_fold.loc[name].to_dict() if name in self.out_of_fold.index else None
        return Truth(self.annotators.loc[name].to_dict(), held_out, int(self.repeats.get(name, 0)))


def out_of_fold(path: Path, outputs: tuple[str, ...]) -> tuple[pd.DataFrame, pd.Series]:
    """Each image's mean out-of-fold prediction over the repeats in the predictions table at `path`, and their count."""
    hint = "run `dvc repro evaluate`, or name this model's variant's table with --predictions"
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: not found; {hint}") from None
    except (OSError, ValueError) as e:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise InputError(f"{path}: not a readable table ({e}); {hint}") from None
    found = tuple(predictions.emotions(table))
    if not {"image", "repeat"} <= set(table.columns) or not found:
        raise InputError(f"{path}: not a predictions table (as the evaluate stage writes); {hint}")
    if found != outputs:
        raise InputError(
            f"{path}: out-of-fold predictions of {', '.join(found)}, but the model predicts {', '.join(outputs)}: "
            f"another variant's; {hint}"
        )
    columns = predictions.columns(table, predictions.PRED)
    values = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)  # text: NaN
    if not np.isfinite(values).all():
        raise InputError(f"{path}: its predictions are not all numbers; {hint}")
    grouped = table.groupby("image")
    return grouped[columns].mean().set_axis(list(outputs), axis=1), grouped["repeat"].nunique()
