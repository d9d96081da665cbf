"""Repeated k-fold cross-validation of the selected variant: which folds to train, their seeds, and
training them with the variant's recipe, ready to be written as the train stage's folds.

Repeat r splits with seed `split.seed + r` (the split stage) and trains with the run seed
`train.seed + r`: shuffling and the `rand` prior draw from it, and fold k's initialisation from
`run seed * 1000 + k`, so a fold trains the same alone or with the others, and repeat 0 is a
single k-fold run with `train.seed`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ewmtcnn import InputError, paths
from ewmtcnn.data import folds
from ewmtcnn.evaluation import metrics
from ewmtcnn.io import checkpoint
from ewmtcnn.io.checkpoint import TrainedFold
from ewmtcnn.training import inputs, loop, recipes
from ewmtcnn.training.batched import Task
from ewmtcnn.training.inputs import CachedFeatures, Data
from ewmtcnn.training.variant import Variant


@dataclass(frozen=True)
class Plan:
    """The (repeat, fold) pairs to train, out of `repeats` x `folds`."""

    folds: int
    repeats: int
    pairs: tuple[tuple[int, int], ...]


def plan(p: Mapping[str, Any], only_repeat: int | None = None, only_fold: int | None = None) -> Plan:
    """Every fold of every repeat, or the one repeat and/or fold asked for (checked against the params)."""
    k, repeats = folds.count(p), folds.repeats(p)
    for name, value, limit in (("--repeat", only_repeat, repeats), ("--fold", only_fold, k)):
        if value is not None and not 0 <= value < limit:
            what = "split.repeats" if name == "--repeat" else "split.folds"
            raise InputError(f"{name} {value}: {what} is {limit}, so it is 0..{limit - 1}")
    pairs = tuple(
        (r, f)
        for r in range(repeats)
        for f in range(k)
        if (only_repeat is None or r == only_repeat) and (only_fold is None or f == only_fold)
    )
    return Plan(k, repeats, pairs)


@dataclass
class Trained:
    """One trained fold, and where it goes."""

    repeat: int
    fold: int
    result: TrainedFold

    def save(self) -> None:
        self.result.save(paths.fold_dir(self.repeat, self.fold))

    def summary(self) -> str:
        """One line for the log: the fold's held-out accuracy and KL, and the settings it trained with."""
        test, chosen = self.result.test, self.result.selection
        emotions = [c.removeprefix("pred_") for c in test.columns if c.startswith("pred_")]
        true, pred = test.filter(like="true_").to_numpy(), test.filter(like="pred_").to_numpy()
        acc = metrics.accuracy(test["label"].map(emotions.index).to_numpy(), pred)
        kl = metrics.distances(true, pred)["kl"].mean()
        return (
            f"repeat {self.repeat} fold {self.fold}: test acc {acc:.3f}, test KL {kl:.4f} "
            f"({len(test)} images; {chosen['recipe']}: {chosen['epochs']} epochs, "
            f"lr_head {chosen['lr_head']:g}, weight_decay {chosen['weight_decay']:g})"
        )


@dataclass(frozen=True)
class Fold:
    """One planned fold: its repeat and number, its training and held-out images (row indices)."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def planned_folds(plan: Plan, labels_images: list[str]) -> list[Fold]:
    """The planned folds' images, from the split stage's data/folds.csv (checked against the labels)."""
    assignment = folds.read(paths.FOLDS)
    split = {}
    for r in range(plan.repeats):
        rows = assignment[assignment["repeat"] == r]
        if rows["image"].tolist() != labels_images or set(rows["fold"]) != set(range(plan.folds)):
            raise InputError(
                f"{paths.FOLDS} does not hold repeat {r} of {plan.folds} folds over the images of {paths.LABELS}; "
                "rerun `dvc repro split`"
            )
        split[r] = rows["fold"].to_numpy()
    return [Fold(r, f, np.flatnonzero(split[r] != f), np.flatnonzero(split[r] == f)) for r, f in plan.pairs]


def tasks(v: Variant, data: Data, planned: list[Fold]) -> list[Task]:
    """Each fold's training set as the head trainer's task: its run seed (train.seed + repeat), its
    initialisation seed (run seed * 1000 + fold) and its prior (corr: from its own images)."""
    prior_of = partial(loop.initial_prior, v, data)
    out = []
    for fold in planned:
        seed = v.run.seed + fold.repeat
        out.append(Task(fold.train, seed, seed * 1000 + fold.fold, prior_of(fold.train, seed)))
    return out


def train(v: Variant, plan: Plan) -> Iterator[Trained]:
    """Train the planned folds with the variant's recipe; yields each as it is ready."""
    data = inputs.load(v)
    planned = planned_folds(plan, data.labels["image"].tolist())
    if isinstance(data.inputs, CachedFeatures):
        yield from _heads(v, data, planned)
    else:
        yield from _finetuned(v, data, planned)


