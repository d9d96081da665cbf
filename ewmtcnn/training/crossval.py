"""Repeated k-fold cross-validation of the selected variant, and the final model on every image.

- Which folds to train, their seeds, and training them with the variant's recipe.
- Repeat r splits with seed `split.seed + r` (the split stage) and trains with the run seed
  `train.seed + r`: shuffling and the `rand` prior draw from it.
- Fold k's initialisation draws from `run seed * 1000 + k`, so a fold trains the same alone or
  with the others; repeat 0 is a single k-fold run with `train.seed`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from ewmtcnn import InputError, paths
from ewmtcnn.data import folds
from ewmtcnn.evaluation import metrics, predictions
from ewmtcnn.io.checkpoint import FinalModel, TrainedFold
from ewmtcnn.io.choice import Choice
from ewmtcnn.training import converged, inputs, loop, recipes
from ewmtcnn.training.batched import Task
from ewmtcnn.training.inputs import CachedFeatures, Data
from ewmtcnn.training.variant import Variant


@dataclass(frozen=True)
class Plan:
    """The (repeat, fold) pairs to train, out of `repeats` x `folds`."""

    folds: int
    repeats: int
    pairs: tuple[tuple[int, int], ...]


def plan(repeats: int, k: int, only_repeat: int | None = None, only_fold: int | None = None) -> Plan:
    """Every fold of `repeats` x `k` (`split.repeats`, `split.folds`), or the one repeat and/or fold asked for."""
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


def summary(trained: TrainedFold) -> str:
    """One line for the log: the fold's held-out accuracy and KL, and the hyperparameters it trained with."""
    test = trained.test
    pred = predictions.pred(test)
    acc = metrics.accuracy(predictions.classes(test), pred)
    kl = metrics.distances(predictions.true(test), pred)["kl"].mean()
    return (
        f"repeat {trained.repeat} fold {trained.fold}: test acc {acc:.3f}, test KL {kl:.4f} "
        f"({len(test)} images; {how(trained.choice)})"
    )


def how(chosen: Choice) -> str:
    """How a head trained, in words: its recipe and the hyperparameters it trained with."""
    steps = (
        f"L-BFGS, {chosen.epochs} iterations"
        if chosen.recipe == "converged"
        else f"{chosen.epochs} epochs, lr_head {chosen.lr_head:g}"
    )
    return f"{chosen.recipe}: {steps}, weight_decay {chosen.weight_decay:g}"


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
    """Each fold's training set as the head trainer's task.

    - Its run seed is train.seed + repeat, its initialisation seed run seed * 1000 + fold.
    - Its initial prior (`corr`: from its own images' labels).
    """
    prior_of = partial(loop.initial_prior, v, data)
    out = []
    for fold in planned:
        seed = v.run.seed + fold.repeat
        out.append(Task(fold.train, seed, seed * 1000 + fold.fold, prior_of(fold.train, seed)))
    return out


def trained_folds(v: Variant, plan: Plan) -> Iterator[TrainedFold]:
    """The planned folds trained with the variant's recipe, each as it is ready."""
    data = inputs.load(v)
    planned = planned_folds(plan, data.labels["image"].tolist())
    if isinstance(data.inputs, CachedFeatures):
        yield from _heads(v, data, planned)
    else:
        yield from _finetuned(v, data, planned)


def _heads(v: Variant, data: Data, planned: list[Fold]) -> Iterator[TrainedFold]:
    """Every planned fold's head on the cached features, all at once."""
    own = tasks(v, data, planned)
    problem = recipes.Problem.of(data.inputs.features, data.targets, data.classes)
    if v.run.recipe == "converged":
        fitted = converged.trained(problem, v, own, [fold.test for fold in planned])
        for fold, task, (trained, choice) in zip(planned, own, fitted, strict=True):
            yield _trained_fold(data, v, fold, trained, task.prior, choice)
        return
    selected = v.run.recipe == "selected"
    prior_of = partial(loop.initial_prior, v, data)
    choices = recipes.select(problem, v, own, prior_of) if selected else [recipes.fixed(v)] * len(own)
    heads = recipes.train_chosen(problem, v, own, choices, [fold.test for fold in planned])
    for fold, task, choice, trained in zip(planned, own, choices, heads, strict=True):
        yield _trained_fold(data, v, fold, trained, task.prior, choice)


