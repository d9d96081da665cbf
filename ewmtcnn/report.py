"""From trained folds to what users read: out-of-fold predictions, the metrics JSON, the
learning curves, the confusion table and the prior heatmap."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ewmtcnn import InputError, metrics  # noqa: E402
from ewmtcnn.training import HISTORY  # noqa: E402


@dataclass
class TrainedFold:
    """One fold as the train stage left it."""

    history: pd.DataFrame
    test: pd.DataFrame
    train: pd.DataFrame
    prior_initial: np.ndarray | None
    prior_final: np.ndarray | None


def read_fold(directory: Path) -> TrainedFold:
    if not (directory / "test.csv").is_file():
        fold = directory.name.removeprefix("fold-")
        raise InputError(f"{directory}: fold not trained; run `python -m stages.train --fold {fold}` or `dvc repro train`")
    state = torch.load(directory / "model.pt", map_location="cpu", weights_only=False)
    final = state["model"].get("prior.weight")
    return TrainedFold(pd.read_csv(directory / "history.csv"), pd.read_csv(directory / "test.csv"),
                       pd.read_csv(directory / "train.csv"), state["prior_initial"],
                       None if final is None else final.double().numpy())


def columns(table: pd.DataFrame, prefix: str) -> list[str]:
    """The `true_<emotion>` or `pred_<emotion>` columns of a prediction table, in output order."""
    return [c for c in table.columns if c.startswith(prefix)]


def emotions(table: pd.DataFrame) -> list[str]:
    """The emotions a prediction table covers, in output order."""
    return [c.removeprefix("pred_") for c in columns(table, "pred_")]


def scores(table: pd.DataFrame) -> dict[str, float]:
    """Accuracy and the six LDL measures of one fold's prediction table."""
    classes = table["label"].map(emotions(table).index).to_numpy()
    return metrics.fold_scores(table[columns(table, "true_")].to_numpy(), table[columns(table, "pred_")].to_numpy(), classes)


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


def plot_prior(folds: Sequence[TrainedFold], emotions: Sequence[str], path: Path) -> None:
    """Heatmaps of the prior before and after training (averaged over folds)."""
    if folds[0].prior_initial is None:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no prior layer (prior.init: none)", ha="center", va="center")
    else:
        before = np.mean([f.prior_initial for f in folds], axis=0)
        after = np.mean([f.prior_final for f in folds], axis=0)
        fig, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
        for ax, matrix, title in ((axes[0], before, "before training"), (axes[1], after, "after training")):
            image = ax.imshow(matrix, cmap="viridis")
            ax.set_title(f"prior W {title} (mean of {len(folds)} folds)")
            ax.set_xticks(range(len(emotions)), emotions, rotation=45, ha="right")
            ax.set_yticks(range(len(emotions)), emotions)
            for (i, j), value in np.ndenumerate(matrix):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < matrix.mean() else "black")
            fig.colorbar(image, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same params, same bytes
    plt.close(fig)
