"""The `converged` recipe: each head fitted to convergence on standardised features, its weight decay
chosen by inner cross-validation.

- Standardise: a training set's features are centred and scaled by that set's own means and
  standard deviations, then projected on its first `train.pca` principal components (0: all); the
  images a head is tested on never shape them. Each inner-training part of the choice below is
  standardised and projected on its own, for the same reason: with its inner-validation images in
  the projection, the choice drifted to a stronger decay than the held-out optimum.
- Fit: full-batch L-BFGS-B (SciPy, float64, analytic gradient) on the mean loss
  (1 - lambda) CE + lambda KL, plus weight_decay / 2 times the squared norm of the fc weight and of
  a trained prior, so weight_decay means what it means to SGD; biases are not penalised. The seed
  head's dropout is off: the chosen L2 regularises instead.
- Choose: `select.folds` inner folds of the training set, stratified by class; on each inner-training
  part the weight decays of `select.weight_decay` are fitted from the strongest down, each starting
  from the previous solution, until `GRID_PATIENCE` decays in a row rise above the best (`past_the_best`);
  the lowest mean inner-validation KL wins (ties: the stronger decay). The choice keeps the mean inner-validation
  KL of every decay tried, its validation curve, for the evaluate stage to draw.
- Save: the standardisation and projection are folded into the fc layer, so the head is a plain
  `EmotionNet` on the raw features, and evaluate and predict read it as any other.
- Training sets are independent: they train side by side, one process per core.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import linalg, optimize
from sklearn.model_selection import StratifiedKFold

from ewmtcnn import InputError, lifetime
from ewmtcnn.io.choice import Choice
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.training import batched
from ewmtcnn.training.batched import Task
from ewmtcnn.training.loop import Trained, checked, weights
from ewmtcnn.training.recipes import Problem
from ewmtcnn.training.variant import Variant

MAX_ITERATIONS = 500  # L-BFGS iterations per fit; a fit that reaches it has not converged (the choice records it)
# L-BFGS stops when the largest gradient entry falls below this: the predictions then match scikit-learn's
# optimum to 1e-5 (tests/unit/test_converged.py), and on Emotion6 the held-out KL equals 1e-7's to 5 decimals.
TOLERANCE = 1e-6
HISTORY = 20  # L-BFGS's memory of past steps
# The choice stops going down the decay grid once this many decays in a row rise above the best: past its minimum the
# mean inner KL only rises (one instead of two chose the same decays in every training fold of the arms of tables A to
# E, and took a fifth less time on the trained priors, whose weakest decays are the slowest to fit).
GRID_PATIENCE = 1
# A mean inner KL within this of the lowest is no rise: where strong decays collapse a trained prior's head to the
# mean distribution, the curve is flat to about 1e-6 and may tick up by that much; past a real minimum it rises by
# more (on Emotion6 the default's by 4e-4 to 7e-3 one decay past its best, in each of the 15 training folds).
PLATEAU = 1e-4


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
          the n x d features here; computing only the `keep` largest saves another third).
        - Each axis's sign is fixed (its largest entry positive), so the projection is the same on
          any machine whose eigensolver returns the same axes.
        """
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        z = (x - mean) / scale
        d = len(mean)
        k = d if keep <= 0 else min(keep, d)
        _, vectors = linalg.eigh(z.T @ z, subset_by_index=[d - k, d - 1], driver="evr")
        axes = vectors[:, ::-1]
        axes = axes * np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
        return cls(mean, scale, axes)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.components


@dataclass
class Fit:
    """A head fitted in standardised coordinates: fc weight (k, c) and bias (c,), the prior (c, c) or None."""

    weight: np.ndarray
    bias: np.ndarray
    prior: np.ndarray | None
    iterations: int

    def hidden(self, z: np.ndarray, head: str) -> np.ndarray:
        """What the prior layer reads: fc's output, through the seed head's ReLU."""
        h = z @ self.weight + self.bias
        return np.maximum(h, 0.0) if head == "seed" and self.prior is not None else h

    def logits(self, z: np.ndarray, head: str) -> np.ndarray:
        h = self.hidden(z, head)
        return h if self.prior is None else h @ self.prior.T


