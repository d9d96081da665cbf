"""The predictions table: one row per image of a fold, its true and predicted distributions.

- Columns: `image, repeat, fold, label, true_<emotion>..., pred_<emotion>...`, emotions in output order.
- A fold's test.csv and train.csv, and metrics/predictions.csv, are such tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: The columns that say which prediction a row is, before the distributions.
KEY: tuple[str, ...] = ("image", "repeat", "fold", "label")
TRUE, PRED = "true_", "pred_"


def build(
    images: Sequence[str],
    repeat: int,
    fold: int,
    labels: Sequence[str],
    emotions: Sequence[str],
    true: np.ndarray,
    pred: np.ndarray,
) -> pd.DataFrame:
    """The table of one fold's images: their class `labels`, `true` and `pred` distributions (N, c)."""
    table = pd.DataFrame({"image": list(images), "repeat": repeat, "fold": fold, "label": list(labels)})
    for j, e in enumerate(emotions):
        table[f"{TRUE}{e}"] = true[:, j]
    for j, e in enumerate(emotions):
        table[f"{PRED}{e}"] = pred[:, j]
    return table


def header(emotions: Sequence[str]) -> list[str]:
    """Every column of a table over `emotions`, in order."""
    return [*KEY, *(f"{TRUE}{e}" for e in emotions), *(f"{PRED}{e}" for e in emotions)]


def columns(table: pd.DataFrame, prefix: str) -> list[str]:
    """The `TRUE` or `PRED` columns of a table, in output order."""
    return [c for c in table.columns if c.startswith(prefix)]


def emotions(table: pd.DataFrame) -> list[str]:
    """The emotions a table covers, in output order."""
    return [c.removeprefix(PRED) for c in columns(table, PRED)]


def true(table: pd.DataFrame) -> np.ndarray:
    """The true distributions (N, c)."""
    return table[columns(table, TRUE)].to_numpy()


def pred(table: pd.DataFrame) -> np.ndarray:
    """The predicted distributions (N, c)."""
    return table[columns(table, PRED)].to_numpy()


def classes(table: pd.DataFrame) -> np.ndarray:
    """Each row's class label as an index into the table's emotions."""
    return table["label"].map(emotions(table).index).to_numpy()