def _heads(v: Variant, data: Data, planned: list[Fold]) -> Iterator[Trained]:
    """Every planned fold's head on the cached features, all at once."""
    own = tasks(v, data, planned)
    problem = recipes.Problem.of(data.inputs.features, data.targets, data.classes)
    selected = v.recipe == "selected"
    prior_of = partial(loop.initial_prior, v, data)
    choices = recipes.select(problem, v, own, prior_of) if selected else [recipes.fixed(v)] * len(own)
    fitted = recipes.fit(problem, v, own, choices, [fold.test for fold in planned])
    for fold, task, choice, result in zip(planned, own, choices, fitted, strict=True):
        tables = _tables(data, v, fold, (fold.test, result.held_out), (fold.train, result.in_place))
        yield Trained(
            fold.repeat, fold.fold, TrainedFold(result.history, *tables, result.state, task.prior, choice.record())
        )


#: Seeds the final model's initialisation as a fold does (run seed * 1000 + fold); never one of
#: the folds' 0..k-1, so the final model does not start from any fold's weights.
FINAL_FOLD = -1


@dataclass
class Final:
    """The variant trained on every image: its weights, initial prior, history and chosen settings."""

    state: dict
    prior: np.ndarray | None
    history: list[dict[str, float]]
    choice: dict[str, object]
    images: int


def final(v: Variant) -> Final:
    """The variant trained on every image with its recipe (`selected`: chosen on an inner split of all
    images); with every image in training, the corr priors come from all labels."""
    data = inputs.load(v)
    every = np.arange(len(data.labels))
    seed, init_seed = v.run.seed, v.run.seed * 1000 + FINAL_FOLD
    if not isinstance(data.inputs, CachedFeatures):
        model, prior = loop.network(v, data, every, seed=init_seed)
        history = list(loop.fit(model, data.inputs, data.targets, data.classes, every, v.run, desc="final"))
        state = {k: t.detach().cpu() for k, t in model.state_dict().items()}
        return Final(state, prior, history, recipes.fixed(v).record(), len(every))
    prior_of = partial(loop.initial_prior, v, data)
    task = Task(every, seed, init_seed, prior_of(every, seed))
    problem = recipes.Problem.of(data.inputs.features, data.targets, data.classes)
    choice = recipes.select(problem, v, [task], prior_of)[0] if v.recipe == "selected" else recipes.fixed(v)
    [fitted] = recipes.fit(problem, v, [task], [choice], [np.empty(0, dtype=np.int64)])
    history = fitted.history[["epoch", "train_loss", "train_acc", "train_kl"]].to_dict("records")
    return Final(fitted.state, task.prior, history, choice.record(), len(every))


def _finetuned(v: Variant, data: Data, planned: list[Fold]) -> Iterator[Trained]:
    """Each planned fold fine-tuned end to end, one after the other (the `fixed` recipe only)."""
    for fold in planned:
        run = dataclasses.replace(v.run, seed=v.run.seed + fold.repeat)
        model, prior = loop.network(dataclasses.replace(v, run=run), data, fold.train, run.seed * 1000 + fold.fold)
        desc = f"repeat {fold.repeat} fold {fold.fold}"
        result = loop.train_fold(model, data.inputs, data.targets, data.classes, fold.train, fold.test, run, desc=desc)
        tables = _tables(data, v, fold, (fold.test, result.test), (fold.train, result.train))
        state = {k: t.detach().cpu() for k, t in model.state_dict().items()}
        yield Trained(
            fold.repeat, fold.fold, TrainedFold(result.history, *tables, state, prior, recipes.fixed(v).record())
        )


def _tables(data: Data, v: Variant, fold: Fold, *parts: tuple[np.ndarray, np.ndarray]) -> list:
    """The prediction tables (test, then train in place) of one fold."""
    names = data.labels[v.label].to_numpy()
    return [
        checkpoint.prediction_table(
            data.labels["image"].iloc[idx], fold.repeat, fold.fold, names[idx], data.emotions, data.targets[idx], q
        )
        for idx, q in parts
    ]
