"""Stage `classic`: the classic LDL methods of `classic.methods`, cross-validated on the train stage's inputs and folds.

- Each method chosen per outer training fold by inner cross-validation on its training images alone, then
  scored on its held-out images (`ewmtcnn.training.classic`).
- data/classic/<method>/predictions.csv: its out-of-fold predictions, laid out as metrics/predictions.csv,
  to pair with a head's (`ewmtcnn.study.classic`); metrics/classic.json: its scores as metrics.json's `test`
  section, the hyperparameters chosen, and how many folds chose one at an end of its grid.
- Every output is computed before the first is written, and data/classic is written whole or not at all.
"""

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.io.atomic import write_csv, write_json, written
from ewmtcnn.training import classic, crossval


def main(params: Params) -> None:
    data = classic.load(params.data.label, params.data.neutral)
    planned = crossval.planned_folds(crossval.plan(params.split.repeats, params.split.folds), data.images.tolist())
    found = classic.outcomes(params.classic, data, planned, params.train.seed)
    tables = {name: classic.out_of_fold(outcomes, data.images) for name, outcomes in found.items()}
    summary = {name: classic.method_metrics(found[name], table) for name, table in tables.items()}

    with written(paths.CLASSIC, directory=True) as tmp:
        for name, table in tables.items():
            write_csv(table, tmp / paths.classic_predictions(name).relative_to(paths.CLASSIC))
    write_json(summary, paths.CLASSIC_METRICS)
    for name, scores in summary.items():
        test, seconds = scores["test"], sum(outcome.seconds for outcome in found[name])
        print(
            f"{name}: KL {test['kl']['mean']:.4f}, acc {test['acc']['mean']:.3f} over {scores['folds']} folds; "
            f"{scores['boundary_folds']} chose an end of a grid; {seconds:.0f} s"
        )


if __name__ == "__main__":
    cli.run_stage(main)
