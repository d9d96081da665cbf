"""Paired comparisons of each arm with a baseline arm (`none`, no prior layer), on the same out-of-fold predictions.

- The question is the public reimplementation's: does the emotion-wheel prior layer help?
- Every arm predicts the same images under the same R repeats of k folds, so each difference is
  paired: per (repeat, fold), the arm's fold score minus the baseline's on the same test images.
- The test is the corrected resampled t-test (Nadeau & Bengio, 2003; `resampling`) over these
  R x k paired fold differences, not a test over images (Wilcoxon, McNemar): it allows for what
  image-level tests ignore, that the folds' training sets overlap, so their results are correlated,
  and that the variation due to the training set counts too.
- It tests the mean difference, which is what the table shows; the Wilcoxon signed-rank test
  tests the pseudo-median, which can have the other sign when a few images change a lot.
- Each comparison has one interval, Bonferroni-simultaneous over the m arms of a table
  (`protocol.level(m)`), and its label is read off it against the declared margin
  (`protocol.MARGINS`): helps or hurts when it excludes 0, equivalent when it lies inside the
  margin, inconclusive when neither. Its two p-values, adjusted, fall below ALPHA exactly when it says so.
- The median and the share of images that improve are shown beside the mean KL, untested, so that a
  mean carried by a few images is visible.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from ewmtcnn import InputError
from ewmtcnn.evaluation import metrics, predictions, report
from ewmtcnn.evaluation.resampling import corrected_t, tost_p
from ewmtcnn.study.protocol import MARGINS, level

#: Whatever names an arm: the tests only need to tell the arms apart.
Key = TypeVar("Key", bound=Hashable)
#: What identifies one prediction of metrics/predictions.csv, and what must agree between arms.
ROW_KEY = ["repeat", "image"]
FOLD_KEY = ["repeat", "fold"]
#: The labels of a comparison, read off its interval.
HELPS, HURTS, EQUIVALENT, INCONCLUSIVE = "helps", "hurts", "equivalent", "inconclusive"
#: Both at once: the interval excludes 0 but lies inside the margin.
EQUIVALENT_DIFFERS = "equivalent (differs by less than the margin)"


@dataclass(frozen=True)
class Paired:
    """An arm minus the baseline on the same predictions.

    - `differences`: per score (metrics.SCORES; those of protocol.MARGINS are tested), the arm's fold
      score minus the baseline's, per (repeat, fold) in that order.
    - `test_train_ratio`: n_test / n_train of a fold, for the corrected t.
    - `kl_median`, `kl_improved`: the median per-image KL difference, and the share of images whose
      KL is lower under the arm; each image's difference is first averaged over the repeats.
    """

    images: int
    repeats: int
    folds: int
    test_train_ratio: float
    differences: Mapping[str, tuple[float, ...]]
    kl_median: float
    kl_improved: float


@dataclass(frozen=True)
class Assessment:
    """One score of one arm against the baseline, as one of m comparisons of a table.

    - `mean`, `low`, `high`: the mean fold difference and its corrected t interval at `level` = 1 - ALPHA/m.
    - `p_differs`: the two-sided test of a zero difference, Bonferroni-adjusted (m p, capped at 1).
    - `p_equivalent`: TOST against ±`margin`, the larger of its two one-sided p-values, Bonferroni-
      adjusted as each one-sided test runs at ALPHA/(2m), the tail the interval leaves on each side
      (2m p, capped at 1); stricter than the usual TOST at ALPHA/m, so that one interval gives both answers.
    - `label`: read off the interval (`label`); each p is below ALPHA exactly when the interval says so.
    """

    mean: float
    low: float
    high: float
    level: float
    margin: float
    p_differs: float
    p_equivalent: float
    label: str


@dataclass(frozen=True)
class Comparison:
    """`Paired`, with each tested score's comparison (`Assessment`), by score in protocol.MARGINS order."""

    paired: Paired
    tests: Mapping[str, Assessment]


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


