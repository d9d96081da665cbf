"""From fold tables to the figures users read: learning curves, confusion, metrics report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ewmtcnn import InputError, report
from ewmtcnn.checkpoint import HISTORY, TrainedFold


def fold(epochs: list[int], value: float, test: pd.DataFrame) -> TrainedFold:
    history = pd.DataFrame({"epoch": epochs, **{h: [value] * len(epochs) for h in HISTORY}})
    return TrainedFold(history, test, test, {}, None)


def table(rows: list[tuple[str, list[float], list[float]]], fold_id: int = 0) -> pd.DataFrame:
    emotions = ["anger", "joy"]
    data = {"image": [f"x/{i}.jpg" for i in range(len(rows))], "fold": fold_id, "label": [r[0] for r in rows]}
    for j, e in enumerate(emotions):
        data[f"true_{e}"] = [r[1][j] for r in rows]
    for j, e in enumerate(emotions):
        data[f"pred_{e}"] = [r[2][j] for r in rows]
    return pd.DataFrame(data)


def test_learning_curve_averages_folds_epoch_by_epoch():
    empty = table([])
    curve = report.learning_curve([fold([1, 2], 1.0, empty), fold([1, 2], 3.0, empty)])
    assert list(curve["epoch"]) == [1, 2] and (curve[list(HISTORY)] == 2.0).all().all()


def test_confusion_pairs_label_with_argmax():
    predictions = table([("joy", [0, 1], [0.2, 0.8]), ("anger", [1, 0], [0.4, 0.6])])
    assert report.confusion(predictions).to_dict("list") == {"actual": ["joy", "anger"], "predicted": ["joy", "joy"]}


def test_metrics_report_means_over_folds_and_pools_per_class_accuracy():
    a = table([("joy", [0, 1], [0.2, 0.8]), ("anger", [1, 0], [0.4, 0.6])], 0)  # acc 1/2
    b = table([("joy", [0, 1], [0.1, 0.9]), ("anger", [1, 0], [0.9, 0.1])], 1)  # acc 1
    summary, per_fold = report.metrics_report([fold([1], 0, a), fold([1], 0, b)], pd.concat([a, b]))
    assert [f["acc"] for f in per_fold["test"]] == [0.5, 1.0]
    assert summary["test"]["acc"]["mean"] == 0.75
    assert summary["test"]["acc"]["std"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    # KL of fold b by hand: ln(1/0.9) for each image
    assert per_fold["test"][1]["kl"] == pytest.approx(np.log(1 / 0.9))
    assert summary["test_per_class_acc"] == {"anger": 0.5, "joy": 1.0}


def test_out_of_fold_puts_every_image_once_in_the_labels_order():
    a = table([("joy", [0, 1], [0.2, 0.8])], 0)
    b = table([("anger", [1, 0], [0.4, 0.6])], 1).assign(image=["x/9.jpg"])
    order = pd.Series(["x/9.jpg", "x/0.jpg"])
    joined = report.out_of_fold([fold([1], 0, a), fold([1], 0, b)], order)
    assert joined["image"].tolist() == ["x/9.jpg", "x/0.jpg"] and joined["fold"].tolist() == [1, 0]
    with pytest.raises(InputError, match="do not cover every image exactly once"):
        report.out_of_fold([fold([1], 0, a), fold([1], 0, a)], order)
