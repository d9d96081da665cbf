"""The evaluate stage's pictures: confusion, curves, figures per emotion, the prior.

- Each names its axes and says in its title what it shows: which folds, what is pooled or averaged.
- Fixed colour scales, so that two experiments' pictures compare: shares 0..1, the prior -1..1.
- Nothing is averaged silently: the curves draw every fold, and a median says over how many.
- Matplotlib `Figure`s (no pyplot: no global state, no display); `png` gives the bytes the stage writes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps, ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ewmtcnn.io.checkpoint import TrainedFold
from ewmtcnn.io.choice import CURVED

DPI = 100
PRIOR_LIMIT = 1.0  # the prior's colour scale runs from -PRIOR_LIMIT to PRIOR_LIMIT; beyond, the end colours below
PRIOR_OVER, PRIOR_UNDER = "black", "0.3"  # a prior entry above / below the scale, its value printed in white
DARK = 0.6  # a cell whose share or |W_ij| is above this is dark: its text is white
REPEAT_COLOURS = colormaps["tab10"].colors  # one per repeat; the folds of a repeat share its colour
#: The panels of the figures per emotion: metrics/per_emotion.json's figure and its axis title.
PER_EMOTION_PANELS = (
    ("kl", "mean KL(annotators || predicted)\nof its images"),
    ("recall", "recall: share of its images\npredicted as it"),
    ("precision", "precision: share predicted as it\nthat are labelled it"),
    ("f1", "F1 of recall and precision"),
)
#: The epoch curves' rows: a fold history's figure and its axis title.
EPOCH_FIGURES = (
    ("loss", "loss, (1 - lambda) CE + lambda KL"),
    ("acc", "accuracy (most probable\nemotion = class label)"),
    ("kl", "KL(annotators || predicted)"),
)
EPOCH_PARTS = (("train", "training images (over each epoch's batches)"), ("test", "held-out fold (after each epoch)"))


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes, the same for the same figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})  # no version stamp: same bytes
    return buffer.getvalue()


def _cell_text(ax: Axes, texts: np.ndarray, dark: np.ndarray) -> None:
    """Each cell's text at its centre, white on the dark cells."""
    for (i, j), text in np.ndenumerate(texts):
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark[i, j] else "black")


