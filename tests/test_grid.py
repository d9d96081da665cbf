"""The arms of the comparison and the queue runner (ewmtcnn.grid), with DVC replaced by a recorder;
that DVC reads the overrides as the arms' params is checked in test_experiments_show.py."""

from __future__ import annotations

import pytest

from ewmtcnn import InputError, experiments, grid
from ewmtcnn.grid import ARMS, BASELINE, Arm


def test_arms() -> None:
    assert len(ARMS) == 13 and ARMS[0] == BASELINE and len(set(ARMS)) == 13
    assert [arm.label for arm in ARMS[:3]] == ["none", "original freeze direct", "original freeze seed"]
    assert {arm.head for arm in ARMS[1:]} == {"direct", "seed"} and BASELINE.freeze is None


def test_overrides() -> None:
    assert BASELINE.overrides() == ["prior.init=none"]  # no prior to freeze; the default head
    assert Arm("original", True, "seed").overrides() == ["prior.init=original", "prior.freeze=true", "model.head=seed"]
    assert Arm("corr", False, "direct").overrides() == ["prior.init=corr", "prior.freeze=false", "model.head=direct"]
    assert len({tuple(arm.overrides()) for arm in ARMS}) == 13


class FakeDvc:
    """Records the DVC commands; `dvc queue status` answers from a script of statuses."""

    def __init__(self, statuses: list[str] | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.statuses = statuses or []

    def __call__(self, *args: str) -> str:
        self.calls.append(args)
        return self.statuses.pop(0) if args[:2] == ("queue", "status") else ""


def test_queue_one_experiment_per_arm_with_its_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDvc()
    monkeypatch.setattr(experiments, "dvc", fake)
    grid.queue("/data/Emotion6.zip")
    assert fake.calls[0] == ("exp", "run", "--queue", "-S", "prior.init=none", "-S", "data.source=/data/Emotion6.zip")
    for arm, call in zip(ARMS, fake.calls, strict=True):
        assert call[:3] == ("exp", "run", "--queue") and set(call[3::2]) == {"-S"}
        assert list(call[4::2]) == [*arm.overrides(), "data.source=/data/Emotion6.zip"]
    fake.calls.clear()
    grid.queue(None, ARMS[1:2])
    assert fake.calls == [
        ("exp", "run", "--queue", "-S", "prior.init=original", "-S", "prior.freeze=true", "-S", "model.head=direct")
    ]


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
