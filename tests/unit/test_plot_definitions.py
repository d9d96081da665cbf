"""The DVC plot definitions of dvc.yaml: every plot shown, every chart names its axes, and `dvc plots show`
output is ignored."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from support import REPO

PIPELINE = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
CHARTS = [(name, spec) for entry in PIPELINE["plots"] if isinstance(entry, dict) for name, spec in entry.items()]


def test_every_plot_the_evaluate_stage_writes_is_shown() -> None:
    """Each of its outputs under plots/ is a picture listed as is, or the data of a chart."""
    written = {next(iter(out)) for out in PIPELINE["stages"]["evaluate"]["outs"]}
    plots = {path for path in written if path.startswith("plots/")}
    shown = {entry for entry in PIPELINE["plots"] if isinstance(entry, str)}
    shown |= {path for _, spec in CHARTS for path in spec["y"]}
    assert plots and plots <= shown


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
