"""Mikels' emotion wheel and the initial matrices W of the prior layer z' = W z.

- Row i of W says how much each logit contributes to output i: a wheel prior lets neighbouring emotions
  on the wheel lend each other evidence.
- `spectrum` is its structural control: the wheel's singular values (how much a frozen W rescales each
  direction of the logit space) with random singular vectors (no emotion its wheel neighbours).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.special import log_softmax, softmax

from ewmtcnn import InputError
from ewmtcnn.config.sections import INITS
from ewmtcnn.data.dataset import EMOTIONS

#: Mikels' eight emotions, clockwise: neighbours in this tuple are neighbours on the wheel.
MIKELS_WHEEL: tuple[str, ...] = (
    "fear",
    "sadness",
    "disgust",
    "anger",
    "amusement",
    "contentment",
    "awe",
    "excitement",
)
#: Where each Emotion6 emotion sits on the wheel (as in the paper: joy -> amusement, surprise -> awe).
ON_WHEEL: dict[str, str] = {
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "joy": "amusement",
    "sadness": "sadness",
    "surprise": "awe",
}
SIGMA = 0.6  # the paper's width of the Gaussian over wheel distance


def _wheel_position(emotion: str) -> int:
    try:
        return MIKELS_WHEEL.index(emotion)
    except ValueError:
        raise InputError(f"{emotion!r} is not on Mikels' wheel; expected one of {', '.join(MIKELS_WHEEL)}") from None


def wheel_distance(a: str, b: str) -> int:
    """Steps between two wheel emotions, the shorter way round (0..4): the wheel is a circle."""
    steps = abs(_wheel_position(a) - _wheel_position(b))
    return min(steps, len(MIKELS_WHEEL) - steps)


def wheel_prior(emotions: Sequence[str] = EMOTIONS, sigma: float = SIGMA) -> np.ndarray:
    """The paper's prior: a Gaussian of wheel distance, each row normalised to sum to 1.

    `emotions` are Emotion6 names (mapped through ON_WHEEL); the result follows their order.
    """
    if not sigma > 0:
        raise InputError(f"sigma must be positive; found {sigma}")
    unknown = [e for e in emotions if e not in ON_WHEEL]
    if unknown:
        raise InputError(
            f"{', '.join(map(repr, unknown))} not on the emotion wheel; expected some of {', '.join(ON_WHEEL)}"
        )
    d = np.array([[wheel_distance(ON_WHEEL[a], ON_WHEEL[b]) for b in emotions] for a in emotions], dtype=np.float64)
    w = np.exp(-(d**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    return w / w.sum(axis=1, keepdims=True)


def correlation_prior(probabilities: np.ndarray) -> np.ndarray:
    """Pearson correlation between the emotion-probability columns (images in rows).

    Emotions that annotators choose together get a positive weight, rivals a negative one.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] < 2:
        raise InputError(
            "emotion probabilities must be a 2-D (images, emotions) array with at least 2 images; "
            f"found shape {probabilities.shape}"
        )
    if not np.isfinite(probabilities).all():
        raise InputError("emotion probabilities contain NaN or infinite values")
    # Checked before np.corrcoef, which would only warn and return NaN.
    constant = np.flatnonzero(np.ptp(probabilities, axis=0) == 0)
    if constant.size:
        raise InputError(
            f"emotion probability column {constant[0]} is constant, so its correlation is undefined: "
            "the training folds have no variance in it"
        )
    corr = np.corrcoef(probabilities, rowvar=False)
    # np.corrcoef can differ from its transpose in the last bit; W should be exactly symmetric.
    return (corr + corr.T) / 2


def _linear_default(n: int, seed: int) -> np.ndarray:
    """nn.Linear's default weight init (kaiming_uniform_, a=sqrt(5): U(-1/sqrt(n), 1/sqrt(n))),
    from a private generator so that the draw depends on `seed` only."""
    weight = torch.empty(n, n)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=torch.Generator().manual_seed(seed))
    return weight.double().numpy()


