"""From the trained folds of repeated cross-validation to what users read: out-of-fold predictions,
the scores with their confidence intervals beside the trivial baselines', the settings the folds
trained with, the learning curves, the confusion table and the prior heatmap.

Everything here computes; nothing writes. The evaluate stage computes every output first and
writes them only when all succeeded, so a failure never leaves a mix of old and new files.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ewmtcnn import InputError, paths
from ewmtcnn.evaluation import baselines, metrics, resampling
from ewmtcnn.io import checkpoint
from ewmtcnn.io.checkpoint import HISTORY, TrainedFold

#: The trained folds by (repeat, fold).
Folds = Mapping[tuple[int, int], TrainedFold]
#: What a fold's selection.json records besides the recipe: the settings it trained with.
SETTINGS = ("epochs", "lr_head", "weight_decay")
#: The prediction tables each fold is scored on: its held-out fold and, in place, its training images.
PARTS = ("test", "train")
RETRAIN = "retrain: `dvc repro train`"


def columns(table: pd.DataFrame, prefix: str) -> list[str]:
    """The `true_<emotion>` or `pred_<emotion>` columns of a prediction table, in output order."""
    return [c for c in table.columns if c.startswith(prefix)]


def emotions(table: pd.DataFrame) -> list[str]:
    """The emotions a prediction table covers, in output order."""
    return [c.removeprefix("pred_") for c in columns(table, "pred_")]


def _classes(table: pd.DataFrame) -> np.ndarray:
    """Each row's class label as an index into the table's emotions."""
    return table["label"].map(emotions(table).index).to_numpy()


def scores(table: pd.DataFrame) -> dict[str, float]:
    """Every score of metrics.SCORES on one fold's prediction table."""
    true, pred = table[columns(table, "true_")].to_numpy(), table[columns(table, "pred_")].to_numpy()
    return metrics.fold_scores(true, pred, _classes(table))


def _table_problem(table: pd.DataFrame, repeat: int, fold: int, names: list[str]) -> str | None:
    """What is wrong with one of fold (repeat, fold)'s prediction tables, if anything."""
    expected = ["image", "repeat", "fold", "label", *(f"true_{e}" for e in names), *(f"pred_{e}" for e in names)]
    if list(table.columns) != expected:
        return f"expected the columns {', '.join(expected)}; found {', '.join(map(str, table.columns))}"
    if table.empty:
        return "no images"
    if not ((table["repeat"] == repeat) & (table["fold"] == fold)).all():
        return f"holds predictions of another fold than repeat {repeat}, fold {fold}"
    if not table["label"].isin(names).all():
        return f"a class label outside {', '.join(names)}"
    values = table[expected[4:]]
    if not all(map(pd.api.types.is_numeric_dtype, values.dtypes)) or not np.isfinite(values.to_numpy(float)).all():
        return "a distribution entry that is not a finite number"
    return None


def check_folds(folds: Folds) -> None:
    """Refuse, naming the file, a fold's prediction table that is not its own as this version writes it."""
    names = emotions(next(iter(folds.values())).test)
    for (repeat, fold), trained in folds.items():
        for file, table in ((checkpoint.TEST, trained.test), (checkpoint.TRAIN, trained.train)):
            if (problem := _table_problem(table, repeat, fold, names)) is not None:
                raise InputError(f"{paths.fold_dir(repeat, fold) / file}: {problem}; {RETRAIN}")


def out_of_fold(folds: Folds, order: pd.Series) -> pd.DataFrame:
    """Every image's held-out prediction once per repeat, ordered by repeat, then as in `order` (the
    labels table's images), from folds that passed `check_folds`; a repeat whose test folds miss an
    image or hold one twice is refused."""
    per_repeat = []
    for repeat in sorted({r for r, _ in folds}):
        held_out = pd.concat([trained.test for (r, _), trained in sorted(folds.items()) if r == repeat])
        if sorted(held_out["image"]) != sorted(order):
            raise InputError(
                f"{paths.TRAINED}/repeat-{repeat}: the test predictions of the trained folds do not cover every "
                f"image exactly once (folds trained on another split?); {RETRAIN}"
            )
        per_repeat.append(held_out.set_index("image").loc[order].reset_index())
    return pd.concat(per_repeat, ignore_index=True)


