"""Stage `evaluate`: the trained folds scored, summarised and plotted.

- Every score per fold of every repeat, and its mean, std and corrected 95% interval over them;
  metrics/headline.json: the headline means alone, for a readable `dvc exp show` (`make show`).
- Scored on the held-out folds (`test`) and, to compare with the reimplementation, in place on the
  training images (`train`); the trivial baselines likewise.
- The hyperparameters the folds trained with, out-of-fold predictions, the figures per emotion; the
  pictures: every fold's curves, the confusion as recall with counts, the figures per emotion, the prior.
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
from ewmtcnn.evaluation import figures, predictions, report
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
    confusion = report.confusion(out_of_fold)
    per_emotion = report.per_emotion(out_of_fold)
    pictures = {
        paths.CURVES_PLOT: figures.curves(trained),
        paths.CONFUSION_PLOT: figures.confusion(report.confusion_counts(out_of_fold), repeats),
        paths.PER_EMOTION_PLOT: figures.per_emotion(per_emotion, repeats),
        paths.PRIOR_PLOT: figures.prior(list(trained.values()), predictions.emotions(out_of_fold), params.prior.init),
    }
    pngs = {path: figures.png(figure) for path, figure in pictures.items()}

    write_csv(out_of_fold, paths.PREDICTIONS)
    write_json(report.headline(summary), paths.HEADLINE)
    write_json(summary, paths.METRICS)
    write_json(per_fold, paths.FOLD_METRICS)
    write_json(selection, paths.SELECTION)
    write_json(per_emotion, paths.PER_EMOTION)
    write_csv(confusion, paths.CONFUSION)
    for path, picture in pngs.items():
        with written(path) as tmp:
            tmp.write_bytes(picture)
    print(f"mean [95% interval] over {repeats} x {count} folds\n{_console(summary)}")


if __name__ == "__main__":
    cli.run_stage(main)
