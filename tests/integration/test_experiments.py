"""What DVC knows about the experiments (ewmtcnn.study.experiments), on real `dvc exp show --json` output.

- From a throwaway DVC project (tests/variants_project.py) holding the 38 experiments of the five grids.
"""

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
from ewmtcnn.study import experiments as module
from ewmtcnn.study.commands import dvc as run_dvc
from ewmtcnn.study.design import FEATURE_GRIDS, GRIDS, Experiment
from ewmtcnn.study.experiments import _matches, chosen, exp_show, experiments, grid_rows, predictions, shared_params
from variants_project import (
    CORR_SEED,
    EXPERIMENTS,
    EYE_SEED,
    ORIGINAL_SEED_C,
    QUEUED,
    RAND_DIRECT,
    TABLE_A,
    build,
    exp_name,
    read_show,
)


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
    """The shape `experiments` reads (DVC 3.67).

    - The workspace and the baseline commit, the experiments under the baseline, one rev each.
    - A failed one carries `error`.
    """
    assert show[0]["rev"] == "workspace" and show[0]["experiments"] is None
    baseline = show[1]
    assert baseline["name"] == "main" and len(baseline["experiments"]) == len(EXPERIMENTS) + 2  # broken, pending
    by_name = {e["name"]: e for e in baseline["experiments"]}
    assert by_name["broken"]["revs"][0]["error"]["msg"] == "Experiment run failed"
    assert by_name["broken"]["executor"]["state"] == "failed"
    assert by_name["pending"]["executor"]["state"] == "queued"
    assert by_name["pending"]["revs"][0]["data"]["metrics"] == {}
    good = by_name[exp_name(QUEUED)]
    assert good["revs"][0]["error"] is None and good["executor"]["state"] == "success"
    metrics = good["revs"][0]["data"]["metrics"]
    assert set(metrics["metrics/metrics.json"]["data"]) == {"test", "train", "test_per_class_acc", "baselines"}
    assert set(metrics["metrics/selection.json"]["data"]) == {"recipe", "epochs", "lr_head", "weight_decay"}


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
    assert len(frame) == len(EXPERIMENTS) + 2 and frame["name"].is_unique  # and broken, pending
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
        "train.recipe",
        "split.folds",
        "split.repeats",
        "select.share",
        "test.acc.mean",
        "test.kl.ci_low",
        "train.kl.std",
        "test_per_class_acc.joy",
        "baselines.mean.kl.ci_high",
        "baselines.majority.macro_f1.mean",
    } <= set(frame)
    assert "baselines.majority.kl.mean" not in frame  # one-hot: no LDL measures
    # A failed experiment shows its baseline's metrics in dvc exp show: they must not be taken.
    assert frame.set_index("name").loc[["broken", "pending"], "test.acc.mean"].isna().all()
    row = frame.set_index("name").loc[exp_name(EYE_SEED)]
    assert (row["prior.init"], row["prior.freeze"], row["model.head"]) == ("eye", False, "seed")
    assert (row["data.label"], row["train.recipe"]) == ("dominant", "converged")
    committed = json.loads(project.run("git", "show", f"{row['rev']}:metrics/metrics.json").stdout)
    assert row["test.kl.mean"] == committed["test"]["kl"]["mean"]
    assert row["train.acc.ci_high"] == committed["train"]["acc"]["ci_high"]
    assert row["baselines.mean.cosine.ci_low"] == committed["baselines"]["mean"]["cosine"]["ci_low"]


def test_shared_params_are_the_params_only(show: list) -> None:
    """The params that every row of a table must share: the `train` params, not the `train` scores."""
    agreed = shared_params(experiments(show), ["prior.init"])
    assert {"train.epochs", "train.recipe", "select.share", "data.label", "split.repeats"} <= set(agreed)
    assert "prior.init" not in agreed and "name" not in agreed
    assert not [c for c in agreed if c.startswith(("test", "baselines.")) or c.startswith("train.acc.")]


def test_queued_overrides_are_the_experiments_params(show: list) -> None:
    """QUEUED and `broken` were queued with `Experiment.overrides()`: DVC read them back as its params."""
    frame = experiments(show).set_index("name")
    for name, experiment in ((exp_name(QUEUED), QUEUED), ("broken", CORR_SEED)):
        assert {param: frame.at[name, param] for param in experiment.params()} == experiment.params()


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
    with pytest.raises(InputError, match="no usable experiment for 15 of the 15 variants of table A"):
        grid_rows(frame, TABLE_A)


def test_grid_rows_picks_each_arm_of_each_grid(show: list) -> None:
    """Each arm of each grid is its own experiment, also where grids share params.

    - Tables B and C share the recipe and the head of six arms: the label tells them apart.
    - B's `none` and wheel prior are also D's first and last rows; E's six-emotion dominant row is A's.
    """
    frame = experiments(show)
    for grid in GRIDS:
        rows = grid_rows(frame, grid)
        assert list(rows.index) == [arm.label for arm in grid.arms]
        assert list(rows["name"]) == [exp_name(experiment) for experiment in grid.experiments()]
        for param, value in grid.pinned:  # an arm's own pin (table A's paper loss) wins over its grid's
            assert set(rows[param]) == {value, *(v for arm in grid.arms for p, v in arm.pinned if p == param)}


