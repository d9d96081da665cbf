"""`python -m ewmtcnn.table`: the README's three tables of the prior variants, and their chart.

Run from the repository root after the experiments of the three grids have run (`python -m
ewmtcnn.grid`). It reads `dvc exp show --json`, picks each (grid, arm)'s newest experiment, tests
every arm of tables A and B against `none` on their out-of-fold predictions, writes the chart,
replaces the README text between each table's markers, and prints the tables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ewmtcnn import InputError, chart, cli, experiments, statistics
from ewmtcnn.atomic import write_text
from ewmtcnn.columns import Stats, arm_row, baseline_rows, comparison_columns, markdown, reimplementation_columns
from ewmtcnn.grid import ARMS, BASELINE, GRIDS, Arm, Grid
from ewmtcnn.published import REIMPLEMENTATION, REIMPLEMENTATION_CLASSES
from ewmtcnn.statistics import Comparison

INTERVALS = "95% corrected resampled t intervals (Nadeau & Bengio, 2003)"
#: The grid set beside the reimplementation's published figures; the others are tested against `none`.
BESIDE_PUBLISHED = "C"


def markers(name: str) -> tuple[str, str]:
    """The README lines between which table `name` goes."""
    return f"<!-- table-{name}:start -->", f"<!-- table-{name}:end -->"


def setting(rows: pd.DataFrame, images: int) -> str:
    """The setting all rows share, read from their params."""
    row = rows.iloc[0]
    weights = "ImageNet weights" if row["model.pretrained"] else "random init"
    mode = "fine-tuned end to end" if row["train.finetune"] else "frozen features, head trained"
    emotions = "7 emotions (neutral kept)" if row["data.neutral"] == "keep" else "6 emotions (neutral dropped)"
    if row["train.recipe"] == "selected":
        recipe = (
            f"epochs (early stopping on KL, at most {row['select.epochs']}), lr_head and weight_decay chosen per "
            f"training fold on a stratified inner validation split of {row['select.share']:.0%} of it"
        )
    else:
        recipe = (
            f"{row['train.epochs']} epochs, lr_head {row['train.lr_head']}, weight_decay {row['train.weight_decay']}"
        )
    first, repeats, folds = row["split.seed"], row["split.repeats"], row["split.folds"]
    split = (
        f"{folds}-fold cross-validation (split seed {first})"
        if repeats == 1
        else f"{repeats} repeats of {folds}-fold cross-validation (split seeds {first} to {first + repeats - 1})"
    )
    return (
        f"Emotion6, {images} images, {emotions}, class label `{row['data.label']}`; "
        f"{row['model.backbone']} ({weights}), {mode}; {recipe}; {split}."
    )


def comparison_table(
    grid: Grid, rows: pd.DataFrame, compared: Mapping[Arm, Comparison], selections: Mapping[Arm, Mapping[str, Stats]]
) -> str:
    """Table A or B: the arms against `none` (`compared`), then the trivial baselines of `none`'s experiment."""
    paired = next(iter(compared.values())).paired
    table_rows = [
        arm_row(arm, rows.loc[arm.label], comparison=compared.get(arm), selection=selections.get(arm))
        for arm in grid.arms
    ] + baseline_rows(rows.loc[BASELINE.label])
    caption = (
        f"**Table {grid.name}: {grid.title}.** {setting(rows, paired.images)} Scores on the held-out folds: mean "
        f"over the {paired.repeats} × {paired.folds} folds [{INTERVALS}, which allow for the overlap of the "
        f"training sets]. Δ: arm − none on the same test images, mean over the folds [95% interval]; p: the "
        f"two-sided corrected resampled t-test of that mean, Holm-adjusted over the {len(compared)} arms per "
        f"measure; helps / hurts at α = {statistics.ALPHA} on the adjusted p. Median ΔKL and images improved: "
        "per image, averaged over the repeats (not tested). Baselines, from each training set: its mean "
        "distribution for every image, and its most common class (one-hot: infinite KL, so classification "
        "scores only)."
    )
    if selections:
        caption += (
            f" Chosen: median [min–max] over the {paired.repeats * paired.folds} training folds of the "
            "settings picked on their inner validation split."
        )
    return markdown(caption, comparison_columns(bool(selections)), table_rows)


