"""The arms of the prior-layer comparison, the three settings (grids) they run in, and the runner
that queues them as DVC experiments.

An arm is one row of a variants table: the prior's initialisation, whether it is frozen, and the
head. A grid is one table: its arms and the params all of its experiments set. `python -m
ewmtcnn.study.grid [--source PATH] [--jobs N]` queues every experiment of every grid, runs the queue
and waits for it: the first half of `make table`; `python -m ewmtcnn.study.table` then builds the
README tables from `dvc exp show`.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ewmtcnn import InputError, cli
from ewmtcnn.study import experiments

POLL_S = 10
#: How `dvc queue status` ends when no worker is alive, and how many polls in a row of that (with
#: tasks queued, none running) mean that none will come: a worker starts within seconds.
NO_WORKER = "Worker status: 0 active, 0 idle"
STALLED_POLLS = 3


#: A param's value as an arm or grid sets it: a list (`features.views`) as a tuple, to be hashable.
Value = str | bool | float | tuple[str, ...]
Setting = tuple[tuple[str, Value], ...]


class Arm(NamedTuple):
    """One arm of the comparison: the prior's initialisation, whether it is frozen, the head, and
    any other params that make the arm (`settings`, as (param, value) pairs so that an arm is hashable).

    `freeze` and `head` are None for `none`: without a prior layer there is nothing to freeze
    and both heads are the same FC layer, so `none` runs once, with whatever head is default.
    """

    init: str
    freeze: bool | None
    head: str | None
    settings: Setting = ()

    @property
    def mode(self) -> str | None:
        """`freeze` or `unfreeze`, as the reimplementation names them; None without a prior."""
        return None if self.freeze is None else ("freeze" if self.freeze else "unfreeze")

    @property
    def label(self) -> str:
        settings = (f"{param.split('.')[-1]}={value}" for param, value in self.settings)
        return " ".join(part for part in (self.init, self.mode, self.head, *settings) if part)

    def params(self) -> dict[str, Value]:
        """The params.yaml values that make an experiment this arm, as `dvc exp show` names them;
        the unset ones (None) are left at the default."""
        chosen = {"prior.init": self.init, "prior.freeze": self.freeze, "model.head": self.head, **dict(self.settings)}
        return {key: value for key, value in chosen.items() if value is not None}


class Grid(NamedTuple):
    """One table of the comparison: its arms (the first is what the others are compared with), the
    params that every experiment of it sets, and what kind of table it makes (one of KINDS).

    `fixed` holds whatever tells the grids apart, also where it is params.yaml's default: an
    experiment then belongs to the grids of those params only, whatever the defaults become.
    """

    name: str  # names its README block
    title: str
    arms: tuple[Arm, ...]
    fixed: Setting
    kind: str = "compared"

    def experiments(self) -> list[Experiment]:
        return [Experiment(self, arm) for arm in self.arms]


class Experiment(NamedTuple):
    """One queued experiment: an arm in a grid."""

    grid: Grid
    arm: Arm

    def params(self) -> dict[str, Value]:
        """The params that make an experiment this one, as `dvc exp show` names them."""
        return {**dict(self.grid.fixed), **self.arm.params()}

    def overrides(self) -> list[str]:
        """`dvc exp run -S` values that queue this experiment (booleans spelled as YAML writes them)."""
        return [f"{key}={_yaml(value)}" for key, value in self.params().items()]


def _yaml(value: Value) -> str:
    """A value as `dvc exp run -S` reads it (YAML): booleans in lower case, tuples as flow lists."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ",".join(value) + "]"
    return str(value)


