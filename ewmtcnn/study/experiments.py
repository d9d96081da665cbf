"""What DVC knows about the experiments of the tables, read from `dvc exp show --json` and their commits.

- `experiments`: one row per experiment, with its params and metrics, or why it cannot be used.
- `grid_rows`: the newest usable experiment of each arm of a grid (a table).
- `predictions`, `chosen`: an experiment's out-of-fold predictions and chosen hyperparameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ewmtcnn import InputError
from ewmtcnn.evaluation import metrics
from ewmtcnn.io.choice import HYPERPARAMETERS
from ewmtcnn.paths import METRICS, PREDICTIONS, SELECTION
from ewmtcnn.study.commands import dvc, output
from ewmtcnn.study.design import TARGET, Experiment, Grid

IDENTITY: tuple[str, ...] = ("name", "rev", "timestamp", "error")
#: How the columns of metrics/metrics.json begin, flattened as `dvc exp show` names them. Its
#: `train` section shares its name with the params' (`train.epochs`), hence the scores.
METRIC_PREFIXES: tuple[str, ...] = (
    "test.",
    "test_per_class_acc.",
    "baselines.",
    *(f"train.{s}." for s in metrics.SCORES),
)


def exp_show(path: Path | None) -> list[dict[str, Any]]:
    """`dvc exp show --json` of this repository, or a saved copy of it."""
    if path is None:
        text = dvc("exp", "show", "--json")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(f"{path}: {e.strerror}") from None
    try:
        show = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path or 'dvc exp show'}: not JSON ({e})") from None
    if not isinstance(show, list):
        raise InputError(f"{path or 'dvc exp show'}: expected a list of baselines, found {type(show).__name__}")
    return show


def _flat(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Nested params or metrics as `section.key` columns, as `dvc exp show` prints them."""
    flat = pd.json_normalize(tree, sep=".").to_dict("records")[0]
    # Lists (a grid of `select.*`, `features.views`) as tuples: hashable, and compared whole.
    return {key: tuple(value) if isinstance(value, list) else value for key, value in flat.items()}


def _problem(rev: Mapping[str, Any], state: str | None) -> str | None:
    """Why an experiment cannot be used, or None.

    - A failed queued experiment still shows its baseline's metrics (DVC reads them from the stash
      commit), so failure is read from the error and executor state, never from the metrics alone.
    """
    if rev.get("error"):
        return str(rev["error"].get("msg") or rev["error"])
    if state not in (None, "success"):
        return f"not finished ({state})"
    data = rev.get("data") or {}
    for kind, path in (("params", "params.yaml"), ("metrics", METRICS.as_posix())):
        entry = (data.get(kind) or {}).get(path)
        if entry is None:
            return f"no {path}"
        if entry.get("error"):
            return f"{path}: {entry['error'].get('msg') or entry['error']}"
    return None


