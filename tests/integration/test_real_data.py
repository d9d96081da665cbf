"""The pipeline on the real Emotion6 archive (run when $EMOTION6 names it; CI does).

Expected figures come from the dataset's own description (its readme and the project's
shared/emotion6/README.md), not from this code.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import rel_entr

from dvcrepo import Repo, make_repo, ran
from ewmtcnn import paths
from ewmtcnn.data.dataset import EMOTIONS, read_ground_truth
from ewmtcnn.model.wheel import correlation_prior

GROUND_TRUTH_SHA256 = "33bdec8194d32447832420ea7f979c8f6a46a83c1c10eccd360ce9950e0e9c2e"
SIZE = 256


@pytest.fixture(scope="module")
def real(real_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """`dvc repro` of the data stages with data.source = the real archive."""
    repo = make_repo(
        tmp_path_factory.mktemp("real"),
        data__source=str(real_archive),
        data__sha256="",
        data__label="dominant",
        preprocess__size=SIZE,
        split__folds=5,
        split__seed=0,
        split__repeats=3,
    )
    first = repo.dvc("repro", "split")
    assert ran(first.stdout) == {"download", "preprocess", "split"}
    return repo


def test_all_rows_validate_and_the_table_is_the_original(real: Repo) -> None:
    raw = real.root / paths.RAW
    assert hashlib.sha256((raw / "ground_truth.txt").read_bytes()).hexdigest() == GROUND_TRUTH_SHA256
    images = sorted(p.relative_to(raw / "images").as_posix() for p in (raw / "images").rglob("*.jpg"))
    assert len(images) == 1980
    assert all(sum(1 for i in images if i.startswith(f"{e}/")) == 330 for e in EMOTIONS)


def test_labels_match_the_published_facts(real: Repo) -> None:
    labels = pd.read_csv(real.root / paths.LABELS)
    assert len(labels) == 1980
    assert (labels["valence"].min(), labels["valence"].max()) == (1.0, 8.6)
    assert (labels["arousal"].min(), labels["arousal"].max()) == (1.9, 7.9)
    probs = labels[list(EMOTIONS)].to_numpy()
    seven = labels[[*EMOTIONS, "neutral"]].to_numpy()
    assert np.abs(seven.sum(axis=1) - 1).max() < 2e-6
    is_max = probs == probs.max(axis=1, keepdims=True)
    assert (is_max.sum(axis=1) > 1).sum() == 89  # rows tying for the maximum among the six
    assert (seven.argmax(axis=1) == 6).sum() == 325  # neutral the largest of all seven
    plain_argmax = np.asarray(EMOTIONS)[probs.argmax(axis=1)]
    assert round((plain_argmax == labels["folder"]).mean(), 3) == 0.573
    # Our tie rule only ever moves a tie onto the folder emotion, so agreement can only rise.
    assert (labels["dominant"] == labels["folder"]).sum() >= (plain_argmax == labels["folder"]).sum()
    assert is_max[np.arange(1980), [EMOTIONS.index(d) for d in labels["dominant"]]].all()


def test_store_is_one_uint8_array_in_label_order(real: Repo) -> None:
    store = np.load(real.root / paths.IMAGES, mmap_mode="r")
    assert store.shape == (1980, 3, SIZE, SIZE) and store.dtype == np.uint8
    assert store[::97].std() > 0  # real pictures, not zeros


def test_three_repeats_of_five_stratified_folds_of_396(real: Repo) -> None:
    folds = pd.read_csv(real.root / paths.FOLDS)
    labels = pd.read_csv(real.root / paths.LABELS)
    assignments = []
    for repeat in range(3):
        rows = folds[folds["repeat"] == repeat]
        assert list(rows["image"]) == list(labels["image"])
        assert sorted(rows["fold"].value_counts()) == [396] * 5
        per_class = pd.crosstab(labels["dominant"], rows["fold"].to_numpy())
        assert (per_class.max(axis=1) - per_class.min(axis=1) <= 1).all()
        assignments.append(rows["fold"].tolist())
    assert assignments[0] != assignments[1] != assignments[2]


def test_second_repro_reruns_nothing(real: Repo) -> None:
    again = real.dvc("repro", "split")
    assert ran(again.stdout) == set()
    assert "Data and pipelines are up to date" in again.stdout


def test_folder_label_puts_66_of_each_folder_in_every_fold(real: Repo) -> None:
    real.set_params(data__label="folder")
    rerun = real.dvc("repro", "split")
    assert ran(rerun.stdout) == {"split"}
    folds = pd.read_csv(real.root / paths.FOLDS)
    folder = folds["image"].str.split("/").str[0]
    for repeat in range(3):
        mine = folds["repeat"] == repeat
        assert (pd.crosstab(folder[mine], folds.loc[mine, "fold"]) == 66).all().all()


def test_default_pipeline_end_to_end(real: Repo) -> None:
    """The default variant (frozen EfficientNet-Lite0 features, wheel prior, the selected recipe,
    3 repeats of 5 folds) from the real archive to metrics, predictions and plots; every test
    figure follows from the predictions."""
    real.set_params(data__label="dominant")
    result = real.dvc("repro", timeout=3600)  # about 4 min on an idle 2-core machine
    assert {"features", "train", "evaluate"} <= ran(result.stdout)
    summary = json.loads((real.root / paths.METRICS).read_text())
    predictions = pd.read_csv(real.root / paths.PREDICTIONS)
    assert len(predictions) == 3 * 1980
    assert sorted(predictions.groupby(["repeat", "fold"]).size()) == [396] * 15
    true = predictions[[f"true_{e}" for e in EMOTIONS]].to_numpy()
    pred = predictions[[f"pred_{e}" for e in EMOTIONS]].to_numpy()
    folds = [predictions["repeat"], predictions["fold"]]
    kl = pd.Series(rel_entr(true, pred).sum(axis=1)).groupby(folds).mean()
    acc = pd.Series(np.asarray(EMOTIONS)[pred.argmax(axis=1)] == predictions["label"]).groupby(folds).mean()
    assert summary["test"]["kl"]["mean"] == pytest.approx(kl.mean(), rel=1e-9)
    assert summary["test"]["acc"]["mean"] == pytest.approx(acc.mean(), rel=1e-9)  # written to 10 digits
    assert summary["test"]["acc"]["std"] == pytest.approx(acc.std(ddof=1), rel=1e-9)
    # far better than the trivial baselines, and than the paper's fixed recipe (held-out KL 0.471)
    assert summary["test"]["kl"]["ci_high"] < summary["baselines"]["mean"]["kl"]["ci_low"]
    assert summary["test"]["acc"]["ci_low"] > summary["baselines"]["majority"]["acc"]["ci_high"]
    assert summary["test"]["kl"]["ci_high"] < 0.471
    for plot in (paths.CURVES_PLOT, paths.CONFUSION, paths.CONFUSION_PLOT, paths.PER_EMOTION_PLOT, paths.PRIOR_PLOT):
        assert (real.root / plot).stat().st_size > 0


def test_corr_on_the_real_table(real_archive: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(real_archive) as zf:
        zf.extract("Emotion6/ground_truth.txt", tmp_path)
    table = read_ground_truth(tmp_path / "Emotion6")
    assert len(table) == 1980
    probabilities = table[list(EMOTIONS)].to_numpy()
    c = correlation_prior(probabilities)
    np.testing.assert_array_equal(c, c.T)
    np.testing.assert_allclose(c, np.corrcoef(probabilities, rowvar=False), rtol=0, atol=1e-12)
