"""Stage `evaluate`: the trained folds scored, summarised and plotted.

- Every score per fold of every repeat, and its mean, std and corrected 95% interval over them;
  metrics/headline.json: the headline means alone, for a readable `dvc exp show` (`make show`).
- Scored on the held-out folds (`test`) and, to compare with the reimplementation, in place on the
  training images (`train`); the trivial baselines likewise.
- The hyperparameters the folds trained with, out-of-fold predictions, learning curves, confusion,
  the prior heatmap.
- Every output is computed before the first is written, so a failure leaves the previous ones whole.
- Refuses folds not all trained from params.yaml and today's split and features (their fingerprints,
  `ewmtcnn.data.provenance`), and leftovers beyond split.repeats x split.folds. So it declares the
  train stage's params and data: each of them changes train's output (its fingerprints) too, so
  evaluate reruns no more often than before.
"""

from typing import Any

import pandas as pd

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.data import dataset, provenance
from ewmtcnn.evaluation import predictions, report
from ewmtcnn.io import checkpoint
from ewmtcnn.io.atomic import write_csv, write_json, written


def _console(summary: dict[str, Any]) -> str:
    """Each score's mean [95% interval]: a row per score, a column for the model (test, train) and each baseline."""
    summaries = {part: summary[part] for part in report.PARTS}
    summaries.update({f"{name} baseline": scores for name, scores in summary["baselines"].items()})
    cells = {
        name: {score: f"{v['mean']:.4f} [{v['ci_low']:.4f}, {v['ci_high']:.4f}]" for score, v in scores.items()}
        for name, scores in summaries.items()
    }
    return pd.DataFrame(cells).fillna("").to_string()


def main(params: Params) -> None:
    repeats, count = params.split.repeats, params.split.folds
    trained = {(repeat, fold): checkpoint.read_fold(repeat, fold) for repeat in range(repeats) for fold in range(count)}
    provenance.check(
        provenance.fingerprint(
            params.data.label,
            params.data.neutral,
            count,
            repeats,
            params.prior,
            params.model,
            params.features,
            params.train,
            params.select,
        )
    )
    report.check_folds(trained)
    out_of_fold = report.out_of_fold(trained, dataset.read_labels(paths.LABELS)["image"])
    summary, per_fold = report.metrics_report(trained, out_of_fold)
    selection = report.selection_report(trained)
    curve = report.learning_curve(trained)
    confusion = report.confusion(out_of_fold)
    prior = report.prior_png(list(trained.values()), predictions.emotions(out_of_fold))

    write_csv(out_of_fold, paths.PREDICTIONS)
    write_json(report.headline(summary), paths.HEADLINE)
    write_json(summary, paths.METRICS)
    write_json(per_fold, paths.FOLD_METRICS)
    write_json(selection, paths.SELECTION)
    write_csv(curve, paths.LEARNING_CURVE)
    write_csv(confusion, paths.CONFUSION)
    with written(paths.PRIOR_PLOT) as tmp:
        tmp.write_bytes(prior)
    print(f"mean [95% interval] over {repeats} x {count} folds\n{_console(summary)}")


if __name__ == "__main__":
    cli.run_stage(main)
