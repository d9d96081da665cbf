"""The corrected resampled t statistic of Nadeau & Bengio (2003), for repeated k-fold cross-validation.

- The J = R x k fold scores are not independent: any two training sets share most of their images,
  so the plain standard error s / sqrt(J) is too small and a plain t interval too narrow.
- The correction replaces the variance factor 1/J by 1/J + n_test/n_train (Bouckaert and Frank,
  2004, recommend it for repeated k-fold comparisons).
- It gives a confidence interval for a mean score at any level and, on paired per-fold differences
  between two variants, tests of their mean difference: two-sided against zero, one-sided against a
  bound, and both one-sided tests against a margin of equivalence (TOST).
- Written out, as SciPy has only the uncorrected t; the Student t quantiles and tails come from
  `scipy.stats.t`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

#: The level of the interval of a score over the folds.
LEVEL = 0.95


@dataclass(frozen=True)
class Corrected:
    """Mean of the fold values, their sample std, the corrected interval at its level and two-sided p (mean = 0)."""

    mean: float
    std: float
    low: float
    high: float
    p: float


def _checked(values: np.ndarray, test_train_ratio: float) -> np.ndarray:
    """`values` as a float array, once known to be one finite value per fold, with a positive ratio."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError(f"need one finite value per fold; found {values!r}")
    if not test_train_ratio > 0:
        raise ValueError(f"n_test / n_train must be positive; found {test_train_ratio}")
    return values


def standard_error(std: float, folds: int, test_train_ratio: float) -> float:
    """The corrected standard error of a mean over J = `folds` fold values: sqrt((1/J + n_test/n_train) s^2)."""
    return math.sqrt((1 / folds + test_train_ratio) * std**2)


def half_width(std: float, folds: int, test_train_ratio: float, level: float) -> float:
    """Half the width of the corrected interval at `level` of a mean over `folds` (J >= 2) values of sample std `std`.

    - The Student t quantile at (1 + level) / 2 with J - 1 degrees of freedom, times the corrected standard error.
    """
    return float(stats.t.ppf((1 + level) / 2, folds - 1)) * standard_error(std, folds, test_train_ratio)


def corrected_t(values: np.ndarray, test_train_ratio: float, level: float = LEVEL) -> Corrected:
    """The corrected resampled t interval at `level` and two-sided test of mean = 0 over the J fold values `values`.

    - `test_train_ratio` is n_test / n_train of one fold (1/4 for 5-fold CV).
    - With one value there is no spread: the interval is the value itself and p is NaN.
    - With every value equal the interval is the value, and p is 0 unless the value is 0 (then 1).
    """
    values = _checked(values, test_train_ratio)
    j = len(values)
    mean = float(values.mean())
    if j == 1:
        return Corrected(mean, 0.0, mean, mean, math.nan)
    std = float(values.std(ddof=1))
    se = standard_error(std, j, test_train_ratio)
    if se == 0:
        return Corrected(mean, std, mean, mean, 1.0 if mean == 0 else 0.0)
    half = half_width(std, j, test_train_ratio, level)
    p = float(2 * stats.t.sf(abs(mean) / se, j - 1))
    return Corrected(mean, std, mean - half, mean + half, p)


def one_sided_p(
    values: np.ndarray, test_train_ratio: float, bound: float, alternative: Literal["greater", "less"]
) -> float:
    """The p of the one-sided corrected t-test that the mean of the fold values lies beyond `bound`.

    - `greater`: the null is mean <= bound, against mean > bound; `less`: mean >= bound, against mean < bound.
    - With one value, NaN; with every value equal, 0 when the mean lies strictly beyond `bound`, else 1.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"the alternative is greater or less; found {alternative!r}")
    values = _checked(values, test_train_ratio)
    j = len(values)
    if j == 1:
        return math.nan
    beyond = float(values.mean()) - bound if alternative == "greater" else bound - float(values.mean())
    se = standard_error(float(values.std(ddof=1)), j, test_train_ratio)
    if se == 0:
        return 0.0 if beyond > 0 else 1.0
    return float(stats.t.sf(beyond / se, j - 1))


def tost_p(values: np.ndarray, test_train_ratio: float, margin: float) -> float:
    """The p of the two one-sided tests (TOST) that the mean lies inside (-margin, +margin): the larger of the two.

    - One test rejects mean <= -margin, the other mean >= +margin; equivalence needs both.
    """
    if not margin > 0:
        raise ValueError(f"the margin must be positive; found {margin}")
    return max(
        one_sided_p(values, test_train_ratio, -margin, "greater"),
        one_sided_p(values, test_train_ratio, margin, "less"),
    )


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
