"""`python audit/recompute.py [FILE] [--tables LETTERS] [--rev REV]`: the compared tables, recomputed.

- Reads back, cell by cell, the tables between the `<!-- table-X:start -->` and `<!-- table-X:end -->` markers of
  FILE (docs/results.md by default) that compare arms with their first arm (those with Δ columns and an `init`
  column: A, B, D, F, H, I, J), and table G, which sets the classic LDL methods beside two arms (a `method` column);
  the others are named, not checked.
- Table G's methods are no experiments: their out-of-fold predictions are the classic stage's
  data/classic/<method>/predictions.csv of the commit (--rev, or the current one), whose dvc.lock records the
  folder's manifest; each method's Δ vs an arm is checked at 1 − alpha/m over its m methods.
- Matches each arm row to the newest finished DVC experiment of the commit (`dvc exp show --json`, of the current
  commit or of --rev) with the params its table states: the caption's setting sentence (data, network, training
  recipe `fixed`, `selected` or `converged` with its lambda, grid and inner folds, split), and the row's init,
  freeze, head and params cells, which win over the caption (an arm pinning `train.lambda`). The rows' experiments
  must agree on every param that no row states, as the tables' own code requires.
- Reads each experiment's metrics/predictions.csv from its commit (git), or from the DVC cache when the commit
  does not track it, once its bytes have the md5 that the commit's dvc.lock records.
- From those predictions alone, with numpy, pandas, scipy and scikit-learn, and under the error rate and margins
  of equivalence that docs/protocol.md declares, re-derives each (repeat, fold)'s scores (KL(target ||
  prediction) with 0 ln 0 = 0, Geng's other measures, and the accuracy, balanced accuracy and macro-F1 of the most
  probable emotion against the class label), each arm's mean and interval, the two trivial baselines, the
  per-fold differences with the table's first arm (which its caption and Δ headers must name), their corrected
  resampled t (Nadeau & Bengio, 2003: variance factor 1/J + n_test/n_train with J = repeats x folds, J - 1 degrees
  of freedom) at the Bonferroni-simultaneous level 1 - alpha/m, both adjusted p-values, the labels read off the
  intervals, the per-image KL summaries, and the caption's counts.
- The chosen hyperparameters come from metrics/selection.json, not the predictions: only their cells' form and
  fold counts are checked.
- Prints every figure that the recomputation does not round to, everything it could not check, and a one-line
  summary; exits with 1 when there is any, 0 otherwise. Run it from the repository root.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import special, stats
from sklearn.dummy import DummyClassifier
from sklearn.metrics import balanced_accuracy_score, f1_score

#: The out-of-fold predictions of an experiment, and the metrics file a finished one has.
PREDICTIONS, METRICS = "metrics/predictions.csv", "metrics/metrics.json"
#: Where the classic stage keeps each LDL method's out-of-fold predictions: <method>/predictions.csv.
CLASSIC = "data/classic"
TRUE, PRED = "true_", "pred_"
#: docs/protocol.md's names of the tested measures, as the scores are called here.
PROTOCOL_MEASURES = {"KL": "kl", "accuracy": "acc", "balanced accuracy": "balanced_acc", "macro-F1": "macro_f1"}
#: The tables' headers of the scores.
SCORE_HEADERS: dict[str, str] = {
    "acc": "acc",
    "balanced acc": "balanced_acc",
    "macro-F1": "macro_f1",
    "KL": "kl",
    "Chebyshev": "chebyshev",
    "Clark": "clark",
    "Canberra": "canberra",
    "Cosine": "cosine",
    "Intersection": "intersection",
    "Clark / √c": "clark_normalised",
    "Canberra / c": "canberra_normalised",
}
CLASS_SCORES = ("acc", "balanced_acc", "macro_f1")
#: The scores for which higher is better (the classification ones, cosine and intersection).
HIGHER_IS_BETTER = frozenset({*CLASS_SCORES, "cosine", "intersection"})
#: The labels of docs/protocol.md, read off an interval.
HELPS, HURTS, EQUIVALENT, INCONCLUSIVE = "helps", "hurts", "equivalent", "inconclusive"
EQUIVALENT_DIFFERS = "equivalent (differs by less than the margin)"
#: The trivial baselines' rows: what each predicts, learned from a fold's training images.
MEAN_ROW, MAJORITY_ROW = "baseline: mean distribution", "baseline: majority class"
#: How far a recomputed figure may lie outside the range of the printed one: float and CSV rounding.
TOLERANCE = 1e-9
#: The kinds of column: what the audit does with each.
NAMES, SCORE, MEDIAN, IMPROVED, CHOSEN = "names", "score", "median", "improved", "chosen"
DELTA, P_DIFFERS, P_WITHIN, LABEL = "delta", "p differs", "p within", "label"
#: The columns each tested score has, and no other score has.
TESTED = (DELTA, P_DIFFERS, P_WITHIN, LABEL)


class AuditError(Exception):
    """What stops the audit of a table, a row or the whole file, said in one line."""


# --- The protocol -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """The declared protocol of the comparisons, as docs/protocol.md writes it.

    - `alpha`: the family-wise error rate of one table's comparisons of one measure.
    - `margins`: per tested score, the margin of practical equivalence of a difference.
    """

    alpha: float
    margins: dict[str, float]


def read_protocol(text: str) -> Protocol:
    """The error rate (`alpha = ...`) and the margins (the `| measure | ±margin | why |` rows) of docs/protocol.md.

    - A measure the audit does not know, or a file without both, is refused.
    """
    alpha = re.search(r"\balpha = (\d*\.\d+)", text)
    margins: dict[str, float] = {}
    for name, margin in re.findall(r"^\| ([^|]+?) \| ±(\d*\.?\d+) \|", text, re.MULTILINE):
        if name not in PROTOCOL_MEASURES:
            raise AuditError(f"the protocol declares a margin for {name!r}, a measure this audit does not know")
        margins[PROTOCOL_MEASURES[name]] = float(margin)
    if alpha is None or not margins:
        raise AuditError("the protocol states no `alpha = ...` or no `| measure | ±margin |` rows")
    return Protocol(float(alpha.group(1)), margins)


# --- The markdown tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One table between its markers: its name, caption, header and rows of cells."""

    name: str
    caption: str
    header: list[str]
    rows: list[list[str]]


BLOCK = re.compile(
    r"^<!-- table-(?P<name>[^:\s]+):start -->\n(?P<body>.*?)^<!-- table-(?P=name):end -->", re.MULTILINE | re.DOTALL
)


