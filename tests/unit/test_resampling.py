"""The corrected resampled t of Nadeau & Bengio (ewmtcnn.evaluation.resampling): its interval at any level, its
two-sided, one-sided and TOST p-values, by hand and against SciPy's t distribution and plain one-sample t."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ewmtcnn.evaluation.resampling import corrected_t, half_width, one_sided_p, tost_p


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


def test_two_folds_one_sided_and_tost_by_hand() -> None:
    # values 1, 3 with n_test/n_train 1/2, as above: mean 2, se sqrt(2), t with 1 degree of freedom.
    values, cauchy_sf = np.array([1.0, 3.0]), lambda x: 0.5 - math.atan(x) / math.pi
    assert one_sided_p(values, 0.5, 0.0, "greater") == pytest.approx(cauchy_sf(2 / math.sqrt(2)), rel=1e-12)
    assert one_sided_p(values, 0.5, 0.0, "less") == pytest.approx(1 - cauchy_sf(2 / math.sqrt(2)), rel=1e-12)
    assert one_sided_p(values, 0.5, 5.0, "less") == pytest.approx(cauchy_sf(3 / math.sqrt(2)), rel=1e-12)
    # Margin 4: mean > -4 is (2 + 4) / sqrt(2) standard errors away, mean < 4 only (4 - 2) / sqrt(2): the larger p.
    assert tost_p(values, 0.5, 4.0) == pytest.approx(cauchy_sf(2 / math.sqrt(2)), rel=1e-12)
    # The interval at 1 - 0.05/3 (three comparisons): the Cauchy quantile at 1 - 0.05/6.
    got = corrected_t(values, 0.5, level=1 - 0.05 / 3)
    half = math.tan(math.pi * (0.5 - 0.05 / 6)) * math.sqrt(2)
    assert (got.low, got.high) == pytest.approx((2 - half, 2 + half), rel=1e-12)


@pytest.mark.parametrize("comparisons", [1, 4, 12])
def test_any_level_against_scipy(comparisons: int) -> None:
    """The interval at 1 - 0.05/m, its half-width and the one-sided p-values, with SciPy's t written out here."""
    values = np.random.default_rng(comparisons).normal(-0.01, 0.02, 15)
    mean, s2 = values.sum() / 15, ((values - values.sum() / 15) ** 2).sum() / 14
    se = math.sqrt((1 / 15 + 0.25) * s2)
    quantile = stats.t.ppf(1 - 0.05 / (2 * comparisons), 14)
    got = corrected_t(values, 0.25, level=1 - 0.05 / comparisons)
    assert (got.low, got.high) == pytest.approx((mean - quantile * se, mean + quantile * se), rel=1e-12)
    assert half_width(math.sqrt(s2), 15, 0.25, 1 - 0.05 / comparisons) == pytest.approx(quantile * se, rel=1e-12)
    for bound in (-0.02, 0.0, 0.015):
        greater = stats.t.sf((mean - bound) / se, 14)
        assert one_sided_p(values, 0.25, bound, "greater") == pytest.approx(greater, rel=1e-9)
        assert one_sided_p(values, 0.25, bound, "less") == pytest.approx(stats.t.cdf((mean - bound) / se, 14), rel=1e-9)
    margin = 0.02
    expected = max(stats.t.sf((mean + margin) / se, 14), stats.t.cdf((mean - margin) / se, 14))
    assert tost_p(values, 0.25, margin) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_without_the_correction_is_scipys(alternative: str) -> None:
    values = np.array([0.1, -0.05, 0.2, 0.15, 0.0, 0.12])
    for bound in (-0.1, 0.05, 0.3):
        plain = stats.ttest_1samp(values, bound, alternative=alternative)
        assert one_sided_p(values, 1e-15, bound, alternative) == pytest.approx(plain.pvalue, rel=1e-9)


def test_tost_rejects_exactly_when_the_interval_lies_inside_the_margin() -> None:
    """Over many random cases: TOST at ALPHA/(2m) each side rejects iff the 1 - ALPHA/m interval is inside ±margin.

    - And the two-sided test at ALPHA/m rejects iff that interval excludes 0.
    """
    alpha, outcomes = 0.05, set()
    for seed in range(400):
        rng = np.random.default_rng(seed)
        folds, comparisons, margin = rng.choice([10, 15, 25]), int(rng.integers(1, 9)), rng.choice([0.01, 0.02])
        values = rng.normal(rng.uniform(-0.03, 0.03), rng.uniform(0.001, 0.03), folds)
        interval = corrected_t(values, 0.25, level=1 - alpha / comparisons)
        inside = -margin < interval.low and interval.high < margin
        excludes = interval.low > 0 or interval.high < 0
        assert (tost_p(values, 0.25, margin) < alpha / (2 * comparisons)) == inside, seed
        assert (interval.p < alpha / comparisons) == excludes, seed
        outcomes.add((inside, excludes))
    assert outcomes == {(False, False), (False, True), (True, False), (True, True)}  # every case came up


def test_one_sided_and_tost_without_spread() -> None:
    values = np.full(5, 0.004)
    assert one_sided_p(values, 0.25, 0.0, "greater") == 0.0 and one_sided_p(values, 0.25, 0.004, "greater") == 1.0
    assert one_sided_p(values, 0.25, 0.01, "less") == 0.0 and one_sided_p(values, 0.25, 0.0, "less") == 1.0
    assert tost_p(values, 0.25, 0.01) == 0.0 and tost_p(values, 0.25, 0.004) == 1.0
    assert math.isnan(one_sided_p(np.array([0.3]), 0.25, 0.0, "greater"))


def test_one_sided_and_tost_bad_input() -> None:
    with pytest.raises(ValueError, match="greater or less"):
        one_sided_p(np.array([0.1, 0.2]), 0.25, 0.0, "two-sided")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin must be positive"):
        tost_p(np.array([0.1, 0.2]), 0.25, 0.0)
    with pytest.raises(ValueError, match="one finite value per fold"):
        one_sided_p(np.array([0.1, math.nan]), 0.25, 0.0, "less")


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