def _start(k: int, c: int, task: Task) -> Fit:
    """nn.Linear's initialisation from the task's initialisation seed, and its initial prior."""
    torch.manual_seed(task.init_seed)
    fc = torch.nn.Linear(k, c)
    prior = None if task.prior is None else np.asarray(task.prior, dtype=np.float64)
    return Fit(fc.weight.detach().double().numpy().T.copy(), fc.bias.detach().double().numpy(), prior, 0)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def fit(z: np.ndarray, p: np.ndarray, y: np.ndarray, v: Variant, decay: float, start: Fit) -> Fit:
    """The head minimising the penalised loss on standardised features `z`, targets `p`, classes `y`, from `start`.

    - (1 - lambda) CE + lambda KL = cross-entropy against t = (1 - lambda) onehot(y) + lambda p, less a
      constant; its gradient with respect to the logits is (softmax - t) / n, taken back by hand
      through the prior and the seed head's ReLU (an analytic gradient: several times faster than
      autograd at these sizes).
    """
    n, k = z.shape
    c = p.shape[1]
    t = v.run.lam * p
    t[np.arange(n), y] += 1 - v.run.lam
    trained_prior = start.prior is not None and not v.freeze
    sizes = (k * c, c, c * c if trained_prior else 0)
    penalised = np.ones(sum(sizes))
    penalised[k * c : k * c + c] = 0.0  # biases are not penalised

    def unpack(theta: np.ndarray) -> Fit:
        weight, bias, prior = np.split(theta, np.cumsum(sizes)[:2])
        return Fit(weight.reshape(k, c), bias, prior.reshape(c, c) if trained_prior else start.prior, 0)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        current = unpack(theta)
        h = current.hidden(z, v.head)
        log_q = _log_softmax(h if current.prior is None else h @ current.prior.T)
        grad_logits = (np.exp(log_q) - t) / n
        grad_prior = np.empty(0)
        if current.prior is not None:
            if trained_prior:
                grad_prior = (grad_logits.T @ h).ravel()
            grad_logits = grad_logits @ current.prior
            if v.head == "seed":
                grad_logits = grad_logits * (h > 0)
        grad = np.concatenate([(z.T @ grad_logits).ravel(), grad_logits.sum(axis=0), grad_prior])
        value = -(t * log_q).sum() / n + decay / 2 * (penalised * theta) @ theta
        return float(value), grad + decay * penalised * theta

    theta = np.concatenate([start.weight.ravel(), start.bias, start.prior.ravel() if trained_prior else np.empty(0)])
    result = optimize.minimize(
        loss,
        theta,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": MAX_ITERATIONS, "gtol": TOLERANCE, "ftol": 0.0, "maxcor": HISTORY},
    )
    return dataclasses.replace(unpack(result.x), iterations=int(result.nit))


def _predict(fitted: Fit, z: np.ndarray, head: str) -> np.ndarray:
    return np.exp(_log_softmax(fitted.logits(z, head)))


