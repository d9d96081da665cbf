"""Published figures (ewmtcnn.study.published): one per prior of the reimplementation's table, and held-out ones.

- The held-out figures as table E shows them.
"""

from __future__ import annotations

from ewmtcnn.study.design import GRIDS
from ewmtcnn.study.published import HELD_OUT, REIMPLEMENTATION


def test_a_reimplementation_figure_for_every_arm() -> None:
    for grid in GRIDS:
        if grid.kind == "reimplementation":
            assert {(arm.init, arm.freeze) for arm in grid.arms} == set(REIMPLEMENTATION)


def test_held_out_scores() -> None:
    """A published row's scores: each figure as published, without an interval; Clark and Canberra per label."""
    styleedl = HELD_OUT[0]
    assert styleedl.scores() == {
        "kl": {"mean": 0.36},
        "chebyshev": {"mean": 0.22},
        "cosine": {"mean": 0.84},
        "intersection": {"mean": 0.70},
        "clark_normalised": {"mean": 0.59},
        "canberra_normalised": {"mean": 0.47},
    }
    # SSDL's Clark and Canberra are not set: its row leaves them out, and a table shows `-`.
    assert set(HELD_OUT[1].scores()) == {"kl", "chebyshev", "cosine", "intersection"}
