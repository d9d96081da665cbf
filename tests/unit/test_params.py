"""Every param is checked for its type and range before a stage writes anything: one error that
names the param and what it may be."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from ewmtcnn import InputError, params
from ewmtcnn.training import variant
from stages import evaluate, features, final, preprocess, split, train

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def with_value(dotted: str, value: Any) -> dict[str, Any]:
    p = copy.deepcopy(DEFAULTS)
    section, key = dotted.split(".")
    p[section][key] = value
    return p


#: (param, bad value, what the message must say is allowed)
BAD = [
    ("train.epochs", 0, "an integer in [1, 10000]"),
    ("train.epochs", 2.5, "an integer"),
    ("train.batch_size", 0, "an integer in [1, 4096]"),
    ("train.lr_head", -1, "a finite number >= 0"),
    ("train.lr_head", math.nan, "a finite number >= 0"),
    ("train.lr_head", math.inf, "a finite number >= 0"),
    ("train.lr_backbone", -0.001, "a finite number >= 0"),
    ("train.weight_decay", -1e-4, "a finite number >= 0"),
    ("train.momentum", 1.0, "a finite number in [0, 1)"),
    ("train.momentum", -0.1, "a finite number in [0, 1)"),
    ("train.lambda", 1.5, "a finite number in [0, 1]"),
    ("train.lambda", True, "a finite number in [0, 1]"),
    ("train.seed", -1, "an integer in [0, 2147483647]"),
    ("prior.sigma", 0, "a finite number > 0"),
    ("prior.init", "wheel", "one of none, original, eye"),
    ("prior.freeze", "yes", "true or false"),
    ("model.head", "mlp", "one of direct, seed"),
    ("data.neutral", "maybe", "one of drop, keep"),
    ("data.label", "keyword", "one of dominant, folder"),
    ("train.recipe", "tuned", "one of selected, fixed"),
    ("select.share", 0.9, "a finite number in [0.05, 0.5]"),
    ("select.epochs", 0, "an integer in [1, 10000]"),
    ("select.patience", 0, "an integer in [1, 10000]"),
    ("select.lr_head", [], "a non-empty list of distinct finite numbers > 0"),
    ("select.lr_head", [0.01, 0.01], "a non-empty list of distinct finite numbers > 0"),
    ("select.lr_head", [0.01, 0], "a non-empty list of distinct finite numbers > 0"),
    ("select.weight_decay", [0.01, -1], "a non-empty list of distinct finite numbers >= 0"),
    ("select.weight_decay", 0.01, "a non-empty list of distinct finite numbers >= 0"),
    ("features.layers", "conv", "one of pooled, stats"),
    ("features.views", [], "a non-empty list of distinct views among centre, mirror, full"),
    ("features.views", ["full", "full"], "a non-empty list of distinct views among centre, mirror, full"),
    ("features.size", 16, "0 (the backbone's native side) or an integer in [32, 1024]"),
]


@pytest.mark.parametrize(("dotted", "value", "allowed"), BAD)
def test_a_bad_training_param_is_one_error_naming_it_and_its_range(dotted: str, value: Any, allowed: str) -> None:
    with pytest.raises(InputError) as info:
        variant.from_params(with_value(dotted, value))
    message = str(info.value)
    assert dotted in message and allowed in message, message


@pytest.mark.parametrize("stage", [train, final])
def test_training_stages_refuse_bad_params_before_reading_or_writing(
    stage: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In an empty folder the stage would fail on its missing inputs: failing on the param instead
    shows that params are checked first, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train"])
    with pytest.raises(InputError, match=r"train\.lr_head must be a finite number >= 0"):
        stage.main(with_value("train.lr_head", math.nan))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("dotted", "value", "allowed", "stage"),
    [
        # Lite0 reads 224 px centre crops: a smaller store is refused by preprocess, not later by features.
        ("preprocess.size", 100, "an integer in [224, 1024]", preprocess),
        ("preprocess.size", 100_000, "an integer in [224, 1024]", preprocess),
        ("split.folds", 1, "an integer in [2, 20]", split),
        ("split.folds", 0, "an integer in [2, 20]", evaluate),
        ("split.repeats", 0, "an integer in [1, 10]", split),
        ("split.repeats", 11, "an integer in [1, 10]", evaluate),
        ("split.seed", -5, "an integer in [0, 2147483647]", split),
        ("data.label", "keyword", "one of dominant, folder", split),
        ("features.size", 2000, "an integer in [32, 1024]", preprocess),
        ("features.views", ["centre", "side"], "distinct views among centre, mirror, full", features),
        ("features.layers", "all", "one of pooled, stats", features),
    ],
)
def test_data_stages_refuse_bad_params_before_writing(
    dotted: str, value: Any, allowed: str, stage: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as info:
        stage.main(with_value(dotted, value))
    assert dotted in str(info.value) and allowed in str(info.value), str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_number_written_as_yaml_1_1_text_gets_a_hint() -> None:
    # PyYAML reads `lr_head: 1e-3` as the string '1e-3'
    p = yaml.safe_load("train:\n  lr_head: 1e-3\n")
    with pytest.raises(InputError, match=r"write 0\.001 or 1\.0e-3"):
        params.number(p, "train.lr_head", 0)


def test_fine_tuning_needs_the_fixed_recipe() -> None:
    p = with_value("train.finetune", True)
    with pytest.raises(InputError, match="needs train.recipe: fixed"):
        variant.from_params(p)
    p["train"]["recipe"] = "fixed"
    assert variant.from_params(p).finetune


def test_missing_param_is_named() -> None:
    p = copy.deepcopy(DEFAULTS)
    del p["train"]["momentum"]
    with pytest.raises(InputError, match="missing parameter train.momentum"):
        variant.from_params(p)


def test_good_values_at_the_edges_are_accepted() -> None:
    p = with_value("train.momentum", 0)
    p["train"]["lambda"] = 1
    p["train"]["lr_head"] = 0
    v = variant.from_params(p)
    assert (v.run.momentum, v.run.lam, v.run.lr_head) == (0.0, 1.0, 0.0)
    assert params.integer(with_value("preprocess.size", 1024), "preprocess.size", 224, 1024) == 1024


def test_the_store_must_hold_the_features_input_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """features.size 512 reads 512 px crops: preprocess refuses a 256 px store before writing."""
    monkeypatch.chdir(tmp_path)
    p = with_value("features.size", 512)
    p["preprocess"]["size"] = 256
    with pytest.raises(InputError, match=r"preprocess\.size must be an integer in \[512, 1024\]; found 256"):
        preprocess.main(p)
    assert list(tmp_path.iterdir()) == []


def test_the_variant_runs_its_backbone_at_the_features_side() -> None:
    p = with_value("features.size", 320)
    p["features"]["layers"] = "stats"
    v = variant.from_params(p)
    assert (v.backbone.name, v.backbone.size) == ("efficientnet_lite0", 320)
    assert (v.extraction.layers, v.extraction.views, v.extraction.size) == ("stats", ("centre",), 320)
    assert variant.from_params(DEFAULTS).backbone.size == 224  # 0: the backbone's native side
