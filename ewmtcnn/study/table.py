"""`python -m ewmtcnn.study.table`: the results document's tables of the prior variants, and their chart.

- Run from the repository root once the experiments have run (`python -m ewmtcnn.study.queue`).
- Reads `dvc exp show --json` and picks each (grid, arm)'s newest experiment.
- Tests every arm of tables A, B and D against the table's first arm on their out-of-fold predictions.
- Writes the chart, replaces the text of docs/results.md between each table's markers, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ewmtcnn import InputError, cli, paths
from ewmtcnn.config import sections
from ewmtcnn.evaluation import metrics
from ewmtcnn.io.atomic import write_text
from ewmtcnn.io.choice import HYPERPARAMETERS
from ewmtcnn.study import chart, classic, experiments, paired
from ewmtcnn.study.classic import classic_table
from ewmtcnn.study.design import ALL, BASELINE, GRIDS, WHEEL, Arm, Grid, grids_named
from ewmtcnn.study.paired import Comparison
from ewmtcnn.study.protocol import ALPHA, MARGINS, level
from ewmtcnn.study.published import HELD_OUT, REIMPLEMENTATION, REIMPLEMENTATION_CLASSES
from ewmtcnn.study.table_columns import (
    Column,
    Row,
    Stats,
    arm_row,
    baseline_rows,
    comparison_columns,
    header,
    markdown,
    metrics_rows,
    published_columns,
    reimplementation_columns,
    score_column,
)

#: How a caption leaves a param that the arms vary to each row's params cell.
AS_IN_EACH_ROW = "as in each row"
#: The document whose markers the tables replace (docs/results.md).
RESULTS = Path("docs/results.md")
INTERVALS = "95% corrected resampled t intervals (Nadeau & Bengio, 2003)"
#: What the published tables' Clark and Canberra are.
NORMALISED = (
    "Clark / √c and Canberra / c: per label over the c emotions, as the published figures are (Geng's sums, "
    "in tables A, B and D, divided by √c and c)"
)


def markers(name: str) -> tuple[str, str]:
    """The lines of the results document between which table `name` goes."""
    return f"<!-- table-{name}:start -->", f"<!-- table-{name}:end -->"


def _network(row: pd.Series, varied: Collection[str] = ()) -> str:
    """The backbone, its weights and what training changes of it; the backbone is the rows' own when `varied`."""
    weights = "ImageNet weights" if row["model.pretrained"] else "random init"
    mode = "fine-tuned end to end" if row["train.finetune"] else "frozen features, head trained"
    backbone = AS_IN_EACH_ROW if "model.backbone" in varied else row["model.backbone"]
    return f"{backbone} ({weights}), {mode}"


def _recipe(row: pd.Series, varied: Collection[str] = ()) -> str:
    """The training recipe's hyperparameters; those of `varied` are the rows' own."""
    if row["train.recipe"] == "converged":
        pca = f"its first {row['train.pca']} principal components" if row["train.pca"] else "all its features"
        return (
            f"lambda {row['train.lambda']:g}; each head fitted to convergence (L-BFGS) on {pca}, standardised per "
            f"training set, its weight_decay chosen among {min(row['select.weight_decay']):g} to "
            f"{max(row['select.weight_decay']):g} ({len(row['select.weight_decay'])} log-spaced values) by "
            f"{row['select.folds']}-fold inner cross-validation of each training fold"
        )
    if row["train.recipe"] == "selected":
        return (
            f"epochs (early stopping on KL, at most {row['select.epochs']}), lr_head and weight_decay chosen per "
            f"training fold on a stratified inner validation split of {row['select.share']:.0%} of it"
        )
    given = {name: AS_IN_EACH_ROW if f"train.{name}" in varied else row[f"train.{name}"] for name in HYPERPARAMETERS}
    return (
        f"lambda {row['train.lambda']:g}; {given['epochs']} epochs, lr_head {given['lr_head']}, "
        f"weight_decay {given['weight_decay']}"
    )


def _split(row: pd.Series) -> str:
    """The cross-validation: folds, repeats and split seeds."""
    first, repeats, folds = row["split.seed"], row["split.repeats"], row["split.folds"]
    if repeats == 1:
        return f"{folds}-fold cross-validation (split seed {first})"
    return f"{repeats} repeats of {folds}-fold cross-validation (split seeds {first} to {first + repeats - 1})"


