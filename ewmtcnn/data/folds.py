"""Stratified k-fold assignment: every image lands in exactly one test fold."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ewmtcnn import InputError


def assign(labels: pd.DataFrame, label: str, folds: int, seed: int, repeats: int = 1) -> pd.DataFrame:
    """One row per (repeat, image) (`image`, `repeat`, `fold`): each repeat a stratified k-fold split.

    - Split by the class label in column `label`, shuffled with seed `seed + repeat`.
    - Rows go repeat by repeat, each in the labels table's order: the same params give the same bytes,
      and repeat 0 is the split of a single k-fold run with `seed`.
    """
    return pd.concat([_split(labels, label, folds, seed + r).assign(repeat=r) for r in range(repeats)])[
        ["image", "repeat", "fold"]
    ]


def _split(labels: pd.DataFrame, label: str, folds: int, seed: int) -> pd.DataFrame:
    # Imported here: scikit-learn takes a second and a half to import, which the stages that only
    # read the folds (train, evaluate) should not pay.
    from sklearn.model_selection import StratifiedKFold

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


def read(path: Path) -> pd.DataFrame:
    """The fold assignment written by the split stage; a missing or malformed table is an InputError."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: not found; run `dvc repro split` first") from None
    except (OSError, ValueError) as e:  # pandas' parser errors are ValueErrors
        raise InputError(f"{path}: not a readable table ({e}); rerun `dvc repro split`") from None
    integers = all(pd.api.types.is_integer_dtype(table[c]) for c in ("repeat", "fold") if c in table)
    if list(table.columns) != ["image", "repeat", "fold"] or not integers:
        raise InputError(f"{path}: expected the columns image, repeat, fold (integers); rerun `dvc repro split`")
    return table
