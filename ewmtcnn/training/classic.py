"""The classic LDL methods (`ewmtcnn.ldl`) cross-validated on the inputs and folds that the train stage uses.

- The same inputs: the cached features (data/features.npy), the split stage's repeats x folds
  (`crossval.planned_folds`), the targets and class labels of `data.label` and `data.neutral`.
- Every fit standardises its training rows by their own means and standard deviations and projects them on
  their first `classic.pca` principal components (`converged.Standardiser`), since `ewmtcnn.ldl` expects
  standardised features: the refit on an outer training fold with that fold, each inner-training part of
  the selection with that part (`Projected`), so that neither the held-out images nor the inner-validation
  ones shape the projection they are scored through (as in the `converged` recipe; with the fold's own
  projection shared by its inner folds, SA-BFGS chose a stronger penalty, 0.3 instead of 0.1, and held-out
  KL rose from 0.3966 to 0.3998). On one Emotion6 training fold, 256 components left SA-BFGS's
  inner-validation KL as with all 1280 standardised features (0.416, 0.415), lowered AA-kNN's (0.48, 0.57)
  and PT-Bayes's (0.65, 0.66), and made SA-BFGS's fits 4 times faster.
- Each method's hyperparameters are chosen by `ldl.select` on the training images alone, seeded with the
  run seed `train.seed + repeat`; the refitted method predicts the held-out images.
- LDL-LRR is SA-BFGS plus a ranking term weighted by alpha (alpha = 0 is SA-BFGS): it takes the L2
  penalty that SA-BFGS chooses on the same training fold and chooses alpha alone, among 4 points instead of
  the joint grid's 36: on Emotion6 its 4 points already cost more than SA-BFGS's 9 (92 s and 65 s a stage
  run on one core), and the joint grid would cost nine times as much.
- Out-of-fold predictions in metrics/predictions.csv's layout, so that `ewmtcnn.study.paired` pairs
  them with a head's; scores as metrics.json's `test` section (`report.summary`).
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ewmtcnn import InputError, ldl, paths
from ewmtcnn.config.sections import Classic
from ewmtcnn.data import dataset
from ewmtcnn.evaluation import predictions, report
from ewmtcnn.io import safe_load
from ewmtcnn.ldl import aa_knn, ldl_lrr, sa_bfgs
from ewmtcnn.ldl.common import one_blas_thread
from ewmtcnn.training.converged import Standardiser
from ewmtcnn.training.crossval import Fold
from ewmtcnn.training.inputs import distributions
from ewmtcnn.training.variant import outputs

#: What to do about features that are not cached backbone features.
RERUN = "the classic methods read cached backbone features (train.finetune: false); rerun `dvc repro features`"


@dataclass(frozen=True)
class Inputs:
    """What the classic methods read, one row per image of the labels table, in its order."""

    images: pd.Series
    labels: np.ndarray  # each image's class label (`data.label`)
    emotions: tuple[str, ...]  # the outputs, in order
    targets: np.ndarray  # (N, outputs) distributions
    features: np.ndarray  # (N, d) cached backbone features


def load(label: str, neutral: str) -> Inputs:
    """The labels, targets and cached features of every image, from the preprocess and features stages' outputs."""
    labels = dataset.read_labels(paths.LABELS)
    features = safe_load.read_array(paths.FEATURES, "backbone features", RERUN, dtype=np.float32, ndim=2)
    if len(features) != len(labels):
        raise InputError(f"{paths.FEATURES} has {len(features)} rows for the {len(labels)} images of {paths.LABELS}")
    return Inputs(labels["image"], labels[label].to_numpy(), outputs(neutral), distributions(labels, neutral), features)


@dataclass(frozen=True)
class Outcome:
    """One method on one outer fold: its held-out predictions table and what selection chose."""

    test: pd.DataFrame
    chosen: Mapping[str, float]
    boundary: tuple[str, ...]  # the hyperparameters chosen at an end of their grid (`ldl.Selected.boundary`)
    seconds: float  # selection, refit and prediction


@dataclass(frozen=True)
class Projected:
    """A method fitted on the standardised projection of its own training rows, as a predictor of raw features."""

    projection: Standardiser
    fitted: ldl.Predictor

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The fitted method's distributions for the raw features `x`, through the projection."""
        return self.fitted.predict(self.projection(x))