def cells(line: str) -> list[str]:
    """The cells of one markdown table line."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def blocks(text: str) -> list[Block]:
    """Every table between a `<!-- table-X:start -->` line and its `<!-- table-X:end -->` line, in order.

    - The caption is the text before the table; the separator line (`|---|...`) is left out.
    - A row with another number of cells than the header is refused.
    """
    found: list[Block] = []
    for match in BLOCK.finditer(text):
        lines = match.group("body").splitlines()
        table = [cells(line) for line in lines if line.startswith("|") and not re.fullmatch(r"\|(-+\|)+", line)]
        caption = " ".join(line for line in lines if line.strip() and not line.startswith("|"))
        header, rows = (table[0], table[1:]) if table else ([], [])
        for row in rows:
            if len(row) != len(header):
                raise AuditError(f"table {match.group('name')}: a row of {len(row)} cells under {len(header)} headers")
        found.append(Block(match.group("name"), caption, header, rows))
    return found


@dataclass(frozen=True)
class Column:
    """What a column of a compared table shows: its kind and score, and what its header names besides.

    - `detail`: the margin that a `p ... within ±margin` header prints, the arm that a `Δ... vs arm` header names.
    """

    kind: str
    score: str = ""
    detail: str = ""


COLUMN_PATTERNS = (
    (DELTA, r"Δ(?P<score>.+?) vs (?P<detail>.+)"),
    (P_DIFFERS, r"p (?P<score>.+) differs"),
    (P_WITHIN, r"p (?P<score>.+) within ±(?P<detail>\S+)"),
    (LABEL, r"prior for (?P<score>.+)"),
)


def column(name: str) -> Column | None:
    """What a header names, or None for a header the audit does not know."""
    if name in ("init", "freeze", "head", "params"):
        return Column(NAMES)
    if name in SCORE_HEADERS:
        return Column(SCORE, SCORE_HEADERS[name])
    if name in ("median ΔKL", "images improved (KL)"):
        return Column(MEDIAN if name.startswith("median") else IMPROVED, "kl")
    if name.endswith(" chosen"):
        return Column(CHOSEN)
    for kind, pattern in COLUMN_PATTERNS:
        match = re.fullmatch(pattern, name)
        if match and match["score"] in SCORE_HEADERS:
            return Column(kind, SCORE_HEADERS[match["score"]], match.groupdict().get("detail") or "")
    return None


def compares(block: Block) -> bool:
    """Whether a table compares experiments' arms with its first: Δ columns, and an `init` column naming the arms.

    - Table G, the classic methods beside two arms, has Δ columns but a `method` column instead (`sets_beside`).
    """
    header = list(block.header)
    return "init" in header and any(kind is not None and kind.kind == DELTA for kind in map(column, header))


def sets_beside(block: Block) -> bool:
    """Whether a table sets the classic LDL methods beside experiments' arms: a first `method` column, Δ columns."""
    header = list(block.header)
    return header[:1] == ["method"] and any(kind is not None and kind.kind == DELTA for kind in map(column, header))


def arm_cells(name: str) -> dict[str, str]:
    """The init, freeze and head cells of an arm as table G names it in its `method` column (`none`, `eye freeze`)."""
    init, *rest = name.split()
    freeze = [word for word in rest if word in ("freeze", "unfreeze")]
    head = [word for word in rest if word not in freeze]
    if len(freeze) > 1 or len(head) > 1:
        raise AuditError(f"an arm named {name!r}, not `init [freeze|unfreeze] [head]`")
    return {"init": init, "freeze": (freeze or ["-"])[0], "head": (head or ["-"])[0]}


# --- Scores -------------------------------------------------------------------------------------------------


def emotions(table: pd.DataFrame) -> list[str]:
    """The emotions of a predictions table, in the order of its `pred_` columns."""
    return [name.removeprefix(PRED) for name in table.columns if name.startswith(PRED)]


def distributions(table: pd.DataFrame, prefix: str) -> np.ndarray:
    """The `true_` or `pred_` distributions of a predictions table, (N, c), in the order of its emotions."""
    return table[[f"{prefix}{emotion}" for emotion in emotions(table)]].to_numpy(dtype=np.float64)


def classes(table: pd.DataFrame) -> np.ndarray:
    """Each row's class label as the index of its emotion among the table's."""
    return table["label"].map({emotion: k for k, emotion in enumerate(emotions(table))}).to_numpy()


def ldl_measures(p: np.ndarray, q: np.ndarray) -> dict[str, np.ndarray]:
    """Per image, Geng's (2016) measures of the prediction `q` against the target `p`, both (N, c).

    - KL(p || q) sums p_j ln(p_j / q_j) over the emotions, with 0 ln 0 = 0 (scipy's rel_entr).
    - Clark and Canberra skip the emotions with p_j + q_j = 0; their normalised forms divide by sqrt(c) and c.
    """
    difference, total = np.abs(p - q), p + q
    ratio = np.divide(difference, total, out=np.zeros_like(difference), where=total > 0)
    clark, canberra, count = np.sqrt((ratio**2).sum(axis=1)), ratio.sum(axis=1), p.shape[1]
    return {
        "kl": special.rel_entr(p, q).sum(axis=1),
        "chebyshev": difference.max(axis=1),
        "clark": clark,
        "canberra": canberra,
        "cosine": (p * q).sum(axis=1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(q, axis=1)),
        "intersection": np.minimum(p, q).sum(axis=1),
        "clark_normalised": clark / math.sqrt(count),
        "canberra_normalised": canberra / count,
    }