def _haar_orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A Haar-uniform random n x n orthogonal matrix.

    - Q of the QR decomposition of a standard Gaussian matrix with R's diagonal positive (Mezzadri 2007,
      "How to generate random matrices from the classical compact groups"), which is what Gram-Schmidt
      yields, so no sign convention enters; each column is orthogonalised twice ("twice is enough"), so
      that Q is orthogonal to rounding error however ill-conditioned the draw.
    - In Python floats with exactly rounded sums (math.fsum) rather than LAPACK: a draw gives the same
      bits on any machine.
    """
    columns: list[list[float]] = []
    for draw in rng.standard_normal((n, n)).tolist():
        v = draw
        for _ in range(2):
            for q in columns:
                d = math.fsum(a * b for a, b in zip(q, v, strict=True))
                v = [a - d * b for a, b in zip(v, q, strict=True)]
        norm = math.sqrt(math.fsum(a * a for a in v))
        columns.append([a / norm for a in v])
    return np.array(columns).T


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b, each entry the exactly rounded sum of the rounded products (the same bits on any machine)."""
    return np.array(
        [[math.fsum(x * y for x, y in zip(row, col, strict=True)) for col in b.T.tolist()] for row in a.tolist()]
    )


def _same_spectrum(w: np.ndarray, seed: int) -> np.ndarray:
    """`w` with the same singular values but random singular vectors: Q1 w Q2^T, drawn from `seed`.

    - Q1, Q2 are independent Haar-uniform orthogonal matrices from numpy's Generator (PCG64) seeded
      with `seed`.
    - With w = U diag(s) V^T (its SVD) this is (Q1 U) diag(s) (Q2 V)^T: the singular values s, and
      singular vectors Q1 U, Q2 V that are themselves Haar-uniform and independent (Q1 U is distributed
      as Q1), with no SVD computed and hence none of its sign conventions.
    """
    rng = np.random.default_rng(seed)
    n = w.shape[0]
    left, right = _haar_orthogonal(rng, n), _haar_orthogonal(rng, n)
    return _product(_product(left, w), right.T)


def prior_matrix(
    init: str, *, sigma: float, probabilities: np.ndarray | None, neutral: bool, seed: int
) -> np.ndarray | None:
    """The initial W of the prior layer (float64), or None for `none` (no prior layer).

    `probabilities` are the six emotion-probability columns of the training images only
    (required by the corr variants: test images would leak their labels into W).
    `seed` draws `rand` and `spectrum` (the wheel's singular values at `sigma`, random singular vectors).
    With `neutral`, W is 7x7 and neutral (last) is its own node: it neither mixes nor is mixed.
    """
    if init not in INITS:
        raise InputError(f"unknown prior init {init!r}; expected one of {', '.join(INITS)}")
    n = len(EMOTIONS)
    if init == "none":
        return None
    if init == "original":
        block = wheel_prior(EMOTIONS, sigma)
    elif init == "eye":
        block = np.eye(n)
    elif init == "rand":
        block = _linear_default(n, seed)
    elif init == "spectrum":
        block = _same_spectrum(wheel_prior(EMOTIONS, sigma), seed)
    else:
        if probabilities is None:
            raise InputError(f"prior init {init!r} needs the training images' emotion probabilities; none were given")
        if np.ndim(probabilities) != 2 or np.shape(probabilities)[1] != n:
            raise InputError(
                f"prior init {init!r} needs the {n} emotion-probability columns; found shape {np.shape(probabilities)}"
            )
        block = correlation_prior(probabilities)
        if init == "corr_softmax":
            block = softmax(block, axis=1)
        elif init == "corr_log_softmax":
            block = log_softmax(block, axis=1)
    if not neutral:
        return block
    w = np.eye(n + 1)
    w[:n, :n] = block
    return w
