"""The design of the comparison (ewmtcnn.study.design): arms, grids, their experiments and overrides.

- That DVC reads the overrides as the experiments' params is checked in tests/integration/test_experiments.py.
"""

from __future__ import annotations

from typing import get_args

import pytest

from ewmtcnn import InputError
from ewmtcnn.config import sections
from ewmtcnn.study import design
from ewmtcnn.study.design import (
    ALL,
    ARMS,
    BASELINE,
    GRIDS,
    PUBLISHED_ARMS,
    RESCALED,
    SEED_ARMS,
    Arm,
    Experiment,
    Kind,
    experiments_of,
    grids_named,
)


def test_arms() -> None:
    assert len(ARMS) == 13 and ARMS[0] == BASELINE and len(set(ARMS)) == 13
    assert [arm.label for arm in ARMS[:3]] == ["none", "original freeze direct", "original freeze seed"]
    assert {arm.head for arm in ARMS[1:]} == {"direct", "seed"} and BASELINE.freeze is None
    assert SEED_ARMS[0] == BASELINE and [arm.label for arm in SEED_ARMS[1:]] == [
        "original freeze seed",
        "original unfreeze seed",
        "eye unfreeze seed",
        "rand unfreeze seed",
        "corr freeze seed",
        "corr unfreeze seed",
    ]


def test_grids() -> None:
    """The five grids of `make table`, their pinned params and arms.

    - A: the 13 arms, the spectrum control and the paper's loss, every head converged; B: the 13 arms
      under the paper's settings; C: the reimplementation's setting.
    - Each pins the label too, so that no experiment of one grid is also an arm of another (B's and
      C's share the recipe); B and C pin the paper's head learning rate, so that a run at another is
      no row of theirs.
    - D and E reuse experiments of A and B where their params are the same; each is queued once.
    """
    a, b, c, d, e = GRIDS
    assert [g.name for g in GRIDS] == ["A", "B", "C", "D", "E"]
    assert [g.kind for g in GRIDS] == ["compared", "compared", "reimplementation", "compared", "published"]
    six = {"data.label": "dominant", "data.neutral": "drop"}
    converged = {"train.recipe": "converged", "train.lambda": 1.0}
    assert (a.arms[:13], dict(a.pinned)) == (ARMS, {**six, **converged})
    assert [arm.label for arm in a.arms[13:]] == ["spectrum freeze direct", "original freeze direct lambda=0.7"]
    paper = {"train.recipe": "fixed", "train.lr_head": 0.01, "train.lambda": 0.7}
    assert (b.arms, dict(b.pinned)) == (ARMS, {**six, **paper})
    assert (c.arms, dict(c.pinned)) == (SEED_ARMS, {"data.label": "folder", "data.neutral": "drop", **paper})
    assert (d.arms, dict(d.pinned)) == (RESCALED, {**six, "train.recipe": "fixed", "train.lambda": 0.7})
    assert [arm.label for arm in RESCALED] == [
        "original freeze direct lr_head=0.01",
        "none lr_head=0.01",
        "none lr_head=0.005",
        "none lr_head=0.0025",
        "spectrum freeze direct lr_head=0.01",
    ]
    assert (e.arms, dict(e.pinned)) == (PUBLISHED_ARMS, converged)
    assert [arm.label for arm in PUBLISHED_ARMS] == [
        "original freeze direct neutral=keep label=dominant",
        "original freeze direct neutral=keep label=folder",
        "original freeze direct neutral=drop label=dominant",
        "original freeze direct neutral=drop label=folder",
    ]
    every = [experiment for grid in GRIDS for experiment in grid.experiments()]
    assert len(every) == 15 + 13 + 7 + 5 + 4
    # D's none at 0.01 and wheel prior are B's; E's six-emotion dominant row is A's wheel prior.
    assert Experiment(d, RESCALED[1]).params() == Experiment(b, BASELINE).params()
    assert Experiment(d, RESCALED[0]).params() == Experiment(b, Arm("original", True, "direct")).params()
    assert Experiment(e, PUBLISHED_ARMS[2]).params() == Experiment(a, Arm("original", True, "direct")).params()
    once = experiments_of(GRIDS)
    assert len(once) == len(every) - 3 == len({frozenset(e.params().items()) for e in once})
    assert {frozenset(e.params().items()) for e in once} == {frozenset(e.params().items()) for e in every}
    names = [e.grid.name for e in once]
    assert names == ["A"] * 15 + ["B"] * 13 + ["C"] * 7 + ["D"] * 3 + ["E"] * 3


