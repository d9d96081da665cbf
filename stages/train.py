"""Stage `train`: the variant that params.yaml selects, trained and evaluated on every fold.

`python -m stages.train --fold K` trains fold K alone (into data/train/fold-K), so that folds
can be spread over machines; the result is the same as within the all-folds run.
"""
import argparse
from typing import Any

import numpy as np

from ewmtcnn import InputError, folds, layout, params, training


def main(p: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, help="train only this fold (0-based)")
    only = parser.parse_args().fold
    variant = training.variant(p)
    k = params.get(p, "split.folds", int)

    data = training.load_data(variant)
    assignment = folds.read(layout.FOLDS)
    if list(assignment["image"]) != list(data.labels["image"]):
        raise InputError(f"{layout.FOLDS} and {layout.LABELS} list different images; rerun `dvc repro split`")
    if only is not None and not 0 <= only < k:
        raise InputError(f"--fold {only}: split.folds is {k}, so folds are 0..{k - 1}")

    names = data.labels[variant.label].to_numpy()
    for fold in [only] if only is not None else range(k):
        train_idx = np.flatnonzero(assignment["fold"].to_numpy() != fold)
        test_idx = np.flatnonzero(assignment["fold"].to_numpy() == fold)
        model, prior = training.network(variant, data, train_idx, fold)
        result = training.train_fold(model, data.inputs, data.targets, data.classes, train_idx, test_idx, variant.run,
                                     desc=f"fold {fold}")
        tables = [training.prediction_table(data.labels["image"].iloc[idx], fold, names[idx], data.emotions,
                                            data.targets[idx], q)
                  for idx, q in ((test_idx, result.test), (train_idx, result.train))]
        training.save_fold(layout.fold_dir(fold), model, prior, result.history, *tables)
        last = result.history.iloc[-1]
        print(f"fold {fold}: test acc {last.test_acc:.3f}, test KL {last.test_kl:.4f} ({len(test_idx)} images)")


if __name__ == "__main__":
    params.run_stage(main)
