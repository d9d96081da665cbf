"""The variants chart (ewmtcnn.chart): a PNG of the arms' scores, the same bytes for the same rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from ewmtcnn.chart import plot
from ewmtcnn.grid import ARMS


def rows(shift: float = 0.0) -> pd.DataFrame:
    """Test accuracy and KL of every arm, as `experiments.arm_rows` gives them."""
    return pd.DataFrame(
        {
            "test.acc.mean": [0.5 + 0.01 * i + shift for i in range(len(ARMS))],
            "test.acc.std": 0.02,
            "test.kl.mean": [0.6 - 0.01 * i for i in range(len(ARMS))],
            "test.kl.std": 0.01,
        },
        index=pd.Index([arm.label for arm in ARMS], name="variant"),
    )


def test_plot_is_deterministic_and_shows_the_rows(tmp_path: Path) -> None:
    plot(rows(), ARMS, tmp_path / "a.png")
    plot(rows(), ARMS, tmp_path / "plots" / "b.png")
    plot(rows(shift=0.1), ARMS, tmp_path / "c.png")
    a = (tmp_path / "a.png").read_bytes()
    assert a.startswith(b"\x89PNG") and a == (tmp_path / "plots" / "b.png").read_bytes()
    assert (tmp_path / "c.png").read_bytes() != a
    with Image.open(tmp_path / "a.png") as image:
        assert image.size == (1200, 800)  # 12 x 8 inches at 100 dpi
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.png", "c.png", "plots"]  # no temporary left
