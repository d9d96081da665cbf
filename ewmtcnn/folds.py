"""Stratified k-fold assignment: every image lands in exactly one test fold."""
from __future__ import annotations

import pandas as pd
from sklearn.model_selection import StratifiedKFold

from ewmtcnn import InputError


def assign(labels: pd.DataFrame, label: str, folds: int, seed: int) -> pd.DataFrame:
    """One row per image (`image`, `fold`), stratified by the class label in column `label`.

    Rows keep the labels table's order, so the same params give the same bytes.
    """
    if folds < 2:
        raise InputError(f"split.folds must be at least 2; found {folds}")
    y = labels[label]
    smallest = y.value_counts().min()
    if smallest < folds:
        rare = y.value_counts().idxmin()
        raise InputError(f"cannot make {folds} stratified folds: class {rare!r} has only {smallest} image(s)")
    fold = pd.Series(-1, index=labels.index, name="fold")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(labels, y)):
        fold.iloc[test] = k
    return pd.DataFrame({"image": labels["image"], "fold": fold})


def read(path) -> pd.DataFrame:
    """The fold assignment written by the split stage."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: not found; run `dvc repro split` first") from None
