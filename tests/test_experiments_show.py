"""What DVC knows about the experiments (ewmtcnn.experiments), on real `dvc exp show --json` output
of a throwaway DVC project (tests/variants_project.py) holding the 13 arms as experiments."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import dvc
import numpy as np
import pandas as pd
import pytest

from dvcrepo import Repo
from ewmtcnn import InputError
from ewmtcnn.experiments import arm_rows, exp_show, experiments, predictions
from ewmtcnn.experiments import dvc as run_dvc
from ewmtcnn.grid import ARMS, BASELINE
from variants_project import CORR_SEED, EYE_SEED, RAND_DIRECT, build, exp_name, read_show


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return build(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def show(project: Repo) -> list:
    return read_show(project)


def test_dvc_is_this_interpreters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")  # no `dvc` on PATH: the venv's all the same
    assert run_dvc("--version").strip() == dvc.__version__
    with pytest.raises(InputError, match=r"^`dvc exp nonsense` failed: .*invalid choice: 'nonsense'") as error:
        run_dvc("exp", "nonsense")
    assert "\n" not in str(error.value)  # the last line of DVC's message, not the whole usage text


def test_exp_show_json_shape(show: list) -> None:
    """The shape `experiments` reads (DVC 3.67): the workspace and the baseline commit, the
    experiments under the baseline, one rev each; a failed one carries `error`."""
    assert show[0]["rev"] == "workspace" and show[0]["experiments"] is None
    baseline = show[1]
    assert baseline["name"] == "main" and len(baseline["experiments"]) == 15
    by_name = {e["name"]: e for e in baseline["experiments"]}
    assert by_name["broken"]["revs"][0]["error"]["msg"] == "Experiment run failed"
    assert by_name["broken"]["executor"]["state"] == "failed"
    assert by_name["pending"]["executor"]["state"] == "queued"
    assert by_name["pending"]["revs"][0]["data"]["metrics"] == {}
    good = by_name["none"]
    assert good["revs"][0]["error"] is None and good["executor"]["state"] == "success"
    metrics = good["revs"][0]["data"]["metrics"]["metrics/metrics.json"]["data"]
    assert set(metrics) == {"test", "train", "test_per_class_acc"}


def test_exp_show_reads_a_saved_copy_or_refuses_it(project: Repo, tmp_path: Path) -> None:
    assert exp_show(project.root / "show.json") == read_show(project)
    with pytest.raises(InputError, match="absent.json: No such file"):
        exp_show(tmp_path / "absent.json")
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(InputError, match=r"text.json: not JSON \(Expecting value"):
        exp_show(tmp_path / "text.json")
    (tmp_path / "bad.json").write_text('{"rev": "workspace"}')
    with pytest.raises(InputError, match="expected a list of baselines, found dict"):
        exp_show(tmp_path / "bad.json")


def test_experiments_one_row_each_with_params_metrics_and_errors(project: Repo, show: list) -> None:
    frame = experiments(show)
    assert len(frame) == 15 and frame["name"].is_unique
    errors = frame.set_index("name")["error"]
    assert errors["broken"] == "Experiment run failed" and errors["pending"] == "not finished (queued)"
    assert errors.drop(["broken", "pending"]).isna().all()
    assert {
        "prior.init",
        "prior.freeze",
        "model.head",
        "data.label",
        "data.neutral",
        "model.backbone",
        "train.finetune",
        "split.folds",
        "test.acc.mean",
        "train.kl.std",
        "test_per_class_acc.joy",
    } <= set(frame)
    # A failed experiment shows its baseline's metrics in dvc exp show: they must not be taken.
    assert frame.set_index("name").loc[["broken", "pending"], "test.acc.mean"].isna().all()
    row = frame.set_index("name").loc[exp_name(EYE_SEED)]
    assert (row["prior.init"], row["prior.freeze"], row["model.head"]) == ("eye", False, "seed")
    committed = json.loads(project.run("git", "show", f"{row['rev']}:metrics/metrics.json").stdout)
    assert row["test.kl.mean"] == committed["test"]["kl"]["mean"]
    assert row["train.acc.std"] == committed["train"]["acc"]["std"]


def test_queued_overrides_are_the_arms_params(show: list) -> None:
    """`none` and `broken` were queued with `Arm.overrides()`: DVC read them back as the arms' params."""
    frame = experiments(show).set_index("name")
    for name, arm in (("none", BASELINE), ("broken", CORR_SEED)):
        assert {param: frame.at[name, param] for param in arm.params()} == arm.params()