def experiments(show: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per experiment of `dvc exp show --json`, with its params and metrics as columns.

    - The columns: name, rev, timestamp, error (None when usable), every param of params.yaml and
      every metric of metrics/metrics.json.
    - Only experiments: the workspace and baseline commits are left out, since the tables show
      what the queued experiments produced.
    - Failed, queued and running experiments are kept with their reason in `error` and no metrics,
      so that callers can say what they skipped.
    """
    records = []
    for baseline in show:
        for experiment in baseline.get("experiments") or []:
            state = (experiment.get("executor") or {}).get("state")
            for rev in experiment.get("revs") or []:
                data = rev.get("data") or {}
                error = _problem(rev, state)
                record = {
                    "name": rev.get("name") or experiment.get("name"),
                    "rev": rev["rev"],
                    "timestamp": data.get("timestamp"),
                    "error": error,
                }
                params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
                record.update(_flat(params))
                if error is None:
                    record.update(_flat(data["metrics"][METRICS.as_posix()]["data"]))
                records.append(record)
    frame = pd.DataFrame(records)
    frame = frame.reindex(columns=list(dict.fromkeys([*IDENTITY, *frame.columns])))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


def _matches(frame: pd.DataFrame, experiment: Experiment) -> pd.Series:
    """Which rows of `frame` have every param of `experiment`, lists compared whole."""
    match = pd.Series(True, index=frame.index)
    for param, value in experiment.params().items():
        match &= frame[param].map(lambda cell, value=value: cell == value).astype(bool)
    return match


def present(frame: pd.DataFrame, experiment: Experiment) -> bool:
    """Whether `frame` (`experiments`) holds a usable run of `experiment`."""
    params = list(experiment.params())
    if not set(params) <= set(frame.columns):
        return False
    usable = frame[frame["error"].isna()]
    return bool(_matches(usable, experiment).any())


def _queue_command(experiment: Experiment) -> str:
    """The command that queues `experiment`, as a user would type it."""
    return " ".join(["dvc exp run --queue", *(f"-S {override}" for override in experiment.overrides()), TARGET])


def shared_params(frame: pd.DataFrame, varied: Sequence[str]) -> list[str]:
    """The params that every row of a table must share: all but the `varied` ones (and not metrics)."""
    return [c for c in frame.columns if c not in IDENTITY and c not in varied and not c.startswith(METRIC_PREFIXES)]


def grid_rows(frame: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """For each arm of `grid`, the newest usable experiment of `frame` with the experiment's params, indexed by label.

    - A missing arm is refused, naming the failed or unfinished experiments that would have been
      it, or the command that queues it.
    - So are rows that differ in any param other than those that tell the arms apart, since the
      differences would then not be the arms' alone.
    """
    wanted = grid.experiments()
    varied = list(dict.fromkeys(param for arm in grid.arms for param in arm.params()))
    matched = list(dict.fromkeys(param for experiment in wanted for param in experiment.params()))
    frame = frame.reindex(columns=list(dict.fromkeys([*frame.columns, *matched])))  # none run yet: no param columns
    usable = frame[frame["error"].isna()]
    newest, missing = [], []
    for experiment in wanted:
        candidates = usable[_matches(usable, experiment)]
        if candidates.empty:
            skipped = frame[_matches(frame, experiment) & frame["error"].notna()]
            why = "; ".join(f"{r.name} {r.error}" for r in skipped.itertuples())
            missing.append(f"{experiment.arm.label} ({why or _queue_command(experiment)})")
        else:
            newest.append(candidates.loc[candidates["timestamp"].idxmax()])
    if missing:
        raise InputError(
            f"no usable experiment for {len(missing)} of the {len(wanted)} variants of table {grid.name}: "
            + ", ".join(missing)
        )
    rows = pd.DataFrame(newest)
    rows.index = pd.Index([arm.label for arm in grid.arms], name="variant")
    named = np.array([f"{label} [{name}]" for label, name in rows["name"].items()])
    for param in shared_params(rows, varied):
        values = rows[param].map(repr)
        if values.nunique() > 1:
            groups = "; ".join(f"{value}: {', '.join(named[values == value])}" for value in values.unique())
            raise InputError(
                f"the newest experiments of the variants of table {grid.name} differ in {param} ({groups}); "
                "remove the odd ones (`dvc exp remove <name>`) or rerun them with the same params"
            )
    return rows


def _committed(row: pd.Series, path: Path) -> str:
    """A git-tracked output (not in the DVC cache) of an experiment, from its commit."""
    return output(
        ["git", "show", f"{row['rev']}:{path.as_posix()}"],
        f"reading {path} of experiment {row['name']} ({row['rev'][:7]})",
    )


def predictions(row: pd.Series) -> pd.DataFrame:
    """An experiment's out-of-fold predictions (metrics/predictions.csv)."""
    return pd.read_csv(StringIO(_committed(row, PREDICTIONS)))


#: The hyperparameters each recipe chooses (`fixed`: none); those besides the epochs come from `select.*` grids.
CHOSEN: dict[str, tuple[str, ...]] = {"selected": HYPERPARAMETERS, "converged": ("weight_decay",)}


def grid_ends(row: pd.Series) -> dict[str, tuple[float, float]]:
    """The smallest and largest value of each hyperparameter that an experiment's recipe chooses from a grid."""
    names = (name for name in CHOSEN.get(row["train.recipe"], ()) if name != "epochs")
    return {name: (min(row[f"select.{name}"]), max(row[f"select.{name}"])) for name in names}


def chosen(row: pd.Series) -> dict[str, dict[str, float]]:
    """The hyperparameters an experiment's recipe chose for its folds (metrics/selection.json; `CHOSEN`).

    - Median, min and max of each; for those chosen from a grid, `ends`: how many folds chose the
      grid's smallest or largest value (an optimum may lie beyond it), and `folds`.
    """
    what = f"{SELECTION} of experiment {row['name']} ({row['rev'][:7]})"
    try:
        recorded = json.loads(_committed(row, SELECTION))
        summary = {
            name: {stat: float(recorded[name][stat]) for stat in ("median", "min", "max")}
            for name in CHOSEN.get(row["train.recipe"], ())
        }
        for name, ends in grid_ends(row).items():
            picked = [fold[name] for fold in recorded["folds"]]
            summary[name] |= {"ends": float(sum(value in ends for value in picked)), "folds": float(len(picked))}
    except (ValueError, KeyError, TypeError) as e:  # json's JSONDecodeError is a ValueError
        raise InputError(
            f"{what}: not the chosen hyperparameters of metrics/selection.json ({type(e).__name__}: {e}); "
            "rerun the experiment"
        ) from None
    return summary
