"""Trained models on disk: each fold of the train stage, and the final model for prediction.

- The files travel between machines (`dvc pull`, `dvc exp pull`, docs/machines.md), so they hold
  plain tensors, strings and numbers only.
- They are read with `torch.load(weights_only=True)` (`safe_load.read_torch`): a file that would
  need to unpickle code is refused, never run.
- Each carries a format tag, so a file of another layout is refused rather than misread.
- `torch.save` goes through memory first: saved straight to a file, the archive's entries are
  named after that file, whose temporary name would change the bytes.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ewmtcnn import InputError, paths
from ewmtcnn.config.sections import HEADS, INITS, MAX_SIZE, MIN_SIZE, Extraction
from ewmtcnn.io import safe_load
from ewmtcnn.io.atomic import rounded_tree, write_csv, write_json, write_text, written
from ewmtcnn.io.choice import Choice

FOLD_FORMAT = "ewmtcnn-fold-1"
FINAL_FORMAT = "ewmtcnn-final-4"  # 4: the choice records its validation curve
#: The files of one trained fold's directory.
WEIGHTS, HISTORY_FILE, TEST, TRAIN, SELECTION = "model.pt", "history.csv", "test.csv", "train.csv", "selection.json"
#: What shaped the fold (`ewmtcnn.data.provenance`), as JSON with sorted keys.
FINGERPRINT = "fingerprint.json"
#: The per-epoch figures of a fold's history, besides `epoch`, as the train stage measures them.
HISTORY = ("train_loss", "train_acc", "train_kl", "test_loss", "test_acc", "test_kl")


def _save(content: dict[str, Any], path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(content, buffer)
    path.write_bytes(buffer.getvalue())


def _tensor(matrix: np.ndarray | None) -> torch.Tensor | None:
    return None if matrix is None else torch.from_numpy(np.asarray(matrix, dtype=np.float64))


def _matrix(tensor: object, path: Path) -> np.ndarray | None:
    if tensor is None:
        return None
    if not isinstance(tensor, torch.Tensor):
        raise InputError(f"{path}: prior_initial holds a {type(tensor).__name__}, not a tensor")
    return tensor.double().numpy()


def _content(path: Path, tag: str, keys: set[str], what: str, hint: str) -> dict[str, Any]:
    """The dict in `path`, which must carry `tag` and exactly `keys`."""
    content = safe_load.read_torch(path, what, hint)
    if not isinstance(content, dict) or content.get("format") != tag or set(content) != keys | {"format"}:
        raise InputError(f"{path}: not {what} (as this version writes); {hint}")
    return content


# --- one fold of the train stage -------------------------------------------------------------


@dataclass
class TrainedFold:
    """Fold `fold` of repeat `repeat` as the train stage leaves it, in paths.fold_dir."""

    repeat: int
    fold: int
    history: pd.DataFrame
    test: pd.DataFrame  # predictions table of the held-out fold (`evaluation.predictions`)
    train: pd.DataFrame  # predictions table of the training images, in place
    state: dict[str, torch.Tensor]  # the network's weights
    prior_initial: np.ndarray | None  # the prior before training (None: prior.init none)
    choice: Choice  # the recipe and the hyperparameters it trained with (selection.json)

    @property
    def prior_final(self) -> np.ndarray | None:
        weight = self.state.get("prior.weight")
        return None if weight is None else weight.double().numpy()

    def save(self, fingerprint: dict[str, Any]) -> None:
        """Write the fold's weights, history, predictions, choice and `fingerprint`, all or nothing."""
        with written(paths.fold_dir(self.repeat, self.fold), directory=True) as tmp:
            state = {k: v.detach().cpu() for k, v in self.state.items()}
            _save({"format": FOLD_FORMAT, "model": state, "prior_initial": _tensor(self.prior_initial)}, tmp / WEIGHTS)
            write_csv(self.history, tmp / HISTORY_FILE)
            write_csv(self.test, tmp / TEST)
            write_csv(self.train, tmp / TRAIN)
            write_json(self.choice.record(), tmp / SELECTION)
            write_text(json.dumps(fingerprint, indent=2, sort_keys=True) + "\n", tmp / FINGERPRINT)


