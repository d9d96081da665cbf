"""What every LDL method shares: the input checks, the KL measure, strictly positive outputs, a method's entry.

- Features are (n, d) floats, already standardised by the caller; target distributions are (n, c) rows that
  are non-negative and sum to 1. Everything is computed in float64.
- A bad input raises one `InputError` that names the method and the first problem found.
- Fitting and selection run on one BLAS thread (`one_blas_thread`): the products are thin, (n, d) by (d, c <= 7),
  and memory-bound; a second thread made them 4-25x slower on a busy 2-core machine, and one thread gives the
  same bits on any machine.
- KL is the project's: KL(target || predicted) summed over emotions, per image (0 ln 0 = 0), as in
  `ewmtcnn.evaluation.metrics` (the tests check that the two agree); written here so that `ldl` imports no
  other subpackage.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from ewmtcnn import InputError

#: How far a target row's sum may be from 1: above the labels' six-digit rounding (2e-6), far below a mistake.
SUM_TOLERANCE = 1e-4
#: The smallest predicted probability: keeps KL(target || predicted) finite where a method predicts 0.
FLOOR = 1e-12

#: One point of a method's grid: a value for each of its hyperparameters, in the order of `Method.axes`.
Value = tuple[float, ...]


class Predictor(Protocol):
    """A fitted method: predicted distributions for new features."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(m, c) distributions for the (m, d) features `x`: rows sum to 1, every entry strictly positive."""
        ...


@dataclass(frozen=True)
class Method:
    """One LDL method of the registry: its name, its hyperparameters' grids, and how to fit it at one grid point.

    - `axes` maps each hyperparameter to its grid, ordered from the simplest (most regularised) value to the
      most flexible one: a tie in selection goes to the earlier value.
    - `fit(x, d, value)` checks its inputs and returns a `Predictor`.
    """

    name: str
    axes: Mapping[str, tuple[float, ...]]
    fit: Callable[[np.ndarray, np.ndarray, Value], Predictor]

    @property
    def grid(self) -> tuple[Value, ...]:
        """Every point of the grid: the product of the axes, the first axis varying slowest."""
        return tuple(itertools.product(*self.axes.values()))


def check_training(method: str, x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, d) and target distributions (n, c) as float64, the rows of `d` renormalised to sum to exactly 1.

    - Refused: not 2-D, no image, fewer than 2 emotions, a different number of rows, NaN or infinite
      entries, negative probabilities, rows whose sum is off 1 by more than `SUM_TOLERANCE`.
    """
    x = check_features(method, x)
    d = _floats(method, "target distributions", d)
    if d.shape[0] != x.shape[0] or d.shape[1] < 2:
        raise InputError(
            f"ldl {method}: need one target distribution over at least 2 emotions per image; "
            f"found features {x.shape} and targets {d.shape}"
        )
    if (d < 0).any():
        raise InputError(f"ldl {method}: target distributions have {int((d < 0).sum())} negative entries")
    sums = d.sum(axis=1)
    if (off := np.abs(sums - 1) > SUM_TOLERANCE).any():
        row = int(np.argmax(off))
        raise InputError(
            f"ldl {method}: {int(off.sum())} target distributions do not sum to 1 "
            f"(row {row} sums to {sums[row]:.6g}; tolerance {SUM_TOLERANCE:g})"
        )
    return x, d / sums[:, None]


def check_features(method: str, x: np.ndarray, width: int | None = None) -> np.ndarray:
    """Features as a float64 (n, d) array with n >= 1, all finite, and d == `width` where given."""
    x = _floats(method, "features", x)
    if width is not None and x.shape[1] != width:
        raise InputError(f"ldl {method}: features have {x.shape[1]} columns; the method was fitted on {width}")
    return x


def _floats(method: str, what: str, array: np.ndarray) -> np.ndarray:
    try:
        array = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InputError(f"ldl {method}: {what} are not numbers ({error})") from None
    if array.ndim != 2 or 0 in array.shape:
        raise InputError(f"ldl {method}: {what} must be a non-empty 2-D array; found shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"ldl {method}: {what} contain {int((~np.isfinite(array)).sum())} NaN or infinite entries")
    return array


def one_blas_thread() -> threadpool_limits:
    """A context in which NumPy's and SciPy's BLAS use a single thread."""
    return threadpool_limits(limits=1, user_api="blas")


def positive(q: np.ndarray) -> np.ndarray:
    """Distributions `q` with every entry raised to at least `FLOOR`, then each row renormalised to sum to 1."""
    q = np.maximum(q, FLOOR)
    return q / q.sum(axis=1, keepdims=True)


def kl(d: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(d || q) per image (shape (n,)): sum over emotions of d ln(d / q), with 0 ln 0 = 0."""
    ratio = np.divide(d, q, out=np.ones_like(d), where=d > 0)
    return (d * np.log(ratio)).sum(axis=1)
