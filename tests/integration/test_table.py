"""The variants tables (ewmtcnn.study.table, ewmtcnn.study.table_columns).

- Every cell of small tables made here, worked out by hand, and the score columns derived from one list.
- The whole command on the experiments of a throwaway DVC project (tests/variants_project.py).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from dvcrepo import Repo
from ewmtcnn import InputError, cli
from ewmtcnn.evaluation import metrics
from ewmtcnn.study import table
from ewmtcnn.study.design import BASELINE, GRIDS, Arm, Experiment, Grid
from ewmtcnn.study.experiments import experiments as experiment_rows
from ewmtcnn.study.experiments import grid_rows
from ewmtcnn.study.paired import (
    EQUIVALENT,
    EQUIVALENT_DIFFERS,
    HELPS,
    INCONCLUSIVE,
    Assessment,
    Comparison,
    Paired,
    assess,
    compare,
)
from ewmtcnn.study.protocol import MARGINS
from ewmtcnn.study.published import HELD_OUT
from ewmtcnn.study.table import comparison_table, markers, reimplementation_table, replace_block
from variants_project import build, read_show, table_command

ORIGINAL_FREEZE_DIRECT = Arm("original", True, "direct")
ORIGINAL_FREEZE_SEED = Arm("original", True, "seed")
PARAMS = {
    "model.pretrained": True,
    "train.finetune": False,
    "data.neutral": "drop",
    "data.label": "dominant",
    "model.backbone": "efficientnet_lite0",
    "split.folds": 5,
    "split.seed": 0,
    "split.repeats": 3,
    "train.recipe": "selected",
    "train.lambda": 0.7,
    "train.epochs": 20,
    "train.lr_head": 0.01,
    "train.weight_decay": 0.0005,
    "select.epochs": 60,
    "select.share": 0.2,
}


def cells(line: str) -> list[str]:
    """The cells of one markdown table line."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_lines(text: str) -> list[list[str]]:
    """The header and the rows of the markdown table in `text`, as cells (the separator left out)."""
    return [cells(line) for line in text.splitlines() if line.startswith("| ")]


def figures(prefix: str, score: str, mean: float, low: float, high: float) -> dict[str, float]:
    """One score of metrics.json as `dvc exp show` flattens it."""
    return {f"{prefix}.{score}.{stat}": value for stat, value in (("mean", mean), ("ci_low", low), ("ci_high", high))}


def made_rows(params: dict[str, object], *experiments_: dict[str, float]) -> pd.DataFrame:
    """`experiments.grid_rows` of none and one other arm: `params` and each experiment's metrics."""
    labels = [BASELINE.label, "other"]
    return pd.DataFrame([{**params, **metrics} for metrics in experiments_], index=pd.Index(labels, name="variant"))


def no_difference(repeats: int, folds: int) -> Comparison:
    """The comparison of an arm that predicts as the baseline does, on 60 images."""
    paired = Paired(60, repeats, folds, 0.25, dict.fromkeys(MARGINS, (0.0,) * (repeats * folds)), 0.0, 0.0)
    return Comparison(paired, {score: assess(paired, score, 1) for score in MARGINS})


