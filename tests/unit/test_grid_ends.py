"""The default arm's committed choices lie inside their grids: an optimum at a grid end may lie beyond it.

- Reads the real run's metrics/selection.json (committed with dvc.lock) and params.yaml's grids.
"""

from __future__ import annotations

import json

import yaml

from ewmtcnn.study.experiments import CHOSEN
from support import REPO


def test_the_default_arm_picks_a_grid_end_in_at_most_a_third_of_its_folds() -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    selection = json.loads((REPO / "metrics" / "selection.json").read_text(encoding="utf-8"))
    recipe = params["train"]["recipe"]
    assert selection["recipe"] == recipe, "metrics/selection.json is not of params.yaml's recipe: rerun dvc repro"
    gridded = [name for name in CHOSEN[recipe] if name != "epochs"]
    assert gridded, f"the default recipe {recipe} chooses nothing from a grid"
    for name in gridded:
        grid = params["select"][name]
        picked = [fold[name] for fold in selection["folds"]]
        at_ends = [value for value in picked if value in (min(grid), max(grid))]
        assert len(at_ends) <= len(picked) / 3, f"{name}: {len(at_ends)} of {len(picked)} folds chose an end of {grid}"
