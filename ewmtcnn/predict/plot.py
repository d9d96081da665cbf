"""The `--plot` pictures: each image's distribution on Mikels' emotion wheel, at most PER_PAGE wheels a page.

- The model's emotions sit in the wheel's clockwise order from the top (fear, sadness, disgust, anger, joy
  where the wheel has amusement, surprise where it has awe), spread evenly: the wheel's contentment and
  excitement have no Emotion6 counterpart and would only be empty sectors. Neutral, off the wheel, comes last.
- Wheels go in rows of at most COLUMNS, a shorter last row centred. More than PER_PAGE images go on pages:
  `out.png`, `out-2.png`, `out-3.png`, ... (a contact sheet of 200 wheels would shrink each one's labels below
  reading size, or outgrow any screen; a page keeps every wheel as large as one alone, and opens whole).
- Every wheel shares one radial scale, with headroom above the longest bar, so that wheels compare at a glance.
- The prediction is filled bars, the most probable red; with --truth an Emotion6 image also shows its
  annotators' distribution (black outline) and its out-of-fold prediction (orange diamonds). A legend says which.
- A page is written whole or not at all. A link at its path is written through, as the shell's `>` does (its
  target gets the plot, the link stays); an existing path that is no regular file is refused, left as it was.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ewmtcnn import InputError
from ewmtcnn.data import images
from ewmtcnn.io.atomic import written
from ewmtcnn.model.wheel import MIKELS_WHEEL, ON_WHEEL
from ewmtcnn.predict.truth import ImageReport

PER_PAGE = 12
COLUMNS = 4
DPI = 100
#: The layout, in inches: a cell per wheel (its title and labels included), the wheel's diameter, the room
#: between it and its title (the top label), under it (the bottom label, a gap), above and below a page.
CELL, WHEEL, ABOVE, BELOW, GAP = (4.0, 4.0), 2.7, 0.43, 0.35, 0.15
HEADING_PT, LEGEND_PT, TITLE_PT, LABEL_PT = 10, 8, 8.5, 8.5
#: Inches per point of type: a line's height, a character's mean width (DejaVu Sans); a legend entry's key.
LINE, CHAR, LEGEND_KEY = 1.3 / 72, 0.6 / 72, 0.6
DOMINANT, OTHER, ANNOTATORS, HELD_OUT = "tab:red", "tab:blue", "black", "tab:orange"
BAR = 0.78  # of a sector's width: the gap before the second sector carries the radial scale
HEADROOM = 0.04  # at least this much scale above the longest bar
NAME = 34  # characters of an image's name in its title


def page_paths(path: Path, count: int) -> list[Path]:
    """Where `count` pages go: `path` itself, then `<stem>-2<suffix>`, `<stem>-3<suffix>`, ... beside it."""
    return [path, *(path.with_name(f"{path.stem}-{k}{path.suffix}") for k in range(2, count + 1))]


def write(reports: Sequence[ImageReport], path: Path, caption: Sequence[str]) -> list[Path]:
    """Draw `reports` on pages headed by `caption` (which model drew them) and write them; returns the pages' paths."""
    figures = pages(reports, caption)
    written_to = page_paths(path, len(figures))
    for figure, out in zip(figures, written_to, strict=True):
        save(figure, out)
    return written_to


def pages(reports: Sequence[ImageReport], caption: Sequence[str]) -> list[Figure]:
    """One figure per PER_PAGE reports, all on one radial scale, headed by `caption`'s phrases."""
    top = scale(reports)
    count = math.ceil(len(reports) / PER_PAGE)
    figures = []
    for k in range(count):
        first = k * PER_PAGE
        last = min(first + PER_PAGE, len(reports))
        heading = ["Predicted emotion distribution" + ("s" if len(reports) > 1 else "")]
        if count > 1:
            heading.append(f"page {k + 1} of {count}: images {first + 1}-{last} of {len(reports)}")
        figures.append(page(reports[first:last], top, [*heading, *caption]))
    return figures