def fold_size_ratio(predictions: pd.DataFrame) -> float:
    """n_test / n_train for the intervals: the mean test fold's size over the mean training set's (the
    rest of its repeat's images), from a table with one row per prediction and its `repeat` and `fold`."""
    test = predictions.groupby(["repeat", "fold"]).size()
    train = test.groupby(level="repeat").transform("sum") - test
    return float(test.mean() / train.mean())


def baseline_report(predictions: pd.DataFrame, ratio: float) -> dict[str, dict[str, dict[str, float]]]:
    """Each baseline's scores summarised over the (repeat, fold)s, learned from each fold's training folds."""
    per_fold: dict[str, list[dict[str, float]]] = {name: [] for name in baselines.BASELINES}
    for _, table in predictions.groupby("repeat"):
        targets, classes = table[columns(table, "true_")].to_numpy(), _classes(table)
        for fold in sorted(table["fold"].unique()):
            test = (table["fold"] == fold).to_numpy()
            for name, fold_scores in baselines.fold_scores(targets, classes, test).items():
                per_fold[name].append(fold_scores)
    return {name: resampling.summarise(values, ratio) for name, values in per_fold.items()}


def metrics_report(folds: Folds, predictions: pd.DataFrame) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics.json: each score's mean, std and 95% interval over the folds, the per-class accuracy
    pooled over every repeat's out-of-fold predictions and the baselines; folds.json: each fold's scores)."""
    per_fold = [
        {"repeat": repeat, "fold": fold, "test": scores(trained.test), "train": scores(trained.train)}
        for (repeat, fold), trained in sorted(folds.items())
    ]
    ratio = fold_size_ratio(predictions)
    summary: dict[str, Any] = {part: resampling.summarise([f[part] for f in per_fold], ratio) for part in PARTS}
    q = predictions[columns(predictions, "pred_")].to_numpy()
    summary["test_per_class_acc"] = metrics.per_class_accuracy(_classes(predictions), q, emotions(predictions))
    summary["baselines"] = baseline_report(predictions, ratio)
    return summary, per_fold


def _settings(trained: TrainedFold, repeat: int, fold: int) -> dict[str, Any]:
    """One fold's recipe and settings from its selection.json, checked to be a name and numbers."""
    path = paths.fold_dir(repeat, fold) / checkpoint.SELECTION
    chosen = {key: trained.selection[key] for key in ("recipe", *SETTINGS)}
    if not isinstance(chosen["recipe"], str):
        raise InputError(f"{path}: recipe must be a name; found {chosen['recipe']!r}; {RETRAIN}")
    for key in SETTINGS:
        if isinstance(chosen[key], bool) or not isinstance(chosen[key], (int, float)):
            raise InputError(f"{path}: {key} must be a number; found {chosen[key]!r}; {RETRAIN}")
    return chosen


def selection_report(folds: Folds) -> dict[str, Any]:
    """metrics/selection.json: the recipe, the median, min and max over all folds of each setting the
    folds trained with, and the per-fold list; folds trained with different recipes are refused."""
    chosen = {key: _settings(trained, *key) for key, trained in sorted(folds.items())}
    recipes = sorted({settings.pop("recipe") for settings in chosen.values()})
    if len(recipes) != 1:
        raise InputError(
            f"{paths.TRAINED}: the folds trained with different recipes, {' and '.join(recipes)}; {RETRAIN}"
        )
    summary: dict[str, Any] = {"recipe": recipes[0]}
    for key in SETTINGS:
        values = [settings[key] for settings in chosen.values()]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    summary["folds"] = [{"repeat": repeat, "fold": fold, **settings} for (repeat, fold), settings in chosen.items()]
    return summary


def learning_curve(folds: Folds) -> pd.DataFrame:
    """Per epoch, the history averaged over every fold of every repeat."""
    return pd.concat([f.history for f in folds.values()]).groupby("epoch", as_index=False)[list(HISTORY)].mean()


def confusion(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per out-of-fold prediction, every repeat's pooled (each image once per repeat): its
    class label and the predicted (argmax) emotion, for DVC's confusion plot."""
    pred = predictions[columns(predictions, "pred_")]
    return pd.DataFrame({"actual": predictions["label"], "predicted": pred.idxmax(axis=1).str.removeprefix("pred_")})


def prior_png(folds: Sequence[TrainedFold], emotions: Sequence[str]) -> bytes:
    """Heatmaps of the prior before and after training (averaged over all folds), as PNG bytes."""
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
