"""Paired tests of each arm against a baseline arm, on the same out-of-fold predictions.

The question is the public reimplementation's: does the emotion-wheel prior layer help?
Every arm predicts the same images under the same folds, so each comparison with the baseline
(`none`, no prior layer) is paired image by image, which is far more sensitive than comparing
means over five folds.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd
from scipy import stats

from ewmtcnn import InputError, metrics, report

ALPHA = 0.05
#: Whatever names an arm: the statistics only need to tell the arms apart.
Key = TypeVar("Key", bound=Hashable)


def _correct(table: pd.DataFrame) -> np.ndarray:
    """Per image: is the most probable predicted emotion the class label?"""
    emotions = np.array(report.emotions(table))
    return emotions[table[report.columns(table, "pred_")].to_numpy().argmax(axis=1)] == table["label"].to_numpy()


def paired(baseline: pd.DataFrame, variant: pd.DataFrame) -> dict[str, float]:
    """Variant minus baseline on the same out-of-fold predictions, image by image.

    Both tables are metrics/predictions.csv (`image, fold, label, true_<e>..., pred_<e>...`).
    The tests are paired because every image is predicted by both models, so differences
    between images cancel out:

    - KL (summed over emotions, `0 ln 0 = 0`): the per-image difference is skewed and
      heavy-tailed, not normal, so the Wilcoxon signed-rank test (two-sided) rather than a
      paired t-test. Zero differences occur only where both models predict an image
      bit-identically; they say nothing about which is better, so they are dropped (scipy's
      default `zero_method="wilcox"`, the classical test). All zero: p = 1.
    - Accuracy: each image is right or wrong under both models, paired binary outcomes, so
      McNemar's exact test: a two-sided binomial test (p = 1/2) on the discordant images,
      those one model gets right and the other wrong. None discordant: p = 1.

    Differences are over all images pooled (not means of fold means). Comparing 12 variants
    with `none` makes 12 tests per measure: adjust the p-values with `holm` before reading
    them (`compare` does).
    """
    for name, table in (("baseline", baseline), ("variant", variant)):
        if not table["image"].is_unique:
            raise InputError(f"the {name} predictions list some images more than once")
    if set(baseline["image"]) != set(variant["image"]):
        only = set(baseline["image"]) ^ set(variant["image"])
        raise InputError(
            f"the two prediction tables cover different images ({len(only)} in one only, "
            f"e.g. {min(only)}): experiments on different data"
        )
    variant = variant.set_index("image").loc[baseline["image"]].reset_index()
    for column in ("fold", "label", *report.columns(baseline, "true_")):
        if column not in variant or not (baseline[column].to_numpy() == variant[column].to_numpy()).all():
            raise InputError(f"the two prediction tables differ in {column}: experiments on different splits or labels")
    true = baseline[report.columns(baseline, "true_")].to_numpy()
    kl = {
        name: metrics.distances(true, table[report.columns(table, "pred_")].to_numpy())["kl"]
        for name, table in (("baseline", baseline), ("variant", variant))
    }
    if not all(np.isfinite(values).all() for values in kl.values()):
        raise InputError("a predicted probability of 0 where the true one is positive: KL is infinite")
    kl_diff = kl["variant"] - kl["baseline"]
    kl_p = 1.0 if not kl_diff.any() else float(stats.wilcoxon(kl_diff, zero_method="wilcox").pvalue)
    right_before, right_after = _correct(baseline), _correct(variant)
    gained = int((right_after & ~right_before).sum())
    lost = int((right_before & ~right_after).sum())
    acc_p = 1.0 if gained + lost == 0 else float(stats.binomtest(gained, gained + lost).pvalue)
    return {
        "images": len(baseline),
        "kl_diff": float(kl_diff.mean()),
        "kl_p": kl_p,
        "acc_diff": float(right_after.mean() - right_before.mean()),
        "acc_p": acc_p,
        "acc_gained": gained,
        "acc_lost": lost,
    }


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate), in the input order.

    Written out because statsmodels, which has it, is not a dependency and scipy has only
    false-discovery-rate adjustments (`false_discovery_control`).
    """
    m = len(pvalues)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))  # adjusted p never decreases
        adjusted[index] = running
    return adjusted


def compare(predictions: Mapping[Key, pd.DataFrame], baseline: Key) -> dict[Key, dict[str, float]]:
    """`paired` of every other arm of `predictions` against `baseline`, in their order, with
    Holm-adjusted p-values (`kl_p_holm`, `acc_p_holm`): each measure is one family of tests."""
    others = [arm for arm in predictions if arm != baseline]
    results = {arm: paired(predictions[baseline], predictions[arm]) for arm in others}
    for measure in ("kl", "acc"):
        for arm, adjusted in zip(others, holm([results[arm][f"{measure}_p"] for arm in others]), strict=True):
            results[arm][f"{measure}_p_holm"] = adjusted
    return results


def verdict(diff: float, p_holm: float, lower_is_better: bool) -> str:
    """What a difference (arm - baseline) means for the prior, at ALPHA on the adjusted p."""
    if not p_holm < ALPHA:
        return "no measurable difference"
    return "helps" if (diff < 0) == lower_is_better else "hurts"