def _fold_differences(baseline: pd.DataFrame, variant: pd.DataFrame) -> dict[str, tuple[float, ...]]:
    """Per score of metrics.SCORES, the variant's fold score minus the baseline's, per (repeat, fold) in that order.

    - The fold scores are metrics.json's (`report.scores`), on the rows of each (repeat, fold).
    """
    folds = list(baseline.groupby(FOLD_KEY).indices.values())
    if len(folds) < 2:
        raise InputError("one (repeat, fold) only: a difference over one fold has no spread to test it by")
    scores = [(report.scores(baseline.iloc[rows]), report.scores(variant.iloc[rows])) for rows in folds]
    return {score: tuple(v[score] - b[score] for b, v in scores) for score in metrics.SCORES}


def paired(baseline: pd.DataFrame, variant: pd.DataFrame) -> Paired:
    """Variant minus baseline, both metrics/predictions.csv tables of the same images and folds.

    - A table has one row per repeat and image: `image, repeat, fold, label, true_<e>..., pred_<e>...`.
    - Each (repeat, fold) gives one paired difference of each tested fold score, as metrics.json
      scores a fold; for a mean over images (KL, accuracy) the mean of these differences is the
      difference of the two arms' mean test scores.
    - KL counts `0 ln 0 = 0`.
    """
    variant = _aligned(baseline, variant)
    kl = {name: _kl(table) for name, table in (("baseline", baseline), ("variant", variant))}
    if not all(np.isfinite(values).all() for values in kl.values()):
        raise InputError("a predicted probability of 0 where the true one is positive: KL is infinite")
    differences = _fold_differences(baseline, variant)
    per_image = baseline.assign(kl=kl["variant"] - kl["baseline"]).groupby("image")["kl"].mean()
    return Paired(
        images=len(per_image),
        repeats=baseline["repeat"].nunique(),
        folds=baseline["fold"].nunique(),
        test_train_ratio=report.fold_size_ratio(baseline),
        differences=differences,
        kl_median=float(per_image.median()),
        kl_improved=float((per_image < 0).mean()),
    )


def label(low: float, high: float, margin: float, lower_is_better: bool) -> str:
    """What an interval of a difference (arm - baseline) says of the arm, against the margin of equivalence.

    - Excludes 0: the arm helps or hurts, by the side of 0 it lies on and the score's direction.
    - Inside (-margin, +margin): equivalent; both at once: equivalent, with the note that it differs.
    - Neither: inconclusive.
    """
    differs = low > 0 or high < 0
    if -margin < low and high < margin:
        return EQUIVALENT_DIFFERS if differs else EQUIVALENT
    if differs:
        return HELPS if (high < 0) == lower_is_better else HURTS
    return INCONCLUSIVE


def assess(paired: Paired, score: str, comparisons: int) -> Assessment:
    """Score `score` of `paired` as one of `comparisons` (m) comparisons of a table, against its declared margin."""
    values, ratio, margin = np.array(paired.differences[score]), paired.test_train_ratio, MARGINS[score]
    simultaneous = level(comparisons)
    interval = corrected_t(values, ratio, simultaneous)
    return Assessment(
        mean=interval.mean,
        low=interval.low,
        high=interval.high,
        level=simultaneous,
        margin=margin,
        p_differs=min(1.0, comparisons * interval.p),
        p_equivalent=min(1.0, 2 * comparisons * tost_p(values, ratio, margin)),
        label=label(interval.low, interval.high, margin, score not in metrics.HIGHER_IS_BETTER),
    )


def compare(predictions: Mapping[Key, pd.DataFrame], baseline: Key) -> dict[Key, Comparison]:
    """`paired` of every other arm of `predictions` against `baseline`, in their order, each score assessed.

    - Each score is one family: m is the number of arms compared with the baseline.
    """
    others = [arm for arm in predictions if arm != baseline]
    results = {arm: paired(predictions[baseline], predictions[arm]) for arm in others}
    return {
        arm: Comparison(result, {score: assess(result, score, len(others)) for score in MARGINS})
        for arm, result in results.items()
    }
