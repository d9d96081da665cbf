"""`ewmtcnn compare A B`, `ewmtcnn classic` and `make show` on the variants tables' project (tests/variants_project.py).

- compare's figures are the table code's for the same pair (`paired.compare`), and a hand computation's
  with SciPy from the two experiments' committed predictions.
- It refuses two runs on different folds with one line, and reads the working tree as `workspace`.
- `ewmtcnn classic A`, with B's predictions standing as a classic method's, gives compare's B - A; a method on
  other images is refused in one line.
- `python -m ewmtcnn.study.show` at 200 columns: the headline means are numbers, not `…`.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import spatial, special, stats

from dvcrepo import Repo
from ewmtcnn import paths
from ewmtcnn.evaluation.report import HEADLINE
from ewmtcnn.study import experiments, paired
from ewmtcnn.study.compare import NOT_TESTED
from ewmtcnn.study.design import Experiment
from ewmtcnn.study.protocol import MARGINS
from support import REPO
from variants_project import QUEUED, TABLE_A, build, exp_name, read_show

#: A (the table's first arm, `none`) and B (the arm the fake stage makes clearly closer to the truth).
A, B = exp_name(QUEUED), exp_name(Experiment(TABLE_A, next(a for a in TABLE_A.arms if a.label == "corr freeze direct")))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return build(tmp_path_factory.getbasetemp())


def command(project: Repo, *args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m <args>` in the project, importing this checkout's package."""
    env = {**project.env, "PYTHONPATH": str(REPO), **({"COLUMNS": str(columns)} if columns else {})}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=project.root, env=env, capture_output=True, text=True, timeout=300
    )


def committed(project: Repo, name: str, path: str) -> str:
    rev = project.run("git", "rev-parse", f"refs/exps/{baseline(project)}/{name}").stdout.strip()
    return project.run("git", "show", f"{rev}:{path}").stdout


def baseline(project: Repo) -> str:
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    return f"{head[:2]}/{head[2:]}"


def fold_scores_by_hand(table: pd.DataFrame) -> pd.DataFrame:
    """Per (repeat, fold): accuracy, KL and cosine similarity, each image's written out with SciPy."""
    true = table.filter(like="true_").to_numpy()
    pred = table.filter(like="pred_").to_numpy()
    emotions = [c.removeprefix("pred_") for c in table.filter(like="pred_").columns]
    per_image = pd.DataFrame(
        {
            "repeat": table["repeat"],
            "fold": table["fold"],
            "acc": np.array(emotions)[pred.argmax(axis=1)] == table["label"].to_numpy(),
            "kl": special.rel_entr(true, pred).sum(axis=1),
            "cosine": [1 - spatial.distance.cosine(t, p) for t, p in zip(true, pred, strict=True)],
        }
    )
    return per_image.groupby(["repeat", "fold"]).mean()


def corrected_by_hand(d: np.ndarray, ratio: float, margin: float | None) -> dict[str, float]:
    """The corrected resampled t interval at 95%; with a margin, its p and TOST's p against ±margin (times 2, m = 1)."""
    j, mean = len(d), d.mean()
    se = math.sqrt((1 / j + ratio) * d.var(ddof=1))
    half = stats.t.ppf(0.975, j - 1) * se
    found = {"mean": mean, "low": mean - half, "high": mean + half}
    if margin is not None:  # tested: both p-values too
        found["p_differs"] = 2 * stats.t.sf(abs(mean) / se, j - 1)
        beyond = max(stats.t.sf((mean + margin) / se, j - 1), stats.t.cdf((mean - margin) / se, j - 1))
        found["p_equivalent"] = min(1.0, 2 * beyond)
    return found


