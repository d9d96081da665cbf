"""The loss, the targets, and one fold's training loop on small synthetic features."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from ewmtcnn import InputError
from ewmtcnn.config.sections import Train
from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS
from ewmtcnn.io.checkpoint import HISTORY
from ewmtcnn.model import backbones, wheel
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.training.inputs import CachedFeatures, ImageViews, distributions
from ewmtcnn.training.loop import loss, train_fold
from ewmtcnn.training.variant import outputs


def test_loss_is_the_weighted_sum_of_cross_entropy_and_summed_kl():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    classes = torch.tensor([0, 2])
    targets = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]])
    q = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in logits.tolist()]
    ce = -(math.log(q[0][0]) + math.log(q[1][2])) / 2
    kl = (
        sum(
            p * math.log(p / qq)
            for prow, qrow in zip(targets.tolist(), q, strict=True)
            for p, qq in zip(prow, qrow, strict=True)
            if p > 0
        )
        / 2
    )
    assert loss(logits, classes, targets, 0.7).item() == pytest.approx(0.3 * ce + 0.7 * kl, rel=1e-6)
    assert loss(logits, classes, targets, 0.0).item() == pytest.approx(ce, rel=1e-6)


def labels(rows: list[list[float]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(DISTRIBUTION))
    table.insert(0, "image", [f"joy/{i}.jpg" for i in range(len(rows))])
    return table


def test_targets_drop_neutral_and_renormalise_or_keep_seven():
    table = labels([[0.1, 0.1, 0.2, 0.2, 0.0, 0.0, 0.4], [0, 0, 0, 1, 0, 0, 0]])
    dropped = distributions(table, "drop")
    assert dropped.shape == (2, 6)
    assert np.allclose(dropped[0], [1 / 6, 1 / 6, 2 / 6, 2 / 6, 0, 0]) and np.allclose(dropped[1], [0, 0, 0, 1, 0, 0])
    kept = distributions(table, "keep")
    assert kept.shape == (2, 7) and np.allclose(kept[0], [0.1, 0.1, 0.2, 0.2, 0, 0, 0.4])
    assert outputs("drop") == EMOTIONS and outputs("keep") == DISTRIBUTION


def test_neutral_only_image_cannot_drop_neutral():
    table = labels([[0, 0, 0, 0, 0, 0, 1.0], [0, 0, 0, 1, 0, 0, 0]])
    with pytest.raises(InputError, match="joy/0.jpg"):
        distributions(table, "drop")
    assert distributions(table, "keep")[0, 6] == 1


@pytest.fixture
def problem():
    """Separable synthetic features: class c has a bump on feature c."""
    rng = np.random.default_rng(0)
    classes = np.repeat(np.arange(6), 20)
    features = rng.normal(0, 0.3, (120, 16)).astype(np.float32)
    features[np.arange(120), classes] += 3
    targets = np.full((120, 6), 0.04)
    targets[np.arange(120), classes] = 0.8
    folds = np.tile(np.arange(4), 30)
    return features, targets, classes, np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)


TRAIN = Train(
    finetune=False,
    recipe="fixed",
    epochs=15,
    batch_size=16,
    lr_backbone=0.001,
    lr_head=0.05,
    momentum=0.9,
    weight_decay=5e-4,
    lam=0.7,
    seed=0,
    pca=0,
)


@pytest.mark.parametrize("freeze", [True, False])
def test_a_fold_learns_and_keeps_a_frozen_prior(problem, freeze):
    features, targets, classes, train_idx, test_idx = problem
    prior = wheel.wheel_prior()
    torch.manual_seed(0)
    model = EmotionNet(16, 6, "direct", prior, freeze, None)
    result = train_fold(model, CachedFeatures(features), targets, classes, train_idx, test_idx, TRAIN)
    history = result.history
    assert list(history["epoch"]) == list(range(1, 16)) and tuple(history.columns) == ("epoch", *HISTORY)
    assert history["test_kl"].iloc[-1] < history["test_kl"].iloc[0]
    assert history["test_acc"].iloc[-1] > 0.9  # separable classes
    assert result.held_out.shape == (len(test_idx), 6) and result.in_place.shape == (len(train_idx), 6)
    assert np.allclose(result.held_out.sum(axis=1), 1)
    trained = model.prior.weight.detach().double().numpy()
    assert np.allclose(trained, prior, atol=1e-7) == freeze
    state = model.state_dict()
    assert set(result.state) == set(state) and all(torch.equal(result.state[k], state[k]) for k in state)


def test_same_seed_same_fold_result(problem):
    features, targets, classes, train_idx, test_idx = problem
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = EmotionNet(16, 6, "seed", wheel.wheel_prior(), False, None)
        runs.append(train_fold(model, CachedFeatures(features), targets, classes, train_idx, test_idx, TRAIN))
    assert runs[0].history.equals(runs[1].history) and np.array_equal(runs[0].held_out, runs[1].held_out)


def test_fine_tuning_trains_the_backbone_on_image_views():
    """train.finetune: the whole network learns from random views of the uint8 store."""
    rng = np.random.default_rng(0)
    store = rng.integers(0, 256, (10, 3, 232, 232), dtype=np.uint8)
    classes = np.arange(10) % 6
    targets = np.eye(6)[classes] * 0.9 + 0.1 / 6
    torch.manual_seed(0)
    lite0 = backbones.get("efficientnet_lite0")
    model = EmotionNet(lite0.features, 6, "direct", wheel.wheel_prior(), True, lite0.build(False, None))
    before = model.backbone._conv_stem.weight.detach().clone()
    train = dataclasses.replace(
        TRAIN, finetune=True, epochs=1, batch_size=4, lr_backbone=0.01, lr_head=0.01, weight_decay=0
    )
    result = train_fold(model, ImageViews(store, lite0), targets, classes, np.arange(8), np.arange(8, 10), train)
    assert len(result.history) == 1 and np.isfinite(result.history.to_numpy()).all()
    assert result.held_out.shape == (2, 6) and result.in_place.shape == (8, 6)
    assert not torch.equal(model.backbone._conv_stem.weight.detach().cpu(), before)


@pytest.mark.parametrize("lr", [1e6, 1e30])
def test_a_diverging_run_stops_with_an_error_naming_the_learning_rate(problem, lr):
    """A huge step sends the logits to extremes: a NaN loss, or a probability of exactly 0
    (an infinite KL), is refused instead of written."""
    features, targets, classes, train_idx, test_idx = problem
    torch.manual_seed(0)
    model = EmotionNet(16, 6, "direct", None, True, None)
    train = dataclasses.replace(TRAIN, epochs=5, lr_backbone=0, lr_head=lr, weight_decay=0)
    with pytest.raises(InputError, match=re.escape(f"training diverged; lower train.lr_head (now {lr:g})")):
        train_fold(model, CachedFeatures(features * 100), targets, classes, train_idx, test_idx, train)