def test_grid_rows_takes_the_newest(show: list) -> None:
    frame = experiments(show)
    newer = frame[frame["name"] == exp_name(RAND_DIRECT)].assign(
        name="rerun", rev="f" * 40, timestamp=frame["timestamp"].max() + pd.Timedelta(seconds=1)
    )
    rows = grid_rows(pd.concat([frame, newer], ignore_index=True), TABLE_A)
    assert rows.at["rand unfreeze direct", "name"] == "rerun"


def test_grid_rows_names_missing_arms(show: list) -> None:
    frame = experiments(show)
    gone = frame[~frame["name"].isin([exp_name(CORR_SEED), exp_name(QUEUED)])]
    with pytest.raises(InputError) as error:
        grid_rows(gone, TABLE_A)
    message = str(error.value)
    assert message.startswith(
        "no usable experiment for 2 of the 15 variants of table A: none (dvc exp run --queue "
        "-S data.label=dominant -S data.neutral=drop -S train.recipe=converged -S train.lambda=1.0 "
        "-S prior.init=none evaluate)"
    )
    # The failed experiment that would have been the arm is named, with DVC's reason.
    assert "corr unfreeze seed (broken Experiment run failed)" in message
    assert "\n" not in message
    with pytest.raises(
        InputError,
        match=r"of table C: original freeze seed \(dvc exp run --queue -S data.label=folder -S data.neutral=drop "
        r"-S train.recipe=fixed "
        r"-S train.lr_head=0.01 -S train.lambda=0.7 -S prior.init=original -S prior.freeze=true -S model.head=seed "
        r"evaluate\)",
    ):
        grid_rows(frame[frame["name"] != exp_name(ORIGINAL_SEED_C)], ORIGINAL_SEED_C.grid)


def test_grid_rows_refuses_rows_of_other_settings(show: list) -> None:
    frame = experiments(show)
    eye_seed = exp_name(EYE_SEED)
    frame.loc[frame["name"] == eye_seed, "train.epochs"] = 3
    groups = rf"\(20: none \[\S+\], .*; 3: eye unfreeze seed \[{eye_seed}\]\)"
    with pytest.raises(InputError, match=rf"variants of table A differ in train\.epochs {groups}"):
        grid_rows(frame, TABLE_A)
    frame = experiments(show)
    frame.loc[frame["name"] == exp_name(QUEUED), "select.share"] = 0.3
    with pytest.raises(InputError, match=r"differ in select\.share"):
        grid_rows(frame, TABLE_A)


def test_predictions_from_the_experiments_commit(project: Repo, show: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root)
    row = grid_rows(experiments(show), TABLE_A).loc[EYE_SEED.arm.label]
    table = predictions(row)
    assert len(table) == 3 * 60 and not table.duplicated(["repeat", "image"]).any()
    committed = project.run("git", "show", f"{row['rev']}:metrics/predictions.csv").stdout.splitlines()
    assert table.columns.tolist() == committed[0].split(",")
    assert table.iloc[7]["pred_joy"] == pytest.approx(float(committed[8].split(",")[table.columns.get_loc("pred_joy")]))
    with pytest.raises(InputError, match=r"reading metrics/predictions.csv of experiment none \(0000000\) failed"):
        predictions(pd.Series({"name": "none", "rev": "0" * 40}))


def test_chosen_hyperparameters_from_the_experiments_commit(
    project: Repo, show: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project.root)
    row = grid_rows(experiments(show), TABLE_A).loc[EYE_SEED.arm.label]
    committed = json.loads(project.run("git", "show", f"{row['rev']}:metrics/selection.json").stdout)
    grid = row["select.weight_decay"]
    ends = sum(fold["weight_decay"] in (min(grid), max(grid)) for fold in committed["folds"])
    assert chosen(row) == {
        "weight_decay": {**committed["weight_decay"], "ends": ends, "folds": len(committed["folds"])}
    }
    monkeypatch.setattr(module, "_committed", lambda row, path: '{"weight_decay": {"median": 7}}')
    with pytest.raises(InputError, match=r"selection.json of experiment .* not the chosen hyperparameters .*KeyError"):
        chosen(row)


def test_list_params_are_compared_whole() -> None:
    """A list param (`features.views`) matches an experiment's list as a whole, not element by element."""
    grid = FEATURE_GRIDS[0]
    arm = grid.arms[1]  # centre + mirror + full, six emotions
    wanted = Experiment(grid, arm)
    show = [
        {
            "experiments": [
                {
                    "revs": [
                        {
                            "rev": str(i) * 40,
                            "name": f"e{i}",
                            "data": {
                                "timestamp": "2026-11-29T01:00:00",
                                "params": {"params.yaml": {"data": nest({**wanted.params(), "features.views": views})}},
                                "metrics": {"metrics/metrics.json": {"data": {"test": {}}}},
                            },
                        }
                    ]
                }
                for i, views in enumerate((["centre", "mirror", "full"], ["centre"], ["full", "mirror", "centre"]))
            ]
        }
    ]
    frame = experiments(show)
    assert frame.loc[_matches(frame, wanted), "name"].tolist() == ["e0"]


def nest(flat: dict) -> dict:
    """`section.key` params as params.yaml nests them, lists as lists."""
    tree: dict = {}
    for key, value in flat.items():
        section, name = key.split(".")
        tree.setdefault(section, {})[name] = list(value) if isinstance(value, tuple) else value
    return tree
