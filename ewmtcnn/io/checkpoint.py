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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ewmtcnn import InputError, paths
from ewmtcnn.io import safe_load
from ewmtcnn.io.atomic import rounded_tree, write_csv, write_json, written
from ewmtcnn.io.choice import Choice

FOLD_FORMAT = "ewmtcnn-fold-1"
FINAL_FORMAT = "ewmtcnn-final-3"
#: The files of one trained fold's directory.
WEIGHTS, HISTORY_FILE, TEST, TRAIN, SELECTION = "model.pt", "history.csv", "test.csv", "train.csv", "selection.json"
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

    def save(self) -> None:
        """Write the fold's weights, history, predictions and choice, all or nothing."""
        with written(paths.fold_dir(self.repeat, self.fold), directory=True) as tmp:
            state = {k: v.detach().cpu() for k, v in self.state.items()}
            _save({"format": FOLD_FORMAT, "model": state, "prior_initial": _tensor(self.prior_initial)}, tmp / WEIGHTS)
            write_csv(self.history, tmp / HISTORY_FILE)
            write_csv(self.test, tmp / TEST)
            write_csv(self.train, tmp / TRAIN)
            write_json(self.choice.record(), tmp / SELECTION)


def read_fold(repeat: int, fold: int) -> TrainedFold:
    """A fold as the train stage wrote it; a missing, foreign or corrupt file is an InputError naming it."""
    directory = paths.fold_dir(repeat, fold)
    hint = f"retrain it: `python -m stages.train --repeat {repeat} --fold {fold}` or `dvc repro train`"
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


def load_final(path: Path) -> FinalModel:
    """The final model in `path`; a missing, unreadable or foreign file is an InputError naming it."""
    hint = "train it with `dvc repro final` (or name another with --model)"
    keys = {_key(f.name) for f in fields(FinalModel)}
    content = _content(path, FINAL_FORMAT, keys, "a final EW-MTCNN model (as `dvc repro final` writes)", hint)
    values = {f.name: content[_key(f.name)] for f in fields(FinalModel)}
    values["prior_initial"] = _matrix(content["prior_initial"], path)
    values["choice"] = Choice.read(content[_key("choice")], str(path), hint)
    return FinalModel(**values)
