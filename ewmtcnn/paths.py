"""Where each stage reads and writes, relative to the repository root.

`dvc.yaml` declares the same paths; a test keeps the two in step.
"""

from pathlib import Path

PARAMS = Path("params.yaml")
CHECKED = Path("data/checked")  # the check stage's constant output, which every other stage depends on
RAW = Path("data/raw/Emotion6")
IMAGES = Path("data/prepared/images.npy")
LABELS = Path("data/prepared/labels.csv")
FOLDS = Path("data/folds.csv")
FEATURES = Path("data/features.npy")
TRAINED = Path("data/train")
PREDICTIONS = Path("metrics/predictions.csv")
METRICS = Path("metrics/metrics.json")
HEADLINE = Path("metrics/headline.json")  # metrics.json's headline means alone, for `dvc exp show`
FOLD_METRICS = Path("metrics/folds.json")
SELECTION = Path("metrics/selection.json")
PER_EMOTION = Path("metrics/per_emotion.json")
CURVES_PLOT = Path("plots/curves.png")
CONFUSION = Path("plots/confusion.csv")
CONFUSION_PLOT = Path("plots/confusion.png")
PER_EMOTION_PLOT = Path("plots/per_emotion.png")
PRIOR_PLOT = Path("plots/prior.png")
FINAL = Path("data/final/model.pt")
CLASSIC = Path("data/classic")  # the classic stage's out-of-fold predictions, a folder per method
CLASSIC_METRICS = Path("metrics/classic.json")


def fold_dir(repeat: int, fold: int) -> Path:
    """Where the train stage keeps one fold's weights, history, predictions and chosen settings."""
    return TRAINED / f"repeat-{repeat}" / f"fold-{fold}"


def classic_predictions(method: str) -> Path:
    """Where the classic stage keeps one method's out-of-fold predictions (as metrics/predictions.csv)."""
    return CLASSIC / method / "predictions.csv"