def class_scores(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1 of the `predicted` class indices against the class `labels`.

    - Balanced accuracy and macro-F1 average over the classes present among `labels`: scikit-learn's
      balanced accuracy does so by itself, its macro-F1 is told those classes. docs/protocol.md does not
      say which classes; a class absent from a fold has no recall, and ewmtcnn documents the same choice.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = balanced_accuracy_score(labels, predicted)
    present = np.unique(labels)
    return {
        "acc": float(np.mean(labels == predicted)),
        "balanced_acc": float(balanced),
        "macro_f1": float(f1_score(labels, predicted, labels=present, average="macro", zero_division=0)),
    }


def scores(table: pd.DataFrame, q: np.ndarray | None = None) -> dict[str, float]:
    """Every score of one fold's predictions table: the class scores of the argmax, the mean of each LDL measure.

    - `q`: another prediction (N, c) of the table's images than its `pred_` columns.
    """
    q = distributions(table, PRED) if q is None else q
    result = class_scores(classes(table), q.argmax(axis=1))
    result.update({name: float(values.mean()) for name, values in ldl_measures(distributions(table, TRUE), q).items()})
    return result


def fold_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Each (repeat, fold)'s scores of an arm, one row each, indexed by (repeat, fold) in order."""
    return pd.DataFrame({key: scores(rows) for key, rows in table.groupby(["repeat", "fold"])}).T.sort_index()


def baseline_fold_scores(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The trivial baselines' scores per (repeat, fold), each learned from the repeat's other folds.

    - The mean distribution: the training images' mean target for every test image (every score).
    - The majority class: the training images' most common class label (scikit-learn's most_frequent;
      ties to the emotion listed first), the classification scores only.
    """
    mean: dict[tuple[int, int], dict[str, float]] = {}
    majority: dict[tuple[int, int], dict[str, float]] = {}
    for (repeat, fold), test in table.groupby(["repeat", "fold"]):
        train = table[(table["repeat"] == repeat) & (table["fold"] != fold)]
        mean[(repeat, fold)] = scores(test, np.tile(distributions(train, TRUE).mean(axis=0), (len(test), 1)))
        dummy = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(train), 1)), classes(train))
        majority[(repeat, fold)] = class_scores(classes(test), dummy.predict(np.zeros((len(test), 1))))
    return {MEAN_ROW: pd.DataFrame(mean).T.sort_index(), MAJORITY_ROW: pd.DataFrame(majority).T.sort_index()}


def image_kl(table: pd.DataFrame) -> np.ndarray:
    """Per row of a predictions table, its KL(target || prediction)."""
    return special.rel_entr(distributions(table, TRUE), distributions(table, PRED)).sum(axis=1)


# --- The corrected resampled t ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corrected:
    """The corrected resampled t of J fold values (Nadeau & Bengio, 2003): their mean, its standard error, J - 1.

    - The standard error is sqrt((1/J + n_test/n_train) s^2), s^2 the values' sample variance.
    - With s = 0, the interval is the mean, and each test rejects exactly when the mean lies strictly
      beyond its null value: the limits of the tests as s falls to 0.
    """

    mean: float
    se: float
    dof: int

    def interval(self, level: float) -> tuple[float, float]:
        """The two-sided interval at `level`: the mean ± the Student t quantile at (1 + level)/2 times the error."""
        half = float(stats.t.ppf((1 + level) / 2, self.dof)) * self.se
        return self.mean - half, self.mean + half

    def _beyond(self, distance: float) -> float:
        """The p of a one-sided test whose estimate lies `distance` beyond its null value, in its direction."""
        if self.se == 0:
            return 0.0 if distance > 0 else 1.0
        return float(stats.t.sf(distance / self.se, self.dof))

    def p_two_sided(self) -> float:
        """The p of the two-sided test of a zero mean."""
        return min(1.0, 2 * self._beyond(abs(self.mean)))

    def p_above(self, bound: float) -> float:
        """The p of the one-sided test of mean <= `bound` against mean > `bound`."""
        return self._beyond(self.mean - bound)

    def p_below(self, bound: float) -> float:
        """The p of the one-sided test of mean >= `bound` against mean < `bound`."""
        return self._beyond(bound - self.mean)


def corrected(values: Sequence[float] | np.ndarray, test_train_ratio: float) -> Corrected:
    """The corrected resampled t of the J >= 2 fold `values`, whose folds test n_test/n_train = `test_train_ratio`."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or not np.isfinite(values).all():
        raise AuditError(f"need at least two finite fold values; found {values}")
    j = len(values)
    return Corrected(float(values.mean()), math.sqrt((1 / j + test_train_ratio) * values.var(ddof=1)), j - 1)


def label(low: float, high: float, margin: float, higher_is_better: bool) -> str:
    """What docs/protocol.md reads off an interval of arm - first arm against ±`margin`."""
    inside, excludes = -margin < low and high < margin, low > 0 or high < 0
    if inside:
        return EQUIVALENT_DIFFERS if excludes else EQUIVALENT
    if excludes:
        return HELPS if (low > 0) == higher_is_better else HURTS
    return INCONCLUSIVE


# --- Experiments and their predictions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A finished DVC experiment: its name, commit, time and params (`section.key`, lists as tuples)."""

    name: str
    rev: str
    timestamp: datetime
    params: dict[str, Any]


def flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as `section.key` entries, lists as tuples."""
    entries: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            entries.update(flat(value, f"{prefix}{key}."))
        else:
            entries[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return entries


def finished(show: list[dict[str, Any]]) -> list[Run]:
    """The experiments of `dvc exp show --json` that finished: no error, a successful executor, params and metrics."""
    found: list[Run] = []
    for baseline in show:
        for experiment in baseline.get("experiments") or []:
            if (experiment.get("executor") or {}).get("state") not in (None, "success"):
                continue
            for rev in experiment.get("revs") or []:
                data = rev.get("data") or {}
                params = (data.get("params") or {}).get("params.yaml") or {}
                metrics = (data.get("metrics") or {}).get(METRICS) or {}
                if any(entry.get("error") for entry in (rev, params, metrics)) or not metrics:
                    continue
                if data.get("timestamp"):
                    name = rev.get("name") or experiment.get("name") or rev["rev"][:7]
                    when = datetime.fromisoformat(data["timestamp"])
                    found.append(Run(name, rev["rev"], when, flat(params.get("data") or {})))
    return found


@dataclass
class Repository:
    """The git and DVC repository of the experiments: the current folder, its git and the venv's DVC.

    - `cache`: the DVC cache; None asks `dvc cache dir` the first time an output is not in git.
    """

    root: Path
    cache: Path | None = None

    def run(self, *command: str) -> bytes:
        """The stdout of `command`, run in the repository; its failure is an AuditError with its last line."""
        result = subprocess.run(list(command), cwd=self.root, check=False, capture_output=True)
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
            raise AuditError(f"`{' '.join(command)}` failed: {lines[-1] if lines else f'exit {result.returncode}'}")
        return result.stdout

    def dvc(self, *args: str) -> bytes:
        """The stdout of this interpreter's DVC."""
        return self.run(sys.executable, "-m", "dvc", *args)

    def show(self, rev: str | None) -> list[dict[str, Any]]:
        """`dvc exp show --json` of the current commit, or of commit `rev`."""
        show = json.loads(self.dvc("exp", "show", "--json", *(["--rev", rev] if rev else [])))
        if not isinstance(show, list):
            raise AuditError(f"`dvc exp show --json` gave a {type(show).__name__}, not a list of commits")
        return show

    def read(self, rev: str, path: str) -> bytes:
        """Output `path` of the stage that commit `rev`'s dvc.lock records, with the md5 recorded there.

        - From the commit when git tracks it (an output with `cache: false`), else from the DVC cache
          (files/md5/<2 digits>/<30 digits>, DVC 3's layout).
        - A file inside a recorded folder (the classic stage's data/classic) has the md5 that the folder's
          manifest in the DVC cache (files/md5/<2 digits>/<30 digits>.dir, of the recorded md5) gives it.
        """
        try:
            lock = yaml.safe_load(self.run("git", "show", f"{rev}:dvc.lock")) or {}
        except yaml.YAMLError as e:
            raise AuditError(f"the dvc.lock of {rev[:7]} is not YAML ({e})") from None
        recorded = {
            str(out.get("path")): str(out.get("md5") or "")
            for stage in (lock.get("stages") or {}).values()
            for out in stage.get("outs") or []
        }
        md5 = recorded.get(path)
        if not md5:
            folder = next(
                (out for out, md5 in recorded.items() if path.startswith(f"{out}/") and md5.endswith(".dir")), None
            )
            if folder is None:
                raise AuditError(f"the dvc.lock of {rev[:7]} records no md5 of {path}")
            try:
                manifest = json.loads(self.cached(recorded[folder], folder, rev))
                md5 = next(entry["md5"] for entry in manifest if f"{folder}/{entry['relpath']}" == path)
            except (ValueError, TypeError, KeyError, StopIteration):
                raise AuditError(f"the manifest of {folder} of {rev[:7]} lists no md5 of {path}") from None
            return self.cached(md5, path, rev)
        try:
            data = self.run("git", "show", f"{rev}:{path}")
        except AuditError:
            return self.cached(md5, path, rev)
        if hashlib.md5(data).hexdigest() != md5:
            raise AuditError(f"{path} of {rev[:7]} does not have the md5 {md5} that its dvc.lock records")
        return data

    def cached(self, md5: str, path: str, rev: str) -> bytes:
        """The object of `md5` in the DVC cache (a folder's manifest: `<md5>.dir`), once its bytes have that md5."""
        if self.cache is None:
            self.cache = Path(self.dvc("cache", "dir").decode().strip())
        try:
            data = (self.cache / "files" / "md5" / md5[:2] / md5[2:]).read_bytes()
        except OSError as e:
            raise AuditError(f"{path} of {rev[:7]} is neither in git nor in the DVC cache ({e.strerror})") from None
        if hashlib.md5(data).hexdigest() != md5.removesuffix(".dir"):
            raise AuditError(f"{path} of {rev[:7]} does not have the md5 {md5} that its dvc.lock records")
        return data


def structure_problem(table: pd.DataFrame) -> str | None:
    """What keeps a predictions table from being repeated k-fold out-of-fold predictions, or None.

    - One row per (repeat, image), the same images in every repeat, the same number of folds in every
      repeat, a class label among the emotions, and the same emotions for the targets and the predictions.
    """
    missing = [name for name in ("image", "repeat", "fold", "label") if name not in table]
    if missing:
        return f"no {', '.join(missing)} column"
    targets = sorted(name.removeprefix(TRUE) for name in table.columns if name.startswith(TRUE))
    if not emotions(table) or sorted(emotions(table)) != targets:
        return "not the same emotions in its true_ and pred_ columns"
    if table.duplicated(["repeat", "image"]).any():
        return "an image twice in a repeat"
    if table.groupby("repeat")["image"].apply(frozenset).nunique() != 1:
        return "not the same images in every repeat"
    if table.groupby("repeat")["fold"].nunique().nunique() != 1 or table["fold"].nunique() < 2:
        return "not the same number (at least 2) of folds in every repeat"
    if not table["label"].isin(emotions(table)).all():
        return "a class label that is none of its emotions"
    if not (np.isfinite(distributions(table, TRUE)).all() and np.isfinite(distributions(table, PRED)).all()):
        return "a distribution entry that is not a finite number"
    return None


def paired(first: pd.DataFrame, arm: pd.DataFrame) -> pd.DataFrame:
    """`arm`'s rows in the order of the `first` arm's (repeat, image), once the two are known to be paired.

    - Paired: the same emotions, images and repeats, and each image in the same fold, with the same class
      label and target; otherwise an AuditError says what differs.
    """
    if emotions(arm) != emotions(first):
        raise AuditError("not paired with the first arm: other emotions")
    keys = [set(zip(table["repeat"], table["image"], strict=True)) for table in (first, arm)]
    if keys[0] != keys[1]:
        raise AuditError("not paired with the first arm: other images or repeats")
    arm = arm.set_index(["repeat", "image"]).loc[pd.MultiIndex.from_frame(first[["repeat", "image"]])].reset_index()
    for name in ("fold", "label"):
        if not (arm[name].to_numpy() == first[name].to_numpy()).all():
            raise AuditError(f"not paired with the first arm: another {name} of some images")
    if not np.allclose(distributions(arm, TRUE), distributions(first, TRUE), rtol=0, atol=TOLERANCE):
        raise AuditError("not paired with the first arm: other targets of some images")
    return arm


# --- What a table states of its experiments -----------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """A param as a caption or a row states it: its name, what is printed, and whether a run's value is that."""

    param: str
    printed: str
    test: Callable[[Any], bool]


def same(value: Any, printed: str) -> bool:
    """Whether a param's `value` is what a table prints: numbers by value, booleans and lists as Python prints them."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(printed) == float(value)
        except ValueError:
            return False
    return str(value) == printed


def equal(param: str, printed: str) -> Wanted:
    """The param `param` printed as `printed`."""
    return Wanted(param, printed, lambda value: same(value, printed))


#: Where a caption leaves a param to each row's params cell.
AS_IN_EACH_ROW = "as in each row"
SETTING = re.compile(
    r"Emotion6, (?P<images>\d+) images, (?P<emotions>\d+) emotions \(neutral (?P<neutral>dropped|kept)\), "
    r"class label `(?P<label>[^`]+)`; (?P<backbone>[^;]+?) \((?P<weights>ImageNet weights|random init)\), "
    r"(?P<training>fine-tuned end to end|frozen features, head trained); (?:lambda (?P<lambda>[^;\s]+); )?"
    r"(?P<recipe>[^;]+); (?P<split>[^;]+?)\. "
)
CONVERGED = re.compile(
    r"each head fitted to convergence \(L-BFGS\) on (?:its first (?P<pca>\d+) principal components|all its features), "
    r"standardised per training set, its weight_decay chosen among (?P<low>\S+) to (?P<high>\S+) "
    r"\((?P<count>\d+) log-spaced values\) by (?P<folds>\d+)-fold inner cross-validation of each training fold"
)
SELECTED = re.compile(
    r"epochs \(early stopping on KL, at most (?P<epochs>\d+)\), lr_head and weight_decay chosen per training fold "
    r"on a stratified inner validation split of (?P<share>\d+)% of it"
)
FIXED = re.compile(r"(?P<epochs>.+?) epochs, lr_head (?P<lr_head>.+?), weight_decay (?P<weight_decay>.+)")
REPEATED = re.compile(
    r"(?P<repeats>\d+) repeats of (?P<folds>\d+)-fold cross-validation \(split seeds (?P<seed>\d+) to \d+\)"
)
SINGLE = re.compile(r"(?P<folds>\d+)-fold cross-validation \(split seed (?P<seed>\d+)\)")


def weight_decay_grid(low: str, high: str, count: int) -> Wanted:
    """A `select.weight_decay` grid as a caption states it: `count` values from `low` to `high`."""

    def test(values: Any) -> bool:
        return isinstance(values, tuple) and len(values) == count and same(min(values), low) and same(max(values), high)

    return Wanted("select.weight_decay", f"{low} to {high} ({count} values)", test)


def recipe(text: str) -> list[Wanted]:
    """The params that a caption's training recipe states: `converged`, `selected` or `fixed`."""
    if converged := CONVERGED.fullmatch(text):
        return [
            equal("train.recipe", "converged"),
            equal("train.pca", converged["pca"] or "0"),
            weight_decay_grid(converged["low"], converged["high"], int(converged["count"])),
            equal("select.folds", converged["folds"]),
        ]
    if selected := SELECTED.fullmatch(text):
        share = int(selected["share"])
        return [
            equal("train.recipe", "selected"),
            equal("select.epochs", selected["epochs"]),
            Wanted("select.share", f"{share}%", lambda value: isinstance(value, float) and round(100 * value) == share),
        ]
    if fixed := FIXED.fullmatch(text):  # `as in each row` matches no value: a row's own must stand for it
        return [equal("train.recipe", "fixed"), *(equal(f"train.{name}", fixed[name]) for name in FIXED.groupindex)]
    raise AuditError(f"its caption's training recipe is none this audit knows: {text!r}")


def split(text: str) -> list[Wanted]:
    """The params that a caption's cross-validation states."""
    if repeated := REPEATED.fullmatch(text):
        return [equal(f"split.{name}", repeated[name]) for name in ("repeats", "folds", "seed")]
    if single := SINGLE.fullmatch(text):
        return [equal("split.repeats", "1"), equal("split.folds", single["folds"]), equal("split.seed", single["seed"])]
    raise AuditError(f"its caption's cross-validation is none this audit knows: {text!r}")


def setting(caption: str) -> dict[str, Wanted]:
    """The params that a compared table's caption states its rows share, by name.

    - A param the caption leaves to each row (`lr_head as in each row`) matches no run until a row states it.
    """
    match = SETTING.search(caption)
    if match is None:
        raise AuditError(
            "its caption states no setting (`Emotion6, N images, ...; ...; ...; ....`) to find its runs by"
        )
    wanted = [
        equal("data.neutral", "drop" if match["neutral"] == "dropped" else "keep"),
        equal("data.label", match["label"]),
        equal("model.backbone", match["backbone"]),
        equal("model.pretrained", str(match["weights"] == "ImageNet weights")),
        equal("train.finetune", str(match["training"] == "fine-tuned end to end")),
        *([equal("train.lambda", match["lambda"])] if match["lambda"] else []),
        *recipe(match["recipe"]),
        *split(match["split"]),
    ]
    return {w.param: w for w in wanted}


def pinned(cell: str) -> list[tuple[str, str]]:
    """The (param, value) pairs of a params cell (`train.lr_head 0.01, train.lambda 0.7`); `-` pins none."""
    if cell == "-":
        return []
    pairs = (pair.partition(" ") for pair in re.split(r", (?=[\w-]+\.[\w.-]+ )", cell))
    return [(param, value) for param, _, value in pairs]


def arm_label(row: Mapping[str, str]) -> str:
    """A row's arm as the tables name it (`original freeze direct lr_head=0.01`), from its name cells.

    - Its init, freeze and head other than `-`, then each pinned param as its last name part `=` its value.
    """
    names = [row.get(name, "-") for name in ("init", "freeze", "head")]
    names += [f"{param.rsplit('.', 1)[-1]}={value}" for param, value in pinned(row.get("params", "-"))]
    return " ".join(name for name in names if name != "-")


def row_params(row: Mapping[str, str]) -> list[Wanted]:
    """The params an arm row's init, freeze, head and params cells state; `-` states none."""
    freeze = row.get("freeze", "-")
    if freeze not in ("-", "freeze", "unfreeze"):
        raise AuditError(f"a freeze cell of {freeze!r}")
    return [
        equal("prior.init", row["init"]),
        *([equal("prior.freeze", str(freeze == "freeze"))] if freeze != "-" else []),
        *([equal("model.head", row["head"])] if row.get("head", "-") != "-" else []),
        *(equal(param, value) for param, value in pinned(row.get("params", "-"))),
    ]


def newest(runs: Sequence[Run], wanted: Iterable[Wanted]) -> tuple[Run | None, int]:
    """The newest of `runs` with every `wanted` param (the tables take each arm's newest), and how many have them."""
    missing, wanted = object(), list(wanted)
    matching = [run for run in runs if all(w.test(run.params.get(w.param, missing)) for w in wanted)]
    return max(matching, key=lambda run: run.timestamp, default=None), len(matching)


# --- The report ---------------------------------------------------------------------------------------------


NUMBER = re.compile(r"(?P<below><\s*)?(?P<value>[+-]?\d+(?:\.(?P<decimals>\d+))?)%?")


@dataclass
class Report:
    """What the audit found: counts, mismatches, notes, and the largest discrepancy from a printed figure.

    - `worst`: the largest discrepancy as a share of its rounding range's half-width (up to 1 when the
      figure rounds to the printed one), the discrepancy itself, and where it is.
    """

    tables: list[str] = field(default_factory=list)
    rows: int = 0
    numbers: int = 0
    labels: int = 0
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    worst: tuple[float, float, str] = (0.0, 0.0, "")

    def number(self, where: str, printed: str, value: float) -> None:
        """Check a recomputed `value` against a printed figure, in the printed units (a `%` cell: percent).

        - `0.123` stands for [0.1225, 0.1235]; `< 0.001` for [0, 0.001].
        """
        match = NUMBER.fullmatch(printed)
        if match is None:
            self.mismatches.append(f"{where}: printed {printed!r}, recomputed {value:.6g}")
            return
        self.numbers += 1
        shown = float(match["value"])
        if match["below"]:
            low, high, off, excess = 0.0, shown, max(0.0, value - shown), value / shown
        else:
            half = 0.5 * 10.0 ** -len(match["decimals"] or "")
            low, high, off = shown - half, shown + half, abs(value - shown)
            excess = off / half
        if not low - TOLERANCE <= value <= high + TOLERANCE:
            self.mismatches.append(
                f"{where}: printed {printed}, recomputed {value:.6g} (off by {off:.2g}, "
                f"{excess:.3g} × the printed rounding's half-width)"
            )
        if excess > self.worst[0]:
            self.worst = (excess, off, where)

    def label(self, where: str, printed: str, value: str) -> None:
        """Check a label read off the recomputed interval against the printed one."""
        self.labels += 1
        if printed != value:
            self.mismatches.append(f"{where}: printed {printed!r}, recomputed {value!r}")

    def empty(self, where: str, printed: str) -> None:
        """A cell that has nothing to show must show `-`."""
        if printed != "-":
            self.mismatches.append(f"{where}: printed {printed!r} where there is nothing to show (`-`)")

    def wrong(self, where: str, why: str) -> None:
        """Something that the table states and that does not hold."""
        self.mismatches.append(f"{where}: {why}")

    def problem(self, where: str, why: str) -> None:
        """Something that could not be checked: a mismatch too."""
        self.wrong(where, f"not checked: {why}")

    def summary(self) -> str:
        """The one-line summary."""
        excess, off, where = self.worst
        largest = f"{off:.3g} ({excess:.3g} × the printed rounding's half-width; {where})" if where else "none"
        return (
            f"audit of tables {', '.join(self.tables) or 'none'}: {self.rows} rows, {self.numbers} numbers and "
            f"{self.labels} labels checked, {len(self.mismatches)} mismatches, largest discrepancy {largest}"
        )


# --- The audit ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """What every row of one compared table is checked with.

    - `ratio`: n_test/n_train of a fold, 1/(k - 1) for k folds over each repeat's images (docs/protocol.md).
    - `level`: the level of the scores' intervals that the caption states (95%).
    - `m`: the number of arms compared with the first; their intervals are at 1 - alpha/m.
    - `folds`: J, repeats x folds: the training folds over which a chosen hyperparameter is summarised.
    """

    ratio: float
    level: float
    m: int
    folds: int


#: Each header of a compared table, and its column (None: a header the audit does not know).
Kinds = dict[str, Column | None]


@dataclass
class ArmRow:
    """An arm row of a compared table: its cells by header, its label, the params its cells state, its run."""

    cells: dict[str, str]
    label: str
    where: str
    stated: set[str] = field(default_factory=set)
    run: Run | None = None
    table: pd.DataFrame | None = None


def interval_cell(printed: str) -> list[str] | None:
    """The three figures of a `mean [low, high]` cell, or None for a cell of another shape."""
    match = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", printed)
    return None if match is None else list(match.groups())


#: A chosen hyperparameter's cell: median [min–max] over the training folds, and how many chose a grid end.
CHOSEN_CELL = re.compile(
    r"(?P<median>\S+) \[(?P<low>\S+)–(?P<high>\S+)\](?:; (?P<ends>\d+)/(?P<of>\d+) at a grid end)?"
)


@dataclass
class Audit:
    """The audit of the compared tables of one file, against the protocol and the finished runs of one commit.

    - `load`: a run's predictions table (metrics/predictions.csv).
    - `method`: a classic LDL method's out-of-fold predictions (data/classic/<method>/predictions.csv) of the
      commit of the runs, for table G; None: no table G is checked.
    """

    protocol: Protocol
    runs: Sequence[Run]
    load: Callable[[Run], pd.DataFrame]
    method: Callable[[str], pd.DataFrame] | None = None
    report: Report = field(default_factory=Report)
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def predictions(self, run: Run) -> pd.DataFrame:
        """A run's predictions, read once, once their structure is that of repeated k-fold predictions."""
        if run.rev not in self._tables:
            table = self.load(run)
            if (problem := structure_problem(table)) is not None:
                raise AuditError(f"{PREDICTIONS} of {run.name} ({run.rev[:7]}): {problem}")
            self._tables[run.rev] = table
        return self._tables[run.rev]

    def file(self, text: str, names: str | None = None) -> Report:
        """Audit every compared table of a markdown file, or those of them `names` names; the report says what it found.

        - `names`: table letters (`ABD`), for tables made on another commit than the rest: an experiment of one
          table can have the params a caption of another states (table F's default row, table A's default arm).
        """
        found = blocks(text)
        if names is not None:
            if skipped := [block.name for block in found if block.name not in names]:
                self.report.notes.append(f"tables {', '.join(skipped)}: not asked for, not checked")
            found = [block for block in found if block.name in names]
        compared = [block for block in found if compares(block) or (sets_beside(block) and self.method is not None)]
        if others := [block.name for block in found if block not in compared]:
            self.report.notes.append(f"tables {', '.join(others)}: no experiments' arms compared, not checked")
        if not compared:
            raise AuditError("no compared table (one with Δ columns) between `<!-- table-X:start/end -->` markers")
        if not self.runs:
            raise AuditError("no finished experiment of this commit in `dvc exp show`: run `make table` first")
        for block in compared:
            self.report.tables.append(block.name)
            try:
                self.table(block) if compares(block) else self.beside(block)
            except AuditError as e:
                self.report.problem(f"Table {block.name}", str(e))
        return self.report

    def columns(self, block: Block) -> Kinds:
        """Each header's column, once the tested scores of the protocol are known to have theirs, and no others."""
        kinds = {name: column(name) for name in block.header}
        if "init" not in kinds or len(kinds) != len(block.header):
            raise AuditError("no init column, or a header twice")
        for name, kind in kinds.items():
            where = f"Table {block.name}, column {name!r}"
            if kind is None:
                self.report.problem(where, "a column this audit does not know")
            elif kind.kind == CHOSEN:
                self.report.notes.append(f"{where}: from metrics/selection.json; only its form and fold count checked")
            elif kind.kind == P_WITHIN and not same(self.protocol.margins.get(kind.score, math.nan), kind.detail):
                self.report.problem(where, f"the protocol's margin is ±{self.protocol.margins.get(kind.score, 'none')}")
        shown = {(kind.kind, kind.score) for kind in kinds.values() if kind is not None}
        for score in self.protocol.margins:
            for kind in TESTED:
                if (kind, score) not in shown:
                    self.report.problem(f"Table {block.name}", f"no {kind} column of {score}, a tested measure")
        for kind, score in shown:
            if kind in TESTED and score not in self.protocol.margins:
                self.report.problem(
                    f"Table {block.name}", f"a {kind} column of {score}, which the protocol does not test"
                )
        return kinds

    def table(self, block: Block) -> None:
        """Audit one compared table: find its arms' runs, then check its caption, its arms and its trivial baselines."""
        kinds, wanted = self.columns(block), setting(block.caption)
        if "train.lambda" not in wanted:
            self.report.notes.append(f"Table {block.name}: its caption states no lambda; its arms' runs must share it")
        rows = [dict(zip(block.header, row, strict=True)) for row in block.rows]
        arms = [self.arm_run(block, row, wanted) for row in rows if not row["init"].startswith("baseline: ")]
        if len(arms) < 2:
            raise AuditError("fewer than two arms to compare")
        self.shared(block, arms)
        first = arms[0]
        if first.table is None:
            raise AuditError(f"the first arm, {first.label}, has no predictions to compare with")
        level = re.search(r"\[(\d+(?:\.\d+)?)% corrected resampled t intervals", block.caption)
        if level is None:
            raise AuditError("its caption states no level of the scores' intervals (`[95% corrected resampled t ...`)")
        repeats, folds = first.table["repeat"].nunique(), first.table.groupby("repeat")["fold"].nunique().iloc[0]
        family = Family(1 / (folds - 1), float(level[1]) / 100, len(arms) - 1, repeats * folds)
        self.caption(block, kinds, first, family)
        for arm in arms:
            if arm.table is not None:
                try:
                    self.arm(arm, kinds, None if arm is first else first.table, family)
                except AuditError as e:
                    self.report.problem(arm.where, str(e))
        trivial = baseline_fold_scores(first.table)
        for row in (row for row in rows if row["init"].startswith("baseline: ")):
            where = f"Table {block.name}, row {row['init']}"
            if row["init"] not in trivial:
                self.report.problem(where, "a baseline this audit does not know")
                continue
            self.scores(where, kinds, row, trivial[row["init"]], family)
            for name, kind in kinds.items():
                if kind is not None and kind.kind not in (NAMES, SCORE):
                    self.report.empty(f"{where}, {name}", row[name])
            self.report.rows += 1

    def arm_run(self, block: Block, row: dict[str, str], wanted: Mapping[str, Wanted]) -> ArmRow:
        """An arm row with the newest run of the params that its caption and cells state (the cells' win) and its
        predictions; what is not found is a problem, and left None."""
        label = arm_label(row)
        arm = ArmRow(row, label, f"Table {block.name}, row {label}")
        try:
            own = row_params(row)
            arm.stated = {w.param for w in own}
            params = {**wanted, **{w.param: w for w in own}}
            if left := [w.param for w in params.values() if w.printed == AS_IN_EACH_ROW]:
                raise AuditError(f"its params cell states no {', '.join(left)}, which the caption leaves to each row")
            arm.run, count = newest(self.runs, params.values())
            if arm.run is None:
                printed = ", ".join(f"{w.param} {w.printed}" for w in params.values())
                raise AuditError(f"no finished experiment of this commit has its params ({printed})")
            if count > 1:
                self.report.notes.append(
                    f"{arm.where}: {count} experiments match; the newest, {arm.run.name} ({arm.run.rev[:7]})"
                )
            arm.table = self.predictions(arm.run)
        except AuditError as e:
            self.report.problem(arm.where, str(e))
        return arm

    def shared(self, block: Block, arms: Sequence[ArmRow]) -> None:
        """The arms' runs must agree on every param that no row states: the arms differ in their own params alone."""
        runs = [(arm.label, arm.run) for arm in arms if arm.run is not None]
        stated = set().union(*(arm.stated for arm in arms))
        for param in sorted({param for _, run in runs for param in run.params} - stated):
            values = [run.params.get(param) for _, run in runs]
            distinct = [value for i, value in enumerate(values) if value not in values[:i]]
            if len(distinct) > 1:
                groups = "; ".join(
                    f"{value!r}: " + ", ".join(arm for (arm, _), v in zip(runs, values, strict=True) if v == value)
                    for value in distinct
                )
                self.report.wrong(
                    f"Table {block.name}", f"its arms' runs differ in {param}, which no row states ({groups})"
                )

    def beside(self, block: Block) -> None:
        """Audit table G: its arms' runs and scores, and each classic method's scores and differences from each arm.

        - The arms are the rows that its `Δ... vs arm` headers name, found by the caption's setting as any table's;
          the other rows are the methods, whose predictions `method` reads.
        - A method's Δ vs an arm: method − arm per fold, the corrected resampled t interval at 1 − alpha/m with m the
          number of methods, then the protocol's label of it, `helps` and `hurts` said `better` and `worse`.
        """
        assert self.method is not None, "table G is checked only with the classic methods' predictions"
        kinds = {name: column(name) for name in block.header[1:]}
        for name, kind in kinds.items():
            if kind is None or kind.kind not in (SCORE, DELTA):
                self.report.problem(f"Table {block.name}, column {name!r}", "a column this audit does not know")
        named = list(dict.fromkeys(kind.detail for kind in kinds.values() if kind is not None and kind.kind == DELTA))
        shown = {(kind.kind, kind.score, kind.detail) for kind in kinds.values() if kind is not None}
        for score in self.protocol.margins:
            for wanted in [(SCORE, score, ""), *((DELTA, score, arm) for arm in named)]:
                if wanted not in shown:
                    self.report.problem(f"Table {block.name}", f"no {wanted[0]} column of {score} {wanted[2]}".rstrip())
        rows = [dict(zip(block.header, row, strict=True)) for row in block.rows]
        if [row["method"] for row in rows[: len(named)]] != named:
            raise AuditError(f"its first rows are not the arms that its Δ headers name, {', '.join(named)}, in order")
        wanted = setting(block.caption)
        arms = [self.arm_run(block, {**row, **arm_cells(row["method"])}, wanted) for row in rows[: len(named)]]
        self.shared(block, arms)
        if any(arm.table is None for arm in arms):
            raise AuditError("an arm has no predictions to compare with")
        first = arms[0].table
        assert first is not None
        level = re.search(r"\[(\d+(?:\.\d+)?)% corrected resampled t interval", block.caption)
        if level is None:
            raise AuditError("its caption states no level of the scores' intervals (`[95% corrected resampled t ...`)")
        repeats, folds = first["repeat"].nunique(), first.groupby("repeat")["fold"].nunique().iloc[0]
        methods = rows[len(named) :]
        family = Family(1 / (folds - 1), float(level[1]) / 100, len(methods), repeats * folds)
        expected = [
            ("images and folds", r"(\d+) images and (\S+) × (\S+) folds", [first["image"].nunique(), repeats, folds]),
            (
                "alpha, m and level",
                r"1 − (\S+)/m = (\S+)%, simultaneous over the m = (\d+) methods",
                [self.protocol.alpha, 100 * (1 - self.protocol.alpha / family.m), family.m],
            ),
        ]
        self.figures(f"Table {block.name}, caption", block.caption, expected)
        arm_folds = {}
        for arm in arms:
            assert arm.table is not None
            arm_folds[arm.label] = fold_scores(arm.table)
            paired(first, arm.table)
            self.scores(arm.where, kinds, arm.cells, arm_folds[arm.label], family)
            for name, kind in kinds.items():
                if kind is not None and kind.kind == DELTA:
                    self.report.empty(f"{arm.where}, {name}", arm.cells[name])
            self.report.rows += 1
        for row in methods:
            where = f"Table {block.name}, row {row['method']}"
            try:
                table = self.method(row["method"])
                if (problem := structure_problem(table)) is not None:
                    raise AuditError(problem)
                paired(first, table)
            except AuditError as e:
                self.report.problem(where, str(e))
                continue
            own = fold_scores(table)
            self.scores(where, kinds, row, own, family)
            self.report.rows += 1
            for name, kind in kinds.items():
                if kind is not None and kind.kind == DELTA and kind.detail in arm_folds:
                    differences = (own[kind.score] - arm_folds[kind.detail][kind.score]).to_numpy(dtype=np.float64)
                    self.method_test(f"{where}, {name}", kind, row[name], differences, family)

    def method_test(self, where: str, kind: Column, cell: str, differences: np.ndarray, family: Family) -> None:
        """Check a `mean [low, high] label` cell of a method's difference from an arm."""
        printed, _, said = cell.partition("] ")
        t, margin = corrected(differences, family.ratio), self.protocol.margins[kind.score]
        low, high = t.interval(1 - self.protocol.alpha / family.m)
        self.interval(where, f"{printed}]", (t.mean, low, high))
        read = label(low, high, margin, kind.score in HIGHER_IS_BETTER)
        self.report.label(where, said, {HELPS: "better", HURTS: "worse"}.get(read, read))

    def caption(self, block: Block, kinds: Kinds, first: ArmRow, family: Family) -> None:
        """Check the caption's figures (images, emotions, repeats and folds, alpha, m, the level, the margins), and that
        it and the Δ headers compare with the first arm."""
        where, table = f"Table {block.name}, caption", first.table
        expected: list[tuple[str, str, list[float]]] = [
            (
                "images, emotions",
                r"Emotion6, (\d+) images, (\d+) emotions",
                [table["image"].nunique(), len(emotions(table))],
            ),
            (
                "repeats × folds",
                r"mean over the (\S+) × (\S+) folds",
                [table["repeat"].nunique(), 1 / family.ratio + 1],
            ),
            (
                "alpha, m and level",
                r"1 − (\S+)/m = (\S+)%, Bonferroni-simultaneous over the m = (\d+) arms",
                [self.protocol.alpha, 100 * (1 - self.protocol.alpha / family.m), family.m],
            ),
        ]
        if "training folds" in block.caption:
            expected.append(("training folds", r"over the (\d+) training folds", [family.folds]))
        self.figures(where, block.caption, expected)
        against = re.search(r"Δ: arm − (.+?) on the same test images", block.caption)
        if against is None or against[1] != first.label:
            printed = f"arm − {against[1]!r}" if against else "no `Δ: arm − ... on the same test images`"
            self.report.wrong(f"{where}, Δ", f"{printed}, not the first arm, {first.label!r}")
        for name, kind in kinds.items():
            if kind is not None and kind.kind == DELTA and kind.detail != first.label:
                self.report.wrong(f"Table {block.name}, column {name!r}", f"not the first arm, {first.label!r}")

    def figures(self, where: str, caption: str, expected: Sequence[tuple[str, str, Sequence[float]]]) -> None:
        """Check the figures that each (what, pattern, values) finds in a caption, and its margins of equivalence."""
        for what, pattern, values in expected:
            if (match := re.search(pattern, caption)) is None:
                self.report.problem(f"{where}, {what}", f"no {pattern!r} in the caption")
                continue
            for printed, value in zip(match.groups(), values, strict=True):
                self.report.number(f"{where}, {what}", printed, value)
        self.margins(where, caption)

    def margins(self, where: str, caption: str) -> None:
        """Check the caption's `margins of equivalence (±m score, ...)` against the protocol's."""
        margins = re.search(r"margins of equivalence \(([^)]*)\)", caption)
        stated = {name: value for value, name in re.findall(r"±(\S+) ([^,]+)", margins[1] if margins else "")}
        if {SCORE_HEADERS.get(name) for name in stated} != set(self.protocol.margins):
            self.report.problem(f"{where}, margins", f"states margins of {', '.join(stated) or 'nothing'}")
        for name, printed in stated.items():
            if (score := SCORE_HEADERS.get(name)) in self.protocol.margins:
                self.report.number(f"{where}, margin of {name}", printed, self.protocol.margins[score])

    def scores(self, where: str, kinds: Kinds, row: Mapping[str, str], folds: pd.DataFrame, family: Family) -> None:
        """Check a row's score cells, each `mean [low, high]` over the folds; `-` for a score it does not have."""
        for name, kind in kinds.items():
            if kind is not None and kind.kind == SCORE:
                if kind.score not in folds:
                    self.report.empty(f"{where}, {name}", row[name])
                    continue
                t = corrected(folds[kind.score].to_numpy(dtype=np.float64), family.ratio)
                self.interval(f"{where}, {name}", row[name], (t.mean, *t.interval(family.level)))

    def interval(self, where: str, printed: str, values: Sequence[float]) -> None:
        """Check a `mean [low, high]` cell against the recomputed three."""
        if (figures := interval_cell(printed)) is None:
            self.report.problem(where, f"printed {printed!r}, not `mean [low, high]`")
            return
        for part, shown, value in zip(("mean", "low", "high"), figures, values, strict=True):
            self.report.number(f"{where} ({part})", shown, value)

    def arm(self, arm: ArmRow, kinds: Kinds, first: pd.DataFrame | None, family: Family) -> None:
        """Check an arm row: its scores, its chosen cells' form, and its comparison cells against the `first` arm's
        predictions (None for the first arm itself: they show `-`)."""
        folds = fold_scores(arm.table)
        if not np.isfinite(folds.to_numpy(dtype=np.float64)).all():
            self.report.problem(arm.where, "a fold score that is not finite (a zero prediction of a positive target?)")
            return
        self.scores(arm.where, kinds, arm.cells, folds, family)
        self.report.rows += 1
        if first is not None:
            differences = folds - fold_scores(first)
            kl = image_kl(paired(first, arm.table)) - image_kl(first)
            images = pd.Series(kl).groupby(first["image"].to_numpy()).mean()  # averaged over the repeats
        for name, kind in kinds.items():
            where, cell = f"{arm.where}, {name}", arm.cells[name]
            if kind is None or kind.kind in (NAMES, SCORE):
                continue
            if kind.kind == CHOSEN:
                self.chosen(where, cell, family)
            elif first is None:
                self.report.empty(where, cell)
            elif kind.kind == MEDIAN:
                self.report.number(where, cell, float(images.median()))
            elif kind.kind == IMPROVED:
                self.report.number(where, cell, 100 * float((images < 0).mean()))
            elif kind.score in self.protocol.margins:
                self.test(where, kind, cell, differences[kind.score].to_numpy(dtype=np.float64), family)

    def chosen(self, where: str, printed: str, family: Family) -> None:
        """A chosen cell's form, `median [min–max]` with min <= median <= max, and its `; k/n at a grid end`, if any,
        with k <= n and n the training folds."""
        match = CHOSEN_CELL.fullmatch(printed)
        try:
            ordered = match is not None and float(match["low"]) <= float(match["median"]) <= float(match["high"])
        except ValueError:
            ordered = False
        if not ordered:
            self.report.wrong(where, f"printed {printed!r}, not `median [min–max]` in order")
        elif match["of"] is not None:
            self.report.number(f"{where} (folds)", match["of"], family.folds)
            if int(match["ends"]) > int(match["of"]):
                self.report.wrong(where, f"printed {printed!r}: more folds at a grid end than folds")

    def test(self, where: str, kind: Column, cell: str, differences: np.ndarray, family: Family) -> None:
        """Check one cell of a tested score's comparison, from the per-fold `differences` and the protocol."""
        t, margin, m = corrected(differences, family.ratio), self.protocol.margins[kind.score], family.m
        low, high = t.interval(1 - self.protocol.alpha / m)
        if kind.kind == DELTA:
            self.interval(where, cell, (t.mean, low, high))
        elif kind.kind == P_DIFFERS:
            self.report.number(where, cell, min(1.0, m * t.p_two_sided()))
        elif kind.kind == P_WITHIN:
            self.report.number(where, cell, min(1.0, 2 * m * max(t.p_above(-margin), t.p_below(margin))))
        elif kind.kind == LABEL:
            self.report.label(where, cell, label(low, high, margin, kind.score in HIGHER_IS_BETTER))


def main(argv: Sequence[str] | None = None) -> int:
    """Audit the compared tables of a markdown file against the experiments of a commit; 0 when all match."""
    parser = argparse.ArgumentParser(
        prog="python audit/recompute.py",
        description="Recompute every figure of the compared results tables from the experiments' predictions.",
    )
    parser.add_argument("file", nargs="?", type=Path, default=Path("docs/results.md"), help="the file with the tables")
    parser.add_argument("--protocol", type=Path, default=Path("docs/protocol.md"), help="the declared protocol")
    parser.add_argument("--tables", help="the letters of the tables to check (default: every compared table)")
    parser.add_argument("--rev", help="the commit whose experiments made the tables (default: the current one)")
    args = parser.parse_args(argv)
    repository = Repository(Path.cwd())

    def load(run: Run) -> pd.DataFrame:
        try:
            return pd.read_csv(io.BytesIO(repository.read(run.rev, PREDICTIONS)))
        except ValueError as e:  # pandas' ParserError and a file that is no text
            raise AuditError(f"{PREDICTIONS} of {run.name} ({run.rev[:7]}): not a CSV table ({e})") from None

    def method(name: str) -> pd.DataFrame:
        path = f"{CLASSIC}/{name}/predictions.csv"
        try:
            return pd.read_csv(io.BytesIO(repository.read(args.rev or "HEAD", path)))
        except ValueError as e:
            raise AuditError(f"{path}: not a CSV table ({e})") from None

    try:
        protocol = read_protocol(args.protocol.read_text(encoding="utf-8"))
        text = args.file.read_text(encoding="utf-8")
        report = Audit(protocol, finished(repository.show(args.rev)), load, method).file(text, args.tables)
    except (AuditError, OSError, json.JSONDecodeError) as e:
        print(f"audit: {e}", file=sys.stderr)
        return 1
    for line in [*report.notes, *report.mismatches]:
        print(line)
    print(report.summary())
    return 0 if not report.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
