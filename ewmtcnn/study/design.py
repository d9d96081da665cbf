"""The design of the prior-layer comparison as plain data: arms, grids (one per table) and their experiments.

- An arm is one row of a table: the prior's initialisation, whether it is frozen, the head, and
  any params pinned to values of its own.
- A grid is one table: its arms and the params pinned for all of its experiments.
- An experiment is an arm in a grid; `python -m ewmtcnn.study.queue` runs them as DVC experiments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple

from ewmtcnn import InputError
from ewmtcnn.config.sections import HEADS

#: A param's value as an arm or grid pins it: a list (`features.views`) as a tuple, to be hashable.
Value = str | bool | float | tuple[str, ...]
#: Params pinned to values, as (param, value) pairs in `dvc exp show`'s names, so that arms are hashable.
Pinned = tuple[tuple[str, Value], ...]
#: The kinds of table a grid makes.
#: - `compared`: its arms tested against the first;
#: - `reimplementation`: in place, beside the reimplementation's published training-set figures;
#: - `published`: held out, beside other methods' published figures;
#: - `features`: the frozen-feature configurations, beside the same published figures.
Kind = Literal["compared", "reimplementation", "published"]

#: What an experiment runs up to: the stage of the metrics and predictions that the tables read.
#: - The final model (stage `final`), trained on every image for prediction, would only cost time.
TARGET = "evaluate"


class Arm(NamedTuple):
    """One arm of the comparison: the prior's initialisation, whether it is frozen, the head, and its own pinned params.

    - `freeze` and `head` are None for `none`: without a prior layer there is nothing to freeze and
      both heads are the same FC layer, so `none` runs once, with whatever head is default.
    """

    init: str
    freeze: bool | None
    head: str | None
    pinned: Pinned = ()

    @property
    def mode(self) -> str | None:
        """`freeze` or `unfreeze`, as the reimplementation names them; None without a prior."""
        return None if self.freeze is None else ("freeze" if self.freeze else "unfreeze")

    @property
    def label(self) -> str:
        """The arm's name in the tables and the chart, such as `original freeze direct lr_head=0.01`."""
        pinned = (f"{param.split('.')[-1]}={value}" for param, value in self.pinned)
        return " ".join(part for part in (self.init, self.mode, self.head, *pinned) if part)

    def params(self) -> dict[str, Value]:
        """The params that make an experiment this arm, as `dvc exp show` names them; None is left at the default."""
        chosen = {"prior.init": self.init, "prior.freeze": self.freeze, "model.head": self.head, **dict(self.pinned)}
        return {key: value for key, value in chosen.items() if value is not None}


class Grid(NamedTuple):
    """One table of the comparison: its arms, the params pinned for all of its experiments, and its kind.

    - The first arm is what a `compared` table tests the others against.
    - `pinned` holds whatever tells the grids apart, also where it is params.yaml's default: an
      experiment then belongs to the grids of those params only, whatever the defaults become.
    """

    name: str  # names its block in docs/results.md
    title: str
    arms: tuple[Arm, ...]
    pinned: Pinned
    kind: Kind = "compared"

    def experiments(self) -> list[Experiment]:
        """An experiment per arm, in the arms' order."""
        return [Experiment(self, arm) for arm in self.arms]


class Experiment(NamedTuple):
    """One experiment: an arm in a grid."""

    grid: Grid
    arm: Arm

    def params(self) -> dict[str, Value]:
        """The params that make an experiment this one, as `dvc exp show` names them."""
        return {**dict(self.grid.pinned), **self.arm.params()}

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
BASELINE = Arm("none", None, None)
#: The 13 rows of table B: `none`, then every other prior with each head.
ARMS: tuple[Arm, ...] = (BASELINE, *(Arm(init, freeze, head) for init, freeze in PRIORS[1:] for head in HEADS))
#: The 7 rows of table C: the reimplementation's own head.
SEED_ARMS: tuple[Arm, ...] = (BASELINE, *(Arm(init, freeze, "seed") for init, freeze in PRIORS[1:]))
#: The paper's head learning rate, pinned by the `fixed` recipe's grids so that an experiment with
#: another (such as those of RESCALED) is no row of B or C.
PAPER_LR: Pinned = (("train.lr_head", 0.01),)
#: The paper's loss: 0.3 CE + 0.7 KL.
PAPER_LOSS: Pinned = (("train.lambda", 0.7),)
PAPER: Pinned = (("train.recipe", "fixed"), *PAPER_LR, *PAPER_LOSS)
#: The default arm: the wheel prior kept fixed after the FC layer, as EW-MTCNN describes it.
WHEEL = Arm("original", True, "direct")
#: Table A: table B's rows, the `spectrum` control, and the default arm under the paper's loss.
CONVERGED_ARMS: tuple[Arm, ...] = (*ARMS, Arm("spectrum", True, "direct"), WHEEL._replace(pinned=PAPER_LOSS))
#: The default loss, KL alone: pinned by the `converged` grids, whatever params.yaml's default becomes.
KL_LOSS: Pinned = (("train.lambda", 1.0),)
#: Table A's recipe: every head fitted to convergence, with the default loss.
CONVERGED: Pinned = (("train.recipe", "converged"), *KL_LOSS)
#: Table D: a frozen, invertible W only rescales the head's gradients and weight decay. The frozen
#: wheel prior at the paper's settings is tested against `none` at the paper's and at smaller
#: learning rates, and against `spectrum`: a fixed matrix with the wheel's singular values and
#: random singular vectors, which separates the wheel's structure from its scale.
RESCALED: tuple[Arm, ...] = (
    WHEEL._replace(pinned=PAPER_LR),
    BASELINE._replace(pinned=PAPER_LR),
    *(BASELINE._replace(pinned=(("train.lr_head", lr),)) for lr in (0.005, 0.0025)),
    Arm("spectrum", True, "direct", PAPER_LR),
)
#: Table E: the default arm under the protocols of the published figures: seven emotions (neutral
#: kept), and the folder keyword as the class label.
PUBLISHED_ARMS: tuple[Arm, ...] = tuple(
    WHEEL._replace(pinned=pinned)
    for pinned in (
        (("data.neutral", "keep"), ("data.label", "dominant")),
        (("data.neutral", "keep"), ("data.label", "folder")),
        (("data.neutral", "drop"), ("data.label", "dominant")),  # table A's row
        (("data.neutral", "drop"), ("data.label", "folder")),
    )
)
#: Six emotions with the dominant one as the class label; pinned even where params.yaml's defaults
#: say the same, so that an experiment of table E with other values is no row of A, B or D.
SIX: Pinned = (("data.label", "dominant"), ("data.neutral", "drop"))
#: The grids of `make table`: tables A to E.
GRIDS: tuple[Grid, ...] = (
    Grid(
        "A",
        "every head fitted to convergence, its weight decay chosen per training fold",
        CONVERGED_ARMS,
        (*SIX, *CONVERGED),
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
        "what a frozen wheel prior changes: none at smaller head learning rates and the spectrum control, "
        "the paper's settings otherwise",
        RESCALED,
        (*SIX, ("train.recipe", "fixed"), *PAPER_LOSS),
    ),
    Grid(
        "E",
        "the default arm beside the published held-out figures",
        PUBLISHED_ARMS,
        CONVERGED,
        "published",
    ),
)

