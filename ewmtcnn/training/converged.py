"""The `converged` recipe: each head fitted to convergence on standardised features, its weight decay
chosen by inner cross-validation.

- Standardise: a training set's features are centred and scaled by that set's own means and
  standard deviations, then projected on its first `train.pca` principal components (0: all); the
  images a head is tested on never shape them. The inner folds that choose the weight decay reuse
  their training set's projection: it reads features only, never a label, and one eigendecomposition
  per training set instead of one per inner fold is most of the recipe's time saved.
- Fit: full-batch L-BFGS (strong Wolfe line search, float64) on the mean loss
  (1 - lambda) CE + lambda KL, plus weight_decay / 2 times the squared norm of the fc weight and of
  a trained prior, so weight_decay means what it means to SGD; biases are not penalised. The seed
  head's dropout is off: the chosen L2 regularises instead.
- Choose: `select.folds` inner folds of the training set, stratified by class; on each inner-training
  part every weight decay of `select.weight_decay` is fitted, from the strongest down, each starting
  from the previous solution; the lowest mean inner-validation KL wins (ties: the stronger decay).
- Save: the standardisation and projection are folded into the fc layer, so the head is a plain
  `EmotionNet` on the raw features, and evaluate and predict read it as any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold

from ewmtcnn import InputError
from ewmtcnn.io.choice import Choice
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.training import batched
from ewmtcnn.training.batched import Task
from ewmtcnn.training.loop import Trained, checked, weights
from ewmtcnn.training.variant import Variant

MAX_ITERATIONS = 500  # L-BFGS iterations per fit; a fit that reaches it has not converged (the choice records it)
TOLERANCE = 1e-7  # L-BFGS stops when the largest gradient entry falls below this
HISTORY = 20  # L-BFGS's memory of past steps


@dataclass(frozen=True)
class Standardiser:
    """x -> ((x - mean) / scale) @ components: a training set's own standardisation and projection."""

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,) the standard deviation; 1 for a constant feature
    components: np.ndarray  # (d, k) orthonormal columns, the first k principal axes

    @classmethod
    def of(cls, x: np.ndarray, keep: int) -> Standardiser:
        """Fitted on the rows `x` (float64); `keep` components (0 or more than there are: all).

        - The axes are the eigenvectors of the standardised features' covariance, largest eigenvalue
          first (an eigendecomposition of the d x d covariance is several times faster than an SVD of
          the n x d features here).
        - Each axis's sign is fixed (its largest entry positive), so the projection is the same on
          any machine whose eigensolver returns the same axes.
        """
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        z = (x - mean) / scale
        _, vectors = np.linalg.eigh(z.T @ z)
        k = len(mean) if keep <= 0 else min(keep, len(mean))
        axes = vectors[:, ::-1][:, :k]
        axes = axes * np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
        return cls(mean, scale, axes)

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x - self.mean) / self.scale) @ self.components)


@dataclass
class Fit:
    """A head fitted in standardised coordinates: fc weight (k, c) and bias (c,), the prior (c, c) or None."""

    weight: torch.Tensor
    bias: torch.Tensor
    prior: torch.Tensor | None
    iterations: int

    def logits(self, z: torch.Tensor, head: str) -> torch.Tensor:
        h = z @ self.weight + self.bias
        if self.prior is None:
            return h
        if head == "seed":
            h = torch.relu(h)
        return h @ self.prior.T


def _start(k: int, c: int, task: Task) -> Fit:
    """nn.Linear's initialisation from the task's initialisation seed, and its initial prior."""
    torch.manual_seed(task.init_seed)
    fc = torch.nn.Linear(k, c)
    prior = None if task.prior is None else torch.from_numpy(np.asarray(task.prior, dtype=np.float64))
    return Fit(fc.weight.detach().double().T.clone(), fc.bias.detach().double().clone(), prior, 0)


def fit(z: torch.Tensor, p: torch.Tensor, y: torch.Tensor, v: Variant, decay: float, start: Fit) -> Fit:
    """The head minimising the penalised loss on standardised features `z`, targets `p`, classes `y`, from `start`."""
    weight = start.weight.clone(memory_format=torch.contiguous_format).requires_grad_(True)
    bias = start.bias.clone().requires_grad_(True)
    trained_prior = start.prior is not None and not v.freeze
    prior = None if start.prior is None else start.prior.clone().requires_grad_(trained_prior)
    params = [weight, bias, *([prior] if trained_prior else [])]
    optimiser = torch.optim.LBFGS(
        params,
        max_iter=MAX_ITERATIONS,
        tolerance_grad=TOLERANCE,
        tolerance_change=0.0,
        history_size=HISTORY,
        line_search_fn="strong_wolfe",
    )
    current = Fit(weight, bias, prior, 0)
    log_p = torch.where(p > 0, torch.log(p), 0.0)

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        log_q = torch.log_softmax(current.logits(z, v.head), dim=1)
        kl = (p * (log_p - log_q)).sum(dim=1).mean()
        ce = -log_q[torch.arange(len(y)), y].mean()
        penalty = (weight**2).sum() + ((prior**2).sum() if trained_prior else 0.0)
        value = (1 - v.run.lam) * ce + v.run.lam * kl + decay / 2 * penalty
        value.backward()
        return value

    optimiser.step(loss)
    iterations = int(optimiser.state[weight]["n_iter"])
    return Fit(weight.detach(), bias.detach(), None if prior is None else prior.detach(), iterations)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0).sum(axis=1)


