"""Choosing a method's hyperparameters by inner k-fold cross-validation on the training images alone.

- Inner folds: scikit-learn's KFold(inner_folds, shuffle=True, random_state=seed) over the training rows.
- Each grid point is fitted on all inner folds but one and scored on that one by the mean KL(target ||
  predicted) over its images; its validation score is the mean of those fold scores.
- The lowest score wins; a tie (scores within `TIE`) goes to the point listed first, the simpler or more
  regularised one (`Method.axes` orders each grid that way).
- The winner is refitted on every training image; the held-out images are never seen.
- All on one BLAS thread (see `common`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold

from ewmtcnn import InputError
from ewmtcnn.ldl.common import Method, Predictor, Value, check_training, kl, one_blas_thread

INNER_FOLDS = 5  # as in the outer cross-validation: 80% of the training images fit each inner model
TIE = 1e-12  # mean KLs closer than this are equal: far above their rounding (~1e-16), far below a real difference


@dataclass(frozen=True)
class Selected:
    """The outcome of `select`.

    - `value`: the chosen grid point, one value per hyperparameter of `names`; `params` pairs them.
    - `curve`: every grid point's mean inner validation KL, in grid order.
    - `boundary`: the hyperparameters whose chosen value is the first or last of their grid (an optimum
      may lie beyond it); empty when the choice is interior. A grid of one value is never a boundary.
    - `predictor`: the method at `value`, refitted on all the training images.
    """

    method: str
    names: tuple[str, ...]
    value: Value
    curve: dict[Value, float]
    boundary: tuple[str, ...]
    predictor: Predictor

    @property
    def params(self) -> dict[str, float]:
        """The chosen value of each hyperparameter by name."""
        return dict(zip(self.names, self.value, strict=True))


def select(
    method: Method,
    x: np.ndarray,
    d: np.ndarray,
    *,
    axes: Mapping[str, Sequence[float]] | None = None,
    inner_folds: int = INNER_FOLDS,
    seed: int = 0,
) -> Selected:
    """Pick `method`'s grid point by inner cross-validation on the training features `x` and targets `d`, and refit.

    - `axes` replaces the method's grids (the same hyperparameters, each with at least one value).
    - Same inputs and seed, same result to the bit.
    """
    x, d = check_training(method.name, x, d)
    axes = {name: tuple(values) for name, values in (method.axes if axes is None else axes).items()}
    if list(axes) != list(method.axes) or not all(axes.values()):
        raise InputError(
            f"ldl {method.name}: need a non-empty grid for each of {list(method.axes)}; found {list(axes)}"
        )
    if not 2 <= inner_folds <= len(x):
        raise InputError(f"ldl {method.name}: need 2 to {len(x)} inner folds for {len(x)} images; found {inner_folds}")
    grid = list(itertools.product(*axes.values()))
    scores = np.zeros((inner_folds, len(grid)))
    with one_blas_thread():
        for f, (fit_rows, score_rows) in enumerate(KFold(inner_folds, shuffle=True, random_state=seed).split(x)):
            for g, value in enumerate(grid):
                predicted = method.fit(x[fit_rows], d[fit_rows], value).predict(x[score_rows])
                scores[f, g] = kl(d[score_rows], predicted).mean()
        curve = scores.mean(axis=0)
        best = grid[int(np.flatnonzero(curve <= curve.min() + TIE)[0])]
        predictor = method.fit(x, d, best)
    boundary = tuple(
        name
        for (name, values), chosen in zip(axes.items(), best, strict=True)
        if len(values) > 1 and chosen in (values[0], values[-1])
    )
    return Selected(
        method.name,
        tuple(axes),
        best,
        {value: float(score) for value, score in zip(grid, curve, strict=True)},
        boundary,
        predictor,
    )
