"""Paired tests of each arm against a baseline arm (`none`, no prior layer), on the same out-of-fold predictions.

- The question is the public reimplementation's: does the emotion-wheel prior layer help?
- Every arm predicts the same images under the same R repeats of k folds, so each difference is
  paired: per (repeat, fold), the arm's mean score minus the baseline's on the same test images.
- The test is the corrected resampled t-test (Nadeau & Bengio, 2003; `resampling.corrected_t`)
  over these R x k paired fold means, not a test over images (Wilcoxon, McNemar).
- It tests the mean difference, which is what the table shows; the Wilcoxon signed-rank test
  tests the pseudo-median, which can have the other sign when a few images change a lot.
- It allows for what image-level tests ignore: the folds' training sets overlap, so their results
  are correlated, and the variation due to the training set counts too.
- The median and the share of images that improve are shown beside the mean, untested, so that a
  mean carried by a few images is visible.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from ewmtcnn import InputError
from ewmtcnn.evaluation import metrics, predictions, report
from ewmtcnn.evaluation.resampling import Corrected, corrected_t

ALPHA = 0.05
#: Whatever names an arm: the tests only need to tell the arms apart.
Key = TypeVar("Key", bound=Hashable)
#: What identifies one prediction of metrics/predictions.csv, and what must agree between arms.
ROW_KEY = ["repeat", "image"]
FOLD_KEY = ["repeat", "fold"]


@dataclass(frozen=True)
class Paired:
    """An arm minus the baseline on the same predictions.

    - `kl`, `acc`: the corrected t over the per-(repeat, fold) differences of the mean KL (summed
      over emotions, per image) and of the accuracy; their mean, 95% interval and two-sided p.
    - `kl_median`, `kl_improved`: the median per-image KL difference, and the share of images whose
      KL is lower under the arm; each image's difference is first averaged over the repeats.
    """

    images: int
    repeats: int
    folds: int
    kl: Corrected
    kl_median: float
    kl_improved: float
    acc: Corrected


@dataclass(frozen=True)
class Comparison:
    """`Paired`, with its p-values Holm-adjusted over all the arms compared with the same baseline."""

    paired: Paired
    kl_p_holm: float
    acc_p_holm: float

    @property
    def kl_verdict(self) -> str:
        """What the KL difference says of the prior."""
        return verdict(self.paired.kl.mean, self.kl_p_holm, lower_is_better=True)

    @property
    def acc_verdict(self) -> str:
        """What the accuracy difference says of the prior."""
        return verdict(self.paired.acc.mean, self.acc_p_holm, lower_is_better=False)


def _correct(table: pd.DataFrame) -> np.ndarray:
    """Per prediction: is the most probable predicted emotion the class label?"""
    emotions = np.array(predictions.emotions(table))
    return emotions[predictions.pred(table).argmax(axis=1)] == table["label"].to_numpy()


def _kl(table: pd.DataFrame) -> np.ndarray:
    """Per prediction: the KL divergence of the predicted distribution from the true one."""
    return metrics.distances(predictions.true(table), predictions.pred(table))["kl"]


def _aligned(baseline: pd.DataFrame, variant: pd.DataFrame) -> pd.DataFrame:
    """`variant` in the baseline's row order, once both are known to predict the same things.

    - The same images under the same repeats, folds, labels and true distributions.
    """
    for name, table in (("baseline", baseline), ("variant", variant)):
        missing = [column for column in [*ROW_KEY, "fold", "label"] if column not in table]
        if missing:
            raise InputError(
                f"the {name} predictions have no {', '.join(missing)} column: an experiment from before "
                "repeated cross-validation; run it again"
            )
        if table.duplicated(ROW_KEY).any():
            raise InputError(f"the {name} predictions list some images more than once in a repeat")
    keys = {name: set(table[ROW_KEY].itertuples(index=False)) for name, table in (("b", baseline), ("v", variant))}
    if keys["b"] != keys["v"]:
        only = keys["b"] ^ keys["v"]
        repeat, image = min(only)
        raise InputError(
            f"the two prediction tables cover different images or repeats ({len(only)} (repeat, image) in one "
            f"only, e.g. repeat {repeat} {image}): experiments on different data or split.repeats"
        )
    variant = variant.set_index(ROW_KEY).loc[pd.MultiIndex.from_frame(baseline[ROW_KEY])].reset_index()
    for column in ("fold", "label", *predictions.columns(baseline, predictions.TRUE)):
        if column not in variant or not (baseline[column].to_numpy() == variant[column].to_numpy()).all():
            raise InputError(f"the two prediction tables differ in {column}: experiments on different splits or labels")
    return variant


def paired(baseline: pd.DataFrame, variant: pd.DataFrame) -> Paired:
    """Variant minus baseline, both metrics/predictions.csv tables of the same images and folds.

    - A table has one row per repeat and image: `image, repeat, fold, label, true_<e>..., pred_<e>...`.
    - Each (repeat, fold) gives one paired difference of the fold's mean score, as the fold scores
      of metrics.json are means over a fold's images; the mean of these differences is the
      difference of the two arms' mean test scores.
    - KL counts `0 ln 0 = 0`.
    """
    variant = _aligned(baseline, variant)
    kl = {name: _kl(table) for name, table in (("baseline", baseline), ("variant", variant))}
    if not all(np.isfinite(values).all() for values in kl.values()):
        raise InputError("a predicted probability of 0 where the true one is positive: KL is infinite")
    differences = baseline[[*ROW_KEY, "fold"]].assign(
        kl=kl["variant"] - kl["baseline"], acc=_correct(variant).astype(float) - _correct(baseline)
    )
    per_fold = differences.groupby(FOLD_KEY)[["kl", "acc"]].mean()
    ratio = report.fold_size_ratio(differences)
    per_image = differences.groupby("image")["kl"].mean()
    return Paired(
        images=len(per_image),
        repeats=differences["repeat"].nunique(),
        folds=differences["fold"].nunique(),
        kl=corrected_t(per_fold["kl"].to_numpy(), ratio),
        kl_median=float(per_image.median()),
        kl_improved=float((per_image < 0).mean()),
        acc=corrected_t(per_fold["acc"].to_numpy(), ratio),
    )


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate), in the input order.

    - Written out: statsmodels, which has it, is not a dependency, and scipy has only
      false-discovery-rate adjustments (`false_discovery_control`).
    """
    m = len(pvalues)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))  # adjusted p never decreases
        adjusted[index] = running
    return adjusted


def compare(predictions: Mapping[Key, pd.DataFrame], baseline: Key) -> dict[Key, Comparison]:
    """`paired` of every other arm of `predictions` against `baseline`, in their order, with Holm-adjusted p-values.

    - Each measure (KL, accuracy) is one family of tests.
    """
    others = [arm for arm in predictions if arm != baseline]
    results = {arm: paired(predictions[baseline], predictions[arm]) for arm in others}
    kl_holm = holm([results[arm].kl.p for arm in others])
    acc_holm = holm([results[arm].acc.p for arm in others])
    return {arm: Comparison(results[arm], kl_holm[i], acc_holm[i]) for i, arm in enumerate(others)}


def verdict(diff: float, p_holm: float, lower_is_better: bool) -> str:
    """What a difference (arm - baseline) means for the prior, at ALPHA on the adjusted p."""
    if not p_holm < ALPHA:  # NaN too
        return "no measurable difference"
    return "helps" if (diff < 0) == lower_is_better else "hurts"
