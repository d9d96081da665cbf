"""The corrected resampled t statistic of Nadeau & Bengio (2003), for repeated k-fold cross-validation.

- The J = R x k fold scores are not independent: any two training sets share most of their images,
  so the plain standard error s / sqrt(J) is too small and a plain t interval too narrow.
- The correction replaces the variance factor 1/J by 1/J + n_test/n_train (Bouckaert and Frank,
  2004, recommend it for repeated k-fold comparisons).
- It gives a confidence interval for a mean score and, on paired per-fold differences between two
  variants, a test of whether their mean difference is zero.
- Written out, as SciPy has only the uncorrected t; the Student t quantiles and tails come from
  `scipy.stats.t`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Corrected:
    """Mean of the fold values, their sample std, the corrected 95% interval and two-sided p (mean = 0)."""

    mean: float
    std: float
    low: float
    high: float
    p: float


def corrected_t(values: np.ndarray, test_train_ratio: float, level: float = LEVEL) -> Corrected:
    """The corrected resampled t interval and test over the J fold values `values`.

    - `test_train_ratio` is n_test / n_train of one fold (1/4 for 5-fold CV).
    - With one value there is no spread: the interval is the value itself and p is NaN.
    - With every value equal the interval is the value, and p is 0 unless the value is 0 (then 1).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError(f"need one finite value per fold; found {values!r}")
    if not test_train_ratio > 0:
        raise ValueError(f"n_test / n_train must be positive; found {test_train_ratio}")
    j = len(values)
    mean = float(values.mean())
    if j == 1:
        return Corrected(mean, 0.0, mean, mean, math.nan)
    std = float(values.std(ddof=1))
    se = math.sqrt((1 / j + test_train_ratio) * std**2)
    if se == 0:
        return Corrected(mean, std, mean, mean, 1.0 if mean == 0 else 0.0)
    half = float(stats.t.ppf((1 + level) / 2, j - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, j - 1))
    return Corrected(mean, std, mean - half, mean + half, p)


def summarise(per_fold: list[dict[str, float]], test_train_ratio: float) -> dict[str, dict[str, float]]:
    """Mean, sample std and 95% interval of each score over the folds of repeated cross-validation.

    - The interval is `corrected_t`'s: it accounts for the folds' shared training images through
      `test_train_ratio` (n_test / n_train of a fold).
    - One fold has no spread: std 0.0 and the mean for both ends.
    """
    if not per_fold:
        raise ValueError("no folds to summarise")
    keys = list(per_fold[0])
    if any(set(fold) != set(keys) for fold in per_fold):
        raise ValueError(f"folds report different scores: {[sorted(fold) for fold in per_fold]}")
    summary = {}
    for key in keys:
        values = np.array([fold[key] for fold in per_fold], dtype=np.float64)
        try:
            interval = corrected_t(values, test_train_ratio)
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
        summary[key] = {"mean": interval.mean, "std": interval.std, "ci_low": interval.low, "ci_high": interval.high}
    return summary
