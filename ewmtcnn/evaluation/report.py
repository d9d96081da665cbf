"""From the trained folds of repeated cross-validation to what users read.

- Out-of-fold predictions, the scores with their intervals beside the trivial baselines', the
  hyperparameters the folds trained with, the confusion table and counts, the figures per emotion.
- `ewmtcnn.evaluation.figures` draws the pictures.
- Everything here computes; nothing writes: the evaluate stage writes once every output is computed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ewmtcnn import InputError, paths
from ewmtcnn.evaluation import baselines, metrics, predictions, resampling
from ewmtcnn.io import checkpoint
from ewmtcnn.io.checkpoint import TrainedFold
from ewmtcnn.io.choice import HYPERPARAMETERS

#: The trained folds by (repeat, fold).
Folds = Mapping[tuple[int, int], TrainedFold]
#: The prediction tables each fold is scored on: its held-out fold and, in place, its training images.
PARTS = ("test", "train")
RETRAIN = "retrain: `dvc repro train`"
#: The held-out means of metrics/headline.json, under short names: what `make show` (`dvc exp show`) and
#: `dvc metrics diff` show first. metrics/metrics.json keeps every figure with its std and interval.
HEADLINE = ("acc", "balanced_acc", "macro_f1", "kl", "chebyshev", "cosine", "intersection")
#: The figures of metrics/per_emotion.json besides each emotion's image count.
PER_EMOTION = ("kl", "recall", "precision", "f1")
#: How far a stored distribution's sum may be from 1: far above rounding and float32 error, far below any mistake.
SUM_TOLERANCE = 1e-4


def scores(table: pd.DataFrame) -> dict[str, float]:
    """Every score of metrics.SCORES on one fold's predictions table."""
    return metrics.fold_scores(predictions.true(table), predictions.pred(table), predictions.classes(table))


def _table_problem(table: pd.DataFrame, repeat: int, fold: int, names: list[str]) -> str | None:
    """What is wrong with one of fold (repeat, fold)'s predictions tables, if anything."""
    expected = predictions.header(names)
    if list(table.columns) != expected:
        return f"expected the columns {', '.join(expected)}; found {', '.join(map(str, table.columns))}"
    if table.empty:
        return "no images"
    if not ((table["repeat"] == repeat) & (table["fold"] == fold)).all():
        return f"holds predictions of another fold than repeat {repeat}, fold {fold}"
    if not table["label"].isin(names).all():
        return f"a class label outside {', '.join(names)}"
    values = table[expected[len(predictions.KEY) :]]
    if not all(map(pd.api.types.is_numeric_dtype, values.dtypes)) or not np.isfinite(values.to_numpy(float)).all():
        return "a distribution entry that is not a finite number"
    return _distribution_problem(table, "true", predictions.true(table)) or _distribution_problem(
        table, "predicted", predictions.pred(table)
    )


def _distribution_problem(table: pd.DataFrame, kind: str, distributions: np.ndarray) -> str | None:
    """What is wrong with a predictions table's `kind` distributions (N, c), if any is not one: the first image's."""
    totals = distributions.sum(axis=1)
    if (negative := (distributions < 0).any(axis=1)).any():
        return f"the {kind} distribution of {table['image'].iloc[negative.argmax()]} has a negative entry"
    if (off := np.abs(totals - 1) > SUM_TOLERANCE).any():
        row = off.argmax()
        return f"the {kind} distribution of {table['image'].iloc[row]} sums to {totals[row]:.6g}, not 1"
    return None


def check_folds(folds: Folds) -> None:
    """Refuse, naming the file, a fold's predictions table that is not its own as this version writes it."""
    names = predictions.emotions(next(iter(folds.values())).test)
    for (repeat, fold), trained in folds.items():
        for file, table in ((checkpoint.TEST, trained.test), (checkpoint.TRAIN, trained.train)):
            if (problem := _table_problem(table, repeat, fold, names)) is not None:
                raise InputError(f"{paths.fold_dir(repeat, fold) / file}: {problem}; {RETRAIN}")


def out_of_fold(folds: Folds, order: pd.Series) -> pd.DataFrame:
    """Every image's held-out prediction once per repeat, ordered by repeat, then as in `order`.

    - `order` is the labels table's images; the folds have passed `check_folds`.
    - A repeat whose test folds miss an image or hold one twice is refused.
    """
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


def fold_size_ratio(table: pd.DataFrame) -> float:
    """n_test / n_train for the intervals: the mean test fold's size over the mean training set's.

    - A training set is the rest of its repeat's images.
    - `table` has one row per prediction, with its `repeat` and `fold`.
    """
    test = table.groupby(["repeat", "fold"]).size()
    train = test.groupby(level="repeat").transform("sum") - test
    return float(test.mean() / train.mean())