def _part(problem: Problem, rows: np.ndarray, standardiser: Standardiser) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The images `rows` as a fit reads them: standardised features, targets and classes, in float64."""
    return (
        standardiser(_raw(problem, rows)),
        problem.targets[rows].numpy().astype(np.float64),
        problem.classes[rows].numpy(),
    )


def _raw(problem: Problem, rows: np.ndarray) -> np.ndarray:
    """The features of the images `rows` in float64 (the problem's last column, its ones, left out)."""
    return problem.features[rows, :-1].numpy().astype(np.float64)


def past_the_best(curve: np.ndarray) -> bool:
    """Whether the last `GRID_PATIENCE` decays of a validation curve all lie more than `PLATEAU` above its lowest KL.

    - A diverged fit (KL inf or NaN) lies above; a flat stretch, within `PLATEAU` of the lowest, never ends the search.
    """
    finite = np.where(np.isfinite(curve), curve, np.inf)
    best = int(np.argmin(finite))
    last = finite[best + 1 :][-GRID_PATIENCE:]
    return len(last) == GRID_PATIENCE and bool(np.all(last > finite[best] + PLATEAU))


def choose(problem: Problem, v: Variant, task: Task) -> Choice:
    """The weight decay whose heads, fitted on each inner-training part, best predict its inner validation.

    - The decays are tried from the strongest down, each fit starting from the last; the search stops once it is
      `past_the_best` (weaker decays take the most iterations).
    - Each inner-training part is standardised and projected on its own (`Standardiser.of` its rows): the
      inner validation images shape nothing they are scored on, as the outer test images shape nothing.
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
    inner_parts = []
    for inner, validation in parts:
        standardiser = Standardiser.of(_raw(problem, train[inner]), v.run.pca)
        z, p, y = _part(problem, train[inner], standardiser)
        inner_parts.append((z, p, y, standardiser(_raw(problem, train[validation])), train[validation]))
    current = [_start(z.shape[1], p.shape[1], task) for z, p, *_ in inner_parts]
    kl = np.full(len(decays), np.inf)
    for g, decay in enumerate(decays):
        current = [fit(z, p, y, v, decay, start) for (z, p, y, _, _), start in zip(inner_parts, current, strict=True)]
        kl[g] = np.mean(
            [
                problem.kl(rows, _predict(fitted, z_val, v.head)).mean()
                for (*_, z_val, rows), fitted in zip(inner_parts, current, strict=True)
            ]
        )
        if past_the_best(kl[: g + 1]):  # weaker decays only overfit more
            break
    if not np.isfinite(kl).any():
        raise InputError("every setting of select.weight_decay diverged")
    best = int(np.argmin(np.where(np.isfinite(kl), kl, np.inf)))  # first: the strongest of tied decays
    curve = tuple((float(decay), float(kl[t])) for t, decay in enumerate(decays[: g + 1]))
    return Choice("converged", 0, 0.0, decays[best], float(kl[best]), curve)


def _folded(fitted: Fit, standardiser: Standardiser, v: Variant, task: Task, width: int, outputs: int) -> EmotionNet:
    """The fitted head as an EmotionNet on raw features: standardisation and projection folded into fc."""
    a = standardiser.components / standardiser.scale[:, None] @ fitted.weight  # (d, c)
    b = fitted.bias - standardiser.mean @ a
    model = EmotionNet(width, outputs, v.head, task.prior, v.freeze)
    with torch.no_grad():
        model.fc.weight.copy_(torch.from_numpy(a.T))
        model.fc.bias.copy_(torch.from_numpy(b))
        if model.prior is not None and fitted.prior is not None:
            model.prior.weight.copy_(torch.from_numpy(fitted.prior))
    return model.eval()


def train(problem: Problem, v: Variant, task: Task, choice: Choice, held_out: np.ndarray) -> tuple[Trained, Choice]:
    """The head fitted on the whole training set with the chosen weight decay, and its choice with the iterations.

    - Its predictions come from the saved float32 network, exactly as evaluate and predict would make them.
    """
    standardiser = Standardiser.of(_raw(problem, task.train), v.run.pca)
    z, p, y = _part(problem, task.train, standardiser)
    fitted = fit(z, p, y, v, choice.weight_decay, _start(z.shape[1], p.shape[1], task))
    model = _folded(fitted, standardiser, v, task, problem.features.shape[1] - 1, p.shape[1])
    what = f"training set of {len(task.train)} images"
    with torch.no_grad():
        q_test, q_train = (
            checked(
                torch.softmax(model(problem.features[rows, :-1]), 1).double().numpy(),
                what,
                v.run,
            )
            for rows in (held_out, task.train)
        )
    done = dataclasses.replace(choice, epochs=fitted.iterations)
    history = pd.DataFrame(
        [_figures(problem, task.train, q_train, "train", v) | _figures(problem, held_out, q_test, "test", v)]
    )
    history.insert(0, "epoch", fitted.iterations)
    return Trained(history, weights(model), q_test, q_train), done


def _figures(problem: Problem, rows: np.ndarray, q: np.ndarray, part: str, v: Variant) -> dict[str, float]:
    """The loss, accuracy and KL of predictions `q` of the images `rows`, as the history's `<part>_*` columns."""
    if not len(rows):
        return {f"{part}_loss": float("nan"), f"{part}_acc": float("nan"), f"{part}_kl": float("nan")}
    y = problem.classes[rows].numpy()
    kl = problem.kl(rows, q)
    ce = -np.log(q[np.arange(len(y)), y])
    return {
        f"{part}_loss": float(np.mean((1 - v.run.lam) * ce + v.run.lam * kl)),
        f"{part}_acc": float(np.mean(q.argmax(axis=1) == y)),
        f"{part}_kl": float(np.mean(kl)),
    }


#: What a worker process trains from: the problem and the variant, sent once when it starts.
_shared: tuple[Problem, Variant] | None = None


def _share(problem: Problem, v: Variant, parent: int) -> None:
    """A worker's start: it ends with the stage that started it, and keeps what every task trains from."""
    global _shared
    lifetime.die_with_parent(parent)
    _shared = (problem, v)


def _trained(task: Task, held_out: np.ndarray, shared: tuple[Problem, Variant] | None = None) -> tuple[Trained, Choice]:
    """One training set's head: its weight decay chosen on its own images, then fitted on all of them.

    - In a worker, the problem and variant are those `_share` kept.
    """
    problem, v = shared or _shared or (None, None)
    assert problem is not None and v is not None, "a worker trains only after _share"
    with batched.one_thread():
        return train(problem, v, task, choose(problem, v, task), held_out)


def trained(
    problem: Problem, v: Variant, tasks: Sequence[Task], held_out: Sequence[np.ndarray]
) -> list[tuple[Trained, Choice]]:
    """Every training set's head, in the tasks' order, trained side by side on up to one process per core.

    - Each training set is independent and single-threaded: the same bits from any number of processes.
    """
    workers = min(len(tasks), os.cpu_count() or 1)
    if workers == 1:
        return [_trained(task, rows, (problem, v)) for task, rows in zip(tasks, held_out, strict=True)]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads inherited mid-state
    with futures.ProcessPoolExecutor(workers, context, _share, (problem, v, os.getpid())) as pool:
        return list(pool.map(_trained, tasks, held_out))
