"""The queue runner (ewmtcnn.study.queue), with DVC replaced by a recorder."""

from __future__ import annotations

import pytest

from ewmtcnn import InputError
from ewmtcnn.study import queue
from ewmtcnn.study.design import GRIDS, experiments_of

EXPERIMENTS = experiments_of(GRIDS)


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
    monkeypatch.setattr(queue, "dvc", fake)
    queue.queue("/data/Emotion6.zip", EXPERIMENTS)
    assert fake.calls[0] == (
        "exp",
        "run",
        "--queue",
        *("-S", "data.label=dominant", "-S", "data.neutral=drop", "-S", "train.recipe=converged"),
        *("-S", "train.lambda=1.0"),
        *("-S", "prior.init=none"),
        *("-S", "data.source=/data/Emotion6.zip"),
        "evaluate",  # the tables need no final model
    )
    assert len(fake.calls) == len(EXPERIMENTS) == 41
    for experiment, call in zip(EXPERIMENTS, fake.calls, strict=True):
        assert call[:3] == ("exp", "run", "--queue") and set(call[3:-1:2]) == {"-S"} and call[-1] == "evaluate"
        assert list(call[4:-1:2]) == [*experiment.overrides(), "data.source=/data/Emotion6.zip"]
    fake.calls.clear()
    queue.queue(None, EXPERIMENTS[-1:])
    only = EXPERIMENTS[-1].overrides()
    assert fake.calls == [("exp", "run", "--queue", *(a for o in only for a in ("-S", o)), "evaluate")]


RUNNING = (
    "Task     Name    Created    Status\n1a2b3c4  none    10:00 AM   Running\n5d6e7f8  eye     10:00 AM   Queued\n"
)


def test_wait_until_the_queue_is_done(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(queue, "POLL_S", 0)
    fake = FakeDvc([RUNNING, RUNNING.replace("Running", "Success").replace("Queued", "Success")])
    monkeypatch.setattr(queue, "dvc", fake)
    queue.wait(2)
    assert fake.calls == [("queue", "start", "-j", "2"), ("queue", "status"), ("queue", "status")]
    assert "0 done, 1 running, 1 queued" in capsys.readouterr().out


def test_wait_reports_failed_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "POLL_S", 0)
    failed = RUNNING.replace("Running", "Success").replace("Queued", "Failed")
    fake = FakeDvc([failed])
    monkeypatch.setattr(queue, "dvc", fake)
    with pytest.raises(InputError, match="some experiments failed") as error:
        queue.wait(1)
    assert "5d6e7f8  eye" in str(error.value)


def test_wait_gives_up_on_a_queue_without_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued tasks, none running and no worker alive, poll after poll: nothing will ever run.

    - Such as when DVC finds no `dvc` on PATH to start a worker with.
    """
    monkeypatch.setattr(queue, "POLL_S", 0)
    stuck = RUNNING.replace("Running", "Queued") + f"\n{queue.NO_WORKER}\n"
    fake = FakeDvc([RUNNING + "\nWorker status: 1 active, 0 idle\n", stuck, stuck, stuck, stuck])
    monkeypatch.setattr(queue, "dvc", fake)
    with pytest.raises(InputError, match="no DVC worker runs them"):
        queue.wait(1)
    assert fake.calls.count(("queue", "status")) == 1 + queue.STALLED_POLLS


def test_queue_the_feature_tables_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDvc([RUNNING.replace("Running", "Success").replace("Queued", "Success")])
    monkeypatch.setattr(queue, "dvc", fake)
    monkeypatch.setattr(queue, "POLL_S", 0)
    queue.main(["--tables", "FHIJ", "--jobs", "2"])
    queued = [call for call in fake.calls if call[:3] == ("exp", "run", "--queue")]
    # five configurations with six and with seven emotions, Lite2's none and seven emotions' none: I's wheel is
    # F's Lite2 row, J's is H's first
    assert len(queued) == 12 and all("features.layers=" in " ".join(call) for call in queued)
    assert sum("prior.init=none" in call for call in queued) == 2


def test_unknown_tables_are_refused_before_dvc_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDvc()
    monkeypatch.setattr(queue, "dvc", fake)
    with pytest.raises(InputError, match="--tables takes letters among ABCDEFHIJ; found 'AZ'"):
        queue.main(["--tables", "AZ"])
    assert fake.calls == []
