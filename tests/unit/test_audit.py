"""The independent audit of the results tables (audit/recompute.py), by hand and against the tables' own code.

- KL, the class scores, the per-fold differences, the corrected t and its p-values on a 2 x 2 design made
  here, worked out by hand with Student's t from SciPy.
- A compared table that ewmtcnn.study.table writes from the same predictions reads back cell by cell, and
  every figure of it matches the audit's; a figure moved past its printed rounding, or a label changed, does not.
- So does a converged table tested against a first arm other than `none` (tables A and D), an arm of it with its
  own lambda: its rows found by recipe, lambda, PCA and grid, its Δ headers and caption naming the first arm, its
  chosen cells of the right form; the setting sentence of every recipe that table.py writes finds its params.
- Table G, the classic methods beside two arms, as ewmtcnn.study.classic writes it: every figure and label read
  back and recomputed from the methods' predictions; a Δ or a verdict changed is a mismatch.
- The margins and error rate as docs/protocol.md declares them; predictions read from an experiment's commit
  or the DVC cache, by the md5 of its dvc.lock; the finished experiments of `dvc exp show --json`.
"""

from __future__ import annotations

import ast
import hashlib
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from audit import recompute
from audit.recompute import Audit, AuditError, Protocol, Repository, Run
from ewmtcnn.evaluation import report, resampling
from ewmtcnn.study import paired, protocol
from ewmtcnn.study import table as study_table
from ewmtcnn.study.classic import classic_table
from ewmtcnn.study.design import BASELINE, Arm, Grid
from ewmtcnn.study.table import comparison_table, markers
from support import REPO

EMOTIONS = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
#: Two repeats of two folds over four images, one of each class in every fold: (repeat, image) -> fold.
FOLDS = {
    **{(0, "a"): 0, (0, "c"): 0, (0, "b"): 1, (0, "d"): 1},
    **{(1, "a"): 0, (1, "d"): 0, (1, "b"): 1, (1, "c"): 1},
}
#: Images a and b are all anger, c and d all disgust.
LABELS = {"a": "anger", "b": "anger", "c": "disgust", "d": "disgust"}
#: What each arm predicts for an image's own class, the rest on the other of anger and disgust.
WHEEL_Q = {
    **{(0, "a"): 0.8, (0, "c"): 0.6, (0, "b"): 0.4, (0, "d"): 0.7},
    **{(1, "a"): 0.9, (1, "d"): 0.3, (1, "b"): 0.6, (1, "c"): 0.8},
}
EYE_Q = {
    **{(0, "a"): 0.7, (0, "c"): 0.45, (0, "b"): 0.65, (0, "d"): 0.52},
    **{(1, "a"): 0.35, (1, "d"): 0.75, (1, "b"): 0.58, (1, "c"): 0.62},
}
ALPHA = 0.05  # docs/protocol.md's
#: The protocol as docs/protocol.md declares it, read by the audit.
DECLARED = recompute.read_protocol((REPO / "docs" / "protocol.md").read_text(encoding="utf-8"))
WHEEL, EYE = Arm("original", True, "direct"), Arm("eye", False, "direct")
GRID = Grid("A", "made here", (BASELINE, WHEEL, EYE), (("train.recipe", "fixed"),))
PARAMS = {
    "data.label": "dominant",
    "data.neutral": "drop",
    "model.backbone": "efficientnet_lite0",
    "model.pretrained": True,
    "model.head": "direct",
    "prior.freeze": True,
    "train.finetune": False,
    "train.recipe": "fixed",
    "train.epochs": 20,
    "train.lr_head": 0.01,
    "train.weight_decay": 0.0005,
    "train.lambda": 0.7,
    "train.pca": 256,
    "select.epochs": 80,
    "select.share": 0.2,
    "split.repeats": 2,
    "split.folds": 2,
    "split.seed": 0,
}