def test_comparison_table_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two scores (the list cut short), two arms, the two trivial baselines, the chosen settings."""
    monkeypatch.setattr(metrics, "SCORES", ("acc", "kl"))
    grid = Grid("A", "made here", (BASELINE, ORIGINAL_FREEZE_DIRECT), (("train.recipe", "selected"),))
    none = {
        **figures("test", "acc", 0.5812, 0.5712, 0.6012),
        **figures("test", "kl", 0.51234, 0.50234, 0.53234),
        **figures("baselines.mean", "acc", 0.3034, 0.2934, 0.3234),
        **figures("baselines.mean", "kl", 0.68012, 0.67012, 0.70012),
        **figures("baselines.majority", "acc", 0.3034, 0.2934, 0.3234),
    }
    other = {**figures("test", "acc", 0.5913, 0.5813, 0.6113), **figures("test", "kl", 0.47151, 0.46151, 0.49151)}
    rows = made_rows(PARAMS, none, other).rename(index={"other": ORIGINAL_FREEZE_DIRECT.label})
    paired = Paired(
        images=1980, repeats=3, folds=5, test_train_ratio=0.25, differences={}, kl_median=-0.03112, kl_improved=0.6237
    )
    chosen = {
        BASELINE: {
            "epochs": {"median": 7.0, "min": 3.0, "max": 15.0},
            "lr_head": {"median": 0.01, "min": 0.003, "max": 0.03},
            "weight_decay": {"median": 0.0001, "min": 0.0, "max": 0.01},
        },
        ORIGINAL_FREEZE_DIRECT: {
            "epochs": {"median": 8.5, "min": 4.0, "max": 20.0},
            "lr_head": {"median": 0.03, "min": 0.01, "max": 0.1},
            "weight_decay": {"median": 0.001, "min": 0.0001, "max": 0.01},
        },
    }
    assessed = {
        "kl": Assessment(-0.04083, -0.05526, -0.02640, 0.95, 0.01, 0.00004, 1.0, HELPS),
        "acc": Assessment(0.0101, -0.0052, 0.0254, 0.95, 0.02, 0.092, 0.6123, INCONCLUSIVE),
        "balanced_acc": Assessment(0.0041, -0.0062, 0.0144, 0.95, 0.02, 0.45, 0.0124, EQUIVALENT),
        "macro_f1": Assessment(0.0093, 0.0021, 0.0165, 0.95, 0.02, 0.021, 0.0344, EQUIVALENT_DIFFERS),
    }
    compared = {ORIGINAL_FREEZE_DIRECT: Comparison(paired, assessed)}
    text = comparison_table(grid, rows, compared, chosen)
    assert table_lines(text) == [
        [
            "init",
            "freeze",
            "head",
            "acc",
            "KL",
            "ΔKL vs none",
            "median ΔKL",
            "images improved (KL)",
            "p KL differs",
            "p KL within ±0.01",
            "Δacc vs none",
            "p acc differs",
            "p acc within ±0.02",
            "Δbalanced acc vs none",
            "p balanced acc differs",
            "p balanced acc within ±0.02",
            "Δmacro-F1 vs none",
            "p macro-F1 differs",
            "p macro-F1 within ±0.02",
            "prior for KL",
            "prior for acc",
            "prior for balanced acc",
            "prior for macro-F1",
            "epochs chosen",
            "lr_head chosen",
            "weight_decay chosen",
        ],
        [
            "none",
            "-",
            "-",
            "0.581 [0.571, 0.601]",
            "0.5123 [0.5023, 0.5323]",
            *["-"] * 18,
            "7 [3–15]",
            "0.01 [0.003–0.03]",
            "0.0001 [0–0.01]",
        ],
        [
            "original",
            "freeze",
            "direct",
            "0.591 [0.581, 0.611]",
            "0.4715 [0.4615, 0.4915]",
            "-0.0408 [-0.0553, -0.0264]",
            "-0.0311",
            "62.4%",
            "< 0.001",
            "1.000",
            "+0.010 [-0.005, +0.025]",
            "0.092",
            "0.612",
            "+0.004 [-0.006, +0.014]",
            "0.450",
            "0.012",
            "+0.009 [+0.002, +0.017]",
            "0.021",
            "0.034",
            "helps",
            "inconclusive",
            "equivalent",
            "equivalent (differs by less than the margin)",
            "8.5 [4–20]",
            "0.03 [0.01–0.1]",
            "0.001 [0.0001–0.01]",
        ],
        ["baseline: mean distribution", "-", "-", "0.303 [0.293, 0.323]", "0.6801 [0.6701, 0.7001]", *["-"] * 21],
        ["baseline: majority class", "-", "-", "0.303 [0.293, 0.323]", *["-"] * 22],
    ]
    caption = text.splitlines()[0]
    assert caption.startswith(
        "**Table A: made here.** Emotion6, 1980 images, 6 emotions (neutral dropped), class label `dominant`; "
        "efficientnet_lite0 (ImageNet weights), frozen features, head trained; epochs (early stopping on KL, at "
        "most 60), lr_head and weight_decay chosen per training fold on a stratified inner validation split of "
        "20% of it; 3 repeats of 5-fold cross-validation (split seeds 0 to 2). Scores on the held-out folds: "
        "mean over the 3 × 5 folds [95% corrected resampled t intervals (Nadeau & Bengio, 2003)"
    )
    assert (
        "Δ: arm − none on the same test images, mean over the folds [the corrected resampled t interval at "
        "1 − 0.05/m = 95%, Bonferroni-simultaneous over the m = 1 arms of each measure]. Labels are read from that "
        "interval against the declared margins of equivalence (±0.01 KL, ±0.02 acc, ±0.02 balanced acc, ±0.02 "
        "macro-F1): helps / hurts when it excludes 0, equivalent when it lies inside the margin, equivalent (differs "
        "by less than the margin) when both, inconclusive when neither."
    ) in caption
    assert caption.endswith(
        "Chosen: median [min–max] over the 15 training folds of the settings picked on their inner validation, and "
        "how many folds picked the smallest or largest value of its grid."
    )


def test_a_table_of_fixed_settings_says_them_and_has_no_chosen_columns() -> None:
    params = {**PARAMS, "train.recipe": "fixed", "data.neutral": "keep", "model.pretrained": False, "split.repeats": 1}
    scores = {
        **{k: v for s in metrics.SCORES for k, v in figures("test", s, 0.5, 0.4, 0.6).items()},
        **{k: v for s in metrics.SCORES for k, v in figures("baselines.mean", s, 0.5, 0.4, 0.6).items()},
    }
    rows = made_rows(params, scores, scores).rename(index={"other": ORIGINAL_FREEZE_DIRECT.label})
    grid = Grid("B", "fixed", (BASELINE, ORIGINAL_FREEZE_DIRECT), ())
    text = comparison_table(grid, rows, {ORIGINAL_FREEZE_DIRECT: no_difference(1, 5)}, {})
    header = table_lines(text)[0]
    assert header[-1] == "prior for macro-F1" and not any("chosen" in name for name in header)
    assert (
        "Emotion6, 60 images, 7 emotions (neutral kept), class label `dominant`; efficientnet_lite0 (random init), "
        "frozen features, head trained; lambda 0.7; 20 epochs, lr_head 0.01, weight_decay 0.0005; 5-fold "
        "cross-validation "
        "(split seed 0). Scores on the held-out folds: mean over the 1 × 5 folds"
    ) in text
    assert "Chosen" not in text


def test_score_columns_come_from_one_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Header and cells come from the same columns.

    - A score added to metrics.SCORES appears in both, in its place.
    - Every row keeps one cell per header cell, and a baseline without the score shows `-`.
    """
    monkeypatch.setattr(metrics, "SCORES", (*metrics.SCORES, "euclidean"))
    none = {
        **{k: v for s in metrics.SCORES for k, v in figures("test", s, 0.25, 0.2, 0.3).items()},
        **{k: v for s in metrics.SCORES for k, v in figures("baselines.mean", s, 0.25, 0.2, 0.3).items()},
        **{
            k: v
            for s in ("acc", "balanced_acc", "macro_f1")
            for k, v in figures("baselines.majority", s, 1, 1, 1).items()
        },
    }
    rows = made_rows({**PARAMS, "train.recipe": "fixed"}, none, none).rename(index={"other": "original freeze direct"})
    grid = Grid("B", "fixed", (BASELINE, ORIGINAL_FREEZE_DIRECT), ())
    header, *lines = table_lines(comparison_table(grid, rows, {ORIGINAL_FREEZE_DIRECT: no_difference(3, 5)}, {}))
    assert header[3:15] == [
        "acc",
        "balanced acc",
        "macro-F1",
        "KL",
        "Chebyshev",
        "Clark",
        "Canberra",
        "Cosine",
        "Intersection",
        "Clark / √c",
        "Canberra / c",
        "Euclidean",
    ]
    assert [len(line) for line in lines] == [len(header)] * 4
    column = header.index("Euclidean")
    assert [line[column] for line in lines] == ["0.250 [0.200, 0.300]"] * 3 + ["-"]
    assert [line[header.index("macro-F1")] for line in lines] == ["0.250 [0.200, 0.300]"] * 3 + ["1.000 [1.000, 1.000]"]


