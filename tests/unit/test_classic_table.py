"""The classic methods' table: each method's held-out scores and its paired comparison with head arms, by hand.

- Every image is truly all anger, predicted anger with probability q: its KL is -ln q (checked against
  scipy's entropy) and it is right when q > 1/2.
- Two repeats of three folds over six images, two in each fold: n_test / n_train = 2 / 4.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from ewmtcnn import InputError
from ewmtcnn.study.classic import classic_table, read
from ewmtcnn.study.protocol import ALPHA, MARGINS
from support import SIX_IMAGES, anger_predictions

RATIO = 2 / 4  # n_test / n_train
#: A method's probabilities of anger, varying by image and repeat; image 1 is wrong in repeat 0.
VARYING = {
    **{(0, 0): 0.8, (0, 1): 0.3, (0, 2): 0.9, (0, 3): 0.6, (0, 4): 0.7, (0, 5): 0.65},
    **{(1, 0): 0.7, (1, 1): 0.55, (1, 2): 0.55, (1, 3): 0.9, (1, 4): 0.75, (1, 5): 0.62},
}
CONSTANT = dict.fromkeys(SIX_IMAGES, 0.6)


def per_fold(q: dict[tuple[int, int], float], score: str) -> list[float]:
    """A score of each (repeat, fold) in order: the mean over its two images of scipy's KL, or of being right."""
    values = []
    for repeat, fold in sorted({(r, f) for (r, _), f in SIX_IMAGES.items()}):
        images = [key for key, k in SIX_IMAGES.items() if key[0] == repeat and k == fold]
        if score == "kl":
            each = [stats.entropy([1.0, 0.0], [q[key], 1 - q[key]]) for key in images]
        else:
            each = [float(q[key] > 0.5) for key in images]
        values.append(sum(each) / len(each))
    return values


def corrected(values: list[float], level: float) -> tuple[float, float, float]:
    """Mean and corrected resampled t interval at `level`, written out."""
    j = len(values)
    mean = sum(values) / j
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (j - 1))
    half = stats.t.ppf((1 + level) / 2, j - 1) * math.sqrt((1 / j + RATIO) * std**2)
    return mean, mean - half, mean + half


def cells(markdown: str) -> dict[str, dict[str, str]]:
    """The table's cells by row (its first cell) and header."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, rows = split[0], split[2:]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def test_the_table_by_hand() -> None:
    """Arms `wheel` (0.6) and `none` (0.7); methods `sa_bfgs` (VARYING) and `aa_knn` (0.6, as the wheel)."""
    arms = {"wheel": anger_predictions(CONSTANT), "none": anger_predictions(dict.fromkeys(SIX_IMAGES, 0.7))}
    methods = {"sa_bfgs": anger_predictions(VARYING), "aa_knn": anger_predictions(CONSTANT)}
    got = cells(classic_table(methods, arms))
    assert list(got) == ["wheel", "none", "sa_bfgs", "aa_knn"]
    # held-out scores: mean [95% interval] over the six folds
    mean, low, high = corrected(per_fold(VARYING, "kl"), 0.95)
    assert got["sa_bfgs"]["KL"] == f"{mean:.4f} [{low:.4f}, {high:.4f}]"
    mean, low, high = corrected(per_fold(VARYING, "acc"), 0.95)
    assert got["sa_bfgs"]["acc"] == f"{mean:.3f} [{low:.3f}, {high:.3f}]"
    # one class only: balanced accuracy is its recall, the accuracy
    assert got["sa_bfgs"]["balanced acc"] == got["sa_bfgs"]["acc"]
    assert got["none"]["KL"] == f"{-math.log(0.7):.4f} [{-math.log(0.7):.4f}, {-math.log(0.7):.4f}]"
    assert got["wheel"]["ΔKL vs none"] == "-"
    # method - arm, at 1 - ALPHA / 2 for the two methods: sa_bfgs's KL against the wheel varies by fold
    level = 1 - ALPHA / 2
    kl_diff = [v - (-math.log(0.6)) for v in per_fold(VARYING, "kl")]
    mean, low, high = corrected(kl_diff, level)
    worse, better = low > 0, high < 0
    inside = -MARGINS["kl"] < low and high < MARGINS["kl"]
    verdict = "better" if better else "worse" if worse else "equivalent" if inside else "inconclusive"
    assert got["sa_bfgs"]["ΔKL vs wheel"] == f"{mean:+.4f} [{low:+.4f}, {high:+.4f}] {verdict}"
    # aa_knn predicts as the wheel: no difference at all; against none, KL higher by ln(0.7 / 0.6) in every fold
    assert got["aa_knn"]["ΔKL vs wheel"] == "+0.0000 [+0.0000, +0.0000] equivalent"
    step = math.log(0.7 / 0.6)
    assert got["aa_knn"]["ΔKL vs none"] == f"+{step:.4f} [+{step:.4f}, +{step:.4f}] worse"
    assert got["aa_knn"]["Δacc vs none"] == "+0.000 [+0.000, +0.000] equivalent"
    acc_diff = [v - 1.0 for v in per_fold(VARYING, "acc")]  # the wheel is right everywhere
    mean, low, high = corrected(acc_diff, level)
    assert got["sa_bfgs"]["Δacc vs wheel"].startswith(f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]")


def test_a_name_may_not_be_both_a_method_and_an_arm() -> None:
    with pytest.raises(InputError, match="different names"):
        classic_table({"none": anger_predictions(CONSTANT)}, {"none": anger_predictions(CONSTANT)})


def test_the_workspace_predictions_are_read_in_the_registry_order(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dvc repro classic"):
        read(tmp_path)
    written = {"pt_bayes": anger_predictions(CONSTANT), "sa_bfgs": anger_predictions(VARYING)}
    for name, predictions in written.items():
        (tmp_path / "data" / "classic" / name).mkdir(parents=True)
        predictions.to_csv(tmp_path / "data" / "classic" / name / "predictions.csv", index=False)
    found = read(tmp_path)
    assert list(found) == ["sa_bfgs", "pt_bayes"]
    for name, predictions in written.items():
        pd.testing.assert_frame_equal(found[name], predictions)
