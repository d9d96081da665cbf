"""The classic LDL methods beside the heads: their held-out scores, and each paired with head arms.

- `read`: the classic stage's out-of-fold predictions in a workspace (data/classic/<method>/predictions.csv).
- `classic_table`: a markdown table of each method's held-out scores and its paired comparison with each
  head arm given (the default arm and `none`, say), by `paired.compare` under the declared protocol.
- The comparisons with one arm are one family per score: m is the number of methods
  (`protocol.level(m)`), as in the tables of the arms against `none`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ewmtcnn import InputError, paths
from ewmtcnn.config.sections import LDL_METHODS
from ewmtcnn.evaluation import report
from ewmtcnn.study import paired
from ewmtcnn.study.paired import Comparison
from ewmtcnn.study.protocol import ALPHA, MARGINS, level
from ewmtcnn.study.table_columns import DIGITS, Column, Row, header, interval, markdown, score_column

#: A method compared with an arm: better or worse than it where the interval excludes 0 (`paired.label`'s
#: helps and hurts, said of the method).
VERDICTS = {paired.HELPS: "better", paired.HURTS: "worse"}


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
    methods: Mapping[str, pd.DataFrame], arms: Mapping[str, pd.DataFrame], name: str = "G", setting: str = ""
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
