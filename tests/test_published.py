"""Published figures (ewmtcnn.published): one per prior of every table, and the held-out figures
the same as the README's hand-written table shows beside ours."""

from __future__ import annotations

from pathlib import Path

from ewmtcnn.grid import GRIDS
from ewmtcnn.published import HELD_OUT, REIMPLEMENTATION

README = Path(__file__).resolve().parents[1] / "README.md"


def test_a_reimplementation_figure_for_every_arm() -> None:
    for grid in GRIDS:
        assert {(arm.init, arm.freeze) for arm in grid.arms} == set(REIMPLEMENTATION)


def test_held_out_figures_match_the_readme() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    for published in HELD_OUT:
        start = f"| {published.method} ({published.venue}), {published.network} | {published.split}, 7 emotions |"
        rows = [line for line in lines if line.startswith(start)]
        assert len(rows) == 1, f"no README row starting {start!r}"
        kl, chebyshev, cosine, intersection = (float(cell) for cell in rows[0].strip("| ").split(" | ")[2:6])
        assert (kl, chebyshev, cosine, intersection) == (
            published.kl,
            published.chebyshev,
            published.cosine,
            published.intersection,
        )
