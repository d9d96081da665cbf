"""What shaped the train stage's folds, as a fingerprint each fold keeps and evaluate checks.

- Its params: every key of the sections the train stage reads (data.label, data.neutral,
  split.folds, split.repeats, prior, model, features, train, select), by params.yaml's names.
- Its split: data/folds.csv's sha256, so every repeat's assignment (split.seed included).
- Its features: data/features.npy's sha256.
- Every fold of one run has the same fingerprint; the same inputs give the same bytes (sorted keys,
  no time, host or path), so a fold trained alone on another machine has it too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ewmtcnn import InputError, paths
from ewmtcnn.config import sections
from ewmtcnn.config.sections import Extraction, Model, Prior, Select, Train
from ewmtcnn.io import checkpoint

#: The command that retrains every fold, leftovers removed (DVC empties an output folder first).
RETRAIN_ALL = "dvc repro --force train"
#: The files a fold's fingerprint hashes, under its keys.
DATA = {"split": paths.FOLDS, "features": paths.FEATURES}


def _sha256(path: Path) -> str:
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError as e:
        raise InputError(f"{path}: not readable ({e.strerror}); rerun `dvc repro`") from None


def fingerprint(
    label: str,
    neutral: str,
    folds: int,
    repeats: int,
    prior: Prior,
    model: Model,
    features: Extraction,
    train: Train,
    select: Select,
) -> dict[str, Any]:
    """The fingerprint of folds trained with these params on today's data/folds.csv and data/features.npy.

    - As JSON reads it back (tuples as lists), so that it compares equal to a fold's.
    """
    params: dict[str, Any] = {
        "data.label": label,
        "data.neutral": neutral,
        "split.folds": folds,
        "split.repeats": repeats,
    }
    for name, section in (
        ("prior", prior),
        ("model", model),
        ("features", features),
        ("train", train),
        ("select", select),
    ):
        params.update({sections.dotted(name, key): value for key, value in dataclasses.asdict(section).items()})
    content = {"params": params, **{part: _sha256(path) for part, path in DATA.items()}}
    return json.loads(json.dumps(content))


def _differences(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """How a fold's fingerprint `found` differs from `expected`, in words."""
    there, now = found.get("params"), expected["params"]
    there = there if isinstance(there, dict) else {}
    out = [
        f"{key}: {there.get(key, '(none)')!r} there, {now.get(key, '(none)')!r} in params.yaml"
        for key in sorted(set(there) | set(now))
        if there.get(key, ()) != now.get(key, ())
    ]
    out += [f"another {path}" for part, path in DATA.items() if found.get(part) != expected[part]]
    return out


def check(expected: dict[str, Any]) -> None:
    """Refuse what data/train holds beyond the planned folds, and folds whose fingerprint is not `expected`.

    - The plan is `expected`'s split.repeats x split.folds; the folds must be trained (`read_fold`).
    """
    repeats, count = expected["params"]["split.repeats"], expected["params"]["split.folds"]
    if stray := checkpoint.unplanned(repeats, count):
        raise InputError(
            f"{', '.join(map(str, stray))}: beyond split.repeats {repeats} x split.folds {count} of params.yaml, "
            f"left by an earlier run; remove them, or retrain every fold: `{RETRAIN_ALL}`"
        )
    differing = {
        (repeat, fold): problems
        for repeat in range(repeats)
        for fold in range(count)
        if (problems := _differences(checkpoint.read_fingerprint(repeat, fold), expected))
    }
    if differing:
        names = ", ".join(str(paths.fold_dir(repeat, fold)) for repeat, fold in differing)
        retrain = "; ".join(f"python -m stages.train --repeat {r} --fold {k}" for r, k in differing)
        first = "; ".join(next(iter(differing.values())))
        raise InputError(
            f"{names}: {len(differing)} of {repeats * count} folds not trained from params.yaml, "
            f"{paths.FOLDS} and {paths.FEATURES} ({first}); retrain them (`{retrain}`) or every fold: `{RETRAIN_ALL}`"
        )
