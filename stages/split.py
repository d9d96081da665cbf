"""Stage `split`: stratified k-fold assignment of every image to one test fold."""
from typing import Any

import pandas as pd

from ewmtcnn import dataset, folds, layout, params
from ewmtcnn.atomic import written


def main(p: dict[str, Any]) -> None:
    label = params.choice(p, "data.label", dataset.LABELS)
    labels = dataset.read_labels(layout.LABELS)
    assignment = folds.assign(labels, label, params.get(p, "split.folds", int), params.get(p, "split.seed", int))
    with written(layout.FOLDS) as tmp:
        assignment.to_csv(tmp, index=False)
    print(pd.crosstab(labels[label], assignment["fold"]).to_string())


if __name__ == "__main__":
    params.run_stage(main)
