"""Stage `train`: the variant that params.yaml selects, trained and evaluated on every fold.

`python -m stages.train --fold K` trains fold K alone (into data/train/fold-K), so that folds
can be spread over machines; the result is the same as within the all-folds run.
"""
import argparse
from typing import Any

import numpy as np
import torch

from ewmtcnn import InputError, dataset, folds, images, layout, models, params, training, wheel


def settings(p: dict[str, Any]) -> training.Settings:
    number = (int, float)
    return training.Settings(
        epochs=params.get(p, "train.epochs", int), batch_size=params.get(p, "train.batch_size", int),
        lr_backbone=params.get(p, "train.lr_backbone", number), lr_head=params.get(p, "train.lr_head", number),
        momentum=params.get(p, "train.momentum", number), weight_decay=params.get(p, "train.weight_decay", number),
        lam=params.get(p, "train.lambda", number), seed=params.get(p, "train.seed", int))


def main(p: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, help="train only this fold (0-based)")
    only = parser.parse_args().fold
    label = params.choice(p, "data.label", dataset.LABELS)
    neutral = params.choice(p, "data.neutral", training.NEUTRAL_CHOICES)
    init = params.choice(p, "prior.init", wheel.INITS)
    freeze = params.get(p, "prior.freeze", bool)
    sigma = params.get(p, "prior.sigma", (int, float))
    backbone_name = params.choice(p, "model.backbone", models.BACKBONES)
    head = params.choice(p, "model.head", models.HEADS)
    finetune = params.get(p, "train.finetune", bool)
    k = params.get(p, "split.folds", int)
    run = settings(p)

    labels = dataset.read_labels(layout.LABELS)
    assignment = folds.read(layout.FOLDS)
    if list(assignment["image"]) != list(labels["image"]):
        raise InputError(f"{layout.FOLDS} and {layout.LABELS} list different images; rerun `dvc repro split`")
    emotions = training.outputs(neutral)
    targets = training.distributions(labels, neutral)
    classes = labels[label].map(dataset.EMOTIONS.index).to_numpy()
    if finetune:
        inputs: training.Inputs = training.ImageViews(images.open_store(layout.IMAGES), *models.normalisation(backbone_name))
    else:
        inputs = training.CachedFeatures(np.load(layout.FEATURES, mmap_mode="r"))
        if len(inputs.features) != len(labels):
            raise InputError(f"{layout.FEATURES} has {len(inputs.features)} rows for {len(labels)} images; rerun `dvc repro features`")
    if only is not None and not 0 <= only < k:
        raise InputError(f"--fold {only}: split.folds is {k}, so folds are 0..{k - 1}")

    for fold in [only] if only is not None else range(k):
        train_idx = np.flatnonzero(assignment["fold"].to_numpy() != fold)
        test_idx = np.flatnonzero(assignment["fold"].to_numpy() == fold)
        # corr priors come from the training folds only: the test fold's labels never leak in.
        prior = wheel.prior_matrix(init, sigma=sigma, probabilities=labels.loc[train_idx, list(dataset.EMOTIONS)].to_numpy(),
                                   neutral=neutral == "keep", seed=run.seed)
        torch.manual_seed(run.seed * 1000 + fold)  # each fold the same alone or within the loop
        backbone, dim = (models.build_backbone(backbone_name, params.get(p, "model.pretrained", bool),
                                               params.get(p, "model.weights", str) or None)
                         if finetune else (None, inputs.features.shape[1]))
        model = models.EmotionNet(dim, len(emotions), head, prior, freeze, backbone)
        result = training.train_fold(model, inputs, targets, classes, train_idx, test_idx, run, desc=f"fold {fold}")
        names = labels[label].to_numpy()
        tables = [training.prediction_table(labels["image"].iloc[idx], fold, names[idx], emotions, targets[idx], q)
                  for idx, q in ((test_idx, result.test), (train_idx, result.train))]
        training.save_fold(layout.fold_dir(fold), model, prior, result.history, *tables)
        last = result.history.iloc[-1]
        print(f"fold {fold}: test acc {last.test_acc:.3f}, test KL {last.test_kl:.4f} ({len(test_idx)} images)")


if __name__ == "__main__":
    params.run_stage(main)
