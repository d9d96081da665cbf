"""The default variant's block of docs/results.md: the workspace's metrics.json, formatted by hand here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ewmtcnn import InputError
from ewmtcnn.study import table
from support import REPO


def figure(mean: float, low: float, high: float) -> dict[str, float]:
    return {"mean": mean, "std": 0.01, "ci_low": low, "ci_high": high}


def test_the_default_block_shows_the_held_out_in_place_and_baseline_scores(tmp_path: Path) -> None:
    scores = {
        "test": {"acc": figure(0.61094, 0.59151, 0.62999), "kl": figure(0.397991, 0.38371, 0.41227)},
        "train": {"acc": figure(0.682, 0.672, 0.691), "kl": figure(0.3282, 0.3184, 0.338)},
        "baselines": {
            "mean": {"kl": figure(0.66486, 0.64914, 0.68059)},
            "majority": {"acc": figure(0.37, 0.369, 0.372)},
        },
    }
    (tmp_path / "metrics.json").write_text(json.dumps(scores))
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    block = table.default_table(tmp_path / "metrics.json", tmp_path / "params.yaml")
    caption, _, header, _, *rows = block.splitlines()
    assert "3 repeats of 5-fold cross-validation: mean over the 15 held-out folds" in caption
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in (header, *rows)]
    columns = cells[0]
    by_name = {row[0]: dict(zip(columns, row, strict=True)) for row in cells[1:]}
    held_out = by_name["**test** (held-out folds)"]
    assert (held_out["acc"], held_out["KL"], held_out["Cosine"]) == (
        "0.611 [0.592, 0.630]",
        "0.3980 [0.3837, 0.4123]",
        "-",
    )
    assert by_name["train (in place, as the reimplementation reports)"]["KL"] == "0.3282 [0.3184, 0.3380]"
    assert by_name["baseline: mean distribution"]["KL"] == "0.6649 [0.6491, 0.6806]"
    assert by_name["baseline: majority class"]["acc"] == "0.370 [0.369, 0.372]"


def test_unreadable_metrics_are_one_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match=r"metrics.json: not readable metrics .*dvc repro evaluate"):
        table.default_table(tmp_path / "metrics.json", REPO / "params.yaml")
