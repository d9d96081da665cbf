"""plots/variants.png: test accuracy and test KL of every arm of the variants table.

Drawn with Matplotlib's object-oriented API (a `Figure` of its own, no pyplot), so it needs no
backend selection and leaves no global figure state behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ewmtcnn.atomic import written
from ewmtcnn.grid import Arm

HEAD_COLOURS: dict[str | None, str] = {None: "0.6", "direct": "tab:blue", "seed": "tab:orange"}


def plot(rows: pd.DataFrame, arms: Sequence[Arm], path: Path | str) -> None:
    """Bars of each arm's test accuracy and KL (std over folds as error bars), coloured by head,
    with the first arm (the baseline, `none`) as a dashed line across. `rows`: indexed by label."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    for ax, score, name in ((axes[0], "acc", "accuracy (higher is better)"), (axes[1], "kl", "KL (lower is better)")):
        means = [rows.at[arm.label, f"test.{score}.mean"] for arm in arms]
        stds = [rows.at[arm.label, f"test.{score}.std"] for arm in arms]
        ax.bar(range(len(arms)), means, yerr=stds, capsize=3, color=[HEAD_COLOURS[arm.head] for arm in arms])
        ax.axhline(means[0], color="0.3", linestyle="--", linewidth=1)
        ax.set_ylabel(f"test {name}")
    axes[1].set_xticks(range(len(arms)), [arm.label.replace(" ", "\n") for arm in arms], fontsize=8)
    handles = [
        Line2D([], [], color="0.3", linestyle="--", label="none (no prior layer)"),
        Patch(color=HEAD_COLOURS["direct"], label="direct head"),
        Patch(color=HEAD_COLOURS["seed"], label="seed head"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    fig.suptitle("Prior-layer variants on the held-out folds (mean ± std over folds)")
    with written(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})  # no version stamp: same rows, same bytes
