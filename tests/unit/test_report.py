"""From fold tables to the figures users read: out-of-fold predictions, the metrics report with its
intervals and baselines, the selection summary, the confusion counts, the figures per emotion."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ewmtcnn import InputError
from ewmtcnn.evaluation import metrics, report
from ewmtcnn.io.checkpoint import HISTORY, TrainedFold
from ewmtcnn.io.choice import Choice

CHOICE = Choice("fixed", 20, 0.01, 0.0005)


def fold(test: pd.DataFrame, value: float = 0.0, **chosen: float) -> TrainedFold:
    """Fold (repeat, fold) of `test`'s rows, tested in place on its own test images."""
    history = pd.DataFrame({"epoch": [1, 2], **{h: [value] * 2 for h in HISTORY}})
    repeat, fold_id = int(test["repeat"].iloc[0]), int(test["fold"].iloc[0])
    return TrainedFold(repeat, fold_id, history, test, test, {}, None, dataclasses.replace(CHOICE, **chosen))


def table(rows: list[tuple[str, str, list[float], list[float]]], repeat: int = 0, fold_id: int = 0) -> pd.DataFrame:
    """A prediction table over anger and joy; rows are (image, label, true, predicted)."""
    emotions = ["anger", "joy"]
    data = {"image": [r[0] for r in rows], "repeat": repeat, "fold": fold_id, "label": [r[1] for r in rows]}
    for j, e in enumerate(emotions):
        data[f"true_{e}"] = [r[2][j] for r in rows]
    for j, e in enumerate(emotions):
        data[f"pred_{e}"] = [r[3][j] for r in rows]
    return pd.DataFrame(data)


# Two repeats of 2-fold cross-validation over four images a, b (joy) and c, d (anger).
TRUE = {"a": [0.1, 0.9], "b": [0.3, 0.7], "c": [0.8, 0.2], "d": [0.6, 0.4]}
LABEL = {"a": "joy", "b": "joy", "c": "anger", "d": "anger"}
SPLITS = {0: [["a", "c"], ["b", "d"]], 1: [["a", "b"], ["c", "d"]]}
ORDER = pd.Series(["a", "b", "c", "d"])


def predicted(repeat: int, image: str) -> list[float]:
    """Joy 0.6 everywhere, except that repeat 1 gets image c right."""
    return [0.7, 0.3] if (repeat, image) == (1, "c") else [0.4, 0.6]


def folds() -> dict[tuple[int, int], TrainedFold]:
    return {
        (r, k): fold(
            table([(i, LABEL[i], TRUE[i], predicted(r, i)) for i in images], r, k),
            value=r + k,
            epochs=5 + 2 * r + k,
            lr_head=[0.01, 0.1][k],
        )
        for r, split in SPLITS.items()
        for k, images in enumerate(split)
    }


def test_out_of_fold_puts_every_image_once_per_repeat_in_the_labels_order() -> None:
    joined = report.out_of_fold(folds(), ORDER)
    assert joined["image"].tolist() == ["a", "b", "c", "d"] * 2
    assert joined["repeat"].tolist() == [0] * 4 + [1] * 4
    assert joined["fold"].tolist() == [0, 1, 0, 1, 0, 0, 1, 1]
    assert list(joined.columns) == list(folds()[0, 0].test.columns)


@pytest.mark.parametrize("image", ["a", "e"], ids=["twice", "foreign"])
def test_out_of_fold_refuses_a_repeat_that_does_not_cover_every_image_once(image: str) -> None:
    trained = folds()
    test = trained[1, 1].test
    trained[1, 1].test = pd.concat([test.iloc[:1], test.iloc[1:].assign(image=image)])  # d replaced
    with pytest.raises(InputError, match="data/train/repeat-1: .* do not cover every image exactly once"):
        report.out_of_fold(trained, ORDER)


@pytest.mark.parametrize(
    "part,change,message",
    [
        ("test", {"fold": 0}, "holds predictions of another fold than repeat 1, fold 1"),
        ("train", {"repeat": 0}, "holds predictions of another fold than repeat 1, fold 1"),
        ("test", {"label": "fear"}, "a class label outside anger, joy"),
        ("test", {"pred_joy": np.nan}, "a distribution entry that is not a finite number"),
        ("train", {"true_anger": "x"}, "a distribution entry that is not a finite number"),
    ],
)
def test_a_fold_table_that_is_not_its_own_is_refused_by_name(part: str, change: dict, message: str) -> None:
    trained = folds()
    setattr(trained[1, 1], part, getattr(trained[1, 1], part).assign(**change))
    with pytest.raises(InputError, match=f"data/train/repeat-1/fold-1/{part}.csv: {message}; retrain"):
        report.check_folds(trained)