@dataclass
class Training:
    """One outer training fold's raw features and targets, and each method selected on them so far.

    - Every fit, of an inner-training part or of the whole fold, standardises and projects its own rows.
    """

    x: np.ndarray  # (n, d) float64
    d: np.ndarray
    seed: int  # the run seed, which draws the inner folds
    classic: Classic
    done: dict[str, ldl.Selected] = field(default_factory=dict)
    projections: dict[bytes, tuple[Standardiser, np.ndarray]] = field(default_factory=dict)

    def selected(self, name: str) -> ldl.Selected:
        """Method `name` selected by inner cross-validation on the grids of `axes`."""
        if name not in self.done:
            folds, axes = self.classic.folds, self.axes(name)
            self.done[name] = ldl.select(
                self.method(name), self.x, self.d, axes=axes, inner_folds=folds, seed=self.seed
            )
        return self.done[name]

    def method(self, name: str) -> ldl.Method:
        """Method `name`, fitting on the standardised projection of the rows it is given (`Projected`)."""
        inner = ldl.method(name)

        def fit(x: np.ndarray, d: np.ndarray, value: ldl.Value) -> Projected:
            projection, z = self.projected(x)
            return Projected(projection, inner.fit(z, d, value))

        return ldl.Method(name, inner.axes, fit)

    def projected(self, x: np.ndarray) -> tuple[Standardiser, np.ndarray]:
        """The standardisation and projection of the rows `x`, and `x` through it: once for each set of rows.

        - Every grid point and method fits the same inner-training parts, which differ only in their rows.
        """
        key = hashlib.blake2b(np.ascontiguousarray(x).data, digest_size=16).digest()
        if key not in self.projections:
            projection = Standardiser.of(x, self.classic.pca)
            self.projections[key] = projection, np.asarray(projection(x))
        return self.projections[key]

    def axes(self, name: str) -> dict[str, tuple[float, ...]] | None:
        """The grids of method `name` where they are not its own (None).

        - LDL-LRR: SA-BFGS's chosen L2 penalty (SA-BFGS selected first), and every alpha.
        - AA-kNN: each k that the fewest images an inner fold fits on can give (all of them on Emotion6).
        """
        if name == ldl_lrr.NAME:
            return {"l2": (self.selected(sa_bfgs.NAME).params["l2"],), "alpha": ldl_lrr.ALPHA_GRID}
        if name == aa_knn.NAME:
            fewest = len(self.x) - math.ceil(len(self.x) / self.classic.folds)
            return {"k": tuple(k for k in aa_knn.K_GRID if k <= fewest)}
        return None


def outcomes(classic: Classic, data: Inputs, planned: Sequence[Fold], seed: int) -> dict[str, list[Outcome]]:
    """Each method's outcome on each planned fold, fold by fold, with a progress bar.

    - Selection on the fold's training images only, with the run seed `seed + repeat`.
    - A method's seconds include SA-BFGS's selection where LDL-LRR comes first and needs it.
    """
    found: dict[str, list[Outcome]] = {name: [] for name in classic.methods}
    features = data.features.astype(np.float64)
    with tqdm(total=len(classic.methods) * len(planned), desc="classic", unit="fit") as bar:
        for fold in planned:
            train, test = fold.train, fold.test
            training = Training(features[train], data.targets[train], seed + fold.repeat, classic)
            for name in classic.methods:
                bar.set_postfix_str(f"repeat {fold.repeat} fold {fold.fold} {name}")
                start = time.perf_counter()
                chosen = training.selected(name)
                with one_blas_thread():
                    q = chosen.predictor.predict(features[test])
                seconds = time.perf_counter() - start
                images, labels, targets = data.images.iloc[test], data.labels[test], data.targets[test]
                table = predictions.build(images, fold.repeat, fold.fold, labels, data.emotions, targets, q)
                found[name].append(Outcome(table, chosen.params, chosen.boundary, seconds))
                bar.update()
    return found


def out_of_fold(outcomes: Sequence[Outcome], images: pd.Series) -> pd.DataFrame:
    """A method's held-out predictions of every fold, by repeat, then in the order of `images` (as evaluate orders)."""
    table = pd.concat([outcome.test for outcome in outcomes], ignore_index=True)
    position = pd.Series(np.arange(len(images)), index=images).loc[table["image"]].to_numpy()
    return table.iloc[np.lexsort((position, table["repeat"].to_numpy()))].reset_index(drop=True)


def method_metrics(outcomes: Sequence[Outcome], out_of_fold: pd.DataFrame) -> dict[str, Any]:
    """A method's entry of metrics/classic.json.

    - `test`: each score's mean, std and 95% interval over the folds, as metrics.json's `test` section.
    - `chosen`: each hyperparameter's median, min and max over the folds.
    - `boundary_folds`: how many of the `folds` chose a value at an end of a hyperparameter's grid.
    """
    chosen = {name: [outcome.chosen[name] for outcome in outcomes] for name in outcomes[0].chosen}
    return {
        "test": report.summary(out_of_fold),
        "chosen": {
            name: {"median": statistics.median(values), "min": min(values), "max": max(values)}
            for name, values in chosen.items()
        },
        "boundary_folds": sum(bool(outcome.boundary) for outcome in outcomes),
        "folds": len(outcomes),
    }