def setting(rows: pd.DataFrame, images: int, varied: Collection[str] = ()) -> str:
    """The setting all rows share, read from their params; those of `varied` are the rows' own."""
    row = rows.iloc[0]
    emotions = "7 emotions (neutral kept)" if row["data.neutral"] == "keep" else "6 emotions (neutral dropped)"
    return (
        f"Emotion6, {images} images, {emotions}, class label `{row['data.label']}`; "
        f"{_network(row, varied)}; {_recipe(row, varied)}; {_split(row)}."
    )


def comparison_table(
    grid: Grid, rows: pd.DataFrame, compared: Mapping[Arm, Comparison], chosen: Mapping[Arm, Mapping[str, Stats]]
) -> str:
    """Table A, B or D: the arms against the first (`compared`), with their `chosen` hyperparameters.

    - When the first arm is `none` as the default params have it, the trivial baselines of its
      experiment follow.
    """
    pairs = next(iter(compared.values())).paired
    first = grid.arms[0]
    table_rows = [
        arm_row(arm, rows.loc[arm.label], comparison=compared.get(arm), chosen=chosen.get(arm)) for arm in grid.arms
    ]
    if first == BASELINE:
        table_rows += baseline_rows(rows.loc[first.label])
    varied = {param for arm in grid.arms for param, _ in arm.pinned}
    m = len(compared)
    margins = ", ".join(f"±{margin:g} {header(score)}" for score, margin in MARGINS.items())
    caption = (
        f"**Table {grid.name}: {grid.title}.** {setting(rows, pairs.images, varied)} Scores on the held-out folds: "
        f"mean over the {pairs.repeats} × {pairs.folds} folds [{INTERVALS}, which allow for the overlap of the "
        f"training sets]. Δ: arm − {first.label} on the same test images, mean over the folds [the corrected "
        f"resampled t interval at 1 − {ALPHA}/m = {100 * level(m):.3g}%, Bonferroni-simultaneous over the m = {m} "
        f"arms of each measure]. Labels are read from that interval against the declared margins of equivalence "
        f"({margins}): {paired.HELPS} / {paired.HURTS} when it excludes 0, {paired.EQUIVALENT} when it lies inside "
        f"the margin, {paired.EQUIVALENT_DIFFERS} when both, {paired.INCONCLUSIVE} when neither. p differs: the "
        "two-sided corrected t-test of Δ = 0, times m; p within ±margin: the larger p of the two one-sided tests "
        f"of Δ beyond the margin (TOST), times 2m; each capped at 1, and below {ALPHA} exactly when the interval "
        "says so. Median ΔKL and images improved: per image, averaged over the repeats (not tested)."
    )
    if first == BASELINE:
        caption += (
            " Baselines, from each training set: its mean distribution for every image, and its most common class "
            "(one-hot: infinite KL, so classification scores only)."
        )
    if any(chosen.values()):
        caption += (
            f" Chosen: median [min–max] over the {pairs.repeats * pairs.folds} training folds of the "
            "settings picked on their inner validation, and how many folds picked the smallest or largest value "
            "of its grid."
        )
    names = experiments.CHOSEN.get(rows.iloc[0]["train.recipe"], ())
    return markdown(caption, comparison_columns(names, bool(varied), first.label), table_rows)


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
    """The results document with the text between table `name`'s markers replaced by `block`."""
    start, end = markers(name)
    if readme.count(start) != 1 or readme.count(end) != 1 or readme.index(start) > readme.index(end):
        raise InputError(f"the results document needs one {start} line followed by one {end} line")
    head, rest = readme.split(start)
    tail = rest.split(end)[1]
    return f"{head}{start}\n{block}\n{end}{tail}"


def published_table(grid: Grid, rows: pd.DataFrame) -> str:
    """Table E: other methods' published held-out figures, then the arms' with their intervals."""
    table_rows = [
        Row((f"{p.method} ({p.venue}), {p.network}", f"{p.split}, 7 emotions", "-"), p.scores(), {}) for p in HELD_OUT
    ]
    for arm in grid.arms:
        row = rows.loc[arm.label]
        emotions = "7 emotions" if row["data.neutral"] == "keep" else "6 emotions"
        protocol = f"{row['split.repeats']} × {row['split.folds']}-fold CV, {emotions}, label `{row['data.label']}`"
        method = f"ours: {' '.join(filter(None, (arm.init, arm.mode, arm.head)))}, frozen {row['model.backbone']}"
        table_rows.append(arm_row(arm, row)._replace(names=(method, protocol, "-")))
    first = rows.iloc[0]
    caption = (
        f"**Table {grid.name}: {grid.title}.** Ours: {_network(first)}; {_recipe(first)}; {_split(first)}; "
        f"scores on the held-out folds, mean [{INTERVALS}]. The published figures are each from one split, on "
        f"which StyleEDL also picked its epoch (its training log scores the test set every epoch). {NORMALISED}."
    )
    return markdown(caption, published_columns(), table_rows)


