"""The recipe's choice: the hyperparameters a head trained with, and how they were found.

- A fold's selection.json and the final model's file each hold one, as `Choice.record` gives it.
- `HYPERPARAMETERS` names the chosen values: the evaluate stage and the study's tables read them.
- Light on purpose (no torch): every subpackage, the study included, imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from ewmtcnn import InputError


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
            if isinstance(record[key], bool) or not isinstance(record[key], (int, float)):
                raise InputError(f"{where}: {key} must be a number; found {record[key]!r}; {hint}")
        return cls(**record)


#: The hyperparameters a choice sets: what the recipe gives or selects, besides its own name.
HYPERPARAMETERS: tuple[str, ...] = tuple(f.name for f in fields(Choice) if f.name not in ("recipe", "inner_kl"))