#: The reimplementation's seven (init, freeze) variants, in the order of its table.
PRIORS: tuple[tuple[str, bool | None], ...] = (
    ("none", None),
    ("original", True),
    ("original", False),
    ("eye", False),
    ("rand", False),
    ("corr", True),
    ("corr", False),
)
HEADS: tuple[str, ...] = ("direct", "seed")
BASELINE = Arm("none", None, None)
#: The 13 rows of tables A and B: `none`, then every other prior with each head.
ARMS: tuple[Arm, ...] = (BASELINE, *(Arm(init, freeze, head) for init, freeze in PRIORS[1:] for head in HEADS))
#: The 7 rows of table C: the reimplementation's own head.
SEED_ARMS: tuple[Arm, ...] = (BASELINE, *(Arm(init, freeze, "seed") for init, freeze in PRIORS[1:]))
#: The kinds of table a grid makes: its arms tested against the first (`compared`); in place beside
#: the reimplementation's published training-set figures; held out beside other methods' published
#: figures.
KINDS: tuple[str, ...] = ("compared", "reimplementation", "published", "features")
#: The paper's head learning rate, named by the `fixed` recipe's grids so that an experiment with
#: another (such as those of RESCALED) is no row of B or C.
PAPER_LR: Setting = (("train.lr_head", 0.01),)
PAPER: Setting = (("train.recipe", "fixed"), *PAPER_LR)
#: The default arm: the wheel prior kept fixed after the FC layer, as EW-MTCNN describes it.
WHEEL = Arm("original", True, "direct")
#: Table D: a frozen, invertible W only rescales the head's gradients and weight decay, so `none`
#: at smaller learning rates is set beside the frozen wheel prior at the paper's.
RESCALED: tuple[Arm, ...] = (
    BASELINE._replace(settings=PAPER_LR),
    *(BASELINE._replace(settings=(("train.lr_head", lr),)) for lr in (0.005, 0.0025)),
    WHEEL._replace(settings=PAPER_LR),
)
#: Table E: the default arm in the settings of the published figures: seven emotions (neutral
#: kept), and the folder keyword as the class label.
PUBLISHED_SETTINGS: tuple[Arm, ...] = tuple(
    WHEEL._replace(settings=settings)
    for settings in (
        (("data.neutral", "keep"), ("data.label", "dominant")),
        (("data.neutral", "keep"), ("data.label", "folder")),
        (("data.neutral", "drop"), ("data.label", "dominant")),  # table A's row
        (("data.neutral", "drop"), ("data.label", "folder")),
    )
)
#: Six emotions with the dominant one as the class label; named even where params.yaml's defaults
#: say the same, so that an experiment of table E with other values is no row of A, B or D.
SIX: Setting = (("data.label", "dominant"), ("data.neutral", "drop"))
GRIDS: tuple[Grid, ...] = (
    Grid(
        "A",
        "epochs, lr_head and weight_decay selected per training fold",
        ARMS,
        (*SIX, ("train.recipe", "selected")),
    ),
    Grid("B", "the paper's fixed settings", ARMS, (*SIX, *PAPER)),
    Grid(
        "C",
        "the reimplementation's setting: seed head, folder label, fixed settings",
        SEED_ARMS,
        (("data.label", "folder"), ("data.neutral", "drop"), *PAPER),
        "reimplementation",
    ),
    Grid(
        "D",
        "what a frozen wheel prior changes: none at smaller head learning rates, the paper's settings otherwise",
        RESCALED,
        (*SIX, ("train.recipe", "fixed")),
    ),
    Grid(
        "E",
        "the default arm beside the published held-out figures",
        PUBLISHED_SETTINGS,
        (("train.recipe", "selected"),),
        "published",
    ),
)

#: Table F's frozen-feature configurations of the offline backbones: (backbone, layers, views,
#: preprocess.size), each with six and seven emotions. Lite2's 260 px crops need a larger store.
FEATURE_CONFIGS: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    ("efficientnet_lite0", "pooled", ("centre",), 256),
    ("efficientnet_lite0", "pooled", ("centre", "mirror"), 256),
    ("efficientnet_lite0", "pooled", ("centre", "mirror", "full"), 256),
    ("efficientnet_lite0", "stats", ("centre",), 256),
    ("efficientnet_lite1", "pooled", ("centre",), 256),
    ("efficientnet_lite2", "pooled", ("centre",), 296),
)
FEATURES = Grid(
    "F",
    "frozen features of the offline backbones",
    tuple(
        WHEEL._replace(
            settings=(
                ("model.backbone", backbone),
                ("features.layers", layers),
                ("features.views", views),
                ("preprocess.size", size),
                ("data.neutral", neutral),
            )
        )
        for backbone, layers, views, size in FEATURE_CONFIGS
        for neutral in ("drop", "keep")
    ),
    (("data.label", "dominant"), ("train.recipe", "selected")),
    "features",
)
#: Every table's grid, by name; `make table` runs GRIDS, `make features-table` FEATURES.
ALL: dict[str, Grid] = {grid.name: grid for grid in (*GRIDS, FEATURES)}