def test_reimplementation_table_by_hand() -> None:
    grid = Grid("C", "made here", (BASELINE, ORIGINAL_FREEZE_SEED), (("data.label", "folder"),))
    none = {
        **figures("train", "acc", 0.943, 0.921, 0.965),
        **figures("train", "kl", 0.1986, 0.1901, 0.2071),
        **figures("test", "acc", 0.4861, 0.4632, 0.5090),
        **figures("test", "kl", 0.4743, 0.4502, 0.4984),
    }
    seed = {
        **figures("train", "acc", 0.7951, 0.7502, 0.8400),
        **figures("train", "kl", 0.4476, 0.4011, 0.4941),
        **figures("test", "acc", 0.4524, 0.4013, 0.5035),
        **figures("test", "kl", 0.55851, 0.52012, 0.59691),
    }
    params = {**PARAMS, "data.label": "folder", "train.recipe": "fixed"}
    rows = made_rows(params, none, seed).rename(index={"other": ORIGINAL_FREEZE_SEED.label})
    text = reimplementation_table(grid, rows, 1980)
    assert table_lines(text) == [
        [
            "init",
            "freeze",
            "head",
            "train acc (in place)",
            "reimpl. train acc",
            "train KL / 6 (in place)",
            "reimpl. train KL / 6",
            "test acc",
            "test KL",
        ],
        # 0.1986 / 6 = 0.0331; 0.4476 / 6 = 0.0746
        [
            "none",
            "-",
            "-",
            "94.3%",
            "74.747%",
            "0.0331",
            "0.0456907",
            "0.486 [0.463, 0.509]",
            "0.4743 [0.4502, 0.4984]",
        ],
        [
            "original",
            "freeze",
            "seed",
            "79.5%",
            "50.051%",
            "0.0746",
            "0.0912462",
            "0.452 [0.401, 0.503]",
            "0.5585 [0.5201, 0.5969]",
        ],
    ]
    caption = text.splitlines()[0]
    assert caption.startswith(
        "**Table C: made here.** Emotion6, 1980 images, 6 emotions (neutral dropped), class "
        "label `folder`; efficientnet_lite0 (ImageNet weights), frozen features, head trained; "
        "lambda 0.7; 20 epochs, lr_head 0.01, weight_decay 0.0005; 3 repeats of 5-fold"
    )
    assert caption.endswith(
        "Comparable in ordering only: efficientnet_lite0 is not the reimplementation's backbone, and it is not "
        "fine-tuned here."
    )


