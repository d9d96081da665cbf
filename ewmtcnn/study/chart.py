"""plots/variants.png: a forest plot of every compared table, each arm's paired Δ against the table's first arm.

- One row of panels per table, ΔKL left and Δaccuracy right, a row per arm shared by both panels;
  every table's panels align.
- Each arm: its mean paired fold difference (arm − first arm, `paired.Assessment`) and the interval
  the table's label is read from (corrected resampled t, Bonferroni-simultaneous over the table's m
  arms), coloured by that label, which is written at the panel's right.
- The declared margins of equivalence (`protocol.MARGINS`) are shaded around zero, a line.
- A measure's axis is the same in every table, symmetric about zero, and both measures' axes span the
  same multiple of their margin, so that the bands are equally wide and the tables compare at a glance.
- Drawn with Matplotlib's object-oriented API (a `Figure` of its own, no pyplot): no backend to
  select, and no global figure state left behind.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ewmtcnn.io.atomic import written
from ewmtcnn.study import paired
from ewmtcnn.study.design import Arm, Grid
from ewmtcnn.study.paired import Comparison
from ewmtcnn.study.protocol import MARGINS

#: The panels of each table: (score, its Δ's name, which side of zero the prior helps on).
PANELS: tuple[tuple[str, str, str], ...] = (("kl", "ΔKL", "< 0: lower KL"), ("acc", "Δaccuracy", "> 0: higher"))
SCORES = tuple(score for score, _, _ in PANELS)
#: Each label's colour, and its short form at the panel's right; the legend adds the note, if any.
LABELS: dict[str, tuple[str, str]] = {
    paired.HELPS: ("tab:green", "helps"),
    paired.HURTS: ("tab:red", "hurts"),
    paired.EQUIVALENT: ("tab:blue", "equivalent"),
    paired.EQUIVALENT_DIFFERS: ("tab:purple", "equivalent, ≠ 0"),
    paired.INCONCLUSIVE: ("0.45", "inconclusive"),
}
NOTES = {paired.EQUIVALENT_DIFFERS: "differs from 0 by less than the margin"}
BAND = {"color": "tab:blue", "alpha": 0.12, "linewidth": 0}
ZERO = {"color": "0.2", "linewidth": 1}
#: The axes reach this far beyond the widest interval, and at least this many margins from zero.
PAD, LEAST_MARGINS = 1.1, 1.5
#: Inches: the figure's width, an arm's row, a table's title, a table's x axis, the legend and suptitle.
WIDTH, ROW, TITLE, AXIS, FRAME = 12.0, 0.3, 0.45, 0.75, 1.2


def span(compared: Mapping[Grid, Mapping[Arm, Comparison]]) -> float:
    """How many margins each axis reaches from zero: the widest interval of any measure, in its margin, padded."""
    reach = max(
        max(abs(test.low), abs(test.high)) / MARGINS[score]
        for comparisons in compared.values()
        for comparison in comparisons.values()
        for score, test in comparison.tests.items()
        if score in SCORES
    )
    return PAD * max(reach, LEAST_MARGINS)


def title(grid: Grid, comparisons: Mapping[Arm, Comparison]) -> str:
    """A table's title, wrapped, then its intervals' level and m."""
    level = next(iter(comparisons.values())).tests[SCORES[0]].level
    return "\n".join(
        [
            *textwrap.wrap(f"Table {grid.name}: {grid.title}", 150),
            f"intervals at {100 * level:.3g}%, simultaneous over its m = {len(comparisons)} arms",
        ]
    )


def figure(compared: Mapping[Grid, Mapping[Arm, Comparison]]) -> Figure:
    """The forest plot of each table's comparisons (`paired.compare`, its arms in order), one row of panels each.

    - One grid of axes, a title row above each table's panels, so that the panels of every table align.
    """
    heights = [height for arms in compared.values() for height in (TITLE, ROW * len(arms) + AXIS)]
    fig = Figure(figsize=(WIDTH, sum(heights) + FRAME), layout="constrained")
    cells = fig.add_gridspec(len(heights), len(PANELS), height_ratios=heights)
    reach, first = span(compared), []
    for row, (grid, comparisons) in enumerate(compared.items()):
        heading = fig.add_subplot(cells[2 * row, :])
        heading.axis("off")
        heading.text(0.5, 0.5, title(grid, comparisons), ha="center", va="center", fontsize=10)
        axes = [fig.add_subplot(cells[2 * row + 1, column]) for column in range(len(PANELS))]
        positions = range(len(comparisons))[::-1]  # the first arm on top
        for column, (ax, (score, name, side)) in enumerate(zip(axes, PANELS, strict=True)):
            if first:
                ax.sharex(first[column])
            if column:
                ax.sharey(axes[0])
                ax.tick_params(labelleft=False)
            margin = MARGINS[score]
            ax.axvspan(-margin, margin, **BAND)
            ax.axvline(0, **ZERO)
            tests = [comparison.tests[score] for comparison in comparisons.values()]
            for y, test in zip(positions, tests, strict=True):
                colour = LABELS[test.label][0]
                ax.errorbar(test.mean, y, xerr=[[test.mean - test.low], [test.high - test.mean]], fmt="o", color=colour)
            ax.set_xlim(-reach * margin, reach * margin)
            ax.set_xlabel(f"{name}, arm − {grid.arms[0].label} ({side} helps)", fontsize=9)
            ax.grid(axis="x", color="0.9")
            verdicts = ax.secondary_yaxis("right")
            verdicts.set_yticks(list(positions), [LABELS[test.label][1] for test in tests], fontsize=9)
            for tick, test in zip(verdicts.get_yticklabels(), tests, strict=True):
                tick.set_color(LABELS[test.label][0])
        axes[0].set_yticks(list(positions), [arm.label for arm in comparisons], fontsize=9)
        axes[0].set_ylim(-0.7, len(comparisons) - 0.3)
        first = first or axes
    handles = [
        *(
            Line2D([], [], marker="o", color=colour, label=f"{short} ({NOTES[label]})" if label in NOTES else short)
            for label, (colour, short) in LABELS.items()
        ),
        Patch(label="margin of equivalence: " + ", ".join(f"±{MARGINS[s]:g} {n[1:]}" for s, n, _ in PANELS), **BAND),
        Line2D([], [], label="no difference", **ZERO),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=9)
    fig.suptitle(
        "Prior-layer variants: each arm minus its table's first arm on the same held-out folds, "
        "mean and the interval its label is read from"
    )
    return fig


def plot(compared: Mapping[Grid, Mapping[Arm, Comparison]], path: Path | str) -> None:
    """Write `figure(compared)` as a PNG; the same comparisons give the same bytes."""
    with written(path) as tmp:
        figure(compared).savefig(tmp, format="png", dpi=100, metadata={"Software": None})  # no version stamp