def confusion(counts: pd.DataFrame, repeats: int) -> Figure:
    """The confusion counts (class label rows, predicted columns) as each row's shares, with the counts.

    - Colour is the share of the row's predictions on a fixed 0..1 scale: the diagonal is each class's
      recall, outlined so that a class almost never recognised stands out.
    """
    shares = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).to_numpy()
    emotions, c = list(counts.columns), len(counts)
    fig = Figure(figsize=(8, 6.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    texts = np.array(
        [
            [f"{s:.2f}\n({n})" for s, n in zip(row, counts_row, strict=True)]
            for row, counts_row in zip(shares, counts.to_numpy(), strict=True)
        ]
    )
    _cell_text(ax, texts, shares > DARK)
    for k in range(c):
        ax.add_patch(Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="darkorange", lw=2, clip_on=False))
    images = counts.sum(axis=1) // repeats
    ax.set_xticks(range(c), emotions, rotation=30, ha="right")
    ax.set_yticks(range(c), [f"{e} ({n} images)" for e, n in zip(emotions, images, strict=True)])
    ax.set_xlabel("predicted emotion (most probable)")
    ax.set_ylabel("class label (annotators' dominant emotion)")
    ax.set_title(
        f"Out-of-fold confusion, {repeats} repeats pooled (each image once per repeat)\n"
        "each cell: share of the class label's predictions (count); outlined: recall"
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the row's predictions (each row sums to 1)")
    return fig


def per_emotion(scores: Mapping[str, Mapping[str, float]], repeats: int) -> Figure:
    """metrics/per_emotion.json's figures as bars, a panel each; an undefined figure says why."""
    table = pd.DataFrame(scores).T
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, len(PER_EMOTION_PANELS), sharey=True)
    rows = np.arange(len(table))
    for ax, (name, label) in zip(axes, PER_EMOTION_PANELS, strict=True):
        values = table[name].astype(float)
        ax.barh(rows, values.fillna(0), color="tab:blue" if name == "kl" else "tab:green")
        for row, value in zip(rows, values, strict=True):
            text = f" {value:.3f}" if np.isfinite(value) else " undefined:\n never predicted"
            ax.text(value if np.isfinite(value) else 0, row, text, va="center", fontsize=8)
        top = 1.0 if name != "kl" else float(np.nanmax(values))
        ax.set_xlim(0, 1.3 * top)
        ax.set_xticks(ticker.MaxNLocator(4).tick_values(0, top) if name == "kl" else [0, 0.25, 0.5, 0.75, 1])
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(rows, [f"{e} ({int(n)} images)" for e, n in table["images"].items()])
    axes[0].invert_yaxis()
    axes[0].set_ylabel("class label (annotators' dominant emotion)")
    fig.suptitle(f"Per emotion, out-of-fold: each repeat scored alone, mean over {repeats} repeats")
    return fig


def curves(folds: Mapping[tuple[int, int], TrainedFold]) -> Figure:
    """Every fold's curve: the weight decay's inner cross-validation (`converged`), else the epoch history."""
    ordered = dict(sorted(folds.items()))
    converged = next(iter(ordered.values())).choice.recipe == CURVED
    return _validation_curves(ordered) if converged else _epoch_curves(ordered)


def _repeat_legend(ax: Axes, repeats: Sequence[int], extra: Sequence[Line2D]) -> None:
    handles = [Line2D([], [], color=REPEAT_COLOURS[r % len(REPEAT_COLOURS)], label=f"repeat {r}") for r in repeats]
    ax.legend(handles=[*handles, *extra], fontsize=8)


def _validation_curves(folds: Mapping[tuple[int, int], TrainedFold]) -> Figure:
    """Per fold, the mean inner-validation KL of each weight decay tried, the chosen one and its held-out KL."""
    fig = Figure(figsize=(9, 6), layout="constrained")
    ax = fig.subplots()
    for (repeat, _), trained in folds.items():
        colour = REPEAT_COLOURS[repeat % len(REPEAT_COLOURS)]
        decays, kl = np.array(trained.choice.validation_curve).T
        ax.plot(decays, kl, color=colour, alpha=0.5, linewidth=1, marker=".")
        ax.plot(trained.choice.weight_decay, trained.choice.inner_kl, "o", color=colour)
        ax.plot(trained.choice.weight_decay, trained.history["test_kl"].iloc[-1], "x", color=colour)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda decay, _: f"{decay:g}"))
    ax.set_xlabel("weight decay (select.weight_decay, log scale)")
    ax.set_ylabel("KL(annotators || predicted)")
    ax.grid(alpha=0.3)
    markers = [
        Line2D([], [], color="grey", marker=".", linewidth=1, label="mean inner-validation KL of a decay"),
        Line2D([], [], color="grey", marker="o", linestyle="none", label="chosen: its lowest"),
        Line2D([], [], color="grey", marker="x", linestyle="none", label="held-out KL of the head refitted at it"),
    ]
    _repeat_legend(ax, sorted({r for r, _ in folds}), markers)
    ax.set_title(
        f"Inner cross-validation of the weight decay, a line per fold ({len(folds)} folds)\n"
        "decays tried from the strongest down, until past the lowest inner KL"
    )
    return fig


