"""The emotion wheel and the prior layer's initial matrices (ewmtcnn.model.wheel).

The expected wheel prior is the 6x6 matrix worked out, to 6 decimals and independently of this
code, from the paper's definition (a Gaussian of the steps between two emotions on Mikels'
wheel, sigma 0.6, rows normalised); other expectations are worked out by hand or by
numpy/PyTorch directly; `spectrum` is checked by its properties (singular values, orthogonality,
moments over many seeds), measured with numpy's own SVD and eigenvalue routines.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from ewmtcnn import InputError
from ewmtcnn.data.dataset import EMOTIONS
from ewmtcnn.model.wheel import INITS, correlation_prior, prior_matrix, wheel_distance, wheel_prior

# Rows and columns in Emotion6 order: anger, disgust, fear, joy, sadness, surprise.
PAPER_PRIOR = np.array(
    [
        [0.665523, 0.165950, 0.000002, 0.165950, 0.002573, 0.000002],
        [0.165525, 0.663818, 0.002566, 0.002566, 0.165525, 0.000000],
        [0.000003, 0.003075, 0.795489, 0.000000, 0.198357, 0.003075],
        [0.198357, 0.003075, 0.000000, 0.795489, 0.000003, 0.003075],
        [0.002573, 0.165950, 0.165950, 0.000002, 0.665523, 0.000002],
        [0.000004, 0.000000, 0.003836, 0.003836, 0.000004, 0.992320],
    ]
)

# Six columns whose correlations with column 0 are known by hand (4 images):
#   col 0 = 1,2,3,4 (deviations -1.5,-0.5,0.5,1.5);  col 1 = 2 x col 0 -> +1;  col 2 reversed -> -1;
#   col 3 = 1,0,0,1 (deviations .5,-.5,-.5,.5): products -.75+.25-.25+.75 = 0 -> 0;
#   col 4 = 1,1,2,2 (deviations -.5,-.5,.5,.5): products sum 2, norms sqrt(5) and 1 -> 2/sqrt(5).
HAND = np.array(
    [
        [1, 2, 4, 1, 1, 0.3],
        [2, 4, 3, 0, 1, 0.1],
        [3, 6, 2, 0, 2, 0.4],
        [4, 8, 1, 1, 2, 0.2],
    ],
    dtype=np.float64,
)
CORR_INITS = ("corr", "corr_softmax", "corr_log_softmax")
SIGMAS = (0.3, 0.6, 1.0, 5.0)


def prior(
    init: str, *, probabilities: np.ndarray | None = HAND, neutral: bool = False, seed: int = 0, sigma: float = 0.6
) -> np.ndarray | None:
    return prior_matrix(init, sigma=sigma, probabilities=probabilities, neutral=neutral, seed=seed)


@pytest.mark.parametrize(
    "a,b,steps",
    [
        ("fear", "fear", 0),
        ("fear", "sadness", 1),
        ("fear", "excitement", 1),  # across the wrap-around, not 7 steps
        ("fear", "disgust", 2),
        ("fear", "anger", 3),
        ("fear", "amusement", 4),  # opposite: 4 either way
        ("fear", "contentment", 3),
        ("fear", "awe", 2),
        ("anger", "amusement", 1),
        ("sadness", "awe", 3),
        ("disgust", "awe", 4),
        ("excitement", "sadness", 2),
    ],
)
def test_wheel_distance_by_hand(a: str, b: str, steps: int) -> None:
    assert wheel_distance(a, b) == steps
    assert wheel_distance(b, a) == steps


def test_wheel_distance_unknown_emotion() -> None:
    with pytest.raises(InputError, match="'joy' is not on Mikels' wheel"):
        wheel_distance("joy", "fear")  # an Emotion6 name, not a wheel name


def test_wheel_prior_matches_the_paper_table() -> None:
    w = wheel_prior(EMOTIONS, 0.6)
    assert w.shape == (6, 6) and w.dtype == np.float64
    np.testing.assert_array_equal(np.round(w, 6), PAPER_PRIOR)
    np.testing.assert_array_equal(prior("original"), w)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_wheel_prior_rows_sum_to_one(sigma: float) -> None:
    w = wheel_prior(sigma=sigma)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # The emotion itself always weighs most in its own row.
    assert (w.argmax(axis=1) == np.arange(6)).all()


def test_wheel_prior_follows_the_given_order() -> None:
    order = ("surprise", "anger", "joy")
    w = wheel_prior(order)
    # surprise=awe, anger, joy=amusement: distances awe-anger 3, awe-amusement 2, anger-amusement 1.
    d = np.array([[0, 3, 2], [3, 0, 1], [2, 1, 0]])
    g = np.exp(-(d**2) / (2 * 0.6**2))
    np.testing.assert_allclose(w, g / g.sum(axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize(
    "emotions,sigma,message",
    [
        (("anger", "neutral"), 0.6, "'neutral' not on the emotion wheel"),
        (EMOTIONS, 0.0, "sigma must be positive"),
    ],
)
def test_wheel_prior_bad_input(emotions: tuple[str, ...], sigma: float, message: str) -> None:
    with pytest.raises(InputError, match=message):
        wheel_prior(emotions, sigma)


def test_none_has_no_prior_layer() -> None:
    assert prior("none") is None
    assert prior("none", neutral=True) is None


def test_eye_is_identity() -> None:
    np.testing.assert_array_equal(prior("eye"), np.eye(6))


@pytest.mark.parametrize("init", [i for i in INITS if i != "none"])
def test_neutral_is_its_own_node(init: str) -> None:
    six, seven = prior(init, neutral=False), prior(init, neutral=True)
    assert six.shape == (6, 6) and seven.shape == (7, 7)
    assert six.dtype == seven.dtype == np.float64
    np.testing.assert_array_equal(seven[:6, :6], six)
    np.testing.assert_array_equal(seven[6], [0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(seven[:, 6], [0, 0, 0, 0, 0, 0, 1])


def test_rand_is_reproducible_and_seeded() -> None:
    first, again, other = prior("rand", seed=7), prior("rand", seed=7), prior("rand", seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_rand_is_pytorch_linear_default() -> None:
    # kaiming_uniform_(a=sqrt 5): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in) = 1/sqrt(6).
    bound = 1 / math.sqrt(6)
    w = prior("rand", seed=3)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.8 * bound  # spread over the range, not a narrower distribution
    # The same draw that nn.Linear makes itself from a generator seeded alike.
    with torch.random.fork_rng():
        torch.manual_seed(3)
        linear = torch.nn.Linear(6, 6, bias=False)
    np.testing.assert_array_equal(w, linear.weight.detach().double().numpy())


def singular_values(w: np.ndarray) -> np.ndarray:
    return np.linalg.svd(w, compute_uv=False)


@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_spectrum_has_the_wheels_singular_values(sigma: float, seed: int) -> None:
    w, wheel = prior("spectrum", sigma=sigma, seed=seed), wheel_prior(EMOTIONS, sigma)
    assert w.shape == (6, 6) and w.dtype == np.float64
    s = singular_values(wheel)
    np.testing.assert_allclose(singular_values(w), s, rtol=0, atol=1e-12)
    # Independently of any SVD: the Frobenius norm (root sum of squares) is the wheel's.
    assert math.isclose(math.sqrt((w**2).sum()), math.sqrt((wheel**2).sum()), rel_tol=1e-13)
    # W W^T = U diag(s^2) U^T and W^T W = V diag(s^2) V^T have the eigenvalues s^2 only if U and V are orthogonal.
    np.testing.assert_allclose(np.linalg.eigvalsh(w @ w.T)[::-1], s**2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(w.T @ w)[::-1], s**2, rtol=0, atol=1e-12)
    u, found, vt = np.linalg.svd(w)
    np.testing.assert_allclose(u.T @ u, np.eye(6), rtol=0, atol=1e-12)
    np.testing.assert_allclose(vt @ vt.T, np.eye(6), rtol=0, atol=1e-12)
    np.testing.assert_allclose(u @ np.diag(found) @ vt, w, rtol=0, atol=1e-12)


def test_spectrum_follows_sigma() -> None:
    narrow, wide = prior("spectrum", sigma=0.3), prior("spectrum", sigma=1.0)
    assert singular_values(wide)[-1] < singular_values(narrow)[-1] - 0.1  # a wider wheel mixes more


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_spectrum_has_not_the_wheels_structure(seed: int) -> None:
    w, wheel = prior("spectrum", seed=seed), wheel_prior()
    assert np.abs(w - wheel).max() > 0.1
    assert np.abs(w - w.T).max() > 0.1  # the wheel is nearly symmetric; a random rotation of it is not
    assert (w < 0).any()  # the wheel's weights are all positive
    # Neither its left nor its right singular vectors are the wheel's (up to sign and order).
    u, _, vt = np.linalg.svd(w)
    u_wheel, _, vt_wheel = np.linalg.svd(wheel)
    assert np.abs(u.T @ u_wheel).max() < 0.95
    assert np.abs(vt @ vt_wheel.T).max() < 0.95


def test_spectrum_is_reproducible_and_seeded() -> None:
    first, again, other = prior("spectrum", seed=7), prior("spectrum", seed=7), prior("spectrum", seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # A pin of seed 0's draw (not an independent expectation): the same bits on any machine, as long as
    # numpy's Generator draws as numpy 2.4 does (requirements.lock) and the wheel itself is bit-identical.
    assert prior("spectrum", seed=0)[0].tolist() == [
        0.024344849483794145,
        -0.17317320261952246,
        0.1464520300886983,
        0.3165305720941639,
        0.5346848657384797,
        0.3679054270327673,
    ]


def test_spectrum_singular_vectors_are_haar_uniform() -> None:
    # For independent Haar-uniform Q1, Q2 and any fixed W, each entry of Q1 W Q2^T has mean 0 and mean
    # square |W|_F^2 / 36; over 1000 seeds an entry's sample mean has a standard error of about 0.01.
    draws = np.stack([prior("spectrum", seed=seed) for seed in range(1000)])
    assert np.abs(draws.mean(axis=0)).max() < 0.05
    np.testing.assert_allclose((draws**2).mean(axis=0), (wheel_prior() ** 2).sum() / 36, rtol=0.2)


def test_spectrum_with_neutral_adds_the_singular_value_one() -> None:
    seven = prior("spectrum", neutral=True, seed=5)
    s = np.sort(np.append(singular_values(wheel_prior()), 1.0))[::-1]
    np.testing.assert_allclose(singular_values(seven), s, rtol=0, atol=1e-12)


def test_corr_by_hand_and_numpy() -> None:
    c = prior("corr")
    np.testing.assert_allclose(c[0, 1:5], [1.0, -1.0, 0.0, 2 / math.sqrt(5)], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, np.corrcoef(HAND, rowvar=False), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(c, c.T)
    np.testing.assert_allclose(np.diag(c), 1.0, rtol=0, atol=1e-12)


def test_corr_softmax_variants() -> None:
    soft, log_soft = prior("corr_softmax"), prior("corr_log_softmax")
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(logsumexp(log_soft, axis=1), 0.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_soft), soft, rtol=1e-12)
    # Row-wise: each row is the softmax of the same row of corr.
    c = prior("corr")
    np.testing.assert_allclose(soft[2], np.exp(c[2]) / np.exp(c[2]).sum(), rtol=1e-12)


@pytest.mark.parametrize("init", CORR_INITS)
def test_corr_needs_training_probabilities(init: str) -> None:
    with pytest.raises(InputError, match="needs the training images' emotion probabilities"):
        prior(init, probabilities=None)


@pytest.mark.parametrize("init", CORR_INITS)
def test_corr_needs_six_columns(init: str) -> None:
    with pytest.raises(InputError, match=r"needs the 6 emotion-probability columns; found shape \(4, 5\)"):
        prior(init, probabilities=HAND[:, :5])


def test_constant_column_is_refused() -> None:
    constant = HAND.copy()
    constant[:, 3] = 0.25
    with pytest.raises(InputError, match="column 3 is constant.*training folds have no variance in it"):
        correlation_prior(constant)
    with pytest.raises(InputError, match="column 3 is constant"):
        prior("corr_softmax", probabilities=constant)


def test_unknown_init_lists_the_allowed_values() -> None:
    with pytest.raises(
        InputError,
        match="unknown prior init 'wheel'; expected one of none, original, eye, rand, spectrum, corr, corr_softmax, "
        "corr_log_softmax",
    ):
        prior("wheel")
