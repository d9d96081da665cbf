"""What training reads: cached features of the width the params make, finite, or one error naming the file."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS, LABEL_COLUMNS
from ewmtcnn.features import extract
from ewmtcnn.model.backbones import LITE_FEATURES
from ewmtcnn.training import crossval, inputs
from ewmtcnn.training.variant import Variant
from support import REPO, assert_refused, tree

N = 12


def variant(**features: object) -> Variant:
    """The repository's variant (EfficientNet-Lite0), with `features.*` overridden."""
    p = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    p["features"].update(features)
    params = Params.parse(p)
    return Variant.of(
        params.data.label, params.data.neutral, params.prior, params.model, params.features, params.train, params.select
    )


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root with the labels of N images, before the features stage."""
    monkeypatch.chdir(tmp_path)
    probs = np.random.default_rng(0).dirichlet(np.ones(len(DISTRIBUTION)), N)
    table = pd.DataFrame(probs, columns=list(DISTRIBUTION))
    table.insert(0, "image", [f"{EMOTIONS[i % 6]}/{i}.jpg" for i in range(N)])
    table.insert(1, "folder", [EMOTIONS[i % 6] for i in range(N)])
    table.insert(2, "valence", 5.0)
    table.insert(3, "arousal", 5.0)
    table["dominant"] = [EMOTIONS[j] for j in probs[:, :6].argmax(axis=1)]
    paths.LABELS.parent.mkdir(parents=True)
    table[list(LABEL_COLUMNS)].to_csv(paths.LABELS, index=False)
    return tmp_path


def write_features(features: np.ndarray) -> None:
    np.save(paths.FEATURES, features.astype(np.float32))


def test_features_of_the_default_width_are_read(workspace: Path) -> None:
    features = np.random.default_rng(1).normal(size=(N, LITE_FEATURES))
    write_features(features)
    data = inputs.load(variant())
    assert np.array_equal(data.inputs.features, features.astype(np.float32))


def test_features_of_another_width_are_refused_naming_the_file_and_the_command(workspace: Path) -> None:
    write_features(np.zeros((N, 512)))
    assert_refused(
        lambda: inputs.load(variant()),
        workspace,
        "data/features.npy has 512 columns, but efficientnet_lite0's pooled features are 1280 wide",
        "rerun `dvc repro features`",
    )


def test_a_nan_in_the_features_is_blamed_on_the_file_not_on_training(workspace: Path) -> None:
    features = np.zeros((N, LITE_FEATURES))
    features[[4, 7], 3] = [np.nan, np.inf]
    write_features(features)
    assert_refused(
        lambda: crossval.final(variant(), 64),
        workspace,
        "data/features.npy holds NaN or infinite values (2 row(s), the first sadness/4.jpg)",
        "rerun `dvc repro features`",
    )


def test_a_refused_file_exits_1_with_one_line_and_no_traceback(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_features(np.zeros((N, 512)))
    before = tree(workspace)
    with pytest.raises(SystemExit) as info:
        cli.run(lambda: inputs.load(variant()))
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.startswith("error: data/features.npy has 512 columns")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert tree(workspace) == before


def test_the_stats_width_is_what_extraction_makes_whatever_the_views_and_the_rng_is_untouched() -> None:
    v = variant(layers="stats", views=["centre", "mirror", "full"])
    state = torch.get_rng_state()
    width = inputs.feature_width(v)
    assert torch.equal(torch.get_rng_state(), state), "measuring the width draws no random number"
    module = extract.feature_backbone(v.backbone, pretrained=False)
    made = extract.extract(module, np.zeros((1, 3, 240, 240), np.uint8), v.backbone, v.extraction)
    assert width == made.shape[1] != LITE_FEATURES
    assert inputs.feature_width(variant(layers="pooled", views=["mirror"], size=300)) == LITE_FEATURES