def predictions(q: dict[tuple[int, str], float]) -> pd.DataFrame:
    """A metrics/predictions.csv of FOLDS' images, in repeat order: q[(repeat, image)] on the image's own class."""
    rows = []
    for repeat, image in sorted(FOLDS):
        own = EMOTIONS.index(LABELS[image])
        true, pred = np.zeros(len(EMOTIONS)), np.zeros(len(EMOTIONS))
        true[own], pred[own], pred[1 - own] = 1.0, q[(repeat, image)], 1 - q[(repeat, image)]
        row = {"image": f"{LABELS[image]}/{image}.jpg", "repeat": repeat, "fold": FOLDS[(repeat, image)]}
        row["label"] = LABELS[image]
        row.update({f"true_{e}": value for e, value in zip(EMOTIONS, true, strict=True)})
        row.update({f"pred_{e}": value for e, value in zip(EMOTIONS, pred, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


NONE_TABLE = predictions(dict.fromkeys(FOLDS, 0.5))  # predicts anger (the first of a tie) at 1/2
WHEEL_TABLE, EYE_TABLE = predictions(WHEEL_Q), predictions(EYE_Q)


def corrected_by_hand(values: list[float], ratio: float, m: int, margin: float) -> tuple[float, ...]:
    """Mean, interval at 1 - ALPHA/m, m p two-sided and 2m p TOST of the corrected resampled t, written out."""
    j = len(values)
    mean = sum(values) / j
    se = math.sqrt((1 / j + ratio) * sum((v - mean) ** 2 for v in values) / (j - 1))
    half = stats.t.ppf(1 - ALPHA / (2 * m), j - 1) * se
    p = 2 * stats.t.sf(abs(mean) / se, j - 1)
    tost = max(stats.t.sf((mean + margin) / se, j - 1), stats.t.sf((margin - mean) / se, j - 1))
    return mean, mean - half, mean + half, min(1.0, m * p), min(1.0, 2 * m * tost)


def test_the_audit_imports_nothing_of_ewmtcnn() -> None:
    """Independent: numpy, pandas, scipy, scikit-learn, yaml and the standard library, no module of the package."""
    tree = ast.parse(Path(recompute.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} - set(sys.stdlib_module_names) == {
        "numpy",
        "pandas",
        "scipy",
        "sklearn",
        "yaml",
    }


def test_kl_and_the_other_measures_by_hand() -> None:
    """KL with 0 ln 0 = 0 against scipy.stats.entropy, and the distances of one pair written out."""
    p = np.array([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    q = np.array([[0.25, 0.75, 0.0, 0.0], [0.8, 0.1, 0.1, 0.0]])
    measures = recompute.ldl_measures(p, q)
    assert measures["kl"] == pytest.approx([0.5 * math.log(2) + 0.5 * math.log(2 / 3), -math.log(0.8)])
    assert measures["kl"] == pytest.approx([stats.entropy(p[0], q[0]), stats.entropy(p[1], q[1])])
    assert measures["chebyshev"][0] == pytest.approx(0.25)
    assert measures["canberra"][0] == pytest.approx(0.25 / 0.75 + 0.25 / 1.25)  # the 0/0 terms count 0
    assert measures["clark"][0] == pytest.approx(math.sqrt((1 / 3) ** 2 + 0.2**2))
    assert measures["canberra_normalised"][1] == pytest.approx((0.2 / 1.8 + 1 + 1) / 4)
    assert measures["intersection"][0] == pytest.approx(0.75)
    assert measures["cosine"][0] == pytest.approx(0.5 / (math.sqrt(0.5) * math.sqrt(0.625)))


def test_fold_scores_by_hand() -> None:
    """Each fold's accuracy, balanced accuracy, macro-F1 and mean KL of the wheel arm, worked out."""
    folds = recompute.fold_scores(WHEEL_TABLE)
    assert list(folds.index) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert list(folds["acc"]) == [1.0, 0.5, 0.5, 1.0]
    # (0, 1): b (anger) taken for disgust, d right: recalls 0 and 1; F1 0 and 2/3 (precision 1/2, recall 1)
    assert folds.loc[(0, 1), "balanced_acc"] == pytest.approx(0.5)
    assert folds.loc[(0, 1), "macro_f1"] == pytest.approx(1 / 3)
    assert folds.loc[(0, 0), "kl"] == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    none = recompute.fold_scores(NONE_TABLE)
    assert list(none["kl"]) == pytest.approx([math.log(2)] * 4)
    assert list(none["macro_f1"]) == pytest.approx([1 / 3] * 4)  # anger: F1 2/3, disgust never predicted: 0


def test_paired_differences_and_corrected_t_of_a_2x2_design_by_hand() -> None:
    """ΔKL per fold, and Δacc = (1/2, 0, 0, 1/2) over 2 x 2 folds: n_test/n_train = 1, J = 4, 3 degrees of freedom."""
    folds = recompute.fold_scores(WHEEL_TABLE) - recompute.fold_scores(NONE_TABLE)
    # per fold, the mean over its two images of -ln q - ln 2 = -ln 2q
    halves = [(1.6, 1.2), (0.8, 1.4), (1.8, 0.6), (1.2, 1.6)]
    assert list(folds["kl"]) == pytest.approx([-(math.log(x) + math.log(y)) / 2 for x, y in halves])
    differences = folds["acc"]
    assert list(differences) == [0.5, 0.0, 0.0, 0.5]
    t = recompute.corrected(differences.to_numpy(), 1.0)
    se = math.sqrt((1 / 4 + 1) * (4 * 0.25**2 / 3))
    assert (t.mean, t.se, t.dof) == (pytest.approx(0.25), pytest.approx(se), 3)
    assert t.p_two_sided() == pytest.approx(2 * stats.t.sf(0.25 / se, 3))
    assert t.interval(0.95) == pytest.approx((0.25 - stats.t.ppf(0.975, 3) * se, 0.25 + stats.t.ppf(0.975, 3) * se))
    assert t.p_above(-0.02) == pytest.approx(stats.t.sf(0.27 / se, 3))
    assert t.p_below(0.02) == pytest.approx(stats.t.sf(-0.23 / se, 3))


def test_corrected_t_without_spread() -> None:
    """Equal fold values: the interval is the value, each test rejects when the value lies beyond its null."""
    t = recompute.corrected([0.01, 0.01, 0.01], 0.25)
    assert t.interval(0.99) == (0.01, 0.01)
    assert (t.p_two_sided(), t.p_above(-0.02), t.p_below(0.02), t.p_below(0.01)) == (0.0, 0.0, 0.0, 1.0)
    assert recompute.corrected([0.0, 0.0], 0.25).p_two_sided() == 1.0


@pytest.mark.parametrize(
    ("low", "high", "higher_is_better", "expected"),
    [
        (0.03, 0.05, True, recompute.HELPS),
        (0.03, 0.05, False, recompute.HURTS),
        (-0.05, -0.03, False, recompute.HELPS),
        (-0.01, 0.01, True, recompute.EQUIVALENT),
        (0.005, 0.015, True, recompute.EQUIVALENT_DIFFERS),
        (-0.01, 0.03, True, recompute.INCONCLUSIVE),
    ],
)
def test_labels_as_the_protocol_reads_them(low: float, high: float, higher_is_better: bool, expected: str) -> None:
    """docs/protocol.md's table of labels, with a margin of 0.02."""
    assert recompute.label(low, high, 0.02, higher_is_better) == expected


def test_the_protocol_as_docs_protocol_declares_it() -> None:
    """alpha = 0.05 and the four margins of docs/protocol.md; the code's protocol says the same."""
    assert (DECLARED.alpha, DECLARED.margins) == (
        0.05,
        {"kl": 0.01, "acc": 0.02, "balanced_acc": 0.02, "macro_f1": 0.02},
    )
    assert (DECLARED.alpha, DECLARED.margins) == (protocol.ALPHA, protocol.MARGINS)


def flat_metrics(table: pd.DataFrame) -> dict[str, float]:
    """An experiment's metrics.json as `dvc exp show` flattens it, computed by ewmtcnn from its predictions."""
    ratio = report.fold_size_ratio(table)
    sections = {
        "test": resampling.summarise([report.scores(rows) for _, rows in table.groupby(["repeat", "fold"])], ratio)
    }
    sections.update({f"baselines.{name}": s for name, s in report.baseline_report(table, ratio).items()})
    return {
        f"{section}.{score}.{stat}": value
        for section, summary in sections.items()
        for score, figures in summary.items()
        for stat, value in figures.items()
    }


TABLES = {BASELINE: NONE_TABLE, WHEEL: WHEEL_TABLE, EYE: EYE_TABLE}
#: The chosen settings of each arm, as metrics/selection.json summarises them; a fixed table shows no column of them,
#: only its caption's count of training folds.
CHOSEN = {
    "epochs": {"median": 20.0, "min": 20.0, "max": 20.0},
    "lr_head": {"median": 0.01, "min": 0.01, "max": 0.01},
    "weight_decay": {"median": 0.0005, "min": 0.0005, "max": 0.0005},
}


def written_table() -> str:
    """Table A of GRID as `python -m ewmtcnn.study.table` writes it between its markers."""
    rows = pd.DataFrame(
        [{**PARAMS, **flat_metrics(TABLES[arm])} for arm in GRID.arms],
        index=pd.Index([arm.label for arm in GRID.arms], name="variant"),
    )
    compared = paired.compare(TABLES, BASELINE)
    start, end = markers("A")
    return f"intro\n\n{start}\n{comparison_table(GRID, rows, compared, dict.fromkeys(GRID.arms, CHOSEN))}\n{end}\n"


def runs() -> list[Run]:
    """A finished run per arm, an older run of the wheel arm that predicts otherwise, and one of another recipe."""
    made = [Run(arm.label, f"rev-{arm.label}", datetime(2026, 1, 2), {**PARAMS, **arm.params()}) for arm in GRID.arms]
    older = Run("older", "rev-older", datetime(2026, 1, 1), {**PARAMS, **WHEEL.params()})
    selected = Run(
        "selected", "rev-selected", datetime(2026, 1, 3), {**PARAMS, **EYE.params(), "train.recipe": "selected"}
    )
    return [*made, older, selected]


def load(run: Run) -> pd.DataFrame:
    """The predictions of `runs()`: the older run predicts as the eye arm, the other recipe as none."""
    arms = {arm.label: table for arm, table in TABLES.items()}
    return {**arms, "older": EYE_TABLE, "selected": NONE_TABLE}[run.name]


def test_the_written_table_reads_back_and_matches() -> None:
    """The audit reads every cell of the table that table.py writes, and recomputes each figure of it."""
    text = written_table()
    (block,) = recompute.blocks(text)
    assert block.name == "A" and block.caption.startswith("**Table A: made here.** Emotion6, 4 images, 6 emotions")
    assert [row[0] for row in block.rows] == ["none", "original", "eye", recompute.MEAN_ROW, recompute.MAJORITY_ROW]
    wheel = dict(zip(block.header, block.rows[1], strict=True))
    mean, low, high, p_differs, p_within = corrected_by_hand([0.5, 0.0, 0.0, 0.5], 1.0, 2, 0.02)
    assert recompute.interval_cell(wheel["Δacc vs none"]) == [f"{mean:+.3f}", f"{low:+.3f}", f"{high:+.3f}"]
    assert (wheel["p acc differs"], wheel["p acc within ±0.02"]) == (f"{p_differs:.3f}", f"{p_within:.3f}")
    assert wheel["images improved (KL)"] == "50.0%"  # a and c improve, averaged over the repeats; b and d do not
    found = Audit(DECLARED, runs(), load).file(text)
    assert found.mismatches == []
    assert (found.tables, found.rows, found.labels) == (["A"], 5, 8)
    # 3 arms x 11 scores x 3; the baselines' (11 + 3) x 3; 2 arms x (4 tested x 5 + 2); the caption's 8 and 4 margins
    assert found.numbers == 99 + 42 + 44 + 12
    assert any("2 experiments match; the newest, original freeze direct" in note for note in found.notes)
    assert found.worst[0] <= 1 + 1e-6  # within the printed rounding, up to float error
    # Only the tables asked for: table A left out, none is checked, and the report says so.
    with pytest.raises(recompute.AuditError, match="no compared table"):
        Audit(DECLARED, runs(), load).file(text, "BD")
    assert Audit(DECLARED, runs(), load).file(text, "A").tables == ["A"]


def changed(text: str, row: int, header: str, cell: str) -> str:
    """`text` with one cell of its table's row `row` (0: the first under the header) replaced."""
    lines = text.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("| ")]
    names, rows = recompute.cells(lines[table[0]]), table[1:]
    values = recompute.cells(lines[rows[row]])
    values[names.index(header)] = cell
    lines[rows[row]] = "| " + " | ".join(values) + " |"
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("row", "header", "shift", "expected"),
    [
        (1, "Δacc vs none", "mean", "Table A, row original freeze direct, Δacc vs none (mean)"),
        (2, "KL", "high", "Table A, row eye unfreeze direct, KL (high)"),
        (3, "macro-F1", "low", "Table A, row baseline: mean distribution, macro-F1 (low)"),
    ],
)
def test_a_figure_past_its_rounding_is_a_mismatch(row: int, header: str, shift: str, expected: str) -> None:
    """One figure of an interval cell moved by two units of its last digit: one mismatch, there."""
    text = written_table()
    block = recompute.blocks(text)[0]
    figures = recompute.interval_cell(dict(zip(block.header, block.rows[row], strict=True))[header])
    index = ("mean", "low", "high").index(shift)
    decimals, sign = len(figures[index].split(".")[1]), "+" if figures[index][0] in "+-" else ""
    figures[index] = f"{float(figures[index]) + 2 * 10**-decimals:{sign}.{decimals}f}"
    found = Audit(DECLARED, runs(), load).file(changed(text, row, header, f"{figures[0]} [{figures[1]}, {figures[2]}]"))
    assert len(found.mismatches) == 1 and found.mismatches[0].startswith(expected)


def test_a_changed_label_or_margin_is_a_mismatch() -> None:
    """A label that the interval does not give, and a protocol with another margin than the table's."""
    text = written_table()
    relabelled = changed(text, 1, "prior for KL", "helps")
    found = Audit(DECLARED, runs(), load).file(relabelled)
    assert found.mismatches == [
        "Table A, row original freeze direct, prior for KL: printed 'helps', recomputed 'inconclusive'"
    ]
    wider = Audit(Protocol(ALPHA, {**DECLARED.margins, "kl": 0.02}), runs(), load).file(text)
    assert any(line.startswith("Table A, column 'p KL within ±0.01': not checked") for line in wider.mismatches)
    assert any(line.startswith("Table A, caption, margin of KL") for line in wider.mismatches)


def test_a_row_without_its_experiment_is_not_checked() -> None:
    """Without a run of the eye arm its row is a mismatch, and without any run the audit stops."""
    text = written_table()
    without = [run for run in runs() if run.name != EYE.label]
    found = Audit(DECLARED, without, load).file(text)
    (mismatch,) = found.mismatches
    assert mismatch.startswith("Table A, row eye unfreeze direct: not checked: no finished experiment of this commit")
    assert mismatch.endswith(
        "train.recipe fixed, train.epochs 20, train.lr_head 0.01, train.weight_decay 0.0005, "
        "split.repeats 2, split.folds 2, split.seed 0, prior.init eye, prior.freeze False, model.head direct)"
    )
    with pytest.raises(AuditError, match="run `make table` first"):
        Audit(DECLARED, [], load).file(text)


#: What the wheel under the paper's loss predicts for an image's own class.
LAMBDA_Q = {
    **{(0, "a"): 0.75, (0, "c"): 0.5, (0, "b"): 0.55, (0, "d"): 0.6},
    **{(1, "a"): 0.7, (1, "d"): 0.45, (1, "b"): 0.65, (1, "c"): 0.7},
}
PAPER_LOSS = WHEEL._replace(pinned=(("train.lambda", 0.7),))
#: A converged grid as table A and D are since 509d5d1: tested against the frozen wheel, an arm with its own lambda.
CONVERGED_GRID = Grid(
    "D", "made here", (WHEEL, BASELINE, EYE, PAPER_LOSS), (("train.recipe", "converged"), ("train.lambda", 1.0))
)
CONVERGED_PARAMS = {
    **PARAMS,
    "train.recipe": "converged",
    "train.lambda": 1.0,
    "select.weight_decay": (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
    "select.folds": 5,
}
CONVERGED_TABLES = {WHEEL: WHEEL_TABLE, BASELINE: NONE_TABLE, EYE: EYE_TABLE, PAPER_LOSS: predictions(LAMBDA_Q)}
#: What experiments.chosen makes of a converged run's metrics/selection.json: its weight decay, with the grid ends.
CONVERGED_CHOSEN = {"weight_decay": {"median": 0.05, "min": 0.02, "max": 10.0, "ends": 1.0, "folds": 4.0}}


def converged_table() -> str:
    """CONVERGED_GRID's table as `python -m ewmtcnn.study.table` writes it between its markers."""
    rows = pd.DataFrame(
        [{**CONVERGED_PARAMS, **arm.params(), **flat_metrics(CONVERGED_TABLES[arm])} for arm in CONVERGED_GRID.arms],
        index=pd.Index([arm.label for arm in CONVERGED_GRID.arms], name="variant"),
    )
    compared = paired.compare(CONVERGED_TABLES, WHEEL)
    chosen = dict.fromkeys(CONVERGED_GRID.arms, CONVERGED_CHOSEN)
    start, end = markers("D")
    return f"intro\n\n{start}\n{comparison_table(CONVERGED_GRID, rows, compared, chosen)}\n{end}\n"


def converged_runs() -> list[Run]:
    """A converged run per arm, and newer runs that are no row: the wheel under the fixed recipe, on all its
    features and with a narrower grid, and the eye arm under the paper's loss."""

    def run(name: str, arm: Arm, when: int, **params: object) -> Run:
        return Run(name, f"rev-{name}", datetime(2026, 1, when), {**CONVERGED_PARAMS, **arm.params(), **params})

    decoys = [
        run("fixed", WHEEL, 3, **{"train.recipe": "fixed"}),
        run("all features", WHEEL, 3, **{"train.pca": 0}),
        run("narrow", WHEEL, 3, **{"select.weight_decay": (0.001, 10)}),
        run("eye paper loss", EYE, 3, **{"train.lambda": 0.7}),
    ]
    return [*(run(arm.label, arm, 2) for arm in CONVERGED_GRID.arms), *decoys]


def converged_load(run: Run) -> pd.DataFrame:
    """The predictions of `converged_runs()`: each decoy predicts as none."""
    return {arm.label: table for arm, table in CONVERGED_TABLES.items()}.get(run.name, NONE_TABLE)


def test_a_converged_table_against_its_first_arm_reads_back_and_matches() -> None:
    """A converged table tested against the frozen wheel, as table.py writes it: every figure recomputed.

    - Its rows are found by recipe, lambda (the caption's, or a row's own), PCA and grid; no decoy is taken.
    - The Δ of `none` is against the wheel: the wheel's against `none`, negated, with m = 3.
    """
    text = converged_table()
    (block,) = recompute.blocks(text)
    assert "head trained; lambda 1; each head fitted to convergence (L-BFGS) on its first 256" in block.caption
    assert "Δ: arm − original freeze direct on the same test images" in block.caption
    rows = [dict(zip(block.header, row, strict=True)) for row in block.rows]
    assert [recompute.arm_label(row) for row in rows] == [arm.label for arm in CONVERGED_GRID.arms]  # no baselines
    assert (rows[3]["params"], rows[3]["weight_decay chosen"]) == (
        "train.lambda 0.7",
        "0.05 [0.02–10]; 1/4 at a grid end",
    )
    mean, low, high, p_differs, p_within = corrected_by_hand([-0.5, 0.0, 0.0, -0.5], 1.0, 3, 0.02)
    none = rows[1]
    assert recompute.interval_cell(none["Δacc vs original freeze direct"]) == [f"{v:+.3f}" for v in (mean, low, high)]
    assert (none["p acc differs"], none["p acc within ±0.02"]) == (f"{p_differs:.3f}", f"{p_within:.3f}")
    found = Audit(DECLARED, converged_runs(), converged_load).file(text)
    assert found.mismatches == []
    assert (found.tables, found.rows, found.labels) == (["D"], 4, 12)
    # 4 arms x 11 scores x 3; 3 arms x (4 tested x 5 + 2); 4 chosen fold counts; the caption's 8 and 4 margins
    assert found.numbers == 132 + 66 + 4 + 12
    assert not any("experiments match" in note for note in found.notes)
    assert any("'weight_decay chosen': from metrics/selection.json" in note for note in found.notes)
    assert found.worst[0] <= 1 + 1e-6


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "| ΔKL vs original freeze direct |",
            "| ΔKL vs none |",
            "Table D, column 'ΔKL vs none': not the first arm, 'original freeze direct'",
        ),
        (
            "Δ: arm − original freeze direct on",
            "Δ: arm − none on",
            "Table D, caption, Δ: arm − 'none', not the first arm, 'original freeze direct'",
        ),
    ],
)
def test_a_comparison_with_another_arm_than_the_first_is_a_mismatch(old: str, new: str, expected: str) -> None:
    """The Δ headers and the caption must name the first arm, which every comparison is recomputed against."""
    found = Audit(DECLARED, converged_runs(), converged_load).file(converged_table().replace(old, new))
    assert found.mismatches == [expected]


def test_a_converged_row_is_found_by_its_lambda_and_recipe() -> None:
    """Without the wheel's converged run under the paper's loss, that row has none: not the wheel's at lambda 1,
    nor the newer fixed one."""
    without = [run for run in converged_runs() if run.name != PAPER_LOSS.label]
    found = Audit(DECLARED, without, converged_load).file(converged_table())
    (mismatch,) = found.mismatches
    assert mismatch.startswith("Table D, row original freeze direct lambda=0.7: not checked: no finished experiment")
    assert (
        "train.lambda 0.7, train.recipe converged, train.pca 256, select.weight_decay 0.001 to 10 (13 values), "
        "select.folds 5, split.repeats 2" in mismatch
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (
            "0.05 [0.02–10]; 1/5 at a grid end",
            "Table D, row none, weight_decay chosen (folds): printed 5, recomputed 4",
        ),
        ("0.05 [0.02–10]; 5/4 at a grid end", "Table D, row none, weight_decay chosen: printed '0.05 [0.02–10]; 5/4"),
        ("0.05 [0.1–10]; 1/4 at a grid end", "Table D, row none, weight_decay chosen: printed '0.05 [0.1–10]; 1/4"),
        ("0.05", "Table D, row none, weight_decay chosen: printed '0.05', not `median [min–max]` in order"),
    ],
)
def test_a_chosen_cell_of_another_form_or_fold_count_is_a_mismatch(cell: str, expected: str) -> None:
    """Chosen cells are not recomputed, but must read `median [min–max]`, and `; k/n at a grid end` of the J folds."""
    found = Audit(DECLARED, converged_runs(), converged_load).file(
        changed(converged_table(), 1, "weight_decay chosen", cell)
    )
    (mismatch,) = found.mismatches
    assert mismatch.startswith(expected)


def test_a_run_of_another_lambda_than_the_caption_states_is_no_row() -> None:
    """The fixed recipe's caption states its lambda: a run of another one is not taken for a row."""
    mixed = [
        Run(r.name, r.rev, r.timestamp, {**r.params, "train.lambda": 1.0}) if r.name == EYE.label else r for r in runs()
    ]
    found = Audit(DECLARED, mixed, load).file(written_table())
    assert found.mismatches and all("eye unfreeze direct" in mismatch for mismatch in found.mismatches)
    assert not any("states no lambda" in note for note in found.notes)


@pytest.mark.parametrize(
    "params",
    [
        PARAMS,
        {**PARAMS, "train.recipe": "selected", "split.repeats": 1},
        CONVERGED_PARAMS,
        {**CONVERGED_PARAMS, "train.pca": 0, "select.folds": 3, "train.lambda": 0.7},
    ],
    ids=["fixed", "selected", "converged", "converged all features"],
)
def test_the_setting_that_table_py_writes_finds_the_runs_of_its_params(params: dict[str, object]) -> None:
    """Every param that the audit reads off table.py's setting sentence holds for the params it was written from,
    and no run of another recipe matches."""
    sentence = study_table.setting(pd.DataFrame([params]), 4)
    wanted = recompute.setting(f"**Table X: made here.** {sentence} Scores on the held-out folds.")
    assert all(w.test(params.get(w.param)) for w in wanted.values())
    assert ("train.lambda" in wanted) == (params["train.recipe"] != "selected")
    for other in {"fixed", "selected", "converged"} - {params["train.recipe"]}:
        assert not wanted["train.recipe"].test(other)
    if params["train.recipe"] == "converged":
        assert not wanted["train.lambda"].test(1.7 - params["train.lambda"])
        assert not wanted["train.pca"].test(128)


def test_a_param_that_the_caption_leaves_to_each_row_must_be_a_rows() -> None:
    """`lr_head as in each row` matches no run by itself: a row's params cell must state it."""
    sentence = study_table.setting(pd.DataFrame([PARAMS]), 4, {"train.lr_head"})
    assert "lr_head as in each row" in sentence
    wanted = recompute.setting(f"{sentence} Scores")
    assert not wanted["train.lr_head"].test(0.01)
    audit = Audit(DECLARED, runs(), load)
    arm = audit.arm_run(recompute.blocks(written_table())[0], {"init": "eye", "freeze": "unfreeze"}, wanted)
    assert arm.run is None
    assert audit.report.mismatches == [
        "Table A, row eye unfreeze: not checked: its params cell states no train.lr_head, which the caption leaves "
        "to each row"
    ]


def test_finished_experiments_of_dvc_exp_show() -> None:
    """Failed, queued and metric-less experiments are left out; params come flattened, lists as tuples."""

    def rev(name: str, **extra: object) -> dict[str, object]:
        data = {
            "timestamp": "2026-12-06T05:38:37",
            "params": {"params.yaml": {"data": {"prior": {"init": name}, "features": {"views": ["centre"]}}}},
            "metrics": {recompute.METRICS: {"data": {}}},
        }
        return {"rev": f"{name}0000000", "name": name, "data": data, **extra}

    show = [
        {"rev": "workspace"},
        {
            "rev": "baseline",
            "experiments": [
                {"revs": [rev("ok")], "executor": {"state": "success"}},
                {"revs": [rev("failed", error={"msg": "boom"})]},
                {"revs": [rev("queued")], "executor": {"state": "queued"}},
                {"revs": [{**rev("no-metrics"), "data": {**rev("x")["data"], "metrics": {}}}]},
            ],
        },
    ]
    (run,) = recompute.finished(show)
    assert (run.name, run.timestamp, run.params) == (
        "ok",
        datetime(2026, 12, 6, 5, 38, 37),
        {"prior.init": "ok", "features.views": ("centre",)},
    )


def git(root: Path, *args: str) -> None:
    """Run git in `root`, as a throwaway author."""
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True
    )


