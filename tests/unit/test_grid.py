"""The arms and grids of the comparison and the queue runner (ewmtcnn.study.grid), with DVC replaced by a
recorder; that DVC reads the overrides as the experiments' params is checked in
test_experiments_show.py."""

from __future__ import annotations

import pytest

from ewmtcnn import InputError
from ewmtcnn.study import experiments, grid
from ewmtcnn.study.grid import (
    ARMS,
    BASELINE,
    EXPERIMENTS,
    GRIDS,
    PUBLISHED_SETTINGS,
    RESCALED,
    SEED_ARMS,
    Arm,
    Experiment,
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
    """A and B: the 13 arms under each recipe; C: the reimplementation's setting. Each pins the label
    too, so that no experiment of one grid is also an arm of another (B's and C's share the recipe),
    and B and C the paper's head learning rate, so that one run at another is no row of theirs.
    D and E reuse experiments of A and B where their params are the same; each is queued once."""
    a, b, c, d, e = GRIDS
    assert [g.name for g in GRIDS] == ["A", "B", "C", "D", "E"]
    assert [g.kind for g in GRIDS] == ["compared", "compared", "reimplementation", "compared", "published"]
    six = {"data.label": "dominant", "data.neutral": "drop"}
    assert (a.arms, dict(a.fixed)) == (ARMS, {**six, "train.recipe": "selected"})
    paper = {"train.recipe": "fixed", "train.lr_head": 0.01}
    assert (b.arms, dict(b.fixed)) == (ARMS, {**six, **paper})
    assert (c.arms, dict(c.fixed)) == (SEED_ARMS, {"data.label": "folder", "data.neutral": "drop", **paper})
    assert (d.arms, dict(d.fixed)) == (RESCALED, {**six, "train.recipe": "fixed"})
    assert [arm.label for arm in RESCALED] == [
        "none lr_head=0.01",
        "none lr_head=0.005",
        "none lr_head=0.0025",
        "original freeze direct lr_head=0.01",
    ]
    assert (e.arms, dict(e.fixed)) == (PUBLISHED_SETTINGS, {"train.recipe": "selected"})
    assert [arm.label for arm in PUBLISHED_SETTINGS] == [
        "original freeze direct neutral=keep label=dominant",
        "original freeze direct neutral=keep label=folder",
        "original freeze direct neutral=drop label=dominant",
        "original freeze direct neutral=drop label=folder",
    ]
    every = [experiment for grid in GRIDS for experiment in grid.experiments()]
    assert len(every) == 13 + 13 + 7 + 4 + 4
    # D's none at 0.01 and wheel prior are B's; E's six-emotion dominant row is A's wheel prior.
    assert Experiment(d, RESCALED[0]).params() == Experiment(b, BASELINE).params()
    assert Experiment(d, RESCALED[-1]).params() == Experiment(b, Arm("original", True, "direct")).params()
    assert Experiment(e, PUBLISHED_SETTINGS[2]).params() == Experiment(a, Arm("original", True, "direct")).params()
    assert len(EXPERIMENTS) == len(every) - 3 == len({frozenset(e.params().items()) for e in EXPERIMENTS})
    assert {frozenset(e.params().items()) for e in EXPERIMENTS} == {frozenset(e.params().items()) for e in every}
    names = [e.grid.name for e in EXPERIMENTS]
    assert names == ["A"] * 13 + ["B"] * 13 + ["C"] * 7 + ["D"] * 2 + ["E"] * 3


def test_overrides() -> None:
    a, b, c, d, _ = GRIDS
    assert Experiment(a, BASELINE).overrides() == [
        "data.label=dominant",
        "data.neutral=drop",
        "train.recipe=selected",
        "prior.init=none",
    ]
    assert Experiment(b, Arm("original", True, "seed")).overrides() == [
        "data.label=dominant",
        "data.neutral=drop",
        "train.recipe=fixed",
        "train.lr_head=0.01",
        "prior.init=original",
        "prior.freeze=true",
        "model.head=seed",
    ]
    assert Experiment(c, Arm("corr", False, "seed")).overrides() == [
        "data.label=folder",
        "data.neutral=drop",
        "train.recipe=fixed",
        "train.lr_head=0.01",
        "prior.init=corr",
        "prior.freeze=false",
        "model.head=seed",
    ]
    assert Experiment(d, RESCALED[1]).overrides() == [
        "data.label=dominant",
        "data.neutral=drop",
        "train.recipe=fixed",
        "prior.init=none",
        "train.lr_head=0.005",
    ]
    assert Experiment(c, BASELINE).params() == {
        "data.label": "folder",
        "data.neutral": "drop",
        "train.recipe": "fixed",
        "train.lr_head": 0.01,
        "prior.init": "none",
    }


class FakeDvc:
    """Records the DVC commands; `dvc queue status` answers from a script of statuses."""

    def __init__(self, statuses: list[str] | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.statuses = statuses or []

    def __call__(self, *args: str) -> str:
        self.calls.append(args)
        return self.statuses.pop(0) if args[:2] == ("queue", "status") else ""


def test_queue_one_experiment_per_grid_and_arm_with_its_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDvc()
    monkeypatch.setattr(experiments, "dvc", fake)
    grid.queue("/data/Emotion6.zip")
    assert fake.calls[0] == (
        "exp",
        "run",
        "--queue",
        *("-S", "data.label=dominant", "-S", "data.neutral=drop", "-S", "train.recipe=selected"),
        *("-S", "prior.init=none"),
        *("-S", "data.source=/data/Emotion6.zip"),
        "evaluate",  # the tables need no final model
    )
    assert len(fake.calls) == len(EXPERIMENTS) == 38
    for experiment, call in zip(EXPERIMENTS, fake.calls, strict=True):
        assert call[:3] == ("exp", "run", "--queue") and set(call[3:-1:2]) == {"-S"} and call[-1] == "evaluate"
        assert list(call[4:-1:2]) == [*experiment.overrides(), "data.source=/data/Emotion6.zip"]
    fake.calls.clear()
    grid.queue(None, EXPERIMENTS[-1:])
    only = EXPERIMENTS[-1].overrides()
    assert fake.calls == [("exp", "run", "--queue", *(a for o in only for a in ("-S", o)), "evaluate")]


RUNNING = (
    "Task     Name    Created    Status\n1a2b3c4  none    10:00 AM   Running\n5d6e7f8  eye     10:00 AM   Queued\n"
)


def test_wait_until_the_queue_is_done(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(grid, "POLL_S", 0)
    fake = FakeDvc([RUNNING, RUNNING.replace("Running", "Success").replace("Queued", "Success")])
    monkeypatch.setattr(experiments, "dvc", fake)
    grid.wait(2)
    assert fake.calls == [("queue", "start", "-j", "2"), ("queue", "status"), ("queue", "status")]
    assert "0 done, 1 running, 1 queued" in capsys.readouterr().out


def test_wait_reports_failed_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid, "POLL_S", 0)
    failed = RUNNING.replace("Running", "Success").replace("Queued", "Failed")
    fake = FakeDvc([failed])
    monkeypatch.setattr(experiments, "dvc", fake)
    with pytest.raises(InputError, match="some experiments failed") as error:
        grid.wait(1)
    assert "5d6e7f8  eye" in str(error.value)


def test_wait_gives_up_on_a_queue_without_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued tasks, none running and no worker alive, poll after poll: no worker started (such as
    DVC not finding `dvc` on PATH to start one), so nothing will ever run."""
    monkeypatch.setattr(grid, "POLL_S", 0)
    stuck = RUNNING.replace("Running", "Queued") + f"\n{grid.NO_WORKER}\n"
    fake = FakeDvc([RUNNING + "\nWorker status: 1 active, 0 idle\n", stuck, stuck, stuck, stuck])
    monkeypatch.setattr(experiments, "dvc", fake)
    with pytest.raises(InputError, match="no DVC worker runs them"):
        grid.wait(1)
    assert fake.calls.count(("queue", "status")) == 1 + grid.STALLED_POLLS


def test_the_features_grid_runs_each_configuration_with_six_and_seven_emotions() -> None:
    f = grid.ALL["F"]
    assert (
        f.kind == "features"
        and f not in GRIDS
        and dict(f.fixed)
        == {
            "data.label": "dominant",
            "train.recipe": "selected",
        }
    )
    assert len(f.arms) == 2 * len(grid.FEATURE_CONFIGS) and len(set(f.arms)) == len(f.arms)
    two = [arm for arm in f.arms if dict(arm.settings)["features.views"] == ("centre", "mirror")]
    assert [dict(arm.settings)["data.neutral"] for arm in two] == ["drop", "keep"]
    assert Experiment(f, two[1]).overrides()[-3:] == [
        "features.views=[centre,mirror]",
        "preprocess.size=256",
        "data.neutral=keep",
    ]
    # Lite2's native 260 px crop needs a store of at least 260 px.
    sizes = {dict(arm.settings)["model.backbone"]: dict(arm.settings)["preprocess.size"] for arm in f.arms}
    assert sizes["efficientnet_lite2"] >= 260 and sizes["efficientnet_lite0"] == 256
    assert len(grid.experiments_of([f])) == len(f.arms)


def test_tables_are_chosen_by_their_letters() -> None:
    assert grid.chosen("ABCDE") == list(GRIDS) and grid.chosen("F") == [grid.ALL["F"]]
    for bad in ("", "G", "AZ"):
        with pytest.raises(InputError, match="--tables takes letters among ABCDEF"):
            grid.chosen(bad)


def test_queue_the_features_table_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDvc([RUNNING.replace("Running", "Success").replace("Queued", "Success")])
    monkeypatch.setattr(experiments, "dvc", fake)
    monkeypatch.setattr(grid, "POLL_S", 0)
    grid.main(["--tables", "F", "--jobs", "2"])
    queued = [call for call in fake.calls if call[:3] == ("exp", "run", "--queue")]
    assert len(queued) == 12 and all("features.layers=" in " ".join(call) for call in queued)
