"""`ewmtcnn classic [RUN ...]` (or `python -m ewmtcnn.study.classic`): classic LDL methods beside heads, by protocol.

- The methods: the out-of-fold predictions that the classic stage wrote in the working tree
  (data/classic/<method>/predictions.csv), as table G reads them; the heads: each RUN's (an experiment, commit,
  branch or `workspace`, the default) metrics/predictions.csv.
- Prints table G for them: each method's and head's held-out scores, and each method minus each head on the same
  test images with its simultaneous interval and label (m = the number of methods), by `paired.compare`.
- Refuses heads on other folds than the first's, and methods whose images, targets or folds are not the heads'
  (run the classic stage where the heads' setting is, e.g. after `dvc exp run -S data.neutral=keep`).
- `read`: the classic stage's out-of-fold predictions in a workspace; `classic_table`: the markdown table.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ewmtcnn import InputError, cli, paths
from ewmtcnn.config.sections import LDL_METHODS
from ewmtcnn.evaluation import report
from ewmtcnn.study import compare, paired
from ewmtcnn.study.paired import Comparison
from ewmtcnn.study.protocol import ALPHA, MARGINS, level
from ewmtcnn.study.table_columns import DIGITS, Column, Row, header, interval, markdown, score_column

#: A method compared with an arm: better or worse than it where the interval excludes 0 (`paired.label`'s
#: helps and hurts, said of the method).
VERDICTS = {paired.HELPS: "better", paired.HURTS: "worse"}
#: The letter of the classic methods' table in docs/results.md.
LETTER = "G"


def read(root: Path = Path()) -> dict[str, pd.DataFrame]:
    """The out-of-fold predictions of each method that the classic stage wrote in the workspace at `root`.

    - In `LDL_METHODS` order; none at all, or an unreadable table, is an InputError naming the path.
    """
    found = {name: root / paths.classic_predictions(name) for name in LDL_METHODS}
    found = {name: path for name, path in found.items() if path.is_file()}
    if not found:
        raise InputError(f"{root / paths.CLASSIC}: no classic predictions; run `dvc repro classic`")
    tables = {}
    for name, path in found.items():
        try:
            tables[name] = pd.read_csv(path)
        except (OSError, ValueError) as e:  # pandas' ParserError and EmptyDataError are ValueErrors
            raise InputError(f"{path}: not a readable table ({e}); rerun `dvc repro classic`") from None
    return tables


def _delta(arm: str, score: str, compared: Mapping[str, Comparison]) -> Column:
    """A method minus `arm` on `score`: the mean fold difference [its interval] and what the interval says."""

    def cell(row: Row) -> str:
        if (comparison := compared.get(row.names[0])) is None:
            return "-"
        a = comparison.tests[score]
        difference = interval({"mean": a.mean, "ci_low": a.low, "ci_high": a.high}, DIGITS.get(score, 3), "+")
        return f"{difference} {VERDICTS.get(a.label, a.label)}"

    return Column(f"Δ{header(score)} vs {arm}", cell)


def classic_table(
    methods: Mapping[str, pd.DataFrame], arms: Mapping[str, pd.DataFrame], name: str = LETTER, setting: str = ""
) -> str:
    """The classic methods beside the head `arms`, each method compared with each arm on the same test images.

    - Both map a name to an out-of-fold predictions table (metrics/predictions.csv's layout), all of the
      same images, repeats and folds; a name may not be both a method and an arm.
    - `name` is the table's letter; `setting`, the arms' shared setting in words (table.setting).
    - A row per arm, then per method: the tested scores (protocol.MARGINS), mean [95% interval] over the
      folds; then per arm and tested score, method - arm with its simultaneous interval and label.
    """
    if not methods or not arms or set(methods) & set(arms):
        raise InputError(
            f"need methods and arms, under different names; found methods {list(methods)} and arms {list(arms)}"
        )
    compared = {arm: paired.compare({arm: table, **methods}, arm) for arm, table in arms.items()}
    pairs = next(iter(compared[next(iter(arms))].values())).paired
    rows = [Row((name, "-", "-"), report.summary(table), {}) for name, table in {**arms, **methods}.items()]
    columns = [
        Column("method", lambda row: row.names[0]),
        *(score_column(score) for score in MARGINS),
        *(_delta(arm, score, compared[arm]) for arm in arms for score in MARGINS),
    ]
    m = len(methods)
    margins = ", ".join(f"±{margin:g} {header(score)}" for score, margin in MARGINS.items())
    caption = (
        f"**Table {name}: classic LDL methods beside the heads.** The heads: {setting} The methods: the same "
        f"cached features, {pairs.images} images and {pairs.repeats} × {pairs.folds} folds; each method's "
        "hyperparameters chosen per training fold by inner cross-validation on it; the heads' arms first. "
        "Scores on the held-out folds: mean over the folds [95% "
        "corrected resampled t interval (Nadeau & Bengio, 2003)]. Δ vs an arm: method − arm on the same test "
        f"images, mean over the folds [the corrected resampled t interval at 1 − {ALPHA}/m = {100 * level(m):.3g}%, "
        f"simultaneous over the m = {m} methods compared with that arm], then what it says against the margins of "
        f"equivalence ({margins}): better / worse when it excludes 0, {paired.EQUIVALENT} when it lies inside the "
        f"margin, {paired.EQUIVALENT_DIFFERS} when both, {paired.INCONCLUSIVE} when neither."
    )
    return markdown(caption, columns, rows)


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `classic`."""
    parser.add_argument(
        "runs",
        metavar="RUN",
        nargs="*",
        default=[compare.WORKSPACE],
        help=f"a head to set the methods beside: an experiment, commit, branch or {compare.WORKSPACE} (the default)",
    )
    return parser


def execute(args: argparse.Namespace) -> None:
    """Print table G for the working tree's classic methods and the heads of `args.runs`."""
    sides = [compare.read_side(run) for run in dict.fromkeys(args.runs)]
    for side in sides[1:]:
        compare.check_same_folds(sides[0], side)
    heads = {side.name: side.predictions for side in sides}
    print(classic_table(read(), heads, LETTER, f"the out-of-fold predictions of {', '.join(heads)}."))


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m ewmtcnn.study.classic [RUN ...]`."""
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.study.classic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    args = arguments(parser).parse_args(argv)
    cli.run(lambda: execute(args))


if __name__ == "__main__":
    main()