def test_predictions_from_the_commit_or_the_cache_by_md5(tmp_path: Path) -> None:
    """A tracked output comes from git, an untracked one from the DVC cache; either must have dvc.lock's md5."""
    data = NONE_TABLE.to_csv(index=False).encode()
    md5 = hashlib.md5(data).hexdigest()
    lock = f"schema: '2.0'\nstages:\n  evaluate:\n    outs:\n    - path: {recompute.PREDICTIONS}\n      md5: {md5}\n"
    (tmp_path / "metrics").mkdir()
    (tmp_path / "dvc.lock").write_text(lock, encoding="utf-8")
    (tmp_path / recompute.PREDICTIONS).write_bytes(data)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "tracked")
    cache = tmp_path / "cache"
    repository = Repository(tmp_path, cache)
    assert repository.read("HEAD", recompute.PREDICTIONS) == data
    git(tmp_path, "rm", "-q", "--cached", recompute.PREDICTIONS)
    git(tmp_path, "commit", "-q", "-m", "cached")
    with pytest.raises(AuditError, match="neither in git nor in the DVC cache"):
        repository.read("HEAD", recompute.PREDICTIONS)
    (cache / "files" / "md5" / md5[:2]).mkdir(parents=True)
    (cache / "files" / "md5" / md5[:2] / md5[2:]).write_bytes(data)
    assert repository.read("HEAD", recompute.PREDICTIONS) == data
    (cache / "files" / "md5" / md5[:2] / md5[2:]).write_bytes(data + b"\n")
    with pytest.raises(AuditError, match=f"does not have the md5 {md5}"):
        repository.read("HEAD", recompute.PREDICTIONS)


