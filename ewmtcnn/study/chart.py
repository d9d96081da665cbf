"""plots/variants.png: held-out KL and accuracy of every arm of the tables tested against `none`.

- A dot per arm with its 95% interval, one row of panels per table.
- Each axis is zoomed to the figures, so that differences of a hundredth show; `none` and the
  mean-distribution baseline are lines across.
- Drawn with Matplotlib's object-oriented API (a `Figure` of its own, no pyplot): no backend to
  select, and no global figure state left behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ewmtcnn.io.atomic import written
from ewmtcnn.study.design import Arm

HEAD_COLOURS: dict[str | None, str] = {None: "0.3", "direct": "tab:blue", "seed": "tab:orange"}
#: The panels of each table: (score, what the axis says).
PANELS: tuple[tuple[str, str], ...] = (("kl", "test KL (lower is better)"), ("acc", "test accuracy (higher is better)"))
NONE_LINE = {"color": "0.3", "linestyle": "--", "linewidth": 1}
MEAN_LINE = {"color": "tab:red", "linestyle": ":", "linewidth": 1.5}


def mark_baseline(ax: Axes, value: float, low: float, high: float) -> None:
    """The mean-distribution baseline: a line within the zoomed axis, else its value noted at the edge it lies beyond.

    - Drawing it beyond the axis would squash the arms' differences.
    """
    if low <= value <= high:
        ax.axvline(value, **MEAN_LINE)
        return
    left = value < low
    ax.annotate(
        f"{'◀ ' if left else ''}mean distribution: {value:.3f}{'' if left else ' ▶'}",
        (0.01 if left else 0.99, 0.02),
        xycoords="axes fraction",
        ha="left" if left else "right",
        color=MEAN_LINE["color"],
        fontsize=8,
    )


def plot(tables: Mapping[str, pd.DataFrame], arms: Sequence[Arm], path: Path | str) -> None:
    """Each table's arms (`experiments.grid_rows`, indexed by label; the first arm `none`), titled by its key.

    - The same rows give the same bytes.
    """
    fig = Figure(figsize=(12, 1.0 + 0.34 * len(arms) * len(tables)), layout="constrained")
    positions = range(len(arms))[::-1]  # the first arm on top
    for subfig, (title, rows) in zip(fig.subfigures(len(tables), 1, squeeze=False)[:, 0], tables.items(), strict=True):
        subfig.suptitle(title, fontsize=11)
        axes = subfig.subplots(1, len(PANELS), sharey=True)
        for ax, (score, name) in zip(axes, PANELS, strict=True):
            mean, low, high = (
                rows.loc[[arm.label for arm in arms], f"test.{score}.{stat}"].to_numpy()
                for stat in ("mean", "ci_low", "ci_high")
            )
            for y, arm, m, lo, hi in zip(positions, arms, mean, low, high, strict=True):
                ax.errorbar(m, y, xerr=[[m - lo], [hi - m]], fmt="o", color=HEAD_COLOURS[arm.head], capsize=3)
            ax.axvline(mean[0], **NONE_LINE)
            margin = 0.05 * (high.max() - low.min())
            ax.set_xlim(low.min() - margin, high.max() + margin)
            mark_baseline(ax, rows.at[arms[0].label, f"baselines.mean.{score}.mean"], *ax.get_xlim())
            ax.set_xlabel(name)
            ax.grid(axis="x", color="0.9")
        axes[0].set_yticks(list(positions), [arm.label for arm in arms], fontsize=8)
        axes[0].set_ylim(-1, len(arms) - 0.5)  # a free row at the bottom for `mark_baseline`'s note
    handles = [
        Line2D([], [], marker="o", linestyle="", color=HEAD_COLOURS["direct"], label="direct head"),
        Line2D([], [], marker="o", linestyle="", color=HEAD_COLOURS["seed"], label="seed head"),
        Line2D([], [], label="none (no prior layer)", **NONE_LINE),
        Line2D([], [], label="baseline: the training folds' mean distribution", **MEAN_LINE),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    fig.suptitle("Prior-layer variants on the held-out folds: mean and 95% corrected resampled t interval")
    with written(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})  # no version stamp: same rows, same bytes
