"""The `converged` recipe: standardisation per training set, L-BFGS fits to the optimum, weight decay
chosen by inner cross-validation, and the fit folded into a plain network on the raw features.

- The optimum is checked against scikit-learn's multinomial logistic regression, an independent
  solver of the same problem (one-hot targets, no prior, lambda 1 or 0).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import yaml
from scipy.stats import entropy
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ewmtcnn.config.sections import Params
from ewmtcnn.model import wheel
from ewmtcnn.training import converged
from ewmtcnn.training.batched import Task
from ewmtcnn.training.converged import Standardiser
from ewmtcnn.training.recipes import Problem
from ewmtcnn.training.variant import Variant
from support import REPO

N, D, C = 120, 10, 6


def variant(init: str = "none", freeze: bool = True, head: str = "direct", **train: object) -> Variant:
    """The repository's params with the converged recipe and these prior, head and `train.*` values."""
    p = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    p["prior"].update(init=init, freeze=freeze)
    p["model"]["head"] = head
    p["train"].update(recipe="converged", **train)
    p["select"].update(folds=3, weight_decay=[0.3, 0.03, 0.003])
    params = Params.parse(p)
    return Variant.of(
        params.data.label, params.data.neutral, params.prior, params.model, params.features, params.train, params.select
    )


@pytest.fixture(scope="module")
def problem() -> Problem:
    """Features on different scales with a class signal, and soft targets around each class."""
    rng = np.random.default_rng(1)
    classes = np.arange(N) % C
    x = rng.normal(size=(N, D)) * np.linspace(0.1, 50, D) + 7
    x[np.arange(N), classes] += 40
    targets = rng.dirichlet(np.ones(C), size=N) * 0.5
    targets[np.arange(N), classes] += 0.5
    return Problem.of(x, targets, classes)


def raw(problem: Problem) -> np.ndarray:
    """The problem's features as the standardiser reads them (float64, without the ones column)."""
    return problem.features[:, :-1].numpy().astype(np.float64)


def task(train: np.ndarray, prior: np.ndarray | None = None) -> Task:
    return Task(train, 0, 11, prior)


def test_the_standardiser_is_pca_of_the_training_rows_standardised(problem: Problem) -> None:
    rows, x = np.arange(80), raw(problem)
    s = Standardiser.of(x[rows], 4)
    z = s(x[rows])
    scaled = (x[rows] - x[rows].mean(0)) / x[rows].std(0)
    reference = PCA(n_components=4, svd_solver="full").fit_transform(scaled)
    assert np.allclose(np.abs(z), np.abs(reference), atol=1e-9)
    assert np.allclose(s.components.T @ s.components, np.eye(4), atol=1e-12)
    # held-out rows are transformed with the training rows' statistics, not their own
    other = Standardiser.of(x[rows], 4)
    assert np.array_equal(s(x[90:]), other(x[90:]))
    assert Standardiser.of(x[rows], 0).components.shape == (D, D)


@pytest.mark.parametrize("lam", [1.0, 0.0])
def test_the_fit_reaches_scikit_learns_logistic_regression_optimum(problem: Problem, lam: float) -> None:
    """One-hot targets: KL and CE are the same loss, mean CE + decay / 2 |W|^2 is sklearn's with C = 1 / (n decay)."""
    classes = problem.classes.numpy()
    onehot = np.eye(C)[classes]
    v = variant(**{"lambda": lam, "pca": 0})
    decay = 0.01
    z = Standardiser.of(raw(problem), 0)(raw(problem))
    start = converged._start(D, C, task(np.arange(N)))
    fitted = converged.fit(z, onehot, classes, v, decay, start)
    ours = torch.softmax(torch.from_numpy(fitted.logits(z, "direct")), 1).numpy()
    sklearn = LogisticRegression(C=1 / (N * decay), tol=1e-12, max_iter=10_000).fit(z, classes)
    assert np.abs(ours - sklearn.predict_proba(z)).max() < 1e-5
    assert 0 < fitted.iterations < converged.MAX_ITERATIONS


@pytest.mark.parametrize(("init", "freeze", "head"), [("original", True, "direct"), ("eye", False, "seed")])
def test_the_saved_network_predicts_what_the_fit_predicts(problem: Problem, init: str, freeze: bool, head: str) -> None:
    """The standardisation and projection folded into fc: the float32 network on raw features agrees."""
    v = variant(init, freeze, head, pca=5)
    prior = wheel.prior_matrix(init, sigma=v.sigma, probabilities=None, neutral=False, seed=0)
    train = np.arange(90)
    x = raw(problem)
    s = Standardiser.of(x[train], 5)
    chosen = converged.choose(problem, v, task(train, prior))
    trained, choice = converged.train(problem, v, task(train, prior), chosen, np.arange(90, N))
    z = s(x[train])
    p, y = problem.targets[train].numpy().astype(np.float64), problem.classes[train].numpy()
    fitted = converged.fit(z, p, y, v, choice.weight_decay, converged._start(5, C, task(train, prior)))
    expected = torch.softmax(torch.from_numpy(fitted.logits(s(x[90:]), head)), 1).numpy()
    assert np.abs(trained.held_out - expected).max() < 1e-5
    kept = trained.state["prior.weight"].double().numpy()
    assert np.allclose(kept, prior, atol=1e-7) == freeze  # frozen: the wheel as given; trained: moved
    assert choice.epochs == fitted.iterations and choice.weight_decay in v.select.weight_decay


