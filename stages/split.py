"""Stage `split`: stratified k-fold assignment of every image to one test fold, in each repeat."""

import pandas as pd

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.data import dataset, folds
from ewmtcnn.io.atomic import write_csv


def main(params: Params) -> None:
    label, k, repeats, seed = params.data.label, params.split.folds, params.split.repeats, params.split.seed
    labels = dataset.read_labels(paths.LABELS)
    assignment = folds.assign(labels, label, k, seed, repeats)
    write_csv(assignment, paths.FOLDS)
    first = assignment[assignment["repeat"] == 0]
    print(f"{repeats} repeat(s) of {k} folds; images per class and fold in repeat 0:")
    print(pd.crosstab(labels[label], first["fold"].to_numpy()).to_string())


if __name__ == "__main__":
    cli.run_stage(main)
