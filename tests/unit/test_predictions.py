"""The predictions table: built in its column order, and read back as distributions, emotions and classes."""

from __future__ import annotations

import numpy as np

from ewmtcnn.evaluation import predictions

EMOTIONS = ("anger", "joy", "fear")
TRUE = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
PRED = np.array([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])


def test_a_table_has_the_key_then_the_true_then_the_predicted_columns() -> None:
    table = predictions.build(["a.jpg", "b.jpg"], 1, 2, ["joy", "fear"], EMOTIONS, TRUE, PRED)
    assert (
        list(table.columns)
        == predictions.header(EMOTIONS)
        == [
            *("image", "repeat", "fold", "label"),
            *("true_anger", "true_joy", "true_fear", "pred_anger", "pred_joy", "pred_fear"),
        ]
    )
    assert table["image"].tolist() == ["a.jpg", "b.jpg"]
    assert (table["repeat"] == 1).all() and (table["fold"] == 2).all()


def test_a_table_reads_back_as_its_emotions_distributions_and_classes() -> None:
    table = predictions.build(["a.jpg", "b.jpg"], 0, 0, ["joy", "anger"], EMOTIONS, TRUE, PRED)
    assert predictions.emotions(table) == list(EMOTIONS)
    assert np.array_equal(predictions.true(table), TRUE) and np.array_equal(predictions.pred(table), PRED)
    assert predictions.classes(table).tolist() == [1, 0]
    assert predictions.columns(table, predictions.TRUE) == ["true_anger", "true_joy", "true_fear"]
