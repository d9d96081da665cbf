"""The declared protocol of the paired comparisons: the error rate, and the margins of practical equivalence.

- Declared here, before any comparison is read, so that no margin is chosen to suit a result.
- One table compares m arms with one baseline, per measure: Bonferroni over those m comparisons,
  so each comparison's interval is the corrected t interval at `level(m)` = 1 - ALPHA/m, and the
  m intervals of a measure hold together with probability at least 1 - ALPHA.
- A measure is tested once it has a margin: adding one to MARGINS adds its columns to the tables.
"""

from __future__ import annotations

import math

from scipy import stats

from ewmtcnn.evaluation.resampling import half_width

#: The family-wise error rate of one table's comparisons of one measure.
ALPHA = 0.05

#: Per tested score (metrics.SCORES' names), the largest difference, arm - baseline, of no practical importance.
MARGINS: dict[str, float] = {
    # ±0.01: about 4% of the 0.257 gap in KL between the mean-distribution baseline and the model,
    # and a quarter of the 0.04 between two published Emotion6 methods (SSDL 0.40, StyleEDL 0.36).
    "kl": 0.01,
    # ±0.02: two points of accuracy.
    "acc": 0.02,
    # ±0.02: two points, as for accuracy, on the same 0-1 scale of the predicted class.
    "balanced_acc": 0.02,
    "macro_f1": 0.02,
}


def level(comparisons: int) -> float:
    """The Bonferroni-simultaneous level of the intervals of `comparisons` (m) comparisons: 1 - ALPHA/m."""
    if comparisons < 1:
        raise ValueError(f"need at least one comparison; found {comparisons}")
    return 1 - ALPHA / comparisons


def required_repeats(std: float, margin: float, comparisons: int, folds: int) -> int | None:
    """The fewest repeats R of `folds`-fold cross-validation whose expected interval half-width is under `margin`.

    - `std`: the observed sample std of the per-fold differences, taken to stay what it is with more repeats.
    - The half-width at level(m) over J = R k folds is t_{J-1} sqrt((1/J + 1/(k - 1)) std^2): it fits
      inside ±margin around a true difference of zero.
    - Its second term, n_test / n_train = 1/(k - 1), does not shrink with the repeats: when the limit
      z sqrt(1/(k - 1)) std reaches the margin, no number of repeats will do, and the answer is None.
    """
    if folds < 2 or not std >= 0 or not margin > 0:
        raise ValueError(f"need folds >= 2, std >= 0 and margin > 0; found {folds}, {std} and {margin}")
    simultaneous, ratio = level(comparisons), 1 / (folds - 1)
    if float(stats.norm.ppf((1 + simultaneous) / 2)) * math.sqrt(ratio) * std >= margin:
        return None

    def fits(repeats: int) -> bool:
        return half_width(std, repeats * folds, ratio, simultaneous) < margin

    repeats = 1
    while not fits(repeats):  # ends: the half-width falls towards the limit, which is under the margin
        repeats *= 2
    low = repeats // 2  # the largest count known not to fit (0: none tried)
    while repeats - low > 1:  # the half-width falls with the repeats: bisect
        middle = (low + repeats) // 2
        repeats, low = (middle, low) if fits(middle) else (repeats, middle)
    return repeats
