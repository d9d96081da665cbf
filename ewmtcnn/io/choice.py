"""The recipe's choice: the hyperparameters a head trained with, and how they were found.

- A fold's selection.json and the final model's file each hold one, as `Choice.record` gives it.
- `HYPERPARAMETERS` names the chosen values: the evaluate stage and the study's tables read them.
- Light on purpose (no torch): every subpackage, the study included, imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from ewmtcnn import InputError

#: The recipe whose choice records its validation curve.
CURVED = "converged"


@dataclass(frozen=True)
class Choice:
    """The hyperparameters a training set's head trains with, and the recipe that gave them.

    - `converged`: `epochs` holds the L-BFGS iterations of the final fit and `lr_head` is 0 (no step size is set).
    """

    recipe: str
    epochs: int
    lr_head: float
    weight_decay: float
    inner_kl: float | None = None  # the chosen setting's inner-validation KL (selected and converged only)
    # converged only: (weight decay, mean inner-validation KL) of every decay tried, strongest first;
    # a diverged fit's KL is inf or NaN
    validation_curve: tuple[tuple[float, float], ...] | None = None

    def record(self) -> dict[str, object]:
        return asdict(self)

    def hyperparameters(self) -> dict[str, object]:
        """The chosen values, by their names in `HYPERPARAMETERS`."""
        return {name: getattr(self, name) for name in HYPERPARAMETERS}

    @classmethod
    def read(cls, record: object, where: str, hint: str) -> Choice:
        """The choice in `record` (as `record` wrote it); anything else is an InputError naming `where`."""
        if not isinstance(record, Mapping) or set(record) != {f.name for f in fields(cls)}:
            raise InputError(f"{where}: not the hyperparameters a model trained with; {hint}")
        if not isinstance(record["recipe"], str):
            raise InputError(f"{where}: recipe must be a name; found {record['recipe']!r}; {hint}")
        numbers = [*HYPERPARAMETERS, *(["inner_kl"] if record["inner_kl"] is not None else [])]
        for key in numbers:
            if not _number(record[key]):
                raise InputError(f"{where}: {key} must be a number; found {record[key]!r}; {hint}")
        curve = _curve(record, where, hint)
        return cls(**{**record, "validation_curve": curve})


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _curve(record: Mapping[str, object], where: str, hint: str) -> tuple[tuple[float, float], ...] | None:
    """A record's validation curve as a tuple of (decay, KL) pairs: present for `CURVED` only, holding its decay."""
    curve, recipe = record["validation_curve"], record["recipe"]
    if recipe != CURVED:
        if curve is not None:
            raise InputError(f"{where}: a {recipe} choice has no validation curve; found {curve!r:.80}; {hint}")
        return None
    pairs = curve if isinstance(curve, (list, tuple)) else []
    if not pairs or not all(isinstance(p, (list, tuple)) and len(p) == 2 and all(map(_number, p)) for p in pairs):
        raise InputError(
            f"{where}: validation_curve must list [weight decay, inner KL] pairs; found {curve!r:.80}; {hint}"
        )
    if record["weight_decay"] not in [decay for decay, _ in pairs]:
        raise InputError(
            f"{where}: the chosen weight_decay {record['weight_decay']} is not on its validation curve; {hint}"
        )
    return tuple((float(decay), float(kl)) for decay, kl in pairs)


#: The hyperparameters a choice sets: what the recipe gives or selects, besides its own name and what it measured.
HYPERPARAMETERS: tuple[str, ...] = tuple(
    f.name for f in fields(Choice) if f.name not in ("recipe", "inner_kl", "validation_curve")
)