#: Two "classic methods" of table G, made here: one predicts as the eye arm, the other a little off the wheel arm's.
METHODS = {"sa_bfgs": EYE_TABLE, "aa_knn": predictions({key: 0.9 * q + 0.05 for key, q in WHEEL_Q.items()})}


def classic_written() -> str:
    """Table G of METHODS beside the wheel arm and none, as `python -m ewmtcnn.study.table` writes it."""
    rows = pd.DataFrame([PARAMS], index=pd.Index([WHEEL.label], name="variant"))
    arms = {WHEEL.label: WHEEL_TABLE, BASELINE.label: NONE_TABLE}
    start, end = markers("G")
    return f"{start}\n{classic_table(METHODS, arms, 'G', study_table.setting(rows, 4))}\n{end}\n"


def test_the_classic_methods_table_reads_back_and_matches() -> None:
    """Table G: its arms found by the caption's setting, its methods' figures and verdicts recomputed from their
    predictions, m the number of methods; a changed Δ or verdict is a mismatch, and without the methods'
    predictions the table is named, not checked."""
    text = classic_written()
    (block,) = recompute.blocks(text)
    assert recompute.sets_beside(block) and not recompute.compares(block)
    rows = {row[0]: dict(zip(block.header, row, strict=True)) for row in block.rows}
    assert list(rows) == [WHEEL.label, BASELINE.label, *METHODS]
    # sa_bfgs predicts as the eye arm: its Δacc vs none is the eye arm's, at m = 2 as the eye arm's in table A.
    mean, low, high, _, _ = corrected_by_hand([0.5, 0.0, 0.0, 0.5], 1.0, 2, 0.02)
    printed = rows["sa_bfgs"]["Δacc vs none"]
    assert printed.startswith(f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] ")
    found = Audit(DECLARED, runs(), load, METHODS.__getitem__).file(text)
    assert found.mismatches == []
    assert (found.tables, found.rows, found.labels) == (["G"], 4, 16)
    # 4 rows x 4 scores x 3; 2 methods x 2 arms x 4 scores x 3; the caption's 3 + 3 figures and 4 margins
    assert found.numbers == 48 + 48 + 10
    assert found.worst[0] <= 1 + 1e-6
    for old, new in (
        (printed, printed.replace(f"{mean:+.3f}", f"{mean + 0.002:+.3f}", 1)),
        (printed, "+0.250 [-9, 9] better"),
    ):
        broken = Audit(DECLARED, runs(), load, METHODS.__getitem__).file(text.replace(old, new))
        assert any(m.startswith("Table G, row sa_bfgs, Δacc vs none") for m in broken.mismatches), broken.mismatches
    unchecked = Audit(DECLARED, runs(), load)
    with pytest.raises(AuditError, match="no compared table"):
        unchecked.file(text)
    assert any("tables G: no experiments' arms compared" in note for note in unchecked.report.notes)