def _epoch_curves(folds: Mapping[tuple[int, int], TrainedFold]) -> Figure:
    """Per fold, its history epoch by epoch; the median of the folds that trained that long; how many did."""
    histories = pd.concat([trained.history for trained in folds.values()])
    fig = Figure(figsize=(12, 11), layout="constrained")
    axes = fig.subplots(
        len(EPOCH_FIGURES) + 1,
        len(EPOCH_PARTS),
        sharex=True,
        sharey="row",
        height_ratios=[3] * len(EPOCH_FIGURES) + [1.5],
    )
    for column, (part, title) in enumerate(EPOCH_PARTS):
        for row, (name, label) in enumerate(EPOCH_FIGURES):
            ax, measured = axes[row, column], f"{part}_{name}"
            for (repeat, _), trained in folds.items():
                colour = REPEAT_COLOURS[repeat % len(REPEAT_COLOURS)]
                ax.plot(
                    trained.history["epoch"],
                    trained.history[measured],
                    color=colour,
                    alpha=0.4,
                    linewidth=0.8,
                    marker=".",
                    markersize=3,
                )  # a fold of one epoch is a dot
            median = histories.groupby("epoch")[measured].median()
            ax.plot(median.index, median.to_numpy(), color="black", linewidth=2)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0, column].set_title(title)
        counts = histories.groupby("epoch").size()
        axes[-1, column].step(counts.index, counts.to_numpy(), where="mid", color="black")
        axes[-1, column].set_ylim(0, len(folds) + 1)
        axes[-1, column].set_ylabel("folds trained\nthis long")
        axes[-1, column].set_xlabel("epoch")
        axes[-1, column].xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    median = Line2D([], [], color="black", linewidth=2, label="median of the folds that trained this long")
    _repeat_legend(axes[0, 0], sorted({r for r, _ in folds}), [median])
    fig.suptitle(f"Training history, a line per fold ({len(folds)} folds)")
    return fig


def prior(folds: Sequence[TrainedFold], emotions: Sequence[str], init: str) -> Figure:
    """The prior W of z' = W z as heatmaps: one when frozen (the same before and after training), else both.

    - Row i is output emotion i's logit, column j the fc output for emotion j that it reads.
    - A fixed diverging scale, -1..1 with 0 white; an entry beyond it takes the over / under colour, and
      every cell prints its value.
    - The matrix of every fold when they all hold the same, else their mean (the title says which).
    """
    if folds[0].prior_initial is None:
        fig = Figure(figsize=(5, 1.5))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no prior layer (prior.init: none)", ha="center", va="center")
        return fig
    before = [np.asarray(f.prior_initial) for f in folds]
    after = [np.asarray(f.prior_final) for f in folds]
    frozen = all(np.array_equal(b.astype(np.float32), a) for b, a in zip(before, after, strict=True))
    panels = [("frozen: the same before and after training", before)]
    if not frozen:
        panels = [("before training", before), ("after training", after)]
    fig = Figure(figsize=(6.8 * len(panels), 5.8), layout="constrained")
    cmap = colormaps["RdBu_r"].with_extremes(over=PRIOR_OVER, under=PRIOR_UNDER)
    for ax, (title, matrices) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels, strict=True):
        same = all(np.array_equal(m, matrices[0]) for m in matrices)
        matrix = matrices[0] if same else np.mean(matrices, axis=0)
        image = ax.imshow(matrix, cmap=cmap, vmin=-PRIOR_LIMIT, vmax=PRIOR_LIMIT)
        _cell_text(ax, np.vectorize(lambda v: f"{v:.2f}")(matrix), np.abs(matrix) > DARK)
        held = f"the same in all {len(folds)} folds" if same else f"mean of {len(folds)} folds"
        ax.set_title(f"prior W (prior.init {init}), {title}\n{held}")
        ax.set_xticks(range(len(emotions)), emotions, rotation=30, ha="right")
        ax.set_yticks(range(len(emotions)), emotions)
        ax.set_xlabel("input j: $z_j$, the fc output for emotion j (seed head: after its ReLU)")
        ax.set_ylabel("output i: logit of emotion i, $z'_i = \\Sigma_j\\, W_{ij} z_j$")
        fig.colorbar(image, ax=ax, shrink=0.8, extend="both", label="$W_{ij}$ (beyond -1..1: the triangles' colours)")
    return fig
