"""The variants chart (ewmtcnn.study.chart): a forest plot of each compared table's paired Δ against its first arm.

- The plotted Δ and interval of every arm are the corrected resampled t interval at the table's
  simultaneous level, recomputed here with SciPy from the fold differences.
- The panels of a table share the arms; a measure's axis is the same in every table; the margins are
  bands of equal width in both measures; the label of each arm is written beside its row.
- Nothing is cut off or overlaps; the same comparisons give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image
from scipy import stats

from ewmtcnn.study import paired
from ewmtcnn.study.chart import LABELS, figure, plot
from ewmtcnn.study.design import GRIDS, Arm, Grid
from ewmtcnn.study.paired import Comparison, Paired
from ewmtcnn.study.protocol import ALPHA, MARGINS

COMPARED = [grid for grid in GRIDS if grid.kind == "compared"]
REPEATS, FOLDS = 5, 5
RATIO = 1 / (FOLDS - 1)  # n_test / n_train of k-fold cross-validation


#: Made-up arms, by (mean ΔKL, its fold spread, mean Δaccuracy, its fold spread), each a label of the
#: real tables: helps, equivalent but not 0, equivalent, inconclusive, hurts. Spreads as the real tables have.
CASES: tuple[tuple[float, float, float, float], ...] = (
    (-0.02, 0.003, 0.03, 0.012),
    (-0.004, 0.0015, 0.0, 0.008),
    (0.0, 0.003, 0.0, 0.015),
    (0.006, 0.006, -0.01, 0.02),
    (0.02, 0.004, -0.04, 0.012),
)


def fold_differences(seed: int, shift: float) -> dict[str, tuple[float, ...]]:
    """Per score, R x k fold differences of case `seed` (CASES, in turn), ΔKL shifted by `shift`."""
    rng = np.random.default_rng(seed)
    kl, kl_spread, acc, acc_spread = CASES[seed % len(CASES)]
    n = REPEATS * FOLDS
    return {
        "kl": tuple(kl + shift + kl_spread * rng.standard_normal(n)),
        "acc": tuple(acc + acc_spread * rng.standard_normal(n)),
        **{score: tuple(0.01 * rng.standard_normal(n)) for score in MARGINS if score not in ("kl", "acc")},
    }


def comparisons(grid: Grid, shift: float = 0.0) -> dict[Arm, Comparison]:
    """Every arm but the first against it, as `paired.compare` gives them, from made-up fold differences."""
    others = grid.arms[1:]
    result = {}
    for i, arm in enumerate(others):
        pair = Paired(500, REPEATS, FOLDS, RATIO, fold_differences(i, shift), kl_median=0.0, kl_improved=0.5)
        result[arm] = Comparison(pair, {score: paired.assess(pair, score, len(others)) for score in MARGINS})
    return result


def tables(shift: float = 0.0) -> dict[Grid, dict[Arm, Comparison]]:
    """Tables A, B and D's comparisons, as `table.tables` hands them to the chart."""
    return {grid: comparisons(grid, shift) for grid in COMPARED}


def by_hand(values: tuple[float, ...], comparisons: int) -> tuple[float, float, float]:
    """Mean, low and high of the corrected resampled t interval at 1 - ALPHA/m (Nadeau & Bengio), with SciPy's t."""
    x = np.array(values)
    half = stats.t.ppf(1 - ALPHA / (2 * comparisons), len(x) - 1) * math.sqrt((1 / len(x) + RATIO) * x.var(ddof=1))
    return x.mean(), x.mean() - half, x.mean() + half


def panels(fig: Figure) -> list[list[Axes]]:
    """Each table's [ΔKL, Δaccuracy] axes, top to bottom: the figure's one-column cells (its titles span both)."""
    rows: dict[int, list[Axes]] = {}
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if len(spec.colspan) == 1:
            rows.setdefault(spec.rowspan.start, []).append(ax)
    return [sorted(row, key=lambda ax: ax.get_subplotspec().colspan.start) for _, row in sorted(rows.items())]


def plotted(ax: Axes) -> list[tuple[float, float, float, float]]:
    """Each error bar's (y, x of the dot, left end, right end), top row first."""
    rows = []
    for container in ax.containers:
        dot, _, (bar,) = container.lines
        assert isinstance(bar, LineCollection)
        (left, y), (right, _) = bar.get_segments()[0]
        rows.append((float(dot.get_ydata()[0]), float(dot.get_xdata()[0]), float(left), float(right)))
    return sorted(rows, reverse=True)


