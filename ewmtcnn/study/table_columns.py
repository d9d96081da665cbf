"""The columns of the variants tables of docs/results.md, each a header and the cell it computes from a `Row`.

- A table's header and its cells come from one place, so they cannot disagree.
- The score columns come from one list, `metrics.SCORES`, the scores of metrics/metrics.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import pandas as pd

from ewmtcnn.evaluation import metrics
from ewmtcnn.study.design import Arm
from ewmtcnn.study.paired import Assessment, Comparison
from ewmtcnn.study.protocol import MARGINS
from ewmtcnn.study.published import REIMPLEMENTATION_CLASSES, Published

#: A score's figures: its `mean`, `ci_low` and `ci_high` (and `std`) over the held-out folds.
Stats = Mapping[str, float]
#: Decimals of a score's cells where the default 3 would hide the differences between arms.
DIGITS: dict[str, int] = {"kl": 4}
HEADERS: dict[str, str] = {
    "acc": "acc",
    "balanced_acc": "balanced acc",
    "macro_f1": "macro-F1",
    "kl": "KL",
    "clark_normalised": "Clark / √c",
    "canberra_normalised": "Canberra / c",
}
#: The trivial baselines of metrics.json, as their rows are named.
TRIVIAL: dict[str, str] = {"mean": "baseline: mean distribution", "majority": "baseline: majority class"}


class Row(NamedTuple):
    """What one row's cells are computed from; what a row does not have shows as `-`."""

    names: tuple[str, str, str]  # the init, freeze and head cells
    test: Mapping[str, Stats]  # score -> its held-out figures
    train: Mapping[str, Stats]  # score -> its figures in place on the training folds
    comparison: Comparison | None = None  # against `none`
    chosen: Mapping[str, Stats] | None = None  # the chosen hyperparameters: median, min, max
    published: Published | None = None  # the reimplementation's figures
    pinned: str = "-"  # the arm's own pinned params besides its prior and head
    labels: Mapping[str, str] = {}  # what a row is, by column (table F)


class Column(NamedTuple):
    """One column of a table: its header, and its cell of each row."""

    name: str
    cell: Callable[[Row], str]


def _section(experiment: pd.Series, prefix: str) -> dict[str, dict[str, float]]:
    """The scores of one section of an experiment's metrics.json (`test`, `baselines.mean`, ...)."""
    return {
        score: {stat: float(experiment[f"{prefix}.{score}.{stat}"]) for stat in ("mean", "ci_low", "ci_high")}
        for score in metrics.SCORES
        if pd.notna(experiment.get(f"{prefix}.{score}.mean"))
    }


def interval(stats: Stats | None, digits: int, sign: str = "") -> str:
    """A figure and its interval, or a published figure alone; `-` without one."""
    if stats is None:
        return "-"
    if "ci_low" not in stats:  # a published figure, with the two decimals it was published with
        return f"{stats['mean']:.2f}"
    return f"{stats['mean']:{sign}.{digits}f} [{stats['ci_low']:{sign}.{digits}f}, {stats['ci_high']:{sign}.{digits}f}]"


def _p(p: float) -> str:
    """A p-value, with three decimals."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _compared(name: str, cell: Callable[[Comparison], str]) -> Column:
    """A column of the comparison with `none`: `-` in rows without one."""
    return Column(name, lambda row: "-" if row.comparison is None else cell(row.comparison))


def header(score: str) -> str:
    """A score's name in a header."""
    return HEADERS.get(score, score.capitalize())


#: Beside KL's difference: how its per-image differences, averaged over the repeats, spread (not tested).
KL_IMAGES: tuple[Column, ...] = (
    _compared("median ΔKL", lambda c: f"{c.paired.kl_median:+.4f}"),
    _compared("images improved (KL)", lambda c: f"{100 * c.paired.kl_improved:.1f}%"),
)


def _assessed(score: str, cell: Callable[[Assessment], str]) -> Callable[[Comparison], str]:
    """A cell of one tested score's comparison."""
    return lambda comparison: cell(comparison.tests[score])


def _comparison(score: str, baseline: str) -> list[Column]:
    """One tested score against the `baseline` arm: the difference with its interval, then its two adjusted p-values.

    - KL's median difference and share of images improved follow its difference.
    """
    digits = DIGITS.get(score, 3)
    name = header(score)
    difference = _assessed(score, lambda a: interval({"mean": a.mean, "ci_low": a.low, "ci_high": a.high}, digits, "+"))
    return [
        _compared(f"Δ{name} vs {baseline}", difference),
        *(KL_IMAGES if score == "kl" else ()),
        _compared(f"p {name} differs", _assessed(score, lambda a: _p(a.p_differs))),
        _compared(f"p {name} within ±{MARGINS[score]:g}", _assessed(score, lambda a: _p(a.p_equivalent))),
    ]


