"""Geng's PT-Bayes: each image becomes c weighted single-label examples for a Gaussian Bayes classifier.

- Geng, "Label Distribution Learning", IEEE TKDE 28(7):1734-1748, 2016, section 4.1.
- Problem transformation: image i with target d_i counts as an example of emotion j with weight d_ij
  (exactly, not by resampling).
- Class-conditional model: one Gaussian per emotion, as in Geng, with a diagonal covariance of its own
  (a full one is singular with about as many features as images): the weighted mean and the weighted
  (biased) variance of each feature, plus `var_smoothing` times the largest feature variance, as in
  scikit-learn's GaussianNB (fitting GaussianNB on the c-fold repeated images with these sample weights
  gives the same model; the tests check it).
- Prior of emotion j: its mean target probability. Prediction: the posterior over the emotions.
- In hundreds of dimensions the posterior is nearly one-hot unless the variances are large: `var_smoothing`
  acts as a temperature, and its grid reaches far above GaussianNB's default of 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from ewmtcnn import InputError
from ewmtcnn.ldl.common import Method, Value, check_features, check_training, positive

NAME = "pt_bayes"
#: The variance smoothing grid, in units of the largest feature variance (1 for standardised features),
#: strongest first, in half decades. As it grows the posterior tends to the prior, the mean training target.
#: On Emotion6 (1270 training images) 5-fold inner CV picks 100 for the 1280 Lite0 features and 300 for 256
#: whitened PCA components, a little better than the prior; below about 30 the KL explodes.
VAR_SMOOTHING_GRID: tuple[float, ...] = (1e5, 3e4, 1e4, 3e3, 1e3, 3e2, 1e2, 3e1, 1e1, 3.0, 1.0)


@dataclass(frozen=True)
class GaussianBayes:
    """Each emotion's prior, and the mean and variance of each feature given the emotion, (c,) and (c, d)."""

    log_prior: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The posterior over the emotions of each row of `x`, floored at `common.FLOOR`."""
        x = check_features(NAME, x, self.means.shape[1])
        # sum_f (x_f - mean_jf)^2 / var_jf, expanded into products: no (m, c, d) array
        precision = 1 / self.variances
        squares = x**2 @ precision.T - 2 * x @ (self.means * precision).T + (self.means**2 * precision).sum(axis=1)
        log_joint = self.log_prior - 0.5 * (np.log(2 * np.pi * self.variances).sum(axis=1) + squares)
        return positive(softmax(log_joint, axis=1))


def fit(x: np.ndarray, d: np.ndarray, value: Value) -> GaussianBayes:
    """PT-Bayes with `value` = (var_smoothing,), a non-negative number."""
    x, d = check_training(NAME, x, d)
    (var_smoothing,) = value
    if not var_smoothing >= 0:
        raise InputError(f"ldl {NAME}: var_smoothing must be non-negative; found {var_smoothing}")
    mass = d.sum(axis=0)
    if (mass == 0).any():
        raise InputError(
            f"ldl {NAME}: emotions {np.flatnonzero(mass == 0).tolist()} have no probability in any training target"
        )
    means = d.T @ x / mass[:, None]
    spread = np.stack([d[:, j] @ (x - means[j]) ** 2 for j in range(d.shape[1])]) / mass[:, None]
    variances = spread + var_smoothing * x.var(axis=0).max()
    if not (variances > 0).all():
        raise InputError(f"ldl {NAME}: a feature is constant within an emotion; set var_smoothing above 0")
    return GaussianBayes(np.log(mass / len(x)), means, variances)


METHOD = Method(NAME, {"var_smoothing": VAR_SMOOTHING_GRID}, fit)