def summary(out_of_fold: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Each score's mean, std and 95% interval over the (repeat, fold)s of out-of-fold predictions.

    - As metrics.json's `test` section: every fold scored on its own rows (`scores`), then `resampling.summarise`.
    """
    per_fold = [scores(table) for _, table in out_of_fold.groupby(["repeat", "fold"])]
    return resampling.summarise(per_fold, fold_size_ratio(out_of_fold))


def baseline_report(out_of_fold: pd.DataFrame, ratio: float) -> dict[str, dict[str, dict[str, float]]]:
    """Each baseline's scores summarised over the (repeat, fold)s, learned from each fold's training folds."""
    per_fold: dict[str, list[dict[str, float]]] = {name: [] for name in baselines.BASELINES}
    for _, table in out_of_fold.groupby("repeat"):
        targets, classes = predictions.true(table), predictions.classes(table)
        for fold in sorted(table["fold"].unique()):
            test = (table["fold"] == fold).to_numpy()
            for name, fold_scores in baselines.fold_scores(targets, classes, test).items():
                per_fold[name].append(fold_scores)
    return {name: resampling.summarise(values, ratio) for name, values in per_fold.items()}


def metrics_report(folds: Folds, out_of_fold: pd.DataFrame) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The contents of metrics.json and folds.json.

    - metrics.json: each score's mean, std and 95% interval over the folds, the per-class accuracy
      pooled over every repeat's out-of-fold predictions, and the baselines.
    - folds.json: each fold's scores.
    """
    per_fold = [
        {"repeat": repeat, "fold": fold, "test": scores(trained.test), "train": scores(trained.train)}
        for (repeat, fold), trained in sorted(folds.items())
    ]
    ratio = fold_size_ratio(out_of_fold)
    summary: dict[str, Any] = {part: resampling.summarise([f[part] for f in per_fold], ratio) for part in PARTS}
    summary["test_per_class_acc"] = metrics.per_class_accuracy(
        predictions.classes(out_of_fold), predictions.pred(out_of_fold), predictions.emotions(out_of_fold)
    )
    summary["baselines"] = baseline_report(out_of_fold, ratio)
    return summary, per_fold


def headline(summary: Mapping[str, Any]) -> dict[str, float]:
    """The HEADLINE scores' means on the held-out folds, from `metrics_report`'s summary."""
    return {score: summary["test"][score]["mean"] for score in HEADLINE}


def selection_report(folds: Folds) -> dict[str, Any]:
    """metrics/selection.json: the recipe, and each hyperparameter the folds trained with.

    - Each hyperparameter's median, min and max over all folds, then the per-fold list.
    - Folds trained with different recipes are refused.
    """
    chosen = {key: trained.choice for key, trained in sorted(folds.items())}
    recipes = sorted({choice.recipe for choice in chosen.values()})
    if len(recipes) != 1:
        raise InputError(
            f"{paths.TRAINED}: the folds trained with different recipes, {' and '.join(recipes)}; {RETRAIN}"
        )
    summary: dict[str, Any] = {"recipe": recipes[0]}
    for name in HYPERPARAMETERS:
        values = [getattr(choice, name) for choice in chosen.values()]
        summary[name] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    summary["folds"] = [
        {"repeat": repeat, "fold": fold, **choice.hyperparameters()} for (repeat, fold), choice in chosen.items()
    ]
    return summary


def confusion(out_of_fold: pd.DataFrame) -> pd.DataFrame:
    """Each out-of-fold prediction's class label and predicted (argmax) emotion, for DVC's confusion plot.

    - Every repeat's predictions pooled: each image once per repeat.
    """
    pred = out_of_fold[predictions.columns(out_of_fold, predictions.PRED)]
    predicted = pred.idxmax(axis=1).str.removeprefix(predictions.PRED)
    return pd.DataFrame({"actual": out_of_fold["label"], "predicted": predicted})


def confusion_counts(out_of_fold: pd.DataFrame) -> pd.DataFrame:
    """How many out-of-fold predictions of each class label (rows) went to each predicted emotion (columns).

    - Every emotion is a row and a column, in output order, even one never predicted.
    - Every repeat's predictions pooled: each image once per repeat.
    """
    emotions = predictions.emotions(out_of_fold)
    table = confusion(out_of_fold)
    counts = pd.crosstab(table["actual"], table["predicted"]).reindex(index=emotions, columns=emotions, fill_value=0)
    return counts.rename_axis(index="class label", columns="predicted")


def per_emotion(out_of_fold: pd.DataFrame) -> dict[str, dict[str, float]]:
    """metrics/per_emotion.json: per emotion, its images, their mean KL, and its recall, precision and F1.

    - Each repeat's out-of-fold predictions (every image once) are scored alone, then averaged over the repeats.
    - `images` and `kl` are of the images whose class label is the emotion; recall, precision and F1
      treat the class label as the truth and the most probable predicted emotion as the prediction.
    - A figure undefined in a repeat (the precision of an emotion it never predicts) is NaN there;
      the mean is over the repeats that define it, NaN if none does.
    """
    emotions = predictions.emotions(out_of_fold)
    per_repeat = []
    for _, table in out_of_fold.groupby("repeat"):
        classes = pd.Series(predictions.classes(table))
        kl = pd.Series(metrics.distances(predictions.true(table), predictions.pred(table))["kl"])
        scores = pd.DataFrame(metrics.per_class_scores(classes.to_numpy(), predictions.pred(table), emotions)).T
        scores.insert(0, "kl", kl.groupby(classes).mean().reindex(range(len(emotions))).to_numpy())
        scores.insert(0, "images", classes.value_counts().reindex(range(len(emotions)), fill_value=0).to_numpy())
        per_repeat.append(scores)
    mean = pd.concat(per_repeat).groupby(level=0, sort=False).mean()
    return {
        emotion: {"images": int(row["images"]), **{name: float(row[name]) for name in PER_EMOTION}}
        for emotion, row in mean.iterrows()
    }
