"""The two training recipes on cached features, for many training sets at once.

- `fixed`: every head trains with the paper's hyperparameters as given (`train.epochs`,
  `train.lr_head`, `train.weight_decay`).
- `selected`: a stratified inner validation split of each training set (an outer training fold)
  chooses the epochs (early stopping on the inner-validation KL, up to `select.epochs`) and the
  head's learning rate and weight decay from the `select.*` grids.
- Only the training set's images are read by any choice: the outer test fold never is.
- Either way the heads of all training sets then train together with their choice (`batched.Bank`),
  and each predicts its held-out images with its weights at its last epoch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedShuffleSplit

from ewmtcnn import InputError
from ewmtcnn.io.choice import Choice
from ewmtcnn.training import batched
from ewmtcnn.training.batched import Bank, Task
from ewmtcnn.training.loop import Trained, checked
from ewmtcnn.training.variant import Variant

#: The prior a training set starts from, given its images' indices and its run's seed (None: no prior layer).
PriorOf = Callable[[np.ndarray, int], np.ndarray | None]


@dataclass(frozen=True)
class Problem:
    """What the heads learn from: features (N, d + 1, `batched.with_ones`), targets (N, c), classes (N,)."""

    features: torch.Tensor
    targets: torch.Tensor
    classes: torch.Tensor

    @classmethod
    def of(cls, features: np.ndarray, targets: np.ndarray, classes: np.ndarray) -> Problem:
        """The problem of these arrays, as float32 and int64 tensors."""
        return cls(
            batched.with_ones(torch.from_numpy(np.array(features, dtype=np.float32))),
            torch.from_numpy(np.array(targets, dtype=np.float32)),
            torch.from_numpy(np.array(classes, dtype=np.int64)),
        )

    def kl(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """KL(p || q) of the images `rows` for predictions q (..., n, c), summed over emotions (0 ln 0 = 0)."""
        p = self.targets.numpy()[rows].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
        return terms.sum(axis=-1)


def fixed(v: Variant) -> Choice:
    """The `fixed` recipe's choice: the paper's hyperparameters, as `train.*` gives them."""
    return Choice("fixed", v.run.epochs, v.run.lr_head, v.run.weight_decay)


def inner_split(classes: np.ndarray, train: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A training set's images split into inner training and inner validation, stratified by class."""
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed)
    try:
        inner, validation = next(splitter.split(np.zeros(len(train)), classes[train]))
    except ValueError as e:  # e.g. a class with a single image cannot be split
        raise InputError(f"cannot split a training set of {len(train)} images with select.share {share}: {e}") from None
    return np.sort(train[inner]), np.sort(train[validation])


def select(problem: Problem, v: Variant, tasks: Sequence[Task], prior_of: PriorOf) -> list[Choice]:
    """The `selected` recipe's choice for each training set, from its own inner split alone.

    - Every (learning rate, weight decay) of the grid trains on the inner training images, for
      every training set at once.
    - After every epoch each head's mean KL on the inner validation images is measured; the
      setting and epoch with the lowest win (ties: the earliest epoch, then the first in grid order).
    - A training set stops when none of its heads has improved for `select.patience` epochs, or
      after `select.epochs`.
    """
    grid = list(itertools.product(v.select.lr_head, v.select.weight_decay))
    # The inner split is drawn from the task's initialisation seed (scikit-learn wants it in 0..2**32 - 1).
    splits = [inner_split(problem.classes.numpy(), t.train, v.select.share, t.init_seed % 2**32) for t in tasks]
    inner = [
        Task(train, t.seed, t.init_seed, prior_of(train, t.seed)) for t, (train, _) in zip(tasks, splits, strict=True)
    ]
    best = np.full((len(tasks), len(grid)), np.inf)
    best_epoch = np.zeros((len(tasks), len(grid)), dtype=int)

    def watch(epoch: int, bank: Bank, _: dict[str, np.ndarray]) -> list[bool]:
        for t, (_, validation) in enumerate(splits):
            if epoch - best_epoch[t].max() > v.select.patience:
                continue  # this task has stopped
            kl = problem.kl(validation, bank.predict(problem.features, t, validation)).mean(axis=1)  # (G,)
            kl = np.where(np.isfinite(kl), kl, np.inf)  # a diverged head is never chosen
            better = kl < best[t]
            best[t, better], best_epoch[t, better] = kl[better], epoch
        # Early stopping: a task trains on while one of its heads improved within `patience` epochs.
        return [epoch - best_epoch[t].max() < v.select.patience for t in range(len(tasks))]

    lr = np.array([[lr for lr, _ in grid]] * len(tasks))
    decay = np.array([[wd for _, wd in grid]] * len(tasks))
    _optimise(problem, v, inner, len(grid), lr, decay, v.select.epochs, watch, figures=False)
    choices = []
    for t in range(len(tasks)):
        g = int(np.argmin(best[t]))
        if not np.isfinite(best[t, g]):
            raise InputError(f"every setting of select.lr_head x select.weight_decay diverged on training set {t}")
        choices.append(Choice("selected", int(best_epoch[t, g]), grid[g][0], grid[g][1], float(best[t, g])))
    return choices