def reimplementation_table(grid: Grid, rows: pd.DataFrame, images: int) -> str:
    """Table C: the reimplementation's setting, with its published training-set figures."""
    table_rows = [
        arm_row(arm, rows.loc[arm.label], published=REIMPLEMENTATION[(arm.init, arm.freeze)]) for arm in grid.arms
    ]
    none = rows.loc[BASELINE.label]
    finetune = "" if none["train.finetune"] else ", and it is not fine-tuned here"
    caption = (
        f"**Table {grid.name}: {grid.title}.** {setting(rows, images)} Train: in place on the training folds, "
        f"mean over the folds, as the reimplementation measured (its KL is averaged over the "
        f"{REIMPLEMENTATION_CLASSES} emotions, so ours, summed, is divided by {REIMPLEMENTATION_CLASSES}); "
        f"test: on the held-out folds, mean [{INTERVALS}]. Comparable in ordering only: "
        f"{none['model.backbone']} is not the reimplementation's backbone{finetune}."
    )
    return markdown(caption, reimplementation_columns(), table_rows)


def replace_block(readme: str, name: str, block: str) -> str:
    """The README with the text between table `name`'s markers replaced by `block`."""
    start, end = markers(name)
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise InputError(f"the README needs one {start} line followed by one {end} line")
    head, rest = readme.split(start)
    tail = rest.split(end)[1]
    return f"{head}{start}\n{block}\n{end}{tail}"


def tables(frame: pd.DataFrame) -> tuple[dict[str, str], dict[str, pd.DataFrame]]:
    """Each grid's table text, and the rows of the tables compared with `none`, by grid name."""
    texts, compared_rows = {}, {}
    for grid in GRIDS:
        rows = experiments.grid_rows(frame, grid)
        if grid.name == BESIDE_PUBLISHED:
            images = experiments.predictions(rows.loc[BASELINE.label])["image"].nunique()
            texts[grid.name] = reimplementation_table(grid, rows, images)
            continue
        compared = statistics.compare(
            {arm: experiments.predictions(rows.loc[arm.label]) for arm in grid.arms}, BASELINE
        )
        selected = rows.iloc[0]["train.recipe"] == "selected"
        selections = {arm: experiments.selection(rows.loc[arm.label]) for arm in grid.arms if selected}
        texts[grid.name] = comparison_table(grid, rows, compared, selections)
        compared_rows[f"Table {grid.name}: {grid.title}"] = rows
    return texts, compared_rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.table",
        description="Compare the prior-layer variants of `dvc exp show`: README tables, chart, tests against none.",
    )
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="file with the table markers")
    parser.add_argument("--plot", type=Path, default=Path("plots/variants.png"), help="the comparison chart (PNG)")
    parser.add_argument("--show-json", type=Path, help="a saved `dvc exp show --json` instead of running it")
    args = parser.parse_args(argv)
    try:
        readme = args.readme.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{args.readme}: {e.strerror}") from None
    for grid in GRIDS:
        replace_block(readme, grid.name, "")  # missing markers fail before the slow part
    frame = experiments.experiments(experiments.exp_show(args.show_json))
    for skipped in frame[frame["error"].notna()].itertuples():
        print(f"skipped experiment {skipped.name} ({skipped.rev[:7]}): {skipped.error}", file=sys.stderr)
    texts, compared_rows = tables(frame)
    chart.plot(compared_rows, ARMS, args.plot)
    for name, text in texts.items():
        readme = replace_block(readme, name, text)
    write_text(readme, args.readme)
    print("\n\n".join(texts.values()))


if __name__ == "__main__":
    cli.run(main)
