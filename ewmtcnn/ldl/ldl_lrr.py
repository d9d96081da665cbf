"""LDL-LRR: SA-BFGS's softmax-linear model with a ranking loss that keeps the order of each pair of emotions.

- Jia, Shen, Li, Lu and Zhu, "Label distribution learning by maintaining label ranking relation",
  IEEE TKDE 35(2):1695-1707, 2023 (online 2021).
- The paper's text was not at hand; the ranking term follows its co-author Yunan Lu's public
  re-implementation (github.com/yunan-ML/LDL-LRR) and PyLDL's LDL_LRR (python-ldl 0.1.2), which agree:
  for each image i and pair of emotions j < k, a RankNet loss
      l_ijk = -P_ijk ln s(S (p_ij - p_ik)) - (1 - P_ijk) ln s(S (p_ik - p_ij)),
  with s the logistic function, S = 100, target order P_ijk = 1, 0 or 1/2 as d_ij >, < or = d_ik, weighted
  by w_ijk = (d_ij - d_ik)^2 (pairs with equal targets weigh 0).
- Objective implemented:
      mean_i KL(d_i || p_i) + alpha mean_i sum_{j<k} w_ijk l_ijk + l2 ||W||_F^2,   p_i = softmax(x_i W + b),
  the bias unpenalised, by L-BFGS-B from zero (`sa_bfgs.fit_softmax`); alpha = 0 is SA-BFGS exactly.
- Scale: the re-implementation sums the cross-entropy over images, divides the ranking sum over ordered
  pairs by 2n and adds beta / 2 ||(W, b)||^2; dividing it by n gives this objective with alpha = lambda / n
  and l2 = beta / (2 n) (up to the entropy of the targets, a constant, and its penalty on b).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ewmtcnn.ldl.common import Method, Value, check_training
from ewmtcnn.ldl.sa_bfgs import L2_GRID, Extra, Softmax, fit_softmax

NAME = "ldl_lrr"
SHARPNESS = 100.0  # S: the slope of the pairwise logistic, as in the re-implementation and PyLDL
#: The ranking weights, weakest first (the nearest to SA-BFGS is the simplest). On Emotion6 1e-3 leaves
#: SA-BFGS's KL unchanged (to 1e-3) and 1 costs 0.02-0.03 of KL: from negligible to dominant.
ALPHA_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)


def ranking(d: np.ndarray, alpha: float) -> Extra:
    """alpha mean_i sum_{j<k} w_ijk l_ijk as a function of the predictions p (n, c): its value and gradient in p.

    - Over ordered pairs the sum counts each pair twice (l_ijk = l_ikj, w_ijk = w_ikj), hence the halving.
    - d l_ijk / d p_ij = S (s(S (p_ij - p_ik)) - P_ijk), and each pair's gradient in p_ik is its negative.
    """
    gap = d[:, :, None] - d[:, None, :]
    order = np.where(gap > 0, 1.0, np.where(gap < 0, 0.0, 0.5))
    weight = gap**2
    n = len(d)

    def term(p: np.ndarray) -> tuple[float, np.ndarray]:
        margin = SHARPNESS * (p[:, :, None] - p[:, None, :])
        # -ln s(m) = ln(1 + e^-m), written with logaddexp so that no exp overflows
        loss = order * np.logaddexp(0, -margin) + (1 - order) * np.logaddexp(0, margin)
        value = alpha / (2 * n) * float((weight * loss).sum())
        slope = weight * SHARPNESS * (expit(margin) - order)
        return value, alpha / n * slope.sum(axis=2)

    return term


def fit(x: np.ndarray, d: np.ndarray, value: Value) -> Softmax:
    """LDL-LRR with `value` = (l2, alpha)."""
    x, d = check_training(NAME, x, d)
    l2, alpha = value
    return fit_softmax(NAME, x, d, l2, ranking(d, alpha))


METHOD = Method(NAME, {"l2": L2_GRID, "alpha": ALPHA_GRID}, fit)