def _retrain(repeat: int, fold: int) -> str:
    return f"retrain it: `python -m stages.train --repeat {repeat} --fold {fold}` or `dvc repro train`"


def read_fold(repeat: int, fold: int) -> TrainedFold:
    """A fold as the train stage wrote it; a missing, foreign or corrupt file is an InputError naming it."""
    directory = paths.fold_dir(repeat, fold)
    hint = _retrain(repeat, fold)
    if not (directory / TEST).is_file():
        raise InputError(f"{directory}: fold not trained; {hint}")
    content = _content(directory / WEIGHTS, FOLD_FORMAT, {"model", "prior_initial"}, "a fold checkpoint", hint)
    state = content["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{directory / WEIGHTS}: its weights are not a state dict of tensors; {hint}")
    tables = {}
    for name in (HISTORY_FILE, TEST, TRAIN):
        try:
            tables[name] = pd.read_csv(directory / name)
        except (OSError, ValueError) as e:  # pandas' ParserError and EmptyDataError are ValueErrors
            raise InputError(f"{directory / name}: not a readable table ({e}); {hint}") from None
    prior = _matrix(content["prior_initial"], directory / WEIGHTS)
    try:
        record = json.loads((directory / SELECTION).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # json's JSONDecodeError is a ValueError
        raise InputError(f"{directory / SELECTION}: not readable ({e}); {hint}") from None
    choice = Choice.read(record, str(directory / SELECTION), hint)
    return TrainedFold(repeat, fold, tables[HISTORY_FILE], tables[TEST], tables[TRAIN], state, prior, choice)


def read_fingerprint(repeat: int, fold: int) -> dict[str, Any]:
    """The fingerprint a fold was saved with; a missing or unreadable one is an InputError naming it."""
    path, hint = paths.fold_dir(repeat, fold) / FINGERPRINT, _retrain(repeat, fold)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # json's JSONDecodeError is a ValueError
        raise InputError(f"{path}: not readable ({e}), so what trained the fold is unknown; {hint}") from None
    if not isinstance(content, dict):
        raise InputError(f"{path}: not a JSON object; {hint}")
    return content


def unplanned(repeats: int, count: int) -> list[Path]:
    """What data/train holds besides the folds of `repeats` x `count`; hidden names (a writer's temporaries) aside."""
    planned = {paths.fold_dir(repeat, fold) for repeat in range(repeats) for fold in range(count)}
    parents = {fold.parent for fold in planned}
    found: list[Path] = []
    for entry in sorted(paths.TRAINED.iterdir()) if paths.TRAINED.is_dir() else []:
        if entry in parents:
            found += [path for path in sorted(entry.iterdir()) if path not in planned and not path.name.startswith(".")]
        elif not entry.name.startswith("."):
            found.append(entry)
    return found


# --- the final model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FinalModel:
    """The model trained on every image, with what prediction needs to rebuild and feed it."""

    state: dict[str, torch.Tensor]  # EmotionNet's state dict: fc and prior, and the backbone when fine-tuned
    prior_initial: np.ndarray | None  # builds the prior layer (None: prior.init none), then the state overwrites it
    prior_init: str
    backbone: str
    extraction: dict[str, Any]  # features.*: how the cached features were made (`features.Extraction.record`)
    pretrained: bool
    weights: str | None  # model.weights: with `pretrained`, which backbone the cached features came from
    head: str
    finetune: bool  # True: `state` holds the backbone; False: the head reads `backbone`'s pooled features
    outputs: tuple[str, ...]  # emotion names, in output order
    size: int  # preprocess.size: images are resized and centre-cropped to this square first
    images: int  # how many images it was trained on
    history: tuple[dict[str, float], ...]  # per epoch: its training figures
    choice: Choice  # the recipe and the hyperparameters it trained with

    def save(self, path: Path) -> None:
        """One torch file of plain tensors, strings and numbers, written whole or not at all.

        - Its figures (history, inner-validation KL) are rounded as the text outputs are, so that
          another CPU's last bits leave the file byte-identical; the weights are kept exact.
        """
        content = {_key(f.name): getattr(self, f.name) for f in fields(self)}
        content["state"] = {k: v.detach().cpu() for k, v in self.state.items()}
        content["prior_initial"] = _tensor(self.prior_initial)
        content[_key("choice")] = self.choice.record()
        with written(path) as tmp:
            _save({"format": FINAL_FORMAT, **rounded_tree(content)}, tmp)


def _key(field: str) -> str:
    """A field of FinalModel as its file names it: the choice is stored as `settings`."""
    return "settings" if field == "choice" else field


def _name(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _one_of(allowed: tuple[str, ...]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, str) and value in allowed


def _integer(value: object, lo: int, hi: float) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _figures(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(x, (int, float)) and _name(k) for k, x in value.items())


#: Each plain field of a final model: what it may hold, and those values in words.
FINAL_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "prior_init": (_one_of(INITS), f"one of {', '.join(INITS)}"),
    "backbone": (_name, "a backbone's name"),
    "pretrained": (lambda v: isinstance(v, bool), "true or false"),
    "weights": (lambda v: v is None or _name(v), "a file name or None"),
    "head": (_one_of(HEADS), f"one of {', '.join(HEADS)}"),
    "finetune": (lambda v: isinstance(v, bool), "true or false"),
    "outputs": (
        lambda v: isinstance(v, tuple) and len(v) > 0 and all(map(_name, v)) and len(set(v)) == len(v),
        "a tuple of distinct emotion names",
    ),
    "size": (lambda v: _integer(v, MIN_SIZE, MAX_SIZE), f"an integer in [{MIN_SIZE}, {MAX_SIZE}]"),
    "images": (lambda v: _integer(v, 1, math.inf), "a positive integer"),
    "history": (lambda v: isinstance(v, tuple) and all(map(_figures, v)), "a tuple of per-epoch figures"),
}


def _final_problem(content: dict[str, Any]) -> str | None:
    """What is wrong with a final model's fields, if anything: each must be what `FinalModel.save` writes."""
    for name, (allowed, words) in FINAL_FIELDS.items():
        if not allowed(content[name]):
            return f"{name} must be {words}; found {content[name]!r:.80}"
    record = content["extraction"]
    if not isinstance(record, dict) or set(record) != set(Extraction().record()):
        return f"extraction must record {', '.join(Extraction().record())}; found {record!r:.80}"
    try:
        Extraction.parse({"features": record})
    except InputError as e:
        return f"extraction: {str(e).removeprefix(f'{paths.PARAMS}: ')}"
    state, c = content["state"], len(content["outputs"])
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "its weights are not a state dict of tensors"
    prior = content["prior_initial"]
    if prior is not None and (not isinstance(prior, torch.Tensor) or prior.shape != (c, c)):
        return f"prior_initial must be a {c} x {c} matrix for its {c} outputs"
    tensors = {**state, "prior_initial": prior} if prior is not None else state
    if broken := [k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())]:
        return f"non-finite weights in {', '.join(broken[:3])}"
    return None


def load_final(path: Path) -> FinalModel:
    """The final model in `path`; a missing, unreadable, foreign or tampered file is an InputError naming it."""
    hint = "train it with `dvc repro final` (or name another with --model)"
    keys = {_key(f.name) for f in fields(FinalModel)}
    content = _content(path, FINAL_FORMAT, keys, "a final EW-MTCNN model (as `dvc repro final` writes)", hint)
    if (problem := _final_problem(content)) is not None:
        raise InputError(f"{path}: {problem}; {hint}")
    values = {f.name: content[_key(f.name)] for f in fields(FinalModel)}
    values["prior_initial"] = _matrix(content["prior_initial"], path)
    values["choice"] = Choice.read(content[_key("choice")], str(path), hint)
    return FinalModel(**values)
