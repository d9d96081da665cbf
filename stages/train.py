"""Stage `train`: the variant that params.yaml selects, trained and evaluated on every fold of every
repeat, with the recipe `train.recipe` names.

`python -m stages.train --repeat R --fold K` trains that fold alone (into
data/train/repeat-R/fold-K), so that folds can be spread over machines; the result is the same
as within the all-folds run.
"""

import argparse
from typing import Any

from ewmtcnn import cli
from ewmtcnn.training import crossval, variant


def main(p: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="train only this repeat's folds (0-based)")
    parser.add_argument("--fold", type=int, help="train only this fold (0-based)")
    args = parser.parse_args()
    v = variant.from_params(p)
    plan = crossval.plan(p, only_repeat=args.repeat, only_fold=args.fold)
    for trained in crossval.train(v, plan):
        trained.save()
        print(trained.summary())


if __name__ == "__main__":
    cli.run_stage(main)
