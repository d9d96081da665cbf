"""`python -m ewmtcnn.table`: the README's results table across the prior variants.

Run from the repository root after the 13 variant experiments have run (`python -m ewmtcnn.grid`).
It reads `dvc exp show --json`, picks each arm's newest experiment, reads its out-of-fold
predictions from the experiment's commit, tests every arm against `none`, writes the chart,
replaces the README text between the markers, and prints the table.

A table is a list of arms (its rows) and a list of `Column`s, each computing its cell from a
`Row`, so the header and the cells come from one place and cannot disagree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ewmtcnn import InputError, chart, cli, experiments, metrics, statistics
from ewmtcnn.atomic import written
from ewmtcnn.grid import ARMS, BASELINE, Arm
from ewmtcnn.published import REIMPLEMENTATION, REIMPLEMENTATION_CLASSES, Published

START = "<!-- results-table:start -->"
END = "<!-- results-table:end -->"
#: Decimals of a measure's cells where the default 3 would hide the differences between arms.
DIGITS: dict[str, int] = {"kl": 4}


class Row(NamedTuple):
    """What one row's cells are computed from."""

    arm: Arm
    scores: pd.Series  # the arm's experiment: its params and metrics, as `experiments.arm_rows` gives them
    paired: Mapping[str, float] | None  # `statistics.compare`'s result against the baseline; None for the baseline


class Column(NamedTuple):
    """One column of a table: its header, and its cell of each row."""

    name: str
    cell: Callable[[Row], str]


def _pm(scores: pd.Series, column: str, digits: int) -> str:
    return f"{scores[f'{column}.mean']:.{digits}f} ± {scores[f'{column}.std']:.{digits}f}"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _published(arm: Arm) -> Published:
    return REIMPLEMENTATION[(arm.init, arm.freeze)]


def _measure(measure: str) -> Column:
    """A held-out LDL measure: mean ± std over the test folds."""
    name = "test KL" if measure == "kl" else measure.capitalize()
    return Column(name, lambda row: _pm(row.scores, f"test.{measure}", DIGITS.get(measure, 3)))


def _versus_baseline(name: str, cell: Callable[[Mapping[str, float]], str]) -> Column:
    """A column of the paired comparison with the baseline, which itself reads `(baseline)` there."""
    return Column(name, lambda row: "(baseline)" if row.paired is None else cell(row.paired))


def columns() -> list[Column]:
    """The columns of the variants table, one per measure of `metrics.MEASURES` among them."""
    return [
        Column("init", lambda row: row.arm.init),
        Column("freeze", lambda row: row.arm.mode or "-"),
        Column("head", lambda row: row.arm.head or "-"),
        Column("test acc", lambda row: _pm(row.scores, "test.acc", 3)),
        *(_measure(measure) for measure in metrics.MEASURES),
        Column("train acc (in place)", lambda row: f"{100 * row.scores['train.acc.mean']:.1f}%"),
        Column("reimpl. train acc", lambda row: f"{_published(row.arm).acc_percent:.3f}%"),
        Column(
            f"train KL / {REIMPLEMENTATION_CLASSES} (in place)",
            lambda row: f"{row.scores['train.kl.mean'] / REIMPLEMENTATION_CLASSES:.4f}",
        ),
        Column(
            f"reimpl. train KL (its mean over classes: KL / {REIMPLEMENTATION_CLASSES})",
            lambda row: f"{_published(row.arm).kl_per_class:.7f}",
        ),
        _versus_baseline("Δacc vs none (Holm p)", lambda s: f"{s['acc_diff']:+.3f} ({_p(s['acc_p_holm'])})"),
        _versus_baseline("ΔKL vs none (Holm p)", lambda s: f"{s['kl_diff']:+.4f} ({_p(s['kl_p_holm'])})"),
        _versus_baseline(
            "prior for KL", lambda s: statistics.verdict(s["kl_diff"], s["kl_p_holm"], lower_is_better=True)
        ),
        _versus_baseline(
            "prior for acc", lambda s: statistics.verdict(s["acc_diff"], s["acc_p_holm"], lower_is_better=False)
        ),
    ]


def caption(rows: pd.DataFrame, images: int) -> str:
    """The setting all rows share, read from their params."""
    row = rows.iloc[0]
    weights = "ImageNet weights" if row["model.pretrained"] else "random init"
    mode = "fine-tuned end to end" if row["train.finetune"] else "frozen features, head trained"
    emotions = "7 emotions (neutral kept)" if row["data.neutral"] == "keep" else "6 emotions (neutral dropped)"
    return (
        f"Emotion6, {images} images, {emotions}, class label `{row['data.label']}`; "
        f"{row['model.backbone']} ({weights}), {mode}; "
        f"{row['split.folds']}-fold cross-validation (split seed {row['split.seed']})."
    )


def markdown(rows: pd.DataFrame, arms: Sequence[Arm], paired: Mapping[Arm, Mapping[str, float]]) -> str:
    """The README results table, one row per arm, with a caption and a legend.

    `rows`: `experiments.arm_rows` of `arms`; the first arm is the baseline, and `paired` is
    `statistics.compare` of every other arm against it.
    """
    table = columns()
    lines = ["| " + " | ".join(column.name for column in table) + " |", "|" + "---|" * len(table)]
    for arm in arms:
        row = Row(arm, rows.loc[arm.label], None if arm == arms[0] else paired[arm])
        lines.append("| " + " | ".join(column.cell(row) for column in table) + " |")
    images = next(iter(paired.values()))["images"]
    legend = (
        f"Test: mean ± sample std over the held-out folds. Train: in place on the training folds, as the "
        f"reimplementation measured (its KL is averaged over the {REIMPLEMENTATION_CLASSES} emotions, so ours, "
        f"summed, is divided by {REIMPLEMENTATION_CLASSES}). Δ: variant − none over all {images} out-of-fold "
        f"predictions; p: McNemar's exact test (acc) and the Wilcoxon signed-rank test on per-image KL, "
        f"Holm-adjusted over the {len(paired)} variants; helps / hurts at α = {statistics.ALPHA}."
    )
    return "\n".join([caption(rows, images), "", *lines, "", legend])


def replace_block(readme: str, block: str) -> str:
    """The README with the text between the markers replaced by `block`."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise InputError(f"the README needs one {START} line followed by one {END} line")
    head, rest = readme.split(START)
    tail = rest.split(END)[1]
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.table",
        description="Compare the prior-layer variants of `dvc exp show`: README table, chart, "
        "paired tests against none.",
    )
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="file with the table markers")
    parser.add_argument("--plot", type=Path, default=Path("plots/variants.png"), help="the comparison chart (PNG)")
    parser.add_argument("--show-json", type=Path, help="a saved `dvc exp show --json` instead of running it")
    args = parser.parse_args(argv)
    try:
        readme = args.readme.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{args.readme}: {e.strerror}") from None
    replace_block(readme, "")  # missing markers fail before the slow part
    frame = experiments.experiments(experiments.exp_show(args.show_json))
    for skipped in frame[frame["error"].notna()].itertuples():
        print(f"skipped experiment {skipped.name} ({skipped.rev[:7]}): {skipped.error}", file=sys.stderr)
    rows = experiments.arm_rows(frame, ARMS)
    paired = statistics.compare({arm: experiments.predictions(rows.loc[arm.label]) for arm in ARMS}, BASELINE)
    text = markdown(rows, ARMS, paired)
    chart.plot(rows, ARMS, args.plot)
    with written(args.readme) as tmp:
        tmp.write_text(replace_block(readme, text), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    cli.run(main)