def test_a_grid_that_varies_the_backbone_leaves_it_to_each_row() -> None:
    """Tables F, H and I: the caption says the backbone is each row's own, and each row's params cell names it."""
    row = pd.Series({**PARAMS, "model.backbone": "efficientnet_lite2"})
    rows = pd.DataFrame([row])
    assert "; as in each row (ImageNet weights), frozen features, head trained; " in table.setting(
        rows, 1980, {"model.backbone", "preprocess.size"}
    )
    assert "; efficientnet_lite2 (ImageNet weights), frozen features, head trained; " in table.setting(rows, 1980)


def test_replace_block() -> None:
    start, end = markers("B")
    assert (start, end) == ("<!-- table-B:start -->", "<!-- table-B:end -->")
    other = "\n".join(markers("A"))
    assert replace_block(f"a\n{other}\n{start}\nx\n{end}\nb\n", "B", "T") == f"a\n{other}\n{start}\nT\n{end}\nb\n"
    with pytest.raises(InputError, match="needs one <!-- table-B:start --> line followed by one"):
        replace_block(f"{end}\n{start}\n", "B", "T")
    with pytest.raises(InputError, match="needs one"):
        replace_block(f"{start}\n{start}\n{end}\n", "B", "T")
    with pytest.raises(InputError, match="needs one"):
        replace_block(other, "B", "T")


# --- on the experiments of a throwaway DVC project ---------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return build(tmp_path_factory.getbasetemp())


def committed(project: Repo, rev: str, path: str) -> str:
    return project.run("git", "show", f"{rev}:{path}").stdout