def _once(experiments: Iterable[Experiment]) -> tuple[Experiment, ...]:
    """`experiments` with each set of params once, where it first comes."""
    first: dict[frozenset[tuple[str, Value]], Experiment] = {}
    for experiment in experiments:
        first.setdefault(frozenset(experiment.params().items()), experiment)
    return tuple(first.values())


#: What `python -m ewmtcnn.study.grid` queues: every experiment of every grid, each set of params once
#: (an experiment may be a row of several tables: B's `none` is also D's first row).
EXPERIMENTS: tuple[Experiment, ...] = _once(experiment for grid in GRIDS for experiment in grid.experiments())


def experiments_of(grids: Iterable[Grid]) -> tuple[Experiment, ...]:
    """The experiments that make `grids`' tables, each set of params once."""
    return _once(experiment for grid in grids for experiment in grid.experiments())


def queue(source: str | None, queued: Sequence[Experiment] = EXPERIMENTS) -> None:
    """One queued DVC experiment per experiment of `queued`, run up to `experiments.TARGET`."""
    for experiment in queued:
        overrides = experiment.overrides() + ([f"data.source={source}"] if source else [])
        experiments.dvc("exp", "run", "--queue", *(a for o in overrides for a in ("-S", o)), experiments.TARGET)
        print("queued", " ".join(overrides))


def wait(jobs: int) -> None:
    """Start `jobs` workers and return when no task is queued or running; failures are an error,
    and so is a queue that no worker takes tasks from for STALLED_POLLS polls in a row."""
    start = time.monotonic()
    experiments.dvc("queue", "start", "-j", str(jobs))  # may itself wait while its worker runs the queue
    time.sleep(POLL_S)  # let the workers pick up their first tasks
    stalled = 0
    while True:
        status = experiments.dvc("queue", "status")
        states = re.findall(r"\b(Queued|Running|Success|Failed)\b", status)
        if not {"Queued", "Running"} & set(states):
            break
        stalled = stalled + 1 if "Running" not in states and NO_WORKER in status else 0
        if stalled == STALLED_POLLS:
            break
        print(
            f"{time.monotonic() - start:6.0f} s: {states.count('Success')} done, {states.count('Running')} running, "
            f"{states.count('Queued')} queued",
            flush=True,
        )
        time.sleep(POLL_S)
    # No `dvc queue stop`: DVC's workers stop by themselves once the queue is empty, while a
    # stop request outlives them in the queue's files and stops the next run's workers early.
    if stalled == STALLED_POLLS:
        raise InputError(
            "experiments are queued but no DVC worker runs them; see the worker logs, "
            ".dvc/tmp/exps/celery/dvc-exp-worker-*.out"
        )
    if "Failed" in states:
        raise InputError(f"some experiments failed; see `dvc queue status` and `dvc queue logs <task>`:\n{status}")
    print(f"all experiments done in {time.monotonic() - start:.0f} s")


def chosen(names: str) -> list[Grid]:
    """The grids named by their letters (`ABCDE`); an unknown letter is refused with the choices."""
    unknown = [name for name in names if name not in ALL]
    if unknown or not names:
        raise InputError(f"--tables takes letters among {''.join(ALL)}; found {names!r}")
    return [ALL[name] for name in names]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.study.grid",
        description="Queue the prior-layer variants of the three tables as DVC experiments and run them.",
    )
    parser.add_argument("--source", help="data.source for every experiment (an absolute path to Emotion6.zip)")
    parser.add_argument("--jobs", type=int, default=1, help="experiments run in parallel (dvc queue start -j)")
    parser.add_argument(
        "--tables", default="".join(grid.name for grid in GRIDS), help=f"the tables to run, of {''.join(ALL)}"
    )
    args = parser.parse_args(argv)
    experiments.dvc("queue", "remove", "--success", "--failed")  # only this run's tasks count below
    queue(args.source, experiments_of(chosen(args.tables)))
    wait(args.jobs)


if __name__ == "__main__":
    cli.run(main)