def test_compare_is_the_table_codes_and_a_hand_computation(project: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    result = command(project, "ewmtcnn.study.compare", A, B, "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert (found["a"], found["b"], found["images"], found["repeats"], found["folds"]) == (A, B, 60, 3, 5)
    measures = found["measures"]

    # The table code on the same pair, from `dvc exp show` as `make table` reads it.
    frame = experiments.experiments(read_show(project))
    monkeypatch.chdir(project.root)  # `git show` of each experiment's commit
    tables = {name: experiments.predictions(frame[frame["name"] == name].iloc[0]) for name in (A, B)}
    table = paired.compare(tables, A)[B]
    for score, assessed in table.tests.items():
        got = measures[score]
        assert (got["mean"], got["low"], got["high"]) == pytest.approx((assessed.mean, assessed.low, assessed.high))
        assert (got["p_differs"], got["p_equivalent"]) == pytest.approx((assessed.p_differs, assessed.p_equivalent))
        assert got["label"] == assessed.label and got["margin"] == MARGINS[score]

    # By hand, from the committed predictions: 12 test images and 48 training images per fold.
    hand = {
        name: fold_scores_by_hand(pd.read_csv(StringIO(committed(project, name, "metrics/predictions.csv"))))
        for name in (A, B)
    }
    for score in ("acc", "kl", "cosine"):
        d = (hand[B][score] - hand[A][score]).to_numpy(dtype=float)
        expected = corrected_by_hand(d, 12 / 48, MARGINS.get(score))
        assert {k: measures[score][k] for k in expected} == pytest.approx(expected, rel=1e-9)
    # B is the arm made closer to the truth: it helps on the tested measures; cosine has no margin.
    assert measures["kl"]["label"] == measures["acc"]["label"] == "helps"
    assert measures["cosine"]["label"] == NOT_TESTED and measures["cosine"]["p_differs"] is None
    assert set(measures) == {*MARGINS, "chebyshev", "clark", "canberra", "cosine", "intersection",
                             "clark_normalised", "canberra_normalised"}  # fmt: skip


def test_compare_prints_a_row_per_measure(project: Repo) -> None:
    result = command(project, "ewmtcnn.study.compare", A, B)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"B = {B}, A = {A}" in lines[0]
    kl = next(line for line in lines if line.startswith("kl "))
    assert re.search(r"-0\.\d{4} \[-0\.\d{4}, -0\.\d{4}\] .* \(±0\.01\) +helps$", kl), kl


def test_compare_refuses_other_folds_in_one_line(project: Repo) -> None:
    params = project.root / "params.yaml"
    before = params.read_text()
    try:
        project.set_params(split__seed=7)
        result = command(project, "ewmtcnn.study.compare", "workspace", A)
    finally:
        params.write_text(before)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"error: workspace and {A} are not on the same folds and images (split.seed 7 vs 0): "
        "a paired comparison needs the same split\n"
    )
    unknown = command(project, "ewmtcnn.study.compare", "no-such-run", A)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: no-such-run: cannot read params.yaml")


@pytest.fixture
def method_b(project: Repo) -> Iterator[Path]:
    """B's committed predictions written where the classic stage writes SA-BFGS's, removed afterwards."""
    path = project.root / paths.classic_predictions("sa_bfgs")
    path.parent.mkdir(parents=True)
    path.write_text(committed(project, B, "metrics/predictions.csv"))
    yield path
    shutil.rmtree(project.root / paths.CLASSIC)


def test_classic_sets_a_method_beside_a_head_as_compare_does(project: Repo, method_b: Path) -> None:
    result = command(project, "ewmtcnn.study.classic", A, A)  # a head named twice is compared once
    assert result.returncode == 0, result.stderr
    cells = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")]
        for line in result.stdout.splitlines()
        if line.startswith("| ")
    }
    header = cells["method"]
    assert list(cells) == ["method", A, "sa_bfgs"]
    measures = json.loads(command(project, "ewmtcnn.study.compare", A, B, "--json").stdout)["measures"]
    for score, digits in (("kl", 4), ("acc", 3)):
        m = measures[score]
        expected = f"{m['mean']:+.{digits}f} [{m['low']:+.{digits}f}, {m['high']:+.{digits}f}] better"
        label = "ΔKL" if score == "kl" else "Δacc"
        assert cells["sa_bfgs"][header.index(f"{label} vs {A}")] == expected
    assert "1 − 0.05/m = 95%, simultaneous over the m = 1 methods" in result.stdout


def test_classic_refuses_a_method_on_other_images_in_one_line(project: Repo, method_b: Path) -> None:
    table = pd.read_csv(method_b)
    table.iloc[:-1].to_csv(method_b, index=False)  # one image fewer
    result = command(project, "ewmtcnn.study.classic")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_show_fits_the_headline_means_in_200_columns(project: Repo) -> None:
    result = command(project, "ewmtcnn.study.show", "--no-pager", columns=200)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip() and not line.strip().startswith("─")]
    assert max(map(len, lines)) <= 200
    header = re.split(r" {2,}", lines[0].strip())
    assert header[: 1 + len(HEADLINE)] == ["Experiment", *HEADLINE]
    assert "prior.init" in header  # a varied param; constant ones (split.folds) and other metrics are dropped
    assert "split.folds" not in header and not [h for h in header if h.endswith((".mean", ".ci_low"))]
    row = next(line for line in lines if f"[{A}]" in line)
    cells = dict(zip(header, re.split(r" {2,}", row.strip()), strict=True))
    headline = json.loads(committed(project, A, "metrics/headline.json"))
    for score in HEADLINE:
        assert float(cells[score]) == pytest.approx(headline[score], abs=1e-5)
    assert cells["prior.init"] == "none"