#: Seeds the final model's initialisation as a fold does (run seed * 1000 + fold); never one of
#: the folds' 0..k-1, so the final model does not start from any fold's weights.
FINAL_FOLD = -1


def final(v: Variant, size: int) -> FinalModel:
    """The variant trained on every image with its recipe, for images stored at `size` px.

    - `selected`: the choice is made on an inner split of all images.
    - With every image in training, the corr priors come from all labels.
    """
    data = inputs.load(v)
    every = np.arange(len(data.labels))
    seed, init_seed = v.run.seed, v.run.seed * 1000 + FINAL_FOLD
    if not isinstance(data.inputs, CachedFeatures):
        model, prior = loop.network(v, data, every, seed=init_seed)
        history = list(loop.train_epochs(model, data.inputs, data.targets, data.classes, every, v.run, desc="final"))
        return final_model(v, size, loop.weights(model), prior, history, recipes.fixed(v), len(every))
    prior_of = partial(loop.initial_prior, v, data)
    task = Task(every, seed, init_seed, prior_of(every, seed))
    problem = recipes.Problem.of(data.inputs.features, data.targets, data.classes)
    nothing = [np.empty(0, dtype=np.int64)]
    if v.run.recipe == "converged":
        [(trained, choice)] = converged.trained(problem, v, [task], nothing)
    else:
        choice = recipes.select(problem, v, [task], prior_of)[0] if v.run.recipe == "selected" else recipes.fixed(v)
        [trained] = recipes.train_chosen(problem, v, [task], [choice], nothing)
    history = trained.history[["epoch", "train_loss", "train_acc", "train_kl"]].to_dict("records")
    return final_model(v, size, trained.state, task.prior, history, choice, len(every))


def final_model(
    v: Variant,
    size: int,
    state: dict[str, torch.Tensor],
    prior: np.ndarray | None,
    history: Sequence[dict[str, float]],
    choice: Choice,
    images: int,
) -> FinalModel:
    """The final model of a network trained with the variant on `images` images stored at `size` px."""
    return FinalModel(
        state=state,
        prior_initial=prior,
        prior_init=v.init,
        backbone=v.backbone.name,
        extraction=v.extraction.record(),
        pretrained=v.pretrained,
        weights=v.weights,
        head=v.head,
        finetune=v.run.finetune,
        outputs=v.emotions,
        size=size,
        images=images,
        history=tuple(history),
        choice=choice,
    )


def _finetuned(v: Variant, data: Data, planned: list[Fold]) -> Iterator[TrainedFold]:
    """Each planned fold fine-tuned end to end, one after the other (the `fixed` recipe only)."""
    for fold in planned:
        run = dataclasses.replace(v.run, seed=v.run.seed + fold.repeat)
        model, prior = loop.network(dataclasses.replace(v, run=run), data, fold.train, run.seed * 1000 + fold.fold)
        desc = f"repeat {fold.repeat} fold {fold.fold}"
        trained = loop.train_fold(model, data.inputs, data.targets, data.classes, fold.train, fold.test, run, desc=desc)
        yield _trained_fold(data, v, fold, trained, prior, recipes.fixed(v))


def _trained_fold(
    data: Data, v: Variant, fold: Fold, trained: loop.Trained, prior: np.ndarray | None, choice: Choice
) -> TrainedFold:
    """One fold's training as the train stage saves it: its predictions as tables (test, then train in place)."""
    names = data.labels[v.label].to_numpy()
    test, train = (
        predictions.build(
            data.labels["image"].iloc[idx], fold.repeat, fold.fold, names[idx], data.emotions, data.targets[idx], q
        )
        for idx, q in ((fold.test, trained.held_out), (fold.train, trained.in_place))
    )
    return TrainedFold(fold.repeat, fold.fold, trained.history, test, train, trained.state, prior, choice)
