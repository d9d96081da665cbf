"""Stage `evaluate`: accuracy and the six LDL measures per fold and as mean +- std over folds,
on the held-out folds (`test`) and, to compare with the reimplementation, in place on the
training images (`train`); out-of-fold predictions; learning curves, confusion, prior heatmap."""
import json
from typing import Any

import pandas as pd

from ewmtcnn import InputError, dataset, layout, params, report
from ewmtcnn.atomic import written


def write_json(path, content: dict) -> None:
    with written(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def main(p: dict[str, Any]) -> None:
    k = params.get(p, "split.folds", int)
    folds = [report.read_fold(layout.fold_dir(fold)) for fold in range(k)]
    order = dataset.read_labels(layout.LABELS)["image"]
    held_out = pd.concat(f.test for f in folds)
    if sorted(held_out["image"]) != sorted(order):
        raise InputError(f"the test predictions in {layout.TRAINED} do not cover every image exactly once "
                         "(folds trained on another split?); retrain: `dvc repro train`")
    predictions = held_out.set_index("image").loc[order].reset_index()
    summary, per_fold = report.metrics_report(folds, predictions)
    with written(layout.PREDICTIONS) as tmp:
        predictions.to_csv(tmp, index=False)
    write_json(layout.METRICS, summary)
    write_json(layout.FOLD_METRICS, per_fold)
    with written(layout.LEARNING_CURVE) as tmp:
        report.learning_curve(folds).to_csv(tmp, index=False)
    with written(layout.CONFUSION) as tmp:
        report.confusion(predictions).to_csv(tmp, index=False)
    with written(layout.PRIOR_PLOT) as tmp:
        report.plot_prior(folds, report.emotions(predictions), tmp)
    for part in ("test", "train"):
        print(f"{part:5s} " + "  ".join(f"{m} {v['mean']:.4f}+-{v['std']:.4f}" for m, v in summary[part].items()))


if __name__ == "__main__":
    params.run_stage(main)