def test_each_arm_is_its_paired_difference_with_the_simultaneous_interval() -> None:
    compared = tables()
    fig = figure(compared)
    for (grid, arms), axes in zip(compared.items(), panels(fig), strict=True):
        m = len(grid.arms) - 1
        rows = {tick.get_position()[1]: tick.get_text() for tick in axes[0].get_yticklabels()}
        assert rows == {m - 1 - i: arm.label for i, arm in enumerate(grid.arms[1:])}  # the first arm on top
        for ax, score in zip(axes, ("kl", "acc"), strict=True):
            rows = plotted(ax)
            assert [y for y, *_ in rows] == list(range(m))[::-1]
            for (_, x, left, right), comparison in zip(rows, arms.values(), strict=True):
                assert (x, left, right) == pytest.approx(by_hand(comparison.paired.differences[score], m), abs=1e-12)


def test_panels_share_the_arms_and_each_measure_one_axis() -> None:
    fig = figure(tables())
    grid = panels(fig)
    for kl, acc in grid:
        assert kl.get_shared_y_axes().joined(kl, acc) and kl.get_ylim() == acc.get_ylim()
    for column, score in enumerate(("kl", "acc")):
        first = grid[0][column]
        assert all(first.get_shared_x_axes().joined(first, row[column]) for row in grid)
        low, high = first.get_xlim()
        assert low == pytest.approx(-high)  # symmetric about zero
        (band,) = first.patches  # the margin, shaded
        assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((-MARGINS[score], MARGINS[score]))
    # The bands are as wide in one measure's panel as in the other's: the same multiple of the margin.
    spans = [grid[0][column].get_xlim()[1] / MARGINS[score] for column, score in enumerate(("kl", "acc"))]
    assert spans[0] == pytest.approx(spans[1])


def test_each_row_says_its_label_in_its_colour() -> None:
    compared = tables()
    fig = figure(compared)
    seen = set()
    for (_, arms), axes in zip(compared.items(), panels(fig), strict=True):
        for panel, score in zip(axes, ("kl", "acc"), strict=True):
            (ax,) = panel.child_axes  # the secondary y axis on the panel's right
            drawn = {t.get_position()[1]: (t.get_color(), t.get_text()) for t in ax.get_yticklabels()}
            assert drawn == {len(arms) - 1 - i: LABELS[c.tests[score].label] for i, c in enumerate(arms.values())}
            seen |= {c.tests[score].label for c in arms.values()}
    assert seen == set(LABELS)  # the made-up differences give every label


def visible_texts(fig: Figure) -> list[Text]:
    """Every text drawn, with something in it."""
    fig.draw_without_rendering()  # lays out and places every text, as saving does
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and t.get_window_extent().width]


def test_nothing_is_cut_off_or_overlaps() -> None:
    fig = figure(tables())
    texts = visible_texts(fig)
    canvas = fig.bbox
    for text in texts:
        box = text.get_window_extent()
        assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1 and canvas.y0 <= box.y0 and box.y1 <= canvas.y1, text
    boxes = [(t, t.get_window_extent()) for t in texts]
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            assert not box_a.overlaps(box_b), (a.get_text(), b.get_text())
    for kl, acc in panels(fig):  # the ΔKL panel's labels end before the Δaccuracy panel begins
        labels = [t.get_window_extent() for t in kl.child_axes[0].get_yticklabels()]
        assert max(box.x1 for box in labels) < acc.get_window_extent().x0


def test_plot_is_deterministic(tmp_path: Path) -> None:
    plot(tables(), tmp_path / "a.png")
    plot(tables(), tmp_path / "plots" / "b.png")
    plot(tables(0.002), tmp_path / "c.png")
    a = (tmp_path / "a.png").read_bytes()
    assert a.startswith(b"\x89PNG") and a == (tmp_path / "plots" / "b.png").read_bytes()
    assert (tmp_path / "c.png").read_bytes() != a
    with Image.open(tmp_path / "a.png") as image:
        assert image.size[0] == 1200
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.png", "c.png", "plots"]  # no temporary left


def test_one_table_alone(tmp_path: Path) -> None:
    """`--tables D` charts D alone."""
    one: Mapping[Grid, Mapping[Arm, Comparison]] = {COMPARED[-1]: comparisons(COMPARED[-1])}
    assert len(panels(figure(one))) == 1
