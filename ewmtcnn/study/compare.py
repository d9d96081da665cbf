"""`ewmtcnn compare A B` (or `python -m ewmtcnn.study.compare A B`): is run B better than run A, by the protocol?

- A and B: each a DVC experiment's name, a commit, a branch, or `workspace` (the files as they are now).
- Reads each side's out-of-fold predictions (metrics/predictions.csv) and tests B - A per (repeat, fold)
  with the tables' code (`paired.compare`, m = 1): the corrected resampled t interval and test, and the
  equivalence test (TOST) against the declared margin of each tested measure (docs/protocol.md).
- The measures without a declared margin are reported, not tested: their mean difference and 95% interval.
- `--json`: per measure `mean` (Δ), `low`, `high`, `level`, `margin`, `p_differs`, `p_equivalent`, `label`.
- Refuses two runs on different folds or images: different split params or class label, a different
  data/folds.csv in their dvc.lock, or predictions of other (repeat, image, fold)s.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from io import StringIO
from typing import Any

import dvc.api
import numpy as np
import pandas as pd
import yaml
from dvc.exceptions import DvcException, PathMissingError

from ewmtcnn import InputError, cli
from ewmtcnn.evaluation import metrics
from ewmtcnn.evaluation.resampling import LEVEL, corrected_t
from ewmtcnn.paths import FOLDS, PARAMS, PREDICTIONS
from ewmtcnn.study import paired

#: The side that names the working tree rather than a revision.
WORKSPACE = "workspace"
#: The params that fix which images fall in which fold, and what each is scored against.
SPLIT_PARAMS = ("data.label", "data.neutral", "split.folds", "split.seed", "split.repeats")
#: The verdict of a measure with no declared margin (docs/protocol.md: reported, not tested).
NOT_TESTED = "not tested (no margin)"


@dataclass(frozen=True)
class Side:
    """One run as read from its revision: the split params, its folds file's hash, its predictions."""

    name: str
    split: Mapping[str, Any]
    folds_hash: str | None  # data/folds.csv's md5 in dvc.lock; None without one
    predictions: pd.DataFrame


def _read(path: str, rev: str, required: bool = True) -> str | None:
    """A file of revision `rev` (an experiment, commit, branch or `workspace`); None if absent and not `required`."""
    try:
        return dvc.api.read(path, rev=None if rev == WORKSPACE else rev)
    except PathMissingError:
        if not required:
            return None
        raise InputError(f"{rev}: no {path}; run the evaluate stage there first") from None
    except (DvcException, OSError) as e:  # an unknown revision is a DvcException too
        raise InputError(f"{rev}: cannot read {path} ({e})") from None


def _folds_hash(lock: str | None) -> str | None:
    """data/folds.csv's md5 in the split stage's outputs of a dvc.lock, or None."""
    stages = (yaml.safe_load(lock) or {}).get("stages", {}) if lock else {}
    outs = (stages.get("split") or {}).get("outs") or []
    return next((out.get("md5") for out in outs if out.get("path") == FOLDS.as_posix()), None)


def read_side(rev: str) -> Side:
    """Run `rev`'s split params, folds hash and out-of-fold predictions."""
    params = yaml.safe_load(_read(PARAMS.as_posix(), rev) or "") or {}
    split = {name: params.get(name.split(".")[0], {}).get(name.split(".")[1]) for name in SPLIT_PARAMS}
    table = pd.read_csv(StringIO(_read(PREDICTIONS.as_posix(), rev) or ""))
    return Side(rev, split, _folds_hash(_read("dvc.lock", rev, required=False)), table)


def check_same_folds(a: Side, b: Side) -> None:
    """Refuse two runs whose folds or images may differ, naming every difference at once.

    - The split params and class label, and data/folds.csv's hash where both dvc.lock files have it.
    - The predictions' own (repeat, image, fold, label, truth) are checked when they are paired.
    """
    found = [
        f"{name} {a.split[name]!r} vs {b.split[name]!r}" for name in SPLIT_PARAMS if a.split[name] != b.split[name]
    ]
    if a.folds_hash and b.folds_hash and a.folds_hash != b.folds_hash:
        found.append(f"{FOLDS} md5 {a.folds_hash[:8]} vs {b.folds_hash[:8]}")
    if found:
        raise InputError(
            f"{a.name} and {b.name} are not on the same folds and images ({'; '.join(found)}): "
            "a paired comparison needs the same split"
        )


def comparison(a: Side, b: Side) -> dict[str, Any]:
    """B - A on every measure: the tested ones as a table's arm against its baseline (m = 1), the others' intervals."""
    check_same_folds(a, b)
    try:
        compared = paired.compare({"a": a.predictions, "b": b.predictions}, "a")["b"]
    except InputError as e:
        raise InputError(f"{a.name} vs {b.name}: {e}") from None
    pairs = compared.paired
    measures: dict[str, dict[str, Any]] = {}
    for score in metrics.SCORES:
        if score in compared.tests:
            measures[score] = asdict(compared.tests[score])
        else:
            t = corrected_t(np.asarray(pairs.differences[score]), pairs.test_train_ratio, LEVEL)
            measures[score] = dict(mean=t.mean, low=t.low, high=t.high, level=LEVEL, margin=None)
            measures[score] |= dict(p_differs=None, p_equivalent=None, label=NOT_TESTED)
    return {
        "a": a.name,
        "b": b.name,
        "images": pairs.images,
        "repeats": pairs.repeats,
        "folds": pairs.folds,
        "lower_is_better": [s for s in metrics.SCORES if s not in metrics.HIGHER_IS_BETTER],
        "measures": measures,
    }


def text(result: Mapping[str, Any]) -> str:
    """`comparison` as a table for a terminal: a row per measure."""
    rows = {}
    for score, m in result["measures"].items():
        cells = {"Δ [interval]": f"{m['mean']:+.4f} [{m['low']:+.4f}, {m['high']:+.4f}]"}
        if m["margin"] is not None:
            cells |= {
                "p differs": f"{m['p_differs']:.3g}",
                "p within ±margin": f"{m['p_equivalent']:.3g} (±{m['margin']:g})",
            }
        rows[score] = cells | {"verdict (B against A)": m["label"]}
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("")
    return (
        f"Δ = B - A (B = {result['b']}, A = {result['a']}): {result['images']} images, {result['repeats']} x "
        f"{result['folds']} folds, paired per (repeat, fold); mean over the folds [95% corrected resampled t interval "
        "(Nadeau & Bengio, 2003)]; p within ±margin: TOST against the declared margin (docs/protocol.md); "
        f"lower is better for {', '.join(result['lower_is_better'])}\n{table.to_string()}"
    )


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `compare`."""
    parser.add_argument("a", metavar="A", help=f"the reference run: an experiment, commit, branch or {WORKSPACE}")
    parser.add_argument(
        "b", metavar="B", help=f"the run tested against A: an experiment, commit, branch or {WORKSPACE}"
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    return parser


def execute(args: argparse.Namespace) -> None:
    """Run `compare` with its parsed options."""
    result = comparison(read_side(args.a), read_side(args.b))
    print(json.dumps(result, indent=2) if args.json else text(result))


def _parser(prog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m ewmtcnn.study.compare A B`."""
    args = arguments(_parser("python -m ewmtcnn.study.compare")).parse_args(argv)
    cli.run(lambda: execute(args))


if __name__ == "__main__":
    main()