@pytest.mark.parametrize(
    "part,change,message",
    [
        (
            "test",
            lambda t: t.assign(pred_anger=t["pred_anger"] * 5, pred_joy=t["pred_joy"] * 5),
            "predicted .* sums to 5",
        ),
        ("test", lambda t: t.assign(pred_anger=-t["pred_anger"]), "predicted distribution of c has a negative entry"),
        ("train", lambda t: t.assign(true_joy=t["true_joy"] + 0.01), "true distribution of c sums to 1.01, not 1"),
    ],
    ids=["times-5", "negative", "true-off"],
)
def test_a_fold_table_whose_distributions_are_not_distributions_is_refused_by_name(
    part: str, change: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    trained = folds()
    setattr(trained[1, 1], part, change(getattr(trained[1, 1], part)))
    with pytest.raises(InputError, match=f"data/train/repeat-1/fold-1/{part}.csv: the {message}.*; retrain"):
        report.check_folds(trained)


def test_distributions_within_rounding_of_1_are_accepted() -> None:
    trained = folds()
    trained[1, 1].test = trained[1, 1].test.assign(pred_joy=trained[1, 1].test["pred_joy"] + 1e-9)
    report.check_folds(trained)


def test_a_fold_table_without_images_or_in_an_older_layout_is_refused() -> None:
    trained = folds()
    trained[0, 1].test = trained[0, 1].test.iloc[:0]
    with pytest.raises(InputError, match="repeat-0/fold-1/test.csv: no images"):
        report.check_folds(trained)
    trained[0, 1].test = folds()[0, 1].test.drop(columns="repeat")
    with pytest.raises(InputError, match="repeat-0/fold-1/test.csv: expected the columns image, repeat, fold"):
        report.check_folds(trained)


def test_the_test_train_ratio_comes_from_the_fold_sizes() -> None:
    # Seven images in folds of 2, 2 and 3: mean test fold 7/3, mean training set (5 + 5 + 4) / 3 = 14/3.
    predictions = pd.DataFrame({"repeat": 0, "fold": [0, 0, 1, 1, 2, 2, 2]})
    assert report.fold_size_ratio(predictions) == pytest.approx(0.5, rel=1e-12)


def test_metrics_report_scores_every_fold_of_every_repeat() -> None:
    trained = folds()
    summary, per_fold = report.metrics_report(trained, report.out_of_fold(trained, ORDER))
    assert [(f["repeat"], f["fold"]) for f in per_fold] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # Joy predicted for all but repeat 1's c: folds {a, c} 1/2, {b, d} 1/2, {a, b} 1, {c, d} 1/2.
    accs = [0.5, 0.5, 1.0, 0.5]
    assert [f["test"]["acc"] for f in per_fold] == accs
    # Balanced accuracy of {c, d} in repeat 1: anger recall 1/2 (c right, d wrong), joy absent: 1/2.
    assert per_fold[3]["test"]["balanced_acc"] == 0.5
    # Two images per test fold, two in each training set: n_test / n_train = 1.
    half = stats.t.ppf(0.975, 3) * np.sqrt((1 / 4 + 1) * np.var(accs, ddof=1))
    assert summary["test"]["acc"] == pytest.approx(
        {"mean": 0.625, "std": np.std(accs, ddof=1), "ci_low": 0.625 - half, "ci_high": 0.625 + half}, rel=1e-12
    )
    # Pooled over both repeats: anger 1 right of 4 (only repeat 1's c), joy 4 of 4.
    assert summary["test_per_class_acc"] == {"anger": 0.25, "joy": 1.0}
    # The same from the out-of-fold predictions alone, as the classic stage scores its methods.
    assert report.summary(report.out_of_fold(trained, ORDER)) == summary["test"]


def test_metrics_json_has_the_contracts_shape_and_every_interval_holds_its_mean() -> None:
    trained = folds()
    summary, per_fold = report.metrics_report(trained, report.out_of_fold(trained, ORDER))
    assert list(summary) == ["test", "train", "test_per_class_acc", "baselines"]
    expected = {
        "test": metrics.SCORES,
        "train": metrics.SCORES,
        "mean": metrics.SCORES,
        "majority": ("acc", "balanced_acc", "macro_f1"),
    }
    summaries = {"test": summary["test"], "train": summary["train"], **summary["baselines"]}
    assert list(summary["baselines"]) == ["mean", "majority"]
    for name, scores in expected.items():
        assert tuple(summaries[name]) == scores, name
        for score, values in summaries[name].items():
            assert list(values) == ["mean", "std", "ci_low", "ci_high"]
            assert values["ci_low"] <= values["mean"] <= values["ci_high"], (name, score)
            assert values["std"] == 0.0 or values["ci_low"] < values["mean"] < values["ci_high"], (name, score)
    assert all(set(f) == {"repeat", "fold", "test", "train"} for f in per_fold)
    assert all(tuple(f[part]) == metrics.SCORES for f in per_fold for part in ("test", "train"))


def test_the_baselines_are_learned_per_repeat_and_fold_from_its_training_folds() -> None:
    trained = folds()
    summary, _ = report.metrics_report(trained, report.out_of_fold(trained, ORDER))
    # The mean baseline of repeat 0 fold 0 (test a, c) learns from b, d: mean (0.45, 0.55), predicts joy;
    # right for a, wrong for c. Every fold: {a, c} from {b, d} joy 1/2; {b, d} from {a, c} (0.45, 0.55)
    # joy 1/2; {a, b} from {c, d} (0.7, 0.3) anger 0; {c, d} from {a, b} (0.2, 0.8) joy 0.
    assert summary["baselines"]["mean"]["acc"]["mean"] == pytest.approx((0.5 + 0.5 + 0 + 0) / 4, rel=1e-12)
    # The majority: {a, c} from {b, d} a tie, anger (listed first) 1/2; {b, d} from {a, c} the same, 1/2;
    # {a, b} from {c, d} anger 0; {c, d} from {a, b} joy 0.
    assert summary["baselines"]["majority"]["acc"]["mean"] == pytest.approx((0.5 + 0.5 + 0 + 0) / 4, rel=1e-12)


def test_selection_report_summarises_the_settings_of_every_fold() -> None:
    selection = report.selection_report(folds())
    # epochs 5 + 2r + k: 5, 6, 7, 8; lr_head 0.01 (fold 0) and 0.1 (fold 1).
    assert selection["recipe"] == "fixed"
    assert selection["epochs"] == {"median": 6.5, "min": 5, "max": 8}
    assert selection["lr_head"] == {"median": pytest.approx(0.055), "min": 0.01, "max": 0.1}
    assert selection["weight_decay"] == {"median": 0.0005, "min": 0.0005, "max": 0.0005}
    assert selection["folds"][1] == {"repeat": 0, "fold": 1, "epochs": 6, "lr_head": 0.1, "weight_decay": 0.0005}
    assert [(f["repeat"], f["fold"]) for f in selection["folds"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_selection_report_refuses_mixed_recipes() -> None:
    trained = folds()
    trained[1, 0].choice = dataclasses.replace(trained[1, 0].choice, recipe="selected")
    with pytest.raises(InputError, match="different recipes, fixed and selected"):
        report.selection_report(trained)


def test_confusion_pools_the_repeats() -> None:
    confusion = report.confusion(report.out_of_fold(folds(), ORDER))
    assert len(confusion) == 8
    assert confusion.value_counts().to_dict() == {("joy", "joy"): 4, ("anger", "joy"): 3, ("anger", "anger"): 1}


def test_confusion_counts_have_every_emotion_as_a_row_and_a_column() -> None:
    # Repeat 0 predicts joy for every image: anger is never predicted, yet is a column of zeros.
    first = report.out_of_fold(folds(), ORDER).query("repeat == 0")
    counts = report.confusion_counts(first)
    assert counts.to_dict(orient="index") == {"anger": {"anger": 0, "joy": 2}, "joy": {"anger": 0, "joy": 2}}


def test_per_emotion_scores_each_repeat_alone_and_averages_them() -> None:
    per_emotion = report.per_emotion(report.out_of_fold(folds(), ORDER))
    assert list(per_emotion) == ["anger", "joy"] and all(
        list(v) == ["images", *report.PER_EMOTION] for v in per_emotion.values()
    )
    anger, joy = per_emotion["anger"], per_emotion["joy"]
    assert anger["images"] == joy["images"] == 2
    # Repeat 0 predicts joy for all four: anger recall 0, precision undefined (never predicted), F1 0;
    # joy recall 1, precision 2/4, F1 2/3. Repeat 1 gets c right: anger recall 1/2, precision 1/1, F1 2/3;
    # joy recall 1, precision 2/3, F1 4/5.
    assert anger["recall"] == pytest.approx(0.25) and anger["precision"] == pytest.approx(1.0)
    assert anger["f1"] == pytest.approx(1 / 3)
    assert joy["recall"] == pytest.approx(1.0) and joy["precision"] == pytest.approx(7 / 12)
    assert joy["f1"] == pytest.approx(11 / 15)
    # KL of the anger images c and d, each predicted in both repeats (SciPy's relative entropy).
    kl = [stats.entropy(TRUE[i], predicted(r, i)) for r in (0, 1) for i in ("c", "d")]
    assert anger["kl"] == pytest.approx(np.mean(kl), rel=1e-12)
    assert joy["kl"] == pytest.approx(np.mean([stats.entropy(TRUE[i], [0.4, 0.6]) for i in ("a", "b")]), rel=1e-12)


def test_an_emotion_no_repeat_predicts_has_an_undefined_precision() -> None:
    first = report.out_of_fold(folds(), ORDER).query("repeat == 0")
    assert np.isnan(report.per_emotion(first)["anger"]["precision"])
