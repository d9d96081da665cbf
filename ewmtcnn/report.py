"""From trained folds to what users read: out-of-fold predictions, the metrics, the learning
curves, the confusion table and the prior heatmap.

Everything here computes; nothing writes. The evaluate stage computes every output first and
writes them only when all succeeded, so a failure never leaves a mix of old and new files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ewmtcnn import InputError, metrics
from ewmtcnn.checkpoint import HISTORY, TrainedFold


def columns(table: pd.DataFrame, prefix: str) -> list[str]:
    """The `true_<emotion>` or `pred_<emotion>` columns of a prediction table, in output order."""
    return [c for c in table.columns if c.startswith(prefix)]


def emotions(table: pd.DataFrame) -> list[str]:
    """The emotions a prediction table covers, in output order."""
    return [c.removeprefix("pred_") for c in columns(table, "pred_")]


def scores(table: pd.DataFrame) -> dict[str, float]:
    """Accuracy and the six LDL measures of one fold's prediction table."""
    classes = table["label"].map(emotions(table).index).to_numpy()
    return metrics.fold_scores(
        table[columns(table, "true_")].to_numpy(), table[columns(table, "pred_")].to_numpy(), classes
    )


def out_of_fold(folds: Sequence[TrainedFold], order: pd.Series) -> pd.DataFrame:
    """Every image's held-out prediction, in the labels table's `order`; each image exactly once."""
    held_out = pd.concat([f.test for f in folds])
    if sorted(held_out["image"]) != sorted(order):
        raise InputError(
            "the test predictions of the trained folds do not cover every image exactly once "
            "(folds trained on another split?); retrain: `dvc repro train`"
        )
    return held_out.set_index("image").loc[order].reset_index()


def metrics_report(folds: Sequence[TrainedFold], predictions: pd.DataFrame) -> tuple[dict, dict]:
    """(metrics.json: mean and std over folds + per-class accuracy, folds.json: per fold)."""
    per_fold = {part: [scores(getattr(f, part)) for f in folds] for part in ("test", "train")}
    names = emotions(predictions)
    q = predictions[columns(predictions, "pred_")].to_numpy()
    classes = predictions["label"].map(names.index).to_numpy()
    summary = {part: metrics.summarise(per_fold[part]) for part in ("test", "train")}
    summary["test_per_class_acc"] = metrics.per_class_accuracy(classes, q, names)
    return summary, per_fold


def learning_curve(folds: Sequence[TrainedFold]) -> pd.DataFrame:
    """Per epoch, the history averaged over folds."""
    return pd.concat([f.history for f in folds]).groupby("epoch", as_index=False)[list(HISTORY)].mean()


def confusion(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per image: its class label and the predicted (argmax) emotion, for DVC's confusion plot."""
    pred = predictions[columns(predictions, "pred_")]
    return pd.DataFrame({"actual": predictions["label"], "predicted": pred.idxmax(axis=1).str.removeprefix("pred_")})


def prior_png(folds: Sequence[TrainedFold], emotions: Sequence[str]) -> bytes:
    """Heatmaps of the prior before and after training (averaged over folds), as PNG bytes."""
    if folds[0].prior_initial is None:
        fig = Figure(figsize=(5, 1.5))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no prior layer (prior.init: none)", ha="center", va="center")
    else:
        before = np.mean([f.prior_initial for f in folds], axis=0)
        after = np.mean([f.prior_final for f in folds], axis=0)
        fig = Figure(figsize=(11, 5), layout="constrained")
        for ax, matrix, title in zip(
            fig.subplots(1, 2), (before, after), ("before training", "after training"), strict=True
        ):
            image = ax.imshow(matrix, cmap="viridis")
            ax.set_title(f"prior W {title} (mean of {len(folds)} folds)")
            ax.set_xticks(range(len(emotions)), emotions, rotation=45, ha="right")
            ax.set_yticks(range(len(emotions)), emotions)
            for (i, j), value in np.ndenumerate(matrix):
                colour = "white" if value < matrix.mean() else "black"
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)
            fig.colorbar(image, ax=ax, shrink=0.8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})  # no version stamp: same bytes
    return buffer.getvalue()
