"""Stage `train`: the variant that params.yaml selects, trained and evaluated on every fold.

`python -m stages.train --fold K` trains fold K alone (into data/train/fold-K), so that folds
can be spread over machines; the result is the same as within the all-folds run.
"""

import argparse
from typing import Any

import numpy as np

from ewmtcnn import InputError, checkpoint, cli, folds, inputs, layout, training, variant


def main(p: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, help="train only this fold (0-based)")
    only = parser.parse_args().fold
    v = variant.from_params(p)
    k = folds.count(p)
    if only is not None and not 0 <= only < k:
        raise InputError(f"--fold {only}: split.folds is {k}, so folds are 0..{k - 1}")

    data = inputs.load(v)
    assignment = folds.read(layout.FOLDS)
    if list(assignment["image"]) != list(data.labels["image"]):
        raise InputError(f"{layout.FOLDS} and {layout.LABELS} list different images; rerun `dvc repro split`")

    names = data.labels[v.label].to_numpy()
    for fold in [only] if only is not None else range(k):
        train_idx = np.flatnonzero(assignment["fold"].to_numpy() != fold)
        test_idx = np.flatnonzero(assignment["fold"].to_numpy() == fold)
        model, prior = training.network(v, data, train_idx, seed=v.run.seed * 1000 + fold)
        result = training.train_fold(
            model, data.inputs, data.targets, data.classes, train_idx, test_idx, v.run, desc=f"fold {fold}"
        )
        test, train = (
            checkpoint.prediction_table(
                data.labels["image"].iloc[idx], fold, names[idx], data.emotions, data.targets[idx], q
            )
            for idx, q in ((test_idx, result.test), (train_idx, result.train))
        )
        checkpoint.TrainedFold(result.history, test, train, model.state_dict(), prior).save(layout.fold_dir(fold))
        last = result.history.iloc[-1]
        print(f"fold {fold}: test acc {last.test_acc:.3f}, test KL {last.test_kl:.4f} ({len(test_idx)} images)")


if __name__ == "__main__":
    cli.run_stage(main)
