"""The paired tests against the baseline (ewmtcnn.statistics): arithmetic by hand, the binomial
distribution and SciPy as references, on small prediction tables made here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ewmtcnn import InputError
from ewmtcnn.statistics import compare, holm, paired, verdict

EMOTIONS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]


def prediction_table(true: list[list[float]], pred: list[list[float]]) -> pd.DataFrame:
    """A metrics/predictions.csv table over images x/0.jpg, x/1.jpg, ... in two folds, labelled
    with the argmax of `true` (emotions: the first len(true[0]) of EMOTIONS)."""
    emotions = EMOTIONS[: len(true[0])]
    frame = pd.DataFrame(
        {
            "image": [f"x/{i}.jpg" for i in range(len(true))],
            "fold": [i % 2 for i in range(len(true))],
            "label": [emotions[int(np.argmax(t))] for t in true],
        }
    )
    for prefix, rows in (("true", true), ("pred", pred)):
        for j, e in enumerate(emotions):
            frame[f"{prefix}_{e}"] = [r[j] for r in rows]
    return frame


def test_holm_by_hand() -> None:
    # Sorted: .005 x 4 = .02; .01 x 3 = .03; .03 x 2 = .06; .04 x 1 = .04 -> raised to .06 (monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-12)
    # .5 x 2 = 1.0 (capped at 1), .6 x 1 = .6 -> raised to 1.0.
    assert holm([0.6, 0.5]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2] and holm([]) == []


def test_mcnemar_against_the_binomial_distribution() -> None:
    """10 discordant images, 8 gained and 2 lost: under H0 each discordant image is a fair coin,
    so the two-sided exact p is twice the tail P(X <= 2), X ~ Binomial(10, 1/2)."""
    gained, lost, both_right, both_wrong = 8, 2, 5, 3
    right, wrong = [0.8, 0.2], [0.2, 0.8]  # true class anger
    n = gained + lost + both_right + both_wrong
    before = [wrong] * gained + [right] * lost + [right] * both_right + [wrong] * both_wrong
    after = [right] * gained + [wrong] * lost + [right] * both_right + [wrong] * both_wrong
    true = [[1.0, 0.0]] * n
    result = paired(prediction_table(true, before), prediction_table(true, after))
    discordant = gained + lost
    tail = sum(math.comb(discordant, k) for k in range(lost + 1)) / 2**discordant
    assert result["acc_p"] == pytest.approx(2 * tail, rel=1e-12)
    assert (result["acc_gained"], result["acc_lost"]) == (8, 2)
    assert result["acc_diff"] == pytest.approx((8 - 2) / n, rel=1e-12)


def test_paired_kl_by_hand_and_wilcoxon_against_scipy() -> None:
    # Images 0-5: one-hot truth (0 ln 0 = 0 elsewhere), so KL = -ln q_true. Image 6: two-hot.
    base_q = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    variant_q = [0.8, 0.25, 0.9, 0.6, 0.45, 0.7]
    true = [[1.0, 0.0]] * 6 + [[0.5, 0.5]]
    before = [[q, 1 - q] for q in base_q] + [[0.5, 0.5]]
    after = [[q, 1 - q] for q in variant_q] + [[0.25, 0.75]]
    by_hand = [math.log(0.5 / q) for q in variant_q]  # -ln q_variant - (-ln 0.5)
    # Image 6: 0.5 ln(0.5 / 0.25) + 0.5 ln(0.5 / 0.75) - 0, the baseline being exact.
    by_hand.append(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    baseline = prediction_table(true, before)
    variant = prediction_table(true, after).sample(frac=1, random_state=0)  # aligned by image, not row
    result = paired(baseline, variant)
    assert result["images"] == 7
    assert result["kl_diff"] == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert result["kl_p"] == pytest.approx(stats.wilcoxon(by_hand).pvalue, rel=1e-12)


def test_identical_predictions_give_p_one() -> None:
    frame = prediction_table([[0.7, 0.3], [0.2, 0.8]], [[0.6, 0.4], [0.4, 0.6]])
    result = paired(frame, frame.copy())
    assert (result["kl_diff"], result["kl_p"], result["acc_diff"], result["acc_p"]) == (0.0, 1.0, 0.0, 1.0)


def test_paired_refuses_tables_of_other_images_or_folds() -> None:
    frame = prediction_table([[0.7, 0.3], [0.2, 0.8]], [[0.6, 0.4], [0.4, 0.6]])
    with pytest.raises(InputError, match="cover different images"):
        paired(frame, frame.assign(image=["x/0.jpg", "y/1.jpg"]))
    with pytest.raises(InputError, match="differ in fold"):
        paired(frame, frame.assign(fold=[1, 0]))
    with pytest.raises(InputError, match="more than once"):
        paired(frame, frame.assign(image="x/0.jpg"))
    with pytest.raises(InputError, match="KL is infinite"):
        paired(frame, frame.assign(pred_anger=[0.0, 0.4], pred_disgust=[1.0, 0.6]))


def test_compare_holm_adjusts_each_measure_over_the_other_arms() -> None:
    rng = np.random.default_rng(1)
    true = rng.dirichlet(np.ones(3), 40)
    tables = {
        arm: prediction_table(true.tolist(), (mix * true + (1 - mix) * rng.dirichlet(np.ones(3), 40)).tolist())
        for arm, mix in (("b", 0.9), ("none", 0.5), ("c", 0.5), ("d", 0.2))
    }
    results = compare(tables, "none")
    assert list(results) == ["b", "c", "d"]
    for measure in ("kl", "acc"):
        raw = [results[arm][f"{measure}_p"] for arm in results]
        assert [results[arm][f"{measure}_p_holm"] for arm in results] == holm(raw)
        assert all(results[arm][f"{measure}_p_holm"] >= results[arm][f"{measure}_p"] for arm in results)
    for arm in results:  # each arm against the baseline, in that direction
        assert {k: v for k, v in results[arm].items() if not k.endswith("_holm")} == paired(tables["none"], tables[arm])
    assert results["b"]["kl_diff"] < 0 < results["d"]["kl_diff"]  # closer to the truth than the baseline, and further


def test_verdict() -> None:
    assert verdict(-0.02, 0.01, lower_is_better=True) == "helps"
    assert verdict(-0.02, 0.01, lower_is_better=False) == "hurts"
    assert verdict(0.02, 0.049, lower_is_better=False) == "helps"
    assert verdict(0.02, 0.05, lower_is_better=False) == "no measurable difference"
