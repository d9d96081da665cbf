"""The LDL methods on features (ewmtcnn.ldl): by hand, by finite differences, against scikit-learn and SciPy.

- Every expected number comes from an independent computation: a hand-worked example, SciPy's normal
  density, scikit-learn's LogisticRegression, GaussianNB and KFold, the project's KL measure, a loop.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import softmax
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.naive_bayes import GaussianNB

from ewmtcnn import InputError, ldl
from ewmtcnn.evaluation import metrics
from ewmtcnn.ldl import aa_knn, common, ldl_lrr, pt_bayes, sa_bfgs


def synthetic(n: int, width: int = 4, emotions: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal features and targets from a random softmax-linear model, about a third of them 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, width))
    d = softmax(x @ rng.standard_normal((width, emotions)) + rng.standard_normal((n, emotions)), axis=1)
    d[d < np.quantile(d, 0.34)] = 0
    return x, d / d.sum(axis=1, keepdims=True)


def mean_kl(d: np.ndarray, q: np.ndarray) -> float:
    """The project's KL measure (ewmtcnn.evaluation.metrics), averaged over images."""
    return float(metrics.distances(d, q)["kl"].mean())


def central_gradient(f, theta: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """The gradient of f at theta by central differences, one coordinate at a time."""
    basis = np.eye(len(theta)) * step
    return np.array([(f(theta + e) - f(theta - e)) / (2 * step) for e in basis])


# ---- the shared pieces


def test_the_kl_is_the_projects_measure() -> None:
    x, d = synthetic(50)
    q = softmax(np.random.default_rng(1).standard_normal(d.shape), axis=1)
    assert (d == 0).any()
    np.testing.assert_allclose(common.kl(d, q), metrics.distances(d, q)["kl"], rtol=1e-14)


def test_the_registry_names_each_method_and_its_grid() -> None:
    assert list(ldl.METHODS) == ["sa_bfgs", "aa_knn", "pt_bayes", "ldl_lrr"]
    assert ldl.method("ldl_lrr").grid[:2] == ((10.0, 1e-3), (10.0, 1e-2))  # l2 varies slowest
    assert len(ldl.method("ldl_lrr").grid) == len(sa_bfgs.L2_GRID) * len(ldl_lrr.ALPHA_GRID)
    with pytest.raises(InputError, match="unknown LDL method 'svm'; expected one of sa_bfgs, aa_knn"):
        ldl.method("svm")


# ---- every method: what any prediction must be, and what input is refused


def middle(method: common.Method) -> common.Value:
    """The grid point halfway down the method's grid."""
    return method.grid[len(method.grid) // 2]


@pytest.mark.parametrize("name", list(ldl.METHODS))
def test_predictions_are_strictly_positive_distributions(name: str) -> None:
    method = ldl.method(name)
    x, d = synthetic(80)
    predicted = method.fit(x, d, middle(method)).predict(synthetic(11, seed=5)[0])
    assert predicted.shape == (11, 7) and predicted.dtype == np.float64
    np.testing.assert_allclose(predicted.sum(axis=1), 1, rtol=0, atol=1e-12)
    assert (predicted > 0).all()


def test_a_zero_in_every_neighbour_is_raised_to_the_floor() -> None:
    x, d = synthetic(40)
    predicted = aa_knn.fit(x, d, (1,)).predict(x)  # each image is its own nearest neighbour
    assert (d == 0).any()
    np.testing.assert_allclose(predicted[d > 0], d[d > 0], rtol=1e-10)
    assert (predicted[d == 0] > 0).all() and (predicted[d == 0] <= common.FLOOR).all()
    assert np.isfinite(common.kl(d, predicted)).all()


def _nan_features(x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = x.copy()
    x[3, 1] = np.nan
    return x, d


def _off_sums(x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x, d * 0.99


def _negative(x: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = d.copy()
    d[0] = 0
    d[0, :2] = [1.5, -0.5]  # sums to 1
    return x, d


BAD_TRAINING = {
    "nan features": (_nan_features, r"features contain 1 NaN or infinite entries"),
    "sums off 1": (_off_sums, r"80 target distributions do not sum to 1 \(row 0 sums to 0\.99"),
    "negative": (_negative, r"target distributions have 1 negative entries"),
    "fewer targets": (lambda x, d: (x, d[:-1]), r"need one target distribution .* \(80, 4\) and targets \(79, 7\)"),
    "1-D features": (lambda x, d: (x[:, 0], d), r"features must be a non-empty 2-D array; found shape \(80,\)"),
    "text": (lambda x, d: (np.full(x.shape, "a"), d), r"features are not numbers"),
}


@pytest.mark.parametrize("name", list(ldl.METHODS))
@pytest.mark.parametrize("case", list(BAD_TRAINING))
def test_bad_training_data_is_refused_with_one_message(name: str, case: str) -> None:
    method = ldl.method(name)
    corrupt, message = BAD_TRAINING[case]
    x, d = corrupt(*synthetic(80))
    with pytest.raises(InputError, match=rf"^ldl {name}: {message}"):
        method.fit(x, d, middle(method))
    with pytest.raises(InputError, match=rf"^ldl {name}: {message}"):
        ldl.select(method, x, d)


@pytest.mark.parametrize("name", list(ldl.METHODS))
def test_bad_features_to_predict_are_refused(name: str) -> None:
    method = ldl.method(name)
    x, d = synthetic(80)
    predictor = method.fit(x, d, middle(method))
    with pytest.raises(InputError, match=rf"^ldl {name}: features have 5 columns; the method was fitted on 4$"):
        predictor.predict(np.zeros((3, 5)))
    with pytest.raises(InputError, match=rf"^ldl {name}: features contain 2 NaN or infinite entries$"):
        predictor.predict(np.array([[0, np.inf, 0, 0], [np.nan, 0, 0, 0]]))


def test_target_rows_are_renormalised_within_the_tolerance() -> None:
    x, d = synthetic(20)
    rounded = np.round(d, 6)  # as the labels table stores them: sums off 1 by up to a few 1e-6
    _, checked = common.check_training("sa_bfgs", x, rounded)
    np.testing.assert_allclose(checked.sum(axis=1), 1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(checked, rounded, atol=1e-5)


# ---- sa_bfgs


def test_sa_bfgs_objective_is_the_mean_kl_plus_the_penalty() -> None:
    x, d = synthetic(30)
    theta = np.random.default_rng(2).standard_normal((4 + 1) * 7)
    weights, bias = theta[:-7].reshape(4, 7), theta[-7:]
    value, _ = sa_bfgs.objective(theta, x, d, 0.3)
    assert value == pytest.approx(mean_kl(d, softmax(x @ weights + bias, axis=1)) + 0.3 * (weights**2).sum(), rel=1e-13)


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_sa_bfgs_gradient_matches_finite_differences(l2: float) -> None:
    x, d = synthetic(30)
    theta = np.random.default_rng(2).standard_normal((4 + 1) * 7)
    error = check_grad(lambda t: sa_bfgs.objective(t, x, d, l2)[0], lambda t: sa_bfgs.objective(t, x, d, l2)[1], theta)
    assert error < 1e-6 * np.linalg.norm(sa_bfgs.objective(theta, x, d, l2)[1])
    np.testing.assert_allclose(
        sa_bfgs.objective(theta, x, d, l2)[1],
        central_gradient(lambda t: sa_bfgs.objective(t, x, d, l2)[0], theta),
        rtol=1e-7,
        atol=1e-9,
    )


def test_sa_bfgs_converges_to_a_stationary_point() -> None:
    x, d = synthetic(200, width=6)
    model = sa_bfgs.fit(x, d, (1e-3,))
    assert model.converged and 0 < model.iterations < sa_bfgs.MAX_ITERATIONS
    _, gradient = sa_bfgs.objective(np.concatenate([model.weights.ravel(), model.bias]), x, d, 1e-3)
    assert np.abs(gradient).max() < 1e-7


@pytest.mark.parametrize("l2", [1e-3, 1e-1])
def test_sa_bfgs_on_one_hot_targets_is_multinomial_logistic_regression(l2: float) -> None:
    # scikit-learn minimises C sum_i CE_i + ||W||^2 / 2 (intercept unpenalised); ours is (1 / n) sum_i CE_i
    # + l2 ||W||^2 (KL = CE for one-hot targets). Dividing theirs by n C: l2 = 1 / (2 n C), so C = 1 / (2 n l2).
    rng = np.random.default_rng(3)
    x = rng.standard_normal((150, 5))
    labels = (x @ rng.standard_normal((5, 4)) + rng.gumbel(size=(150, 4))).argmax(axis=1)
    reference = LogisticRegression(C=1 / (2 * len(x) * l2), tol=1e-12, max_iter=10_000).fit(x, labels)
    ours = sa_bfgs.fit(x, np.eye(4)[labels], (l2,))
    query = rng.standard_normal((40, 5))
    np.testing.assert_allclose(ours.predict(query), reference.predict_proba(query), atol=1e-6)
    np.testing.assert_allclose(ours.weights - ours.weights.mean(axis=1, keepdims=True), reference.coef_.T, atol=1e-5)


# ---- aa_knn


def test_aa_knn_averages_the_nearest_targets_by_hand() -> None:
    x = np.array([[0.0], [1.0], [3.0], [6.0]])
    d = np.array([[0.6, 0.4, 0.0], [0.2, 0.2, 0.6], [0.0, 1.0, 0.0], [0.1, 0.1, 0.8]])
    model = aa_knn.fit(x, d, (2,))
    # 0.9: rows 1 (0.1 away) and 0 (0.9). 4.4: rows 2 (1.4) and 3 (1.6). 6.5: rows 3 (0.5) and 2 (3.5).
    expected = np.array([[0.4, 0.3, 0.3], [0.05, 0.55, 0.4], [0.05, 0.55, 0.4]])
    np.testing.assert_allclose(model.predict(np.array([[0.9], [4.4], [6.5]])), expected, rtol=1e-12)


def test_aa_knn_ties_go_to_the_earlier_training_row() -> None:
    x = np.array([[3.0], [1.0], [5.0], [1.0]])
    d = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.25, 0.75]])
    # 2 is 1 away from rows 0 and 1 (and 3): k = 1 keeps row 0; 4 is 1 away from rows 0 and 2: row 0 again.
    # 1 is 0 away from rows 1 and 3: row 1.
    predicted = aa_knn.fit(x, d, (1,)).predict(np.array([[2.0], [4.0], [1.0]]))
    np.testing.assert_allclose(predicted, common.positive(d[[0, 0, 1]]), rtol=1e-12)
    assert aa_knn.fit(x, d, (1,)).predict(np.array([[2.0]])).tolist() == predicted[:1].tolist()


@pytest.mark.parametrize("k", [0, 2.5, 81])
def test_aa_knn_refuses_an_impossible_k(k: float) -> None:
    with pytest.raises(InputError, match=rf"^ldl aa_knn: k must be a whole number from 1 to the 80 .* found {k}$"):
        aa_knn.fit(*synthetic(80), (k,))


# ---- pt_bayes


def test_pt_bayes_posterior_by_hand() -> None:
    x = np.array([[0.0], [2.0], [4.0]])
    d = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    # Weights: emotion 0 has 1, 0.5, 0; emotion 1 has 0, 0.5, 1; each 1.5 in all, so both priors are 1/2.
    # Means: (0 + 1) / 1.5 = 2/3 and (1 + 4) / 1.5 = 10/3.
    # Variances: (4/9 + 0.5 * 16/9) / 1.5 = 8/9 both, plus 1/8 of var(0, 2, 4) = 8/3, so 8/9 + 1/3 = 11/9.
    model = pt_bayes.fit(x, d, (1 / 8,))
    query = np.array([[1.0], [2.0], [3.5]])
    scale = math.sqrt(11 / 9)
    joint = 0.5 * np.column_stack([norm.pdf(query[:, 0], 2 / 3, scale), norm.pdf(query[:, 0], 10 / 3, scale)])
    np.testing.assert_allclose(model.predict(query), joint / joint.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(model.predict(query)[1], [0.5, 0.5], rtol=1e-12)  # halfway, equal variances


def test_pt_bayes_is_gaussian_naive_bayes_on_the_weighted_transformed_problem() -> None:
    x, d = synthetic(60, width=3, emotions=5)
    repeated = np.repeat(x, 5, axis=0)  # image i becomes one example of each emotion j, weighted d_ij
    labels = np.tile(np.arange(5), len(x))
    reference = GaussianNB(var_smoothing=0.5).fit(repeated, labels, sample_weight=d.ravel())
    query = synthetic(20, width=3, seed=9)[0]
    np.testing.assert_allclose(pt_bayes.fit(x, d, (0.5,)).predict(query), reference.predict_proba(query), rtol=1e-10)


def test_pt_bayes_refuses_an_emotion_no_target_has() -> None:
    x, d = synthetic(30)
    d[:, 2] = 0
    with pytest.raises(InputError, match=r"^ldl pt_bayes: emotions \[2\] have no probability in any training target$"):
        pt_bayes.fit(x, d / d.sum(axis=1, keepdims=True), (1.0,))


# ---- ldl_lrr


def ranking_by_loop(p: np.ndarray, d: np.ndarray, alpha: float) -> float:
    """alpha mean_i sum_{j<k} (d_ij - d_ik)^2 RankNet(d's order of j, k; 100 (p_ij - p_ik)), one pair at a time."""
    total = 0.0
    for i in range(len(d)):
        for j in range(d.shape[1]):
            for k in range(j + 1, d.shape[1]):
                target = 1.0 if d[i, j] > d[i, k] else 0.0 if d[i, j] < d[i, k] else 0.5
                up = 1 / (1 + math.exp(-100 * (p[i, j] - p[i, k])))
                total += (d[i, j] - d[i, k]) ** 2 * -(target * math.log(up) + (1 - target) * math.log(1 - up))
    return alpha * total / len(d)


def test_ldl_lrr_objective_is_sa_bfgs_plus_the_ranking_loss() -> None:
    x, d = synthetic(25)
    theta = np.random.default_rng(4).standard_normal((4 + 1) * 7) * 0.1  # margins of a few units
    p = softmax(x @ theta[:-7].reshape(4, 7) + theta[-7:], axis=1)
    value, _ = sa_bfgs.objective(theta, x, d, 0.2, ldl_lrr.ranking(d, 0.7))
    assert value == pytest.approx(sa_bfgs.objective(theta, x, d, 0.2)[0] + ranking_by_loop(p, d, 0.7), rel=1e-12)


def test_ldl_lrr_gradient_matches_finite_differences() -> None:
    x, d = synthetic(25)
    theta = np.random.default_rng(4).standard_normal((4 + 1) * 7) * 0.1
    extra = ldl_lrr.ranking(d, 0.7)
    _, gradient = sa_bfgs.objective(theta, x, d, 0.2, extra)
    numeric = central_gradient(lambda t: sa_bfgs.objective(t, x, d, 0.2, extra)[0], theta)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(gradient - sa_bfgs.objective(theta, x, d, 0.2)[1]).max() > 1e-3  # the ranking term counts


def test_ldl_lrr_without_ranking_is_sa_bfgs() -> None:
    x, d = synthetic(100)
    lrr, sa = ldl_lrr.fit(x, d, (0.01, 0.0)), sa_bfgs.fit(x, d, (0.01,))
    query = synthetic(10, seed=3)[0]
    np.testing.assert_allclose(lrr.predict(query), sa.predict(query), rtol=1e-12)
    assert lrr.converged and lrr.name == "ldl_lrr"


# ---- select


def curve_by_loop(method: common.Method, x: np.ndarray, d: np.ndarray, grid: list[common.Value]) -> list[float]:
    """Each grid point's mean over 5 shuffled inner folds (seed 0) of the validation images' mean KL."""
    folds = list(KFold(5, shuffle=True, random_state=0).split(x))
    return [
        float(np.mean([mean_kl(d[score], method.fit(x[fit], d[fit], value).predict(x[score])) for fit, score in folds]))
        for value in grid
    ]


@pytest.mark.parametrize(
    ("name", "axes"),
    [
        ("aa_knn", {"k": (40, 20, 10, 5, 2)}),
        ("pt_bayes", {"var_smoothing": pt_bayes.VAR_SMOOTHING_GRID}),
        ("sa_bfgs", {"l2": (1.0, 0.1, 0.01, 1e-4)}),
        ("ldl_lrr", {"l2": (0.1, 0.01), "alpha": (0.01, 1.0)}),
    ],
)
def test_select_picks_the_lowest_inner_kl_and_refits_on_all_training_images(name: str, axes: dict) -> None:
    method = ldl.method(name)
    x, d = synthetic(100)
    selected = ldl.select(method, x, d, axes=axes)
    grid = list(itertools.product(*axes.values()))
    by_loop = curve_by_loop(method, x, d, grid)
    assert list(selected.curve) == grid
    # The loop fits on the targets as given, select on them renormalised (a change in the last bits)
    np.testing.assert_allclose(list(selected.curve.values()), by_loop, rtol=1e-9)
    assert selected.value == grid[int(np.argmin(by_loop))]
    assert selected.params == dict(zip(axes, selected.value, strict=True)) and selected.method == name
    np.testing.assert_allclose(selected.predictor.predict(x), method.fit(x, d, selected.value).predict(x), rtol=1e-9)


def test_select_sees_the_training_images_only() -> None:
    x, d = synthetic(150)
    train = np.arange(150) % 3 != 0
    first = ldl.select(sa_bfgs.METHOD, x[train], d[train], axes={"l2": (0.1, 0.01)})
    rng = np.random.default_rng(7)
    x[~train] = rng.permutation(x[~train]) * 100 + 5  # the held-out images, permuted and corrupted
    d[~train] = d[~train][:, ::-1]
    second = ldl.select(sa_bfgs.METHOD, x[train], d[train], axes={"l2": (0.1, 0.01)})
    assert second.curve == first.curve and second.value == first.value
    np.testing.assert_array_equal(second.predictor.predict(x), first.predictor.predict(x))


def test_select_is_deterministic_and_uses_its_seed() -> None:
    x, d = synthetic(100)
    runs = [ldl.select(ldl_lrr.METHOD, x, d, axes={"l2": (0.1, 0.01), "alpha": (0.1,)}, seed=s) for s in (3, 3, 4)]
    assert runs[0].curve == runs[1].curve  # to the bit
    np.testing.assert_array_equal(runs[0].predictor.predict(x), runs[1].predictor.predict(x))
    assert runs[2].curve != runs[0].curve  # other inner folds


def test_the_boundary_names_the_hyperparameters_chosen_at_an_edge_of_their_grid() -> None:
    x, d = synthetic(100)
    k = (60, 40, 25, 15, 10, 6, 3, 1)
    curve = ldl.select(aa_knn.METHOD, x, d, axes={"k": k}).curve
    best = int(np.argmin(list(curve.values())))
    assert 0 < best < len(k) - 1, "the example needs an interior optimum"
    assert ldl.select(aa_knn.METHOD, x, d, axes={"k": k}).boundary == ()
    assert ldl.select(aa_knn.METHOD, x, d, axes={"k": k[best - 1 : best + 2]}).boundary == ()
    assert ldl.select(aa_knn.METHOD, x, d, axes={"k": k[: best + 1]}).boundary == ("k",)
    assert ldl.select(aa_knn.METHOD, x, d, axes={"k": k[best:]}).boundary == ("k",)
    assert ldl.select(aa_knn.METHOD, x, d, axes={"k": k[best : best + 1]}).boundary == ()  # nothing searched


def test_the_boundary_of_a_two_dimensional_grid() -> None:
    x, d = synthetic(100, width=20)
    l2, alpha = (1e-2, 1e-3, 1e-4), (0.0, 10.0)
    selected = ldl.select(ldl_lrr.METHOD, x, d, axes={"l2": l2, "alpha": alpha}, inner_folds=3)
    chosen = l2.index(selected.params["l2"])
    assert 0 < chosen < len(l2) - 1, "the example needs an interior l2"
    assert selected.params["alpha"] == 10.0  # on these targets the ranking term lowers the KL
    assert selected.boundary == ("alpha",)
    edge = ldl.select(ldl_lrr.METHOD, x, d, axes={"l2": l2[chosen:], "alpha": alpha}, inner_folds=3)
    assert edge.value == selected.value and edge.boundary == ("l2", "alpha")


def test_a_tie_goes_to_the_first_grid_point() -> None:
    x, _ = synthetic(60)
    d = np.tile([0.5, 0.3, 0.2], (60, 1))  # every k predicts this distribution, KL 0 up to rounding
    for k in [(20, 10, 5), (5, 10, 20)]:
        selected = ldl.select(aa_knn.METHOD, x, d, axes={"k": k})
        assert np.ptp(list(selected.curve.values())) < 1e-15 and selected.value == k[:1]


@pytest.mark.parametrize(
    ("axes", "folds", "message"),
    [
        ({"k": ()}, 5, r"need a non-empty grid for each of \['k'\]; found \['k'\]"),
        ({"l2": (0.1,)}, 5, r"need a non-empty grid for each of \['k'\]; found \['l2'\]"),
        (None, 1, r"need 2 to 60 inner folds for 60 images; found 1"),
        (None, 61, r"need 2 to 60 inner folds for 60 images; found 61"),
    ],
)
def test_select_refuses_a_bad_grid_or_fold_count(axes: dict | None, folds: int, message: str) -> None:
    with pytest.raises(InputError, match=rf"^ldl aa_knn: {message}$"):
        ldl.select(aa_knn.METHOD, *synthetic(60), axes=axes, inner_folds=folds)
