"""The variants chart (ewmtcnn.study.chart): a PNG of the arms' held-out scores with their intervals.

- The same rows give the same bytes.
- The mean-distribution baseline is drawn, or noted at the edge.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from ewmtcnn.study.chart import mark_baseline, plot
from ewmtcnn.study.design import ARMS


def rows(shift: float = 0.0) -> pd.DataFrame:
    """Every arm's test accuracy and KL with their intervals, as `experiments.grid_rows` gives them.

    - With the mean-distribution baseline of `none`'s experiment.
    """
    acc = pd.Series([0.5 + 0.01 * i + shift for i in range(len(ARMS))])
    kl = pd.Series([0.6 - 0.01 * i for i in range(len(ARMS))])
    frame = pd.DataFrame(
        {
            "test.acc.mean": acc,
            "test.acc.ci_low": acc - 0.02,
            "test.acc.ci_high": acc + 0.03,
            "test.kl.mean": kl,
            "test.kl.ci_low": kl - 0.01,
            "test.kl.ci_high": kl + 0.01,
            "baselines.mean.acc.mean": 0.3,
            "baselines.mean.kl.mean": 0.58,
        }
    )
    frame.index = pd.Index([arm.label for arm in ARMS], name="variant")
    return frame


def test_plot_is_deterministic_and_shows_the_rows(tmp_path: Path) -> None:
    tables = {"Table A": rows(), "Table B": rows(0.05)}
    plot(tables, ARMS, tmp_path / "a.png")
    plot(tables, ARMS, tmp_path / "plots" / "b.png")
    plot({"Table A": rows(), "Table B": rows(0.06)}, ARMS, tmp_path / "c.png")
    a = (tmp_path / "a.png").read_bytes()
    assert a.startswith(b"\x89PNG") and a == (tmp_path / "plots" / "b.png").read_bytes()
    assert (tmp_path / "c.png").read_bytes() != a
    with Image.open(tmp_path / "a.png") as image:
        assert image.size == (1200, 984)  # 12 x (1 + 0.34 x 13 arms x 2 tables) inches at 100 dpi
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.png", "c.png", "plots"]  # no temporary left


def test_the_baseline_is_a_line_on_the_axis_or_a_note_at_its_edge() -> None:
    ax = Figure().subplots()
    mark_baseline(ax, 0.55, 0.5, 0.6)
    assert [line.get_xdata()[0] for line in ax.lines] == [0.55] and not ax.texts
    mark_baseline(ax, 0.31, 0.5, 0.6)
    mark_baseline(ax, 0.72, 0.5, 0.6)
    assert len(ax.lines) == 1
    assert [text.get_text() for text in ax.texts] == ["◀ mean distribution: 0.310", "mean distribution: 0.720 ▶"]
