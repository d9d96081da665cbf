"""The DVC plot definitions of dvc.yaml: every chart names its axes, and `dvc plots show` output is ignored."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from support import REPO

CHARTS = [
    (name, spec)
    for entry in yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    if isinstance(entry, dict)
    for name, spec in entry.items()
]


def test_there_are_charts() -> None:
    assert {name for name, _ in CHARTS} >= {"Loss", "Accuracy", "KL divergence", "Confusion (out-of-fold)"}


@pytest.mark.parametrize(("name", "spec"), CHARTS, ids=[name for name, _ in CHARTS])
def test_every_chart_names_both_axes(name: str, spec: dict) -> None:
    """DVC titles an unnamed axis after the column, or `y` when a chart draws several columns."""
    for axis in ("x_label", "y_label"):
        assert isinstance(spec.get(axis), str) and spec[axis].strip() not in ("", "x", "y"), (name, axis)


def test_dvc_plots_default_output_is_ignored_by_git() -> None:
    """`dvc plots show` without -o writes dvc_plots/ into the repository."""
    result = subprocess.run(
        ["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=REPO, capture_output=True, check=False
    )
    assert result.returncode == 0