def test_the_choice_reads_the_training_images_only(problem: Problem) -> None:
    v = variant()
    train, held_out = np.arange(90), np.arange(90, N)
    first = converged.choose(problem, v, task(train))
    scrambled = dataclasses.replace(problem, features=problem.features.clone(), targets=problem.targets.clone())
    scrambled.features[held_out, :-1] = torch.from_numpy(
        np.random.default_rng(5).normal(size=(len(held_out), D)) * 1e3
    ).float()
    scrambled.targets[held_out] = torch.roll(scrambled.targets[held_out], 1, dims=1)
    assert converged.choose(scrambled, v, task(train)) == first
    assert first.recipe == "converged" and first.weight_decay in v.select.weight_decay
    assert first.inner_kl is not None and first.inner_kl > 0


def test_a_training_set_trains_the_same_alone_or_beside_others(problem: Problem) -> None:
    v = variant("original")
    prior = wheel.prior_matrix("original", sigma=v.sigma, probabilities=None, neutral=False, seed=0)
    tasks = [task(np.arange(0, 90), prior), task(np.arange(30, N), prior)]
    held = [np.arange(90, N), np.arange(30)]
    together = converged.trained(problem, v, tasks, held)
    [alone] = converged.trained(problem, v, tasks[1:], held[1:])
    assert alone[1] == together[1][1]
    assert all(torch.equal(alone[0].state[k], together[1][0].state[k]) for k in alone[0].state)
    assert np.array_equal(alone[0].held_out, together[1][0].held_out)


def test_the_choice_records_the_mean_inner_kl_of_every_decay_it_tried(problem: Problem) -> None:
    """The validation curve the evaluate stage draws: the tried decays from the strongest, each with its KL."""
    grid = [1e-5, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0]
    v = variant()
    v = dataclasses.replace(v, select=dataclasses.replace(v.select, weight_decay=grid))
    train = np.arange(90)
    choice = converged.choose(problem, v, task(train))
    assert choice.validation_curve is not None
    decays, kl = zip(*choice.validation_curve, strict=True)
    assert list(decays) == sorted(grid, reverse=True)[: len(decays)]
    best = int(np.argmin(kl))
    assert (choice.weight_decay, choice.inner_kl) == (decays[best], kl[best])
    assert len(decays) == best + 1 + converged.GRID_PATIENCE < len(grid)  # stopped past the lowest, before the end
    # The strongest decay's point, recomputed: a fit from the start on each inner-training part, its
    # validation images' KL by SciPy, the mean over the inner folds.
    splitter = StratifiedKFold(n_splits=v.select.folds, shuffle=True, random_state=task(train).init_seed % 2**32)
    per_fold = []
    for inner, validation in splitter.split(np.zeros(len(train)), problem.classes[train]):
        s = Standardiser.of(raw(problem)[train[inner]], v.run.pca)
        p, y = problem.targets[train[inner]].numpy().astype(np.float64), problem.classes[train[inner]].numpy()
        fitted = converged.fit(s(raw(problem)[train[inner]]), p, y, v, grid[-1], converged._start(D, C, task(train)))
        q = torch.softmax(torch.from_numpy(fitted.logits(s(raw(problem)[train[validation]]), "direct")), 1).numpy()
        per_fold.append(np.mean(entropy(problem.targets[train[validation]].numpy().astype(np.float64), q, axis=1)))
    assert kl[0] == pytest.approx(np.mean(per_fold), rel=1e-7)  # softmax here, exp of log-softmax there


@pytest.mark.parametrize(
    ("curve", "past"),
    [
        ([0.50, 0.40, 0.41], True),  # a decay above the lowest
        ([0.50, 0.40], False),  # none yet
        ([0.50, 0.40, 0.41, 0.39], False),  # a new lowest
        ([0.50, 0.40, float("inf")], True),  # a diverged fit lies above
        ([0.50, 0.40, float("nan")], True),
        # A head collapsed to the mean distribution: flat to 1e-7, ticking up, then a real minimum.
        ([0.6654004, 0.6654006, 0.6654005, 0.6654007], False),
        ([0.6654004, 0.6654006, 0.6654005, 0.6654007, 0.42, 0.43], True),
    ],
)
def test_the_search_goes_on_over_a_flat_curve_and_stops_past_a_real_minimum(curve: list[float], past: bool) -> None:
    assert converged.GRID_PATIENCE == 1
    assert converged.past_the_best(np.array(curve)) is past