def test_tables_of_the_experiments(project: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every table's cells against the experiments' committed files.

    - Tables A, B and D: each experiment's metrics, chosen hyperparameters, and the paired tests of
      its predictions.
    - Table C: the training figures; table E: the held-out figures, after the published rows.
    """
    monkeypatch.chdir(project.root)  # where `git show` finds the experiments' commits
    frame = experiment_rows(read_show(project))
    texts, charted = table.tables(frame)
    assert list(texts) == ["A", "B", "C", "D", "E"]
    assert list(charted) == [grid for grid in GRIDS if grid.kind == "compared"]  # A, B and D
    for grid in GRIDS:
        rows = grid_rows(frame, grid)
        header, *lines = table_lines(texts[grid.name])
        trivial = 2 if grid.arms[0] == BASELINE else 0
        published = len(HELD_OUT) if grid.kind == "published" else 0
        assert len(lines) == published + len(grid.arms) + (trivial if grid.kind == "compared" else 0)
        lines = lines[published:]
        predictions = {
            arm: pd.read_csv(io.StringIO(committed(project, rows.at[arm.label, "rev"], "metrics/predictions.csv")))
            for arm in grid.arms
        }
        compared = compare(predictions, grid.arms[0]) if grid.kind == "compared" else {}
        for arm, line in zip(grid.arms, lines, strict=False):
            cell = dict(zip(header, line, strict=True))
            metrics = json.loads(committed(project, rows.at[arm.label, "rev"], "metrics/metrics.json"))
            kl = metrics["test"]["kl"]
            name = "test KL" if grid.kind == "reimplementation" else "KL"
            assert cell[name] == f"{kl['mean']:.4f} [{kl['ci_low']:.4f}, {kl['ci_high']:.4f}]"
            if grid.kind == "published":
                assert cell["method"] == f"ours: {arm.init} {arm.mode} {arm.head}, frozen efficientnet_lite0"
                assert cell["protocol"].endswith(f"label `{dict(Experiment(grid, arm).params())['data.label']}`")
                continue
            assert (cell["init"], cell["freeze"], cell["head"]) == (arm.init, arm.mode or "-", arm.head or "-")
            if grid.kind == "reimplementation":
                assert cell["train acc (in place)"] == f"{100 * metrics['train']['acc']['mean']:.1f}%"
                continue
            assert ("params" in cell) == (grid.name in ("A", "D"))
            if grid.name in ("A", "D"):
                assert cell["params"] == (", ".join(f"{param} {value}" for param, value in arm.pinned) or "-")
            if arm == grid.arms[0]:
                assert cell[f"ΔKL vs {arm.label}"] == "-"
            else:
                c = compared[arm]
                assert cell["median ΔKL"] == f"{c.paired.kl_median:+.4f}"
                assert [cell[f"prior for {name}"] for name in ("KL", "acc", "balanced acc", "macro-F1")] == [
                    c.tests[score].label for score in MARGINS
                ]
            assert "epochs chosen" not in cell  # A's recipe chooses the weight decay alone; B and D choose nothing
            if grid.name == "A":
                chosen = json.loads(committed(project, rows.at[arm.label, "rev"], "metrics/selection.json"))
                decay, grid_ = chosen["weight_decay"], rows.at[arm.label, "select.weight_decay"]
                ends = sum(fold["weight_decay"] in (min(grid_), max(grid_)) for fold in chosen["folds"])
                spread = f"{decay['median']:g} [{decay['min']:g}–{decay['max']:g}]"
                assert cell["weight_decay chosen"] == f"{spread}; {ends}/{len(chosen['folds'])} at a grid end"
            else:
                assert "weight_decay chosen" not in cell
        # The fake stage's one clearly better arm (predictions closer to the truth) helps on both measures.
        if grid.name in ("A", "B"):
            better = dict(zip(header, lines[grid.arms.index(Arm("corr", True, "direct"))], strict=True))
            assert (better["prior for KL"], better["prior for acc"]) == ("helps", "helps")


def test_table_command_end_to_end(project: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    done = table_command(project)
    assert done.returncode == 0, done.stderr
    readme = (project.root / "docs" / "results.md").read_text()
    assert readme.startswith("# Project\n\nIntro.\n\n<!-- table-A:start -->\n**Table A: ")
    assert readme.endswith("<!-- table-E:end -->\n\n## After\n\nkept\n")
    for grid, rows in zip(GRIDS, (17, 15, 7, 5, 6), strict=True):
        start, end = markers(grid.name)
        block = readme.split(start)[1].split(end)[0]
        assert f"old table {grid.name}" not in block and block.strip() in done.stdout
        assert sum(line.startswith("| ") for line in block.splitlines()) == 1 + rows
    chart = (project.root / "plots" / "variants.png").read_bytes()
    assert chart.startswith(b"\x89PNG")
    assert "skipped experiment broken" in done.stderr and "skipped experiment pending" in done.stderr
    # Again, in process, from the saved dvc exp show: the same results document and the same chart bytes.
    monkeypatch.chdir(project.root)
    table.main(["--show-json", "show.json", "--plot", "plots/again.png"])
    assert (project.root / "docs" / "results.md").read_text() == readme
    assert (project.root / "plots" / "again.png").read_bytes() == chart


def test_table_command_errors(
    project: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project.root)
    plain = tmp_path / "README.md"
    only_a = "# two tables only\n" + "\n".join([*markers("A"), *markers("B")]) + "\n"
    plain.write_text(only_a)
    with pytest.raises(SystemExit) as exit_:
        cli.run(lambda: table.main(["--results", str(plain), "--show-json", "show.json"]))
    assert exit_.value.code == 1
    start, end = markers("C")
    assert capsys.readouterr().err == f"error: the results document needs one {start} line followed by one {end} line\n"
    assert plain.read_text() == only_a
    with pytest.raises(InputError, match="absent.md: No such file"):
        table.main(["--results", str(tmp_path / "absent.md")])
    with pytest.raises(InputError, match="absent.json: No such file"):
        table.main(["--show-json", str(tmp_path / "absent.json")])
