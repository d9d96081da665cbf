"""A frozen identity prior right after fc is `none` in all but name: the network is the same, and train says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

import stages.train as train
from ewmtcnn.config.sections import Params
from ewmtcnn.model import network
from ewmtcnn.training.variant import NO_PRIOR_NOTE
from support import REPO


def params(init: str, freeze: bool, head: str) -> Params:
    p = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    p["prior"] |= {"init": init, "freeze": freeze}
    p["model"]["head"] = head
    return Params.parse(p)


def test_the_frozen_identity_after_fc_is_the_network_without_a_prior() -> None:
    torch.manual_seed(0)
    identity = network.EmotionNet(16, 6, "direct", np.eye(6), freeze_prior=True)
    torch.manual_seed(0)
    none = network.EmotionNet(16, 6, "direct", None, freeze_prior=True)
    x = torch.randn(5, 16)
    assert torch.equal(identity(x), none(x))
    groups = identity.parameter_groups(lr_backbone=0.1, lr_head=0.01)
    trained = [p for g in groups for p in g["params"]]
    assert [p.shape for p in trained] == [p.shape for p in none.parameters()]  # fc's weight and bias alone


@pytest.mark.parametrize(
    ("init", "freeze", "head", "noted"),
    [
        ("eye", True, "direct", True),
        ("eye", False, "direct", False),  # the identity trains: it may move away from none
        ("eye", True, "seed", False),  # ReLU and Dropout before the identity: not none's network
        ("original", True, "direct", False),
        ("none", True, "direct", False),
    ],
)
def test_train_notes_a_run_that_is_none(
    init: str, freeze: bool, head: str, noted: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(train.crossval, "trained_folds", lambda variant, plan: iter(()))  # nothing trained
    monkeypatch.setattr(train.provenance, "fingerprint", lambda *params: {})  # no data/ in a clean checkout
    train.main(params(init, freeze, head))
    out = capsys.readouterr().out
    assert (NO_PRIOR_NOTE in out) == noted
    assert len(NO_PRIOR_NOTE.splitlines()) == 1 and "prior.init none" in NO_PRIOR_NOTE