def _chosen(name: str) -> Column:
    """A chosen hyperparameter: median [min–max] over the training folds."""

    def cell(row: Row) -> str:
        if row.chosen is None:
            return "-"
        s = row.chosen[name]
        ends = f"; {s['ends']:.0f}/{s['folds']:.0f} at a grid end" if "ends" in s else ""
        return f"{s['median']:g} [{s['min']:g}–{s['max']:g}]{ends}"

    return Column(f"{name} chosen", cell)


def _names() -> list[Column]:
    """The init, freeze and head columns."""
    return [Column(header, lambda row, i=i: row.names[i]) for i, header in enumerate(("init", "freeze", "head"))]


def score_column(score: str, prefix: str = "") -> Column:
    """A held-out score: mean [interval]."""
    return Column(prefix + header(score), lambda row: interval(row.test.get(score), DIGITS.get(score, 3)))


def comparison_columns(chosen: Sequence[str] = (), pinned: bool = False, baseline: str = "none") -> list[Column]:
    """Tables A, B and D: every held-out score and the comparison with the `baseline` arm of each tested score.

    - The tested scores are those with a declared margin (protocol.MARGINS), in its order; a
      label per tested score last.
    - With `pinned`, the arms' own pinned params; then the `chosen` hyperparameters.
    """
    return [
        *_names(),
        *([Column("params", lambda row: row.pinned)] if pinned else []),
        *(score_column(score) for score in metrics.SCORES),
        *(column for score in MARGINS for column in _comparison(score, baseline)),
        *(_compared(f"prior for {header(score)}", _assessed(score, lambda a: a.label)) for score in MARGINS),
        *(_chosen(name) for name in chosen),
    ]


def reimplementation_columns() -> list[Column]:
    """Table C: in-place training figures beside the reimplementation's, and the held-out ones."""
    classes = REIMPLEMENTATION_CLASSES
    return [
        *_names(),
        Column("train acc (in place)", lambda row: f"{100 * row.train['acc']['mean']:.1f}%"),
        Column("reimpl. train acc", lambda row: f"{row.published.acc_percent:.3f}%"),
        Column(f"train KL / {classes} (in place)", lambda row: f"{row.train['kl']['mean'] / classes:.4f}"),
        Column(f"reimpl. train KL / {classes}", lambda row: f"{row.published.kl_per_class:.7f}"),
        score_column("acc", "test "),
        score_column("kl", "test "),
    ]


#: Tables E and F's scores: those the published methods report, then the classification ones. Clark
#: and Canberra in their normalised form, the published one (metrics: Geng's sums grow with c).
PUBLISHED_SCORES: tuple[str, ...] = (
    *("kl", "chebyshev", "cosine", "intersection", "clark_normalised", "canberra_normalised"),
    *("acc", "balanced_acc"),
)


def published_columns() -> list[Column]:
    """Table E: what a row is and on which protocol, then the scores that the published figures report."""
    return [
        Column("method", lambda row: row.names[0]),
        Column("protocol", lambda row: row.names[1]),
        *(score_column(score) for score in PUBLISHED_SCORES),
    ]


def arm_row(arm: Arm, experiment: pd.Series, **extra: object) -> Row:
    """An arm's row, from its experiment's params and metrics (`experiments.grid_rows`)."""
    names = (arm.init, arm.mode or "-", arm.head or "-")
    pinned = ", ".join(f"{param} {value}" for param, value in arm.pinned) or "-"
    return Row(names, _section(experiment, "test"), _section(experiment, "train"), pinned=pinned, **extra)


def metrics_rows(experiment: pd.Series) -> list[Row]:
    """An experiment's held-out and in-place scores, then its trivial baselines, a row each (first cell only)."""
    return [
        Row(("**test** (held-out folds)", "-", "-"), _section(experiment, "test"), {}),
        Row(("train (in place, as the reimplementation reports)", "-", "-"), _section(experiment, "train"), {}),
        *baseline_rows(experiment),
    ]


def baseline_rows(experiment: pd.Series) -> list[Row]:
    """The trivial baselines that an experiment's metrics.json reports, a row each."""
    return [Row((name, "-", "-"), _section(experiment, f"baselines.{key}"), {}) for key, name in TRIVIAL.items()]


def markdown(caption: str, table: Sequence[Column], rows: Sequence[Row]) -> str:
    """A caption and a markdown table."""
    lines = ["| " + " | ".join(column.name for column in table) + " |", "|" + "---|" * len(table)]
    lines += ["| " + " | ".join(column.cell(row) for column in table) + " |" for row in rows]
    return "\n".join([caption, "", *lines])
