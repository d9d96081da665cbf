"""Stage `train`: the variant that params.yaml selects, trained on every fold of every repeat.

- Trains with the recipe that `train.recipe` names, and tests each fold on its held-out images.
- `python -m stages.train --repeat R --fold K` trains that fold alone (into
  data/train/repeat-R/fold-K), so that folds can be spread over machines; the result is the same
  as within the all-folds run.
- Each fold keeps the fingerprint of what shaped it (`ewmtcnn.data.provenance`), which evaluate checks.
"""

import argparse

from ewmtcnn import cli
from ewmtcnn.config.sections import Params
from ewmtcnn.data import provenance
from ewmtcnn.training import crossval
from ewmtcnn.training.variant import NO_PRIOR_NOTE, Variant


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, help="train only this repeat's folds (0-based)")
    parser.add_argument("--fold", type=int, help="train only this fold (0-based)")


def main(params: Params, repeat: int | None = None, fold: int | None = None) -> None:
    v = Variant.of(
        params.data.label, params.data.neutral, params.prior, params.model, params.features, params.train, params.select
    )
    if v.same_as_none:
        print(NO_PRIOR_NOTE)
    plan = crossval.plan(params.split.repeats, params.split.folds, only_repeat=repeat, only_fold=fold)
    fingerprint = provenance.fingerprint(
        params.data.label,
        params.data.neutral,
        params.split.folds,
        params.split.repeats,
        params.prior,
        params.model,
        params.features,
        params.train,
        params.select,
    )
    for trained in crossval.trained_folds(v, plan):
        trained.save(fingerprint)
        print(crossval.summary(trained))


if __name__ == "__main__":
    cli.run_stage(main, options)
