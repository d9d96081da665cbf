"""What a prediction used: the model file and its SHA-256, the variant it records, the code's git commit.

- The variant is what the final model file records, under params.yaml's names, so that a model made by
  `dvc exp run -S prior.init=eye` says so. `prior.freeze` is read off the weights (a frozen prior still
  holds its initial matrix); data.label, prior.sigma and the seeds are not in the file, so not shown.
- `trained` is what the recipe chose (epochs, lr_head, weight_decay) and how many images it trained on.
- The commit is `git rev-parse HEAD` of the repository holding the model file (its path, links not
  followed: a DVC cache may lie elsewhere), dirty when `git status` lists changed tracked files;
  "unknown" (dirty None) when git is missing, fails or the file is in no repository.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ewmtcnn.data.dataset import NEUTRAL
from ewmtcnn.io.checkpoint import FinalModel

UNKNOWN = "unknown"
#: Characters of the SHA-256 and of the commit in text: as unambiguous as git's short hashes, in practice.
SHORT = 12
GIT_TIMEOUT = 10  # seconds: a hung git (a network file system) must not hang prediction


@dataclass(frozen=True)
class ModelInfo:
    """Which model a prediction used: its file, bytes, variant and the commit of the code beside it."""

    path: str
    sha256: str
    commit: str  # or UNKNOWN
    dirty: bool | None  # None: unknown
    params: dict[str, object]  # the variant, by params.yaml's names
    trained: dict[str, object]  # images, and the recipe's choice: epochs, lr_head, weight_decay

    def record(self) -> dict[str, object]:
        """For --json: every field, hashes in full."""
        return asdict(self)

    def lines(self) -> list[str]:
        """For text: the file, hashes short, and the variant as `dvc exp run -S` would set it."""
        state = {None: "", False: " (clean)", True: " (dirty: uncommitted changes)"}[self.dirty]
        settings = " ".join(f"{key}={_value(value)}" for key, value in self.params.items())
        choice = ", ".join(f"{key} {_value(value)}" for key, value in self.trained.items() if key != "images")
        return [
            f"model {self.path}: sha256 {self.sha256[:SHORT]}, git commit {self.commit[:SHORT]}{state}",
            f"variant: {settings}",
            f"trained on {self.trained['images']} images: {choice}",
        ]

    def phrases(self) -> list[str]:
        """For a plot's heading: the file's name, its short hash, its prior."""
        return [Path(self.path).name, f"sha256 {self.sha256[:SHORT]}", f"prior.init {self.params['prior.init']}"]


def _value(value: object) -> str:
    """A param's value as params.yaml and `dvc exp run -S` write it."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, list | tuple):
        return f"[{','.join(map(str, value))}]"
    return "''" if value == "" else str(value)


def describe(final: FinalModel, path: Path) -> ModelInfo:
    """The ModelInfo of `final`, read from `path`."""
    with open(path, "rb") as file:
        sha256 = hashlib.file_digest(file, "sha256").hexdigest()
    commit, dirty = revision(path.absolute().parent)
    return ModelInfo(
        str(path), sha256, commit, dirty, variant(final), {"images": final.images, **final.choice.hyperparameters()}
    )


def variant(final: FinalModel) -> dict[str, object]:
    """The params that made `final`, as far as the file records them."""
    return {
        "data.neutral": "keep" if NEUTRAL in final.outputs else "drop",
        "preprocess.size": final.size,
        "prior.init": final.prior_init,
        "prior.freeze": frozen(final),
        "model.backbone": final.backbone,
        "model.pretrained": final.pretrained,
        "model.weights": final.weights or "",
        "model.head": final.head,
        **{f"features.{key}": value for key, value in final.extraction.items()},
        "train.finetune": final.finetune,
        "train.recipe": final.choice.recipe,
    }


def frozen(final: FinalModel) -> bool | None:
    """Whether the prior stayed as it began (prior.freeze: true); None without a prior layer."""
    weight = final.state.get("prior.weight")
    if final.prior_initial is None or weight is None:
        return None
    return bool(np.array_equal(weight.double().numpy(), final.prior_initial.astype(np.float32)))


def revision(folder: Path) -> tuple[str, bool | None]:
    """The commit checked out in the repository holding `folder`, and whether tracked files changed."""
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return UNKNOWN, None
    changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return commit, None if changes is None else changes != ""


def _git(folder: Path, *args: str) -> str | None:
    """git's output, stripped; None when git is missing, fails or hangs."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # status must not rewrite the index
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