def test_overrides() -> None:
    a, b, c, d, _ = GRIDS
    assert Experiment(a, BASELINE).overrides() == [
        "data.label=dominant",
        "data.neutral=drop",
        "train.recipe=converged",
        "train.lambda=1.0",
        "prior.init=none",
    ]
    assert Experiment(b, Arm("original", True, "seed")).overrides() == [
        "data.label=dominant",
        "data.neutral=drop",
        "train.recipe=fixed",
        "train.lr_head=0.01",
        "train.lambda=0.7",
        "prior.init=original",
        "prior.freeze=true",
        "model.head=seed",
    ]
    assert Experiment(c, Arm("corr", False, "seed")).overrides() == [
        "data.label=folder",
        "data.neutral=drop",
        "train.recipe=fixed",
        "train.lr_head=0.01",
        "train.lambda=0.7",
        "prior.init=corr",
        "prior.freeze=false",
        "model.head=seed",
    ]
    assert Experiment(d, RESCALED[2]).overrides() == [
        "data.label=dominant",
        "data.neutral=drop",
        "train.recipe=fixed",
        "train.lambda=0.7",
        "prior.init=none",
        "train.lr_head=0.005",
    ]
    assert Experiment(c, BASELINE).params() == {
        "data.label": "folder",
        "data.neutral": "drop",
        "train.recipe": "fixed",
        "train.lr_head": 0.01,
        "train.lambda": 0.7,
        "prior.init": "none",
    }


def test_the_feature_grids_test_each_configuration_against_the_defaults_and_the_key_comparison_twice() -> None:
    f, h, i, j = (ALL[name] for name in "FHIJ")
    assert (f, h, i, j) == design.FEATURE_GRIDS and not {f, h, i, j} & set(GRIDS)
    assert {grid.kind for grid in (f, h, i, j)} == {"compared"}
    for grid in (f, h, i, j):
        assert dict(grid.pinned)["train.recipe"] == "converged" and dict(grid.pinned)["train.lambda"] == 1.0
        assert dict(grid.pinned)["data.label"] == "dominant"
    assert [dict(grid.pinned)["data.neutral"] for grid in (f, h, i, j)] == ["drop", "keep", "drop", "keep"]
    # F and H: the default arm on every configuration, the default's configuration (params.yaml's) first.
    defaults = sections.load()
    first = dict(f.arms[0].pinned)
    assert (first["model.backbone"], first["features.layers"], first["features.views"], first["preprocess.size"]) == (
        defaults.model.backbone,
        defaults.features.layers,
        defaults.features.views,
        defaults.preprocess.size,
    )
    assert f.arms == h.arms and {(a.init, a.freeze, a.head) for a in f.arms} == {("original", True, "direct")}
    assert len(set(f.arms)) == len(f.arms) == len(design.FEATURE_CONFIGS)
    # I: none against the frozen wheel, both on Lite2, whose 260 px crop needs a store of at least 260 px.
    assert [arm.init for arm in i.arms] == ["none", "original"]
    assert {dict(arm.pinned)["model.backbone"] for arm in i.arms} == {"efficientnet_lite2"}
    assert dict(i.arms[0].pinned)["preprocess.size"] >= 260
    three = next(arm for arm in f.arms if len(dict(arm.pinned)["features.views"]) == 3)
    assert "features.views=[centre,mirror,full]" in Experiment(f, three).overrides()
    # J: none against the frozen wheel, both on the default's configuration, with seven emotions.
    assert [arm.init for arm in j.arms] == ["none", "original"]
    assert {arm.pinned for arm in j.arms} == {f.arms[0].pinned}
    # I's wheel is F's Lite2 row and J's is H's first: each runs once.
    assert len(experiments_of(design.FEATURE_GRIDS)) == 2 * len(f.arms) + 2


def test_tables_are_chosen_by_their_letters() -> None:
    assert grids_named("ABCDE") == list(GRIDS) and grids_named("FHIJ") == list(design.FEATURE_GRIDS)
    for bad in ("", "G", "AZ"):
        with pytest.raises(InputError, match="--tables takes letters among ABCDEFHIJ"):
            grids_named(bad)


def test_every_kind_of_table_has_a_grid() -> None:
    """Each kind that `table.tables` builds is the kind of some grid, and no grid has another."""
    assert {grid.kind for grid in ALL.values()} == set(get_args(Kind))