def train_chosen(
    problem: Problem, v: Variant, tasks: Sequence[Task], choices: Sequence[Choice], held_out: Sequence[np.ndarray]
) -> list[Trained]:
    """Train each training set's head with its choice, for its chosen epochs; keep its weights and predictions.

    - `held_out[t]` are the images head t predicts.
    - They are also measured after every epoch for the learning curve, which no choice reads.
    """
    rows: list[list[dict[str, float]]] = [[] for _ in tasks]
    kept: dict[int, tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]] = {}
    y_all = problem.classes.numpy()

    def watch(epoch: int, bank: Bank, seen: dict[str, np.ndarray]) -> list[bool]:
        for t, choice in enumerate(choices):
            if epoch > choice.epochs:
                continue  # done
            rows_t, y = held_out[t], y_all[held_out[t]]
            q = bank.predict(problem.features, t, rows_t)[0]
            kl = problem.kl(rows_t, q)
            ce = -np.log(q[np.arange(len(y)), y]) if len(y) else np.empty(0)
            rows[t].append(
                {
                    "epoch": epoch,
                    "train_loss": seen["loss"][t, 0],
                    "train_acc": seen["correct"][t, 0],
                    "train_kl": seen["kl"][t, 0],
                    "test_loss": _mean((1 - v.run.lam) * ce + v.run.lam * kl),
                    "test_acc": _mean(q.argmax(axis=1) == y),
                    "test_kl": _mean(kl),
                }
            )
            if epoch == choice.epochs:
                in_place = bank.predict(problem.features, t, tasks[t].train)[0]
                what = f"training set {t}"
                kept[t] = (bank.state(t, 0), checked(q, what, v.run), checked(in_place, what, v.run))
        return [epoch < choice.epochs for choice in choices]

    lr = np.array([[c.lr_head] for c in choices])
    decay = np.array([[c.weight_decay] for c in choices])
    _optimise(problem, v, tasks, 1, lr, decay, max(c.epochs for c in choices), watch)
    return [Trained(pd.DataFrame(rows[t]), *kept[t]) for t in range(len(tasks))]


def _optimise(
    problem: Problem,
    v: Variant,
    tasks: Sequence[Task],
    per_task: int,
    lr: np.ndarray,
    decay: np.ndarray,
    epochs: int,
    watch: batched.EpochHook,
    figures: bool = True,
) -> None:
    bank = Bank(problem.features.shape[1] - 1, problem.targets.shape[1], tasks, per_task, v.head, v.freeze)
    optimisation = batched.Optimisation(v.run.momentum, v.run.batch_size, v.run.lam)
    inputs = (problem.features, problem.targets, problem.classes)
    batched.optimise(bank, *inputs, tasks, lr, decay, epochs, optimisation, watch, figures)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