def test_experiments_reports_unreadable_metrics(show: list) -> None:
    """DVC reports a missing or corrupt metrics file as {"error": {"type", "msg"}} in its place."""
    show = copy.deepcopy(show)
    entry = next(e for e in show[1]["experiments"] if e["name"] == exp_name(EYE_SEED))
    missing = "[Errno 2] No such file or directory: 'metrics/metrics.json'"
    error = {"error": {"type": "FileNotFoundError", "msg": missing}}
    entry["revs"][0]["data"]["metrics"]["metrics/metrics.json"] = error
    frame = experiments(show).set_index("name")
    assert frame.at[exp_name(EYE_SEED), "error"] == f"metrics/metrics.json: {missing}"
    assert np.isnan(frame.at[exp_name(EYE_SEED), "test.acc.mean"])


def test_experiments_without_any() -> None:
    frame = experiments([{"rev": "workspace", "name": None, "data": {}, "error": None, "experiments": None}])
    assert frame.empty and {"name", "rev", "timestamp", "error"} <= set(frame)
    with pytest.raises(InputError, match="no usable experiment for 13 of the 13 variants"):
        arm_rows(frame, ARMS)


def test_arm_rows_picks_each_arm(show: list) -> None:
    rows = arm_rows(experiments(show), ARMS)
    assert list(rows.index) == [arm.label for arm in ARMS]
    assert list(rows["name"]) == [exp_name(arm) for arm in ARMS]


def test_arm_rows_takes_the_newest(show: list) -> None:
    frame = experiments(show)
    newer = frame[frame["name"] == exp_name(RAND_DIRECT)].assign(
        name="rerun", rev="f" * 40, timestamp=frame["timestamp"].max() + pd.Timedelta(seconds=1)
    )
    rows = arm_rows(pd.concat([frame, newer], ignore_index=True), ARMS)
    assert rows.at["rand unfreeze direct", "name"] == "rerun"


def test_arm_rows_names_missing_arms(show: list) -> None:
    frame = experiments(show)
    gone = frame[~frame["name"].isin([exp_name(CORR_SEED), exp_name(BASELINE)])]
    with pytest.raises(InputError) as error:
        arm_rows(gone, ARMS)
    message = str(error.value)
    assert message.startswith(
        "no usable experiment for 2 of the 13 variants: none (dvc exp run --queue -S prior.init=none)"
    )
    # The failed experiment that would have been the arm is named, with DVC's reason.
    assert "corr unfreeze seed (broken Experiment run failed)" in message
    assert "\n" not in message
    with pytest.raises(
        InputError,
        match=r"rand unfreeze direct \(dvc exp run --queue -S prior.init=rand "
        r"-S prior.freeze=false -S model.head=direct\)",
    ):
        arm_rows(frame[frame["name"] != exp_name(RAND_DIRECT)], ARMS)


def test_arm_rows_refuses_rows_of_other_settings(show: list) -> None:
    frame = experiments(show)
    eye_seed = exp_name(EYE_SEED)
    frame.loc[frame["name"] == eye_seed, "train.epochs"] = 3
    groups = rf"\(20: none \[\S+\], .*; 3: eye unfreeze seed \[{eye_seed}\]\)"
    with pytest.raises(InputError, match=rf"differ in train\.epochs {groups}"):
        arm_rows(frame, ARMS)
    frame = experiments(show)
    frame.loc[frame["name"] == exp_name(BASELINE), "data.label"] = "folder"
    with pytest.raises(InputError, match=r"differ in data\.label"):
        arm_rows(frame, ARMS)


def test_predictions_from_the_experiments_commit(project: Repo, show: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root)
    row = arm_rows(experiments(show), ARMS).loc[EYE_SEED.label]
    table = predictions(row)
    assert len(table) == 60 and table["image"].is_unique
    committed = project.run("git", "show", f"{row['rev']}:metrics/predictions.csv").stdout.splitlines()
    assert table.columns.tolist() == committed[0].split(",")
    assert table.iloc[7]["pred_joy"] == pytest.approx(float(committed[8].split(",")[table.columns.get_loc("pred_joy")]))
    with pytest.raises(InputError, match=r"reading metrics/predictions.csv of experiment none \(0000000\) failed"):
        predictions(pd.Series({"name": "none", "rev": "0" * 40}))
