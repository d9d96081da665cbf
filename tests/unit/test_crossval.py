"""Cross-validation's plan and seeds: which (repeat, fold) pairs train, and the seeds each one draws from.

- Repeat r trains with the run seed `train.seed + r`; fold k initialises from `run seed * 1000 + k`.
- The final model initialises from `train.seed * 1000 + FINAL_FOLD` (-1), never from a fold's seed.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from ewmtcnn import InputError
from ewmtcnn.config.sections import Params
from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS
from ewmtcnn.model import wheel
from ewmtcnn.training import crossval, recipes
from ewmtcnn.training.batched import Task
from ewmtcnn.training.crossval import FINAL_FOLD, Fold
from ewmtcnn.training.inputs import CachedFeatures, Data
from ewmtcnn.training.variant import Variant
from support import REPO

TRAIN_SEED = 7
N = 24  # images: four of each emotion


def variant(**train: object) -> Variant:
    """The repository's variant with the `rand` prior (drawn from the run seed) and `train.*` overridden."""
    p = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    p = copy.deepcopy(p)
    p["prior"]["init"] = "rand"
    p["train"].update(seed=TRAIN_SEED, **train)
    params = Params.parse(p)
    return Variant.of(
        params.data.label, params.data.neutral, params.prior, params.model, params.features, params.train, params.select
    )


@pytest.fixture(scope="module")
def data() -> Data:
    """A tiny synthetic dataset: one-hot distributions, separable 8-d features."""
    rng = np.random.default_rng(0)
    classes = np.arange(N) % len(EMOTIONS)
    distributions = np.zeros((N, len(DISTRIBUTION)))
    distributions[np.arange(N), classes] = 1.0
    labels = pd.DataFrame(distributions, columns=list(DISTRIBUTION))
    labels.insert(0, "image", [f"{EMOTIONS[c]}/{i}.jpg" for i, c in enumerate(classes)])
    labels["dominant"] = labels["folder"] = [EMOTIONS[c] for c in classes]
    features = rng.normal(size=(N, 8)).astype(np.float32)
    features[np.arange(N), classes] += 3
    return Data(labels, EMOTIONS, distributions[:, : len(EMOTIONS)], classes, CachedFeatures(features))


def test_the_plan_is_every_fold_of_every_repeat_in_order() -> None:
    plan = crossval.plan(3, 4)
    assert (plan.repeats, plan.folds) == (3, 4)
    assert plan.pairs == tuple(itertools.product(range(3), range(4)))


@pytest.mark.parametrize(
    ("only_repeat", "only_fold", "pairs"),
    [(1, None, ((1, 0), (1, 1), (1, 2), (1, 3))), (None, 2, ((0, 2), (1, 2), (2, 2))), (2, 3, ((2, 3),))],
)
def test_the_plan_is_the_repeat_or_fold_asked(only_repeat: int | None, only_fold: int | None, pairs: tuple) -> None:
    plan = crossval.plan(3, 4, only_repeat=only_repeat, only_fold=only_fold)
    assert plan.pairs == pairs and (plan.repeats, plan.folds) == (3, 4)


@pytest.mark.parametrize(
    ("only_repeat", "only_fold", "message"),
    [
        (3, None, "--repeat 3: split.repeats is 3, so it is 0..2"),
        (-1, None, "--repeat -1: split.repeats is 3, so it is 0..2"),
        (None, 4, "--fold 4: split.folds is 4, so it is 0..3"),
        (0, -1, "--fold -1: split.folds is 4, so it is 0..3"),
    ],
)
def test_the_plan_refuses_a_repeat_or_fold_out_of_range(
    only_repeat: int | None, only_fold: int | None, message: str
) -> None:
    with pytest.raises(InputError) as info:
        crossval.plan(3, 4, only_repeat=only_repeat, only_fold=only_fold)
    assert str(info.value) == message


def test_fold_k_of_repeat_r_draws_from_the_run_seed_and_its_own_initialisation_seed(data: Data) -> None:
    v = variant()
    every = np.arange(N)
    planned = [Fold(r, k, every[every % 3 != k], every[every % 3 == k]) for r, k in crossval.plan(2, 3).pairs]
    tasks = crossval.tasks(v, data, planned)
    for fold, task in zip(planned, tasks, strict=True):
        run_seed = TRAIN_SEED + fold.repeat
        assert (task.seed, task.init_seed) == (run_seed, run_seed * 1000 + fold.fold)
        assert np.array_equal(task.train, fold.train)
        # the rand prior is drawn from the run seed: the same for a repeat's folds, new in the next repeat
        rand = wheel.prior_matrix("rand", sigma=v.sigma, probabilities=None, neutral=False, seed=run_seed)
        assert np.array_equal(task.prior, rand)
    assert not np.array_equal(tasks[0].prior, tasks[3].prior)


def test_a_fold_trains_the_same_alone_or_with_the_others(data: Data) -> None:
    v = variant()
    every = np.arange(N)
    planned = [Fold(r, k, every[every % 3 != k], every[every % 3 == k]) for r, k in crossval.plan(2, 3).pairs]
    [alone] = crossval.tasks(v, data, [planned[4]])
    together = crossval.tasks(v, data, planned)[4]
    assert (alone.seed, alone.init_seed) == (together.seed, together.init_seed) == (TRAIN_SEED + 1, 8001)


def test_the_final_model_initialises_from_the_final_fold_seed(data: Data, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trained with the `fixed` recipe on every image: the trainer gets run seed train.seed and
    initialisation seed train.seed * 1000 - 1, which no fold (0..k-1) uses."""
    v = variant(recipe="fixed", epochs=2)
    trained_with: list[Task] = []
    real = recipes.train_chosen

    def spy(problem: recipes.Problem, v: Variant, tasks: list[Task], *rest: Any) -> list:
        trained_with.extend(tasks)
        return real(problem, v, tasks, *rest)

    monkeypatch.setattr(crossval.inputs, "load", lambda _: data)
    monkeypatch.setattr(crossval.recipes, "train_chosen", spy)
    final = crossval.final(v, 256)
    [task] = trained_with
    assert FINAL_FOLD == -1
    assert (task.seed, task.init_seed) == (TRAIN_SEED, TRAIN_SEED * 1000 - 1)
    assert np.array_equal(task.train, np.arange(N))
    assert final.images == N and len(final.history) == 2 and final.choice == recipes.fixed(v)
