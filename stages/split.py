"""Stage `split`: stratified k-fold assignment of every image to one test fold."""

from typing import Any

import pandas as pd

from ewmtcnn import cli, dataset, folds, layout, params
from ewmtcnn.atomic import write_csv


def main(p: dict[str, Any]) -> None:
    label = params.choice(p, "data.label", dataset.LABELS)
    k = folds.count(p)
    seed = params.seed(p, "split.seed")
    labels = dataset.read_labels(layout.LABELS)
    assignment = folds.assign(labels, label, k, seed)
    write_csv(assignment, layout.FOLDS)
    print(pd.crosstab(labels[label], assignment["fold"]).to_string())


if __name__ == "__main__":
    cli.run_stage(main)