def scale(reports: Sequence[ImageReport]) -> float:
    """The radius of every wheel: the next 0.1 at least HEADROOM above the longest bar or mark."""
    largest = max(value for report in reports for shown in drawn(report) for value in shown.values())
    return math.ceil(round((largest + HEADROOM) * 10, 9)) / 10


def drawn(report: ImageReport) -> list[dict[str, float]]:
    """The distributions a wheel shows: the prediction, and the annotators' and out-of-fold ones when known."""
    truth = report.truth
    extra = [] if truth is None else [truth.annotators, *([truth.out_of_fold] if truth.out_of_fold else [])]
    return [report.prediction.distribution, *extra]


def page(reports: Sequence[ImageReport], top: float, heading: Sequence[str]) -> Figure:
    """One figure: a wheel per report in rows, a shorter last row centred, the heading above, the legend below.

    - Laid out by hand, in inches: a polar wheel keeps its aspect, and its labels stick out of its box.
    """
    rows = math.ceil(len(reports) / COLUMNS)
    columns = math.ceil(len(reports) / rows)
    width = columns * CELL[0]
    title = packed(heading, int(width / (HEADING_PT * CHAR)))
    handles = legend(reports)
    widest = max(len(str(handle.get_label())) for handle in handles) * LEGEND_PT * CHAR + LEGEND_KEY
    ncols = max(1, min(len(handles), int(width // widest)))
    head = GAP + LINE * HEADING_PT * (title.count("\n") + 1)
    foot = GAP + LINE * LEGEND_PT * math.ceil(len(handles) / ncols)
    height = head + rows * CELL[1] + foot
    fig = Figure(figsize=(width, height))
    for k, report in enumerate(reports):
        row, column = divmod(k, columns)
        shift = (columns - min(columns, len(reports) - row * columns)) / 2
        left = (column + shift) * CELL[0] + (CELL[0] - WHEEL) / 2
        bottom = foot + (rows - 1 - row) * CELL[1] + BELOW
        ax = fig.add_axes((left / width, bottom / height, WHEEL / width, WHEEL / height), projection="polar")
        wheel(ax, report, top)
    fig.suptitle(title, fontsize=HEADING_PT, y=1 - GAP / 2 / height, va="top")
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, GAP / 2 / height),
        ncols=ncols,
        fontsize=LEGEND_PT,
        frameon=False,
        borderpad=0,
        borderaxespad=0,
    )
    return fig


def packed(phrases: Sequence[str], width: int) -> str:
    """`phrases` joined by ` · ` in lines of at most `width` characters, broken between phrases (in one too long)."""
    lines: list[str] = []
    for phrase in phrases:
        if lines and len(lines[-1]) + len(f" · {phrase}") <= width:
            lines[-1] += f" · {phrase}"
        else:
            lines.extend(textwrap.wrap(phrase, width))
    return "\n".join(lines)


def legend(reports: Sequence[ImageReport]) -> list[Artist]:
    """What the wheels of `reports` draw, one entry each."""
    handles: list[Artist] = [
        Patch(color=DOMINANT, label="predicted: the most probable emotion"),
        Patch(color=OTHER, label="predicted: the other emotions"),
    ]
    truths = [report.truth for report in reports if report.truth is not None]
    if truths:
        handles.append(Patch(fill=False, edgecolor=ANNOTATORS, label="annotators (Emotion6's ground truth)"))
    if repeats := sorted({truth.repeats for truth in truths if truth.out_of_fold is not None}):
        counts = "/".join(map(str, repeats))
        handles.append(
            Line2D([], [], color=HELD_OUT, marker="D", linestyle="none", label=f"out-of-fold: mean of {counts} repeats")
        )
    return handles


def wheel(ax: Axes, report: ImageReport, top: float) -> None:
    """`report`'s distributions on one wheel of radius `top`, clockwise from the top, with its title."""
    prediction, truth = report.prediction, report.truth
    order = wheel_order(list(prediction.distribution))
    step = 2 * math.pi / len(order)
    angles = np.arange(len(order)) * step
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)
    colours = [DOMINANT if emotion == prediction.dominant else OTHER for emotion in order]
    ax.bar(angles, [prediction.distribution[e] for e in order], width=BAR * step, color=colours)
    if truth is not None:
        annotated = [truth.annotators[e] for e in order]
        ax.bar(angles, annotated, width=BAR * step, fill=False, edgecolor=ANNOTATORS, linewidth=1.3)
        if truth.out_of_fold is not None:
            held_out = [truth.out_of_fold[e] for e in order]
            ax.plot(angles, held_out, "D", color=HELD_OUT, markeredgecolor="white", markersize=6)
    ax.set_xticks(angles, [emotion if emotion in ON_WHEEL else f"{emotion}\n(off the wheel)" for emotion in order])
    ax.tick_params(axis="x", labelsize=LABEL_PT, pad=5)
    ax.set_ylim(0, top)
    ax.set_yticks(ticks(top))
    ax.set_rlabel_position(math.degrees(step / 2))  # in the gap between the first two bars
    ax.tick_params(axis="y", labelsize=7)
    for label in ax.get_yticklabels():  # the axis is drawn over the bars (zorder 1.5), under the diamonds
        label.set_bbox({"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax.grid(color="0.8", linewidth=0.6)
    ax.set_title(title(report), fontsize=TITLE_PT, y=1 + ABOVE / WHEEL, pad=0)  # a set y: not moved by matplotlib


def wheel_order(outputs: Sequence[str]) -> list[str]:
    """`outputs` in the wheel's clockwise order from the top; those off the wheel (neutral) last."""
    on = [emotion for spot in MIKELS_WHEEL for emotion in outputs if ON_WHEEL.get(emotion) == spot]
    return [*on, *(emotion for emotion in outputs if emotion not in on)]


def ticks(top: float) -> list[float]:
    """The radial scale's labelled radii: a round step, none within half a step of the rim."""
    step = 0.1 if top <= 0.5 else 0.2
    return [round(k * step, 2) for k in range(1, math.floor((top - step / 2) / step + 1e-9) + 1)]


def title(report: ImageReport) -> str:
    """The image's name, its most probable emotion, and with --truth the annotators' and the out-of-fold one."""
    prediction, truth = report.prediction, report.truth
    name = "/".join(Path(prediction.image).parts[-2:])
    if len(name) > NAME:
        name = f"{name[: NAME // 2 - 1]}…{name[-(NAME // 2) :]}"
    lines = [name, f"predicted {_top(prediction.distribution)}"]
    if report.emotion6 is not None:
        lines[1] += " (seen in training)"
    if truth is not None:
        tops = [("annotators", truth.annotators), ("out-of-fold", truth.out_of_fold)]
        lines.append(" · ".join(f"{what} {_top(shown)}" for what, shown in tops if shown is not None))
    return "\n".join(lines)


def _top(distribution: dict[str, float]) -> str:
    """`joy 0.62`: the most probable emotion (the first of equals, as Prediction.dominant) and its probability."""
    best = max(distribution, key=distribution.__getitem__)
    return f"{best} {distribution[best]:.2f}"


def save(fig: Figure, path: Path) -> None:
    """`fig` as a PNG at `path`, through a link; a path that is no regular file is refused, left as it was."""
    try:
        target = Path(os.path.realpath(path))  # a loop of links is left as it is: stat then fails with ELOOP
        if (kind := images.special_kind(target)) is not None:
            raise InputError(f"{path}: is {kind}; give --plot the path of a PNG file to write")
        with written(target) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    except OSError as e:
        raise InputError(f"{path}: cannot write the plot ({e.strerror or e})") from None