#: The frozen-feature configurations of the offline backbones: (backbone, layers, views, preprocess.size),
#: the default's first. Lite2's 260 px crops need a larger store.
FEATURE_CONFIGS: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    ("efficientnet_lite0", "pooled", ("centre",), 256),
    ("efficientnet_lite0", "pooled", ("centre", "mirror", "full"), 256),
    ("efficientnet_lite0", "stats", ("centre",), 256),
    ("efficientnet_lite1", "pooled", ("centre",), 256),
    ("efficientnet_lite2", "pooled", ("centre",), 296),
)


def configured(arm: Arm, backbone: str, layers: str, views: tuple[str, ...], size: int) -> Arm:
    """`arm` on one configuration of FEATURE_CONFIGS."""
    config = (
        ("model.backbone", backbone),
        ("features.layers", layers),
        ("features.views", views),
        ("preprocess.size", size),
    )
    return arm._replace(pinned=config)


#: The default arm on each configuration: tested against the default's own (the first).
CONFIGURED: tuple[Arm, ...] = tuple(configured(WHEEL, *config) for config in FEATURE_CONFIGS)
#: Seven emotions (neutral kept, as most of the LDL literature), the dominant one as the class label.
SEVEN: Pinned = (("data.label", "dominant"), ("data.neutral", "keep"))
#: The grids of `make features-table`: each configuration against the default's with six emotions (F) and
#: seven (H); and the verdict's key comparison, the frozen wheel against `none`, on Lite2's features (I) and
#: with seven emotions on the default's features (J).
FEATURE_GRIDS: tuple[Grid, ...] = (
    Grid("F", "frozen features of the offline backbones, six emotions", CONFIGURED, (*SIX, *CONVERGED)),
    Grid("H", "frozen features of the offline backbones, seven emotions", CONFIGURED, (*SEVEN, *CONVERGED)),
    Grid(
        "I",
        "the key comparison on a second backbone: the frozen wheel against none on EfficientNet-Lite2 features",
        tuple(configured(arm, *FEATURE_CONFIGS[-1]) for arm in (BASELINE, WHEEL)),
        (*SIX, *CONVERGED),
    ),
    Grid(
        "J",
        "the key comparison with seven emotions: the frozen wheel against none on the default's features",
        tuple(configured(arm, *FEATURE_CONFIGS[0]) for arm in (BASELINE, WHEEL)),
        (*SEVEN, *CONVERGED),
    ),
)
#: Every table's grid, by name.
ALL: dict[str, Grid] = {grid.name: grid for grid in (*GRIDS, *FEATURE_GRIDS)}


def experiments_of(grids: Iterable[Grid]) -> tuple[Experiment, ...]:
    """The experiments that make `grids`' tables, each set of params once, where it first comes.

    - An experiment may be a row of several tables: B's `none` is also D's first row.
    """
    first: dict[frozenset[tuple[str, Value]], Experiment] = {}
    for experiment in (experiment for grid in grids for experiment in grid.experiments()):
        first.setdefault(frozenset(experiment.params().items()), experiment)
    return tuple(first.values())


def grids_named(letters: str) -> list[Grid]:
    """The grids named by their letters (`ABCDE`); an unknown letter is refused with the choices."""
    unknown = [letter for letter in letters if letter not in ALL]
    if unknown or not letters:
        raise InputError(f"--tables takes letters among {''.join(ALL)}; found {letters!r}")
    return [ALL[letter] for letter in letters]