#: The default variant's block: the workspace's metrics.json (`dvc repro`), written where the results document has
#: its markers.
DEFAULT = "default"


def default_table(path: Path = paths.METRICS, params: Path = sections.PARAMS) -> str:
    """The workspace's variant: held-out and in-place scores and the trivial baselines, from its metrics.json."""
    try:
        scores = pd.json_normalize(json.loads(path.read_text(encoding="utf-8")), sep=".").iloc[0]
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable metrics ({e}); run `dvc repro evaluate`") from None
    split = sections.load(params).split
    caption = (
        f"**The default variant** (`dvc repro`, params.yaml as committed), {split.repeats} repeats of "
        f"{split.folds}-fold cross-validation: mean over the {split.repeats * split.folds} held-out folds "
        f"[{INTERVALS}], beside the trivial baselines computed from each training fold ({path})."
    )
    columns = [Column("", lambda row: row.names[0]), *(score_column(score) for score in metrics.SCORES)]
    return markdown(caption, columns, metrics_rows(scores))


#: Table G, the classic LDL methods of the workspace's classic stage, is written with table A where the
#: results document has its markers; it compares them with A's default arm and `none` (the same features, images
#: and folds, which it checks).
CLASSIC, CLASSIC_BESIDE = classic.LETTER, "A"


def tables(
    frame: pd.DataFrame, grids: Sequence[Grid] = GRIDS, with_classic: bool = False
) -> tuple[dict[str, str], dict[Grid, dict[Arm, Comparison]]]:
    """Each grid's table text by grid name, and each compared grid's comparisons with its first arm (the chart's).

    - `with_classic`: table G too, with table A (the results document has its markers).
    """
    texts, charted = {}, {}
    for grid in grids:
        rows = experiments.grid_rows(frame, grid)
        if grid.kind == "reimplementation":
            images = experiments.predictions(rows.iloc[0])["image"].nunique()
            texts[grid.name] = reimplementation_table(grid, rows, images)
            continue
        if grid.kind == "published":
            texts[grid.name] = published_table(grid, rows)
            continue
        compared = paired.compare(
            {arm: experiments.predictions(rows.loc[arm.label]) for arm in grid.arms}, grid.arms[0]
        )
        chosen = {arm: experiments.chosen(rows.loc[arm.label]) for arm in grid.arms}
        texts[grid.name] = comparison_table(grid, rows, compared, chosen)
        charted[grid] = compared
        if with_classic and grid.name == CLASSIC_BESIDE:
            heads = {arm.label: experiments.predictions(rows.loc[arm.label]) for arm in (WHEEL, BASELINE)}
            images = next(iter(heads.values()))["image"].nunique()
            texts[CLASSIC] = classic_table(classic.read(), heads, CLASSIC, setting(rows, images))
    return texts, charted


def main(argv: Sequence[str] | None = None) -> None:
    """Build the chosen tables and the chart from `dvc exp show`, and write them into the results document."""
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.study.table",
        description="Compare the prior-layer variants of `dvc exp show`: docs/results.md tables, chart, paired tests.",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="the file with the table markers")
    parser.add_argument("--plot", type=Path, default=Path("plots/variants.png"), help="the comparison chart (PNG)")
    parser.add_argument("--show-json", type=Path, help="a saved `dvc exp show --json` instead of running it")
    parser.add_argument(
        "--tables", default="".join(grid.name for grid in GRIDS), help=f"the tables to write, of {''.join(ALL)}"
    )
    args = parser.parse_args(argv)
    grids = grids_named(args.tables)
    try:
        readme = args.results.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{args.results}: {e.strerror}") from None
    for grid in grids:
        replace_block(readme, grid.name, "")  # missing markers fail before the slow part
    frame = experiments.experiments(experiments.exp_show(args.show_json))
    for skipped in frame[frame["error"].notna()].itertuples():
        print(f"skipped experiment {skipped.name} ({skipped.rev[:7]}): {skipped.error}", file=sys.stderr)
    texts, charted = tables(frame, grids, with_classic=markers(CLASSIC)[0] in readme)
    if markers(DEFAULT)[0] in readme:
        texts[DEFAULT] = default_table()
    charted = {grid: compared for grid, compared in charted.items() if grid in GRIDS}  # the chart of `make table`
    if charted:
        chart.plot(charted, args.plot)
    for name, text in texts.items():
        readme = replace_block(readme, name, text)
    write_text(readme, args.results)
    print("\n\n".join(texts.values()))


if __name__ == "__main__":
    cli.run(main)
