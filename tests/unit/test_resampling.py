"""The corrected resampled t interval and test of Nadeau & Bengio (ewmtcnn.evaluation.resampling), by hand and
against SciPy's plain one-sample t."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ewmtcnn.evaluation.resampling import corrected_t


def test_two_folds_by_hand_with_the_cauchy_closed_form() -> None:
    # values 1, 3: mean 2, s^2 = ((1-2)^2 + (3-2)^2) / 1 = 2; with n_test/n_train 1/2 the variance
    # factor is 1/J + 1/2 = 1, so se = sqrt(2). t with 1 degree of freedom is the Cauchy distribution:
    # quantile tan(pi (u - 1/2)), upper tail 1/2 - atan(x) / pi.
    got = corrected_t(np.array([1.0, 3.0]), test_train_ratio=0.5)
    half = math.tan(math.pi * 0.475) * math.sqrt(2)
    assert (got.mean, got.std) == pytest.approx((2.0, math.sqrt(2)), rel=1e-12)
    assert (got.low, got.high) == pytest.approx((2 - half, 2 + half), rel=1e-12)
    assert got.p == pytest.approx(2 * (0.5 - math.atan(2 / math.sqrt(2)) / math.pi), rel=1e-12)


def test_fifteen_folds_against_scipy_t_quantiles() -> None:
    values = np.random.default_rng(0).normal(0.6, 0.03, 15)  # 3 repeats x 5 folds
    got = corrected_t(values, test_train_ratio=0.25)
    mean, s2 = values.sum() / 15, ((values - values.sum() / 15) ** 2).sum() / 14
    se = math.sqrt((1 / 15 + 0.25) * s2)
    assert got.low == pytest.approx(mean - stats.t.ppf(0.975, 14) * se, rel=1e-12)
    assert got.high == pytest.approx(mean + stats.t.ppf(0.975, 14) * se, rel=1e-12)
    assert got.p == pytest.approx(2 * stats.t.sf(mean / se, 14), rel=1e-9)


def test_the_correction_widens_scipys_plain_interval() -> None:
    """Without the n_test/n_train term the statistic is the ordinary one-sample t of SciPy."""
    values = np.array([0.1, -0.05, 0.2, 0.15, 0.0, 0.12])
    plain = stats.ttest_1samp(values, 0.0)
    interval = plain.confidence_interval(0.95)
    uncorrected = corrected_t(values, test_train_ratio=1e-15)
    assert (uncorrected.low, uncorrected.high) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert uncorrected.p == pytest.approx(plain.pvalue, rel=1e-9)
    corrected = corrected_t(values, test_train_ratio=0.25)
    assert corrected.low < interval.low and corrected.high > interval.high and corrected.p > plain.pvalue


def test_one_fold_has_no_interval() -> None:
    got = corrected_t(np.array([0.7]), 0.25)
    assert (got.mean, got.std, got.low, got.high) == (0.7, 0.0, 0.7, 0.7) and math.isnan(got.p)


@pytest.mark.parametrize("value,p", [(0.3, 0.0), (0.0, 1.0)], ids=["nonzero", "zero"])
def test_no_spread(value: float, p: float) -> None:
    got = corrected_t(np.full(5, value), 0.25)
    assert (got.mean, got.std, got.low, got.high, got.p) == (value, 0.0, value, value, p)


@pytest.mark.parametrize(
    "values,ratio,message",
    [
        (np.array([]), 0.25, "one finite value per fold"),
        (np.ones((2, 3)), 0.25, "one finite value per fold"),
        (np.array([0.5, math.nan]), 0.25, "one finite value per fold"),
        (np.array([0.5, math.inf]), 0.25, "one finite value per fold"),
        (np.array([0.5, 0.6]), 0.0, "must be positive"),
        (np.array([0.5, 0.6]), -0.25, "must be positive"),
    ],
    ids=["empty", "2d", "nan", "inf", "zero-ratio", "negative-ratio"],
)
def test_bad_input(values: np.ndarray, ratio: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        corrected_t(values, ratio)
