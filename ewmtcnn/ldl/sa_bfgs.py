"""Geng's SA-BFGS: a maximum-entropy (softmax of a linear map) model fitted to the target distributions by L-BFGS.

- Geng, "Label Distribution Learning", IEEE TKDE 28(7):1734-1748, 2016, section 4.3.
- Model: p(x) = softmax(x W + b), with W (d, c) and b (c,).
- Objective: mean over images of KL(d_i || p(x_i)) + l2 ||W||_F^2, the bias unpenalised. Geng's original has
  no penalty; with about as many features as images it needs one, and `l2` is the hyperparameter.
- With one-hot targets this is multinomial logistic regression: scikit-learn's LogisticRegression (lbfgs),
  whose objective C sum_i CE_i + ||W||^2 / 2 is n C times ours at C = 1 / (2 n l2) (the tests check it).
- Fitted by scipy's L-BFGS-B with the analytic gradient from W = 0, b = 0: the same inputs give the same bits.
- `ldl_lrr` adds its ranking term to this objective through `extra`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax, xlogy

from ewmtcnn.ldl.common import Method, Value, check_features, check_training, one_blas_thread, positive

NAME = "sa_bfgs"
#: The penalty grid, strongest first, in half decades. On Emotion6 (1270 training images) 5-fold inner CV
#: picks 0.3 for the 1280 standardised Lite0 features (correlated: large variance along their leading
#: directions) and 0.03 for 256 whitened PCA components: 1.5 decades or more inside each edge.
L2_GRID: tuple[float, ...] = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3)
MAX_ITERATIONS = 10_000  # far above what the grid needs on Emotion6 (about 400 iterations at l2 = 1e-3)
GTOL = 1e-8  # largest gradient entry at the optimum; the objective is a mean, of order 1
FTOL = 1e-14  # relative decrease per step below which L-BFGS-B stops: near double precision
HISTORY = 20  # L-BFGS memory: 10-25% fewer iterations on Emotion6 than scipy's default of 10

#: An extra term of the objective as a function of the predicted distributions: its value and gradient in p.
Extra = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Softmax:
    """A fitted softmax-linear model of method `name`, and whether L-BFGS-B reported convergence."""

    name: str
    weights: np.ndarray
    bias: np.ndarray
    converged: bool
    iterations: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """softmax(x W + b), floored at `common.FLOOR`."""
        x = check_features(self.name, x, len(self.weights))
        return positive(softmax(x @ self.weights + self.bias, axis=1))


def objective(
    theta: np.ndarray, x: np.ndarray, d: np.ndarray, l2: float, extra: Extra | None = None
) -> tuple[float, np.ndarray]:
    """Mean KL(d || p) + l2 ||W||^2 (+ extra(p)) and its gradient in theta, the flat (W, b) with p = softmax(x W + b).

    - The gradient of the mean KL in the logits is (p - d) / n; an extra term's gradient g in p reaches the
      logits as p * (g - <p, g>) (the softmax Jacobian).
    """
    n, c = d.shape
    weights, bias = theta[:-c].reshape(-1, c), theta[-c:]
    log_p = log_softmax(x @ weights + bias, axis=1)
    p = np.exp(log_p)
    value = float((xlogy(d, d) - d * log_p).sum() / n + l2 * (weights**2).sum())
    residual = (p - d) / n
    if extra is not None:
        extra_value, gradient = extra(p)
        value += extra_value
        residual += p * (gradient - (p * gradient).sum(axis=1, keepdims=True))
    return value, np.concatenate([(x.T @ residual + 2 * l2 * weights).ravel(), residual.sum(axis=0)])


def fit_softmax(name: str, x: np.ndarray, d: np.ndarray, l2: float, extra: Extra | None = None) -> Softmax:
    """Method `name`'s softmax-linear model minimising `objective` on checked inputs, by L-BFGS-B from zero.

    - On one BLAS thread (see `common`): L-BFGS makes hundreds of thin products.
    """
    c = d.shape[1]
    with one_blas_thread():
        result = minimize(
            objective,
            np.zeros((x.shape[1] + 1) * c),
            args=(x, d, l2, extra),
            jac=True,
            method="L-BFGS-B",
            options={
                "maxiter": MAX_ITERATIONS,
                "maxfun": 2 * MAX_ITERATIONS,
                "gtol": GTOL,
                "ftol": FTOL,
                "maxcor": HISTORY,
            },
        )
    theta = result.x
    return Softmax(name, theta[:-c].reshape(-1, c), theta[-c:].copy(), bool(result.success), int(result.nit))


def fit(x: np.ndarray, d: np.ndarray, value: Value) -> Softmax:
    """SA-BFGS with penalty `value` = (l2,)."""
    x, d = check_training(NAME, x, d)
    (l2,) = value
    return fit_softmax(NAME, x, d, l2)


METHOD = Method(NAME, {"l2": L2_GRID}, fit)
