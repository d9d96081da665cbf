"""Stage `evaluate`: accuracy and the six LDL measures per fold and as mean +- std over folds,
on the held-out folds (`test`) and, to compare with the reimplementation, in place on the
training images (`train`); out-of-fold predictions; learning curves, confusion, prior heatmap.

Every output is computed before the first is written, so a failure leaves the previous ones whole."""

from typing import Any

from ewmtcnn import checkpoint, cli, dataset, folds, layout, report
from ewmtcnn.atomic import write_csv, write_json, written


def main(p: dict[str, Any]) -> None:
    trained = [checkpoint.read_fold(layout.fold_dir(fold)) for fold in range(folds.count(p))]
    predictions = report.out_of_fold(trained, dataset.read_labels(layout.LABELS)["image"])
    summary, per_fold = report.metrics_report(trained, predictions)
    curve = report.learning_curve(trained)
    confusion = report.confusion(predictions)
    prior = report.prior_png(trained, report.emotions(predictions))

    write_csv(predictions, layout.PREDICTIONS)
    write_json(summary, layout.METRICS)
    write_json(per_fold, layout.FOLD_METRICS)
    write_csv(curve, layout.LEARNING_CURVE)
    write_csv(confusion, layout.CONFUSION)
    with written(layout.PRIOR_PLOT) as tmp:
        tmp.write_bytes(prior)
    for part in ("test", "train"):
        print(f"{part:5s} " + "  ".join(f"{m} {v['mean']:.4f}+-{v['std']:.4f}" for m, v in summary[part].items()))


if __name__ == "__main__":
    cli.run_stage(main)