def _predict(fitted: Fit, z: torch.Tensor, head: str) -> np.ndarray:
    return torch.softmax(fitted.logits(z, head), dim=1).numpy()


@dataclass(frozen=True)
class Problem:
    """Every image's features (N, d) float64, target distributions (N, c) and classes (N,)."""

    features: np.ndarray
    targets: np.ndarray
    classes: np.ndarray

    def part(self, rows: np.ndarray, standardiser: Standardiser) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            standardiser(self.features[rows]),
            torch.from_numpy(self.targets[rows]),
            torch.from_numpy(self.classes[rows].astype(np.int64)),
        )


def choose(problem: Problem, v: Variant, task: Task, standardiser: Standardiser) -> Choice:
    """The weight decay whose heads, fitted on each inner-training part, best predict its inner validation.

    - `standardiser` is the training set's own (`Standardiser.of` its features).
    """
    decays = sorted(v.select.weight_decay, reverse=True)  # strongest first: each fit starts from the last
    splitter = StratifiedKFold(n_splits=v.select.folds, shuffle=True, random_state=task.init_seed % 2**32)
    train = task.train
    try:
        parts = list(splitter.split(np.zeros(len(train)), problem.classes[train]))
    except ValueError as e:  # a class with fewer images than inner folds
        raise InputError(
            f"cannot split a training set of {len(train)} images into select.folds inner folds: {e}"
        ) from None
    kl = np.zeros(len(decays))
    for inner, validation in parts:
        z, p, y = problem.part(train[inner], standardiser)
        z_val = standardiser(problem.features[train[validation]])
        current = _start(z.shape[1], p.shape[1], task)
        for g, decay in enumerate(decays):
            current = fit(z, p, y, v, decay, current)
            kl[g] += _kl(problem.targets[train[validation]], _predict(current, z_val, v.head)).mean() / len(parts)
    if not np.isfinite(kl).any():
        raise InputError("every setting of select.weight_decay diverged")
    best = int(np.argmin(np.where(np.isfinite(kl), kl, np.inf)))  # first: the strongest of tied decays
    return Choice("converged", 0, 0.0, decays[best], float(kl[best]))


def _folded(fitted: Fit, standardiser: Standardiser, v: Variant, task: Task, width: int, outputs: int) -> EmotionNet:
    """The fitted head as an EmotionNet on raw features: standardisation and projection folded into fc."""
    a = standardiser.components / standardiser.scale[:, None] @ fitted.weight.numpy()  # (d, c)
    b = fitted.bias.numpy() - standardiser.mean @ a
    model = EmotionNet(width, outputs, v.head, task.prior, v.freeze)
    with torch.no_grad():
        model.fc.weight.copy_(torch.from_numpy(a.T))
        model.fc.bias.copy_(torch.from_numpy(b))
        if model.prior is not None and fitted.prior is not None:
            model.prior.weight.copy_(fitted.prior)
    return model.eval()


def train(
    problem: Problem, v: Variant, task: Task, standardiser: Standardiser, choice: Choice, held_out: np.ndarray
) -> tuple[Trained, Choice]:
    """The head fitted on the whole training set with the chosen weight decay, and its choice with the iterations.

    - Its predictions come from the saved float32 network, exactly as evaluate and predict would make them.
    """
    z, p, y = problem.part(task.train, standardiser)
    fitted = fit(z, p, y, v, choice.weight_decay, _start(z.shape[1], p.shape[1], task))
    model = _folded(fitted, standardiser, v, task, problem.features.shape[1], p.shape[1])
    what = f"training set of {len(task.train)} images"
    with torch.no_grad():
        q_test, q_train = (
            checked(
                torch.softmax(model(torch.from_numpy(problem.features[rows].astype(np.float32))), 1).double().numpy(),
                what,
                v.run,
            )
            for rows in (held_out, task.train)
        )
    done = Choice(choice.recipe, fitted.iterations, choice.lr_head, choice.weight_decay, choice.inner_kl)
    history = pd.DataFrame(
        [_figures(problem, task.train, q_train, "train", v) | _figures(problem, held_out, q_test, "test", v)]
    )
    history.insert(0, "epoch", fitted.iterations)
    return Trained(history, weights(model), q_test, q_train), done


def _figures(problem: Problem, rows: np.ndarray, q: np.ndarray, part: str, v: Variant) -> dict[str, float]:
    """The loss, accuracy and KL of predictions `q` of the images `rows`, as the history's `<part>_*` columns."""
    if not len(rows):
        return {f"{part}_loss": float("nan"), f"{part}_acc": float("nan"), f"{part}_kl": float("nan")}
    y = problem.classes[rows]
    kl = _kl(problem.targets[rows], q)
    ce = -np.log(q[np.arange(len(y)), y])
    return {
        f"{part}_loss": float(np.mean((1 - v.run.lam) * ce + v.run.lam * kl)),
        f"{part}_acc": float(np.mean(q.argmax(axis=1) == y)),
        f"{part}_kl": float(np.mean(kl)),
    }


def trained(
    problem: Problem, v: Variant, tasks: Sequence[Task], held_out: Sequence[np.ndarray]
) -> list[tuple[Trained, Choice]]:
    """Every training set's head: its weight decay chosen on its own images, then fitted on all of them."""
    out = []
    with batched._one_thread():
        for task, rows in zip(tasks, held_out, strict=True):
            standardiser = Standardiser.of(problem.features[task.train], v.run.pca)
            out.append(train(problem, v, task, standardiser, choose(problem, v, task, standardiser), rows))
    return out
