"""The Emotion6 table: its schema, its validation, and the labels that training uses.

- `ground_truth.txt` is parsed by hand, not with `pandas.read_csv`, so that every problem is reported at
  once with its line number and offending value.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ewmtcnn import InputError

#: The six emotions, in the order of ground_truth.txt's columns and of every output.
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
NEUTRAL = "neutral"
#: The seven probability columns of the table.
DISTRIBUTION: tuple[str, ...] = (*EMOTIONS, NEUTRAL)
GROUND_TRUTH = "ground_truth.txt"
IMAGE_DIR = "images"
HEADER = "\t".join(["[image_filename]", "[valence]", "[arousal]", *(f"[prob. {e}]" for e in DISTRIBUTION)])
#: The columns of the labels table that the preprocess stage writes.
LABEL_COLUMNS = ("image", "folder", "valence", "arousal", *DISTRIBUTION, "dominant")
SCALE = (1.0, 9.0)  # the user study's valence/arousal scale
SUM_TOLERANCE = 1e-3
SHOWN_PROBLEMS = 20
_PATH = re.compile(rf"^({'|'.join(EMOTIONS)})/[A-Za-z0-9][A-Za-z0-9_-]*\.jpg$")


def problems_error(problems: list[str], what: str) -> InputError:
    """One error listing the first problems and counting the rest."""
    shown = "\n".join(f"  {p}" for p in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    tail = f"\n  ... and {more} more" if more > 0 else ""
    return InputError(f"{what}: {len(problems)} problem(s)\n{shown}{tail}")


def _number(text: str, name: str, where: str, problems: list[str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{where}: {name} {text!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.append(f"{where}: {name} {text!r} is not finite")
        return None
    return value


def read_ground_truth(root: Path) -> pd.DataFrame:
    """Parse and check `root/ground_truth.txt` (everything but the images).

    Returns one row per image with columns `image`, `valence`, `arousal` and the seven
    probabilities, in file order. Raises one `InputError` listing every problem.
    """
    path = root / GROUND_TRUTH
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: not found (expected the Emotion6 table)") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text ({e.reason})") from None
    lines = text.replace("\r\n", "\n").split("\n")  # tolerate a table re-saved on Windows
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    problems: list[str] = []
    if not lines or lines[0] != HEADER:
        found = lines[0][:120] if lines else ""
        problems.append(f"{path}:1: header must be exactly {HEADER!r}; found {found!r}")
    rows: list[list[object]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        where = f"{path}:{number}"
        fields = line.split("\t")
        if len(fields) != 2 + 1 + len(DISTRIBUTION):
            problems.append(f"{where}: expected 10 tab-separated fields, found {len(fields)}: {line[:80]!r}")
            continue
        image = fields[0]
        if not _PATH.match(image):
            problems.append(
                f"{where}: image path {image!r} is not <emotion>/<name>.jpg with emotion one of {', '.join(EMOTIONS)}"
            )
        elif image in seen:
            problems.append(f"{where}: duplicate row for {image} (first on line {seen[image]})")
        else:
            seen[image] = number
        values = [
            _number(t, n, where, problems)
            for t, n in zip(fields[1:], ("valence", "arousal", *DISTRIBUTION), strict=True)
        ]
        for name, value in zip(("valence", "arousal"), values[:2], strict=True):
            if value is not None and not SCALE[0] <= value <= SCALE[1]:
                problems.append(f"{where}: {name} {value:g} is outside [{SCALE[0]:g}, {SCALE[1]:g}]")
        probs = values[2:]
        for name, p in zip(DISTRIBUTION, probs, strict=True):
            if p is not None and p < 0:
                problems.append(f"{where}: probability of {name} {p:g} is negative")
        if all(p is not None for p in probs):
            total = math.fsum(probs)  # type: ignore[arg-type]
            if abs(total - 1.0) > SUM_TOLERANCE:
                problems.append(
                    f"{where}: the seven probabilities sum to {total:.6g}, not 1 (tolerance {SUM_TOLERANCE:g})"
                )
        rows.append([image, *values])
    if len(lines) < 2:
        problems.append(f"{path}: no data rows")
    if problems:
        raise problems_error(problems, f"{path} is not a valid Emotion6 table")
    return pd.DataFrame(rows, columns=["image", "valence", "arousal", *DISTRIBUTION])


def image_lines(table: pd.DataFrame) -> dict[str, int]:
    """Image path -> line number in ground_truth.txt, for error messages."""
    return {image: i + 2 for i, image in enumerate(table["image"])}


def dominant(table: pd.DataFrame) -> pd.Series:
    """The annotators' dominant emotion among the six (neutral left out).

    Ties go to the folder emotion when it is among the maxima, else to the lowest index.
    """
    probs = table[list(EMOTIONS)].to_numpy()
    is_max = probs == probs.max(axis=1, keepdims=True)
    folder = table["image"].str.split("/").str[0].map(EMOTIONS.index).to_numpy()
    folder_is_max = is_max[np.arange(len(table)), folder]
    index = np.where(folder_is_max, folder, is_max.argmax(axis=1))
    return pd.Series(np.asarray(EMOTIONS)[index], index=table.index, name="dominant")


def labels_table(table: pd.DataFrame) -> pd.DataFrame:
    """The labels that every later stage reads: path, folder, valence, arousal, the seven
    probabilities and the dominant emotion."""
    out = table.copy()
    out.insert(1, "folder", table["image"].str.split("/").str[0])
    out["dominant"] = dominant(table)
    return out[list(LABEL_COLUMNS)]


def read_labels(path: Path) -> pd.DataFrame:
    """Read the labels table written by the preprocess stage."""
    try:
        labels = pd.read_csv(path, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"{path}: not found; run `dvc repro preprocess` first") from None
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; rerun `dvc repro preprocess`")
    return labels
