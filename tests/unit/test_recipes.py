"""The training recipes: the `selected` recipe chooses from each training fold's own images only,
never from its test fold; `fixed` uses the paper's settings; each head is kept at its epoch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ewmtcnn.config import sections
from ewmtcnn.model import wheel
from ewmtcnn.training import recipes, variant
from ewmtcnn.training.batched import Task
from support import separable

REPO = Path(__file__).resolve().parents[2]
N, D, C = 120, 10, 6


@pytest.fixture(scope="module")
def v() -> variant.Variant:
    params = sections.load(REPO / "params.yaml")
    select = dataclasses.replace(params.select, epochs=12, patience=4, lr_head=(0.01, 0.1), weight_decay=(0.0, 0.01))
    train = dataclasses.replace(params.train, batch_size=16, epochs=5)
    return variant.Variant.of(
        params.data.label, params.data.neutral, params.prior, params.model, params.features, train, select
    )


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return separable(N, D, C, shift=1.5, seed=seed)


fold_of = np.arange(N) % 4  # test fold k: every 4th image


def tasks(prior: np.ndarray | None) -> list[Task]:
    return [Task(np.flatnonzero(fold_of != k), 0, k, prior) for k in range(4)]


def no_prior(_: np.ndarray, __: int) -> None:
    return None


def test_the_test_fold_is_never_read_by_a_choice(v: variant.Variant) -> None:
    """Permuting the labels (distributions and classes) of each test fold changes no choice."""
    features, targets, classes = data()
    chosen = recipes.select(recipes.Problem.of(features, targets, classes), v, tasks(None), no_prior)
    rng = np.random.default_rng(1)
    for k in range(4):
        test = np.flatnonzero(fold_of == k)
        shuffled_targets, shuffled_classes = targets.copy(), classes.copy()
        order = rng.permutation(test)
        shuffled_targets[test], shuffled_classes[test] = targets[order], (classes[order] + 1) % C
        problem = recipes.Problem.of(features, shuffled_targets, shuffled_classes)
        again = recipes.select(problem, v, tasks(None), no_prior)
        assert again[k] == chosen[k], f"test fold {k}'s labels changed its training fold's choice"
    # and the choice does read the training folds: permuting those changes it
    train = np.flatnonzero(fold_of != 0)
    shuffled = targets.copy()
    shuffled[train] = targets[rng.permutation(train)]
    moved = recipes.select(recipes.Problem.of(features, shuffled, classes), v, tasks(None), no_prior)
    assert moved[0] != chosen[0]


def test_the_inner_split_is_stratified_and_inside_the_training_fold() -> None:
    _, _, classes = data()
    train = np.flatnonzero(fold_of != 0)
    inner, validation = recipes.inner_split(classes, train, 0.25, seed=3)
    assert set(inner) | set(validation) == set(train) and not set(inner) & set(validation)
    assert len(validation) == np.ceil(0.25 * len(train))
    # each class in proportion: a quarter of its training images, to the nearest whole image
    share = np.bincount(classes[validation], minlength=C) - 0.25 * np.bincount(classes[train], minlength=C)
    assert np.abs(share).max() <= 1


def test_a_choice_is_the_lowest_inner_kl_and_the_head_is_kept_at_its_epoch(v: variant.Variant) -> None:
    features, targets, classes = data()
    problem = recipes.Problem.of(features, targets, classes)
    prior = wheel.wheel_prior()
    own = tasks(prior)
    chosen = recipes.select(problem, v, own, lambda *_: prior)
    for choice in chosen:
        assert choice.recipe == "selected" and 1 <= choice.epochs <= 12
        assert choice.lr_head in (0.01, 0.1) and choice.weight_decay in (0.0, 0.01) and choice.inner_kl > 0
    held_out = [np.flatnonzero(fold_of == k) for k in range(4)]
    trained = recipes.train_chosen(problem, v, own, chosen, held_out)
    for choice, result, test in zip(chosen, trained, held_out, strict=True):
        assert list(result.history["epoch"]) == list(range(1, choice.epochs + 1))
        assert result.held_out.shape == (len(test), C) and np.allclose(result.held_out.sum(axis=1), 1)
        # the kept predictions are those of the kept weights, at the chosen epoch
        x = torch.from_numpy(features[test])
        logits = (x @ result.state["fc.weight"].T + result.state["fc.bias"]) @ result.state["prior.weight"].T
        np.testing.assert_allclose(torch.softmax(logits.double(), dim=1).numpy(), result.held_out, atol=1e-6)
        assert result.history["test_kl"].iloc[-1] == pytest.approx(problem.kl(test, result.held_out).mean(), rel=1e-6)


def test_the_fixed_recipe_uses_the_papers_settings(v: variant.Variant) -> None:
    choice = recipes.fixed(v)
    assert (choice.recipe, choice.epochs, choice.lr_head, choice.weight_decay) == ("fixed", 5, 0.01, 0.0005)
    features, targets, classes = data()
    trained = recipes.train_chosen(
        recipes.Problem.of(features, targets, classes),
        v,
        tasks(None),
        [choice] * 4,
        [np.flatnonzero(fold_of == k) for k in range(4)],
    )
    assert all(list(f.history["epoch"]) == [1, 2, 3, 4, 5] for f in trained)
