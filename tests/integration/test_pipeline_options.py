"""The whole pipeline on synthetic data with a random-init backbone, as users drive it:
`dvc repro`, `dvc exp run -S prior.init=eye`, `dvc metrics diff`, a forced rerun, one fold alone, and
a timm backbone with other feature options."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import distance
from scipy.special import rel_entr

from dvcrepo import PARAMS, STAGES, Repo, make_repo, ran
from ewmtcnn import paths
from ewmtcnn.config.sections import LDL_METHODS, Extraction
from ewmtcnn.features import extract
from ewmtcnn.io.checkpoint import load_final
from ewmtcnn.model import backbones
from ewmtcnn.study import classic
from support import write_emotion6, zip_folder


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    tmp = tmp_path_factory.mktemp("experiments")
    archive = zip_folder(write_emotion6(tmp / "src" / "Emotion6", per_emotion=6, seed=5), tmp / "Emotion6.zip")
    # The `selected` recipe, whose epochs make the curves a training history (`converged` draws its inner CV).
    repo = make_repo(tmp, **PARAMS, train__recipe="selected", data__source=str(archive))
    first = repo.dvc("repro")
    assert ran(first.stdout) == set(STAGES)
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "baseline")
    return repo


def test_repro_writes_metrics_predictions_and_plots(pipeline: Repo) -> None:
    root = pipeline.root
    summary = json.loads((root / paths.METRICS).read_text())
    scores = {"acc", "balanced_acc", "macro_f1", "kl", "chebyshev", "clark", "canberra", "cosine", "intersection"}
    scores |= {"clark_normalised", "canberra_normalised"}
    for part in ("test", "train"):
        assert set(summary[part]) == scores
        assert all(set(v) == {"mean", "std", "ci_low", "ci_high"} for v in summary[part].values())
        assert all(v["ci_low"] <= v["mean"] <= v["ci_high"] for v in summary[part].values())
    assert set(summary["baselines"]) == {"mean", "majority"}
    predictions = pd.read_csv(root / paths.PREDICTIONS)
    emotions = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    assert list(predictions.columns) == [
        "image",
        "repeat",
        "fold",
        "label",
        *(f"true_{e}" for e in emotions),
        *(f"pred_{e}" for e in emotions),
    ]
    assert len(predictions) == 2 * 36 and not predictions[["image", "repeat"]].duplicated().any()
    assert np.allclose(predictions[[f"pred_{e}" for e in emotions]].sum(axis=1), 1)
    assert set(pd.read_csv(root / paths.CONFUSION)["predicted"]) <= set(emotions)
    for picture in (paths.CURVES_PLOT, paths.CONFUSION_PLOT, paths.PER_EMOTION_PLOT, paths.PRIOR_PLOT):
        assert (root / picture).read_bytes().startswith(b"\x89PNG"), picture
    assert list(json.loads((root / paths.PER_EMOTION).read_text())) == emotions
    selection = json.loads((root / paths.SELECTION).read_text())
    assert selection["recipe"] == "selected" and len(selection["folds"]) == 6
    assert all(1 <= f["epochs"] <= 4 and f["lr_head"] in (0.0003, 0.001, 0.003, 0.01, 0.03) for f in selection["folds"])
    for repeat in range(2):
        for fold in range(3):
            assert (root / paths.fold_dir(repeat, fold) / "model.pt").is_file()


def test_metrics_recomputed_from_the_predictions_with_scipy(pipeline: Repo) -> None:
    """Every test figure in metrics.json follows from predictions.csv, by an independent route."""
    predictions = pd.read_csv(pipeline.root / paths.PREDICTIONS)
    summary = json.loads((pipeline.root / paths.METRICS).read_text())
    true = [c for c in predictions.columns if c.startswith("true_")]
    pred = [c for c in predictions.columns if c.startswith("pred_")]
    measures = ("acc", "kl", "chebyshev", "canberra", "cosine", "canberra_normalised")
    per_fold: dict[str, list[float]] = {m: [] for m in measures}
    for _, fold in predictions.groupby(["repeat", "fold"]):
        p, q = fold[true].to_numpy(), fold[pred].to_numpy()
        argmax = np.asarray([c.removeprefix("pred_") for c in pred])[q.argmax(axis=1)]
        per_fold["acc"].append(float(np.mean(argmax == fold["label"].to_numpy())))
        per_fold["kl"].append(float(rel_entr(p, q).sum(axis=1).mean()))
        per_fold["chebyshev"].append(float(np.mean([distance.chebyshev(a, b) for a, b in zip(p, q, strict=True)])))
        per_fold["canberra"].append(float(np.mean([distance.canberra(a, b) for a, b in zip(p, q, strict=True)])))
        per_fold["canberra_normalised"].append(per_fold["canberra"][-1] / p.shape[1])
        per_fold["cosine"].append(float(np.mean([1 - distance.cosine(a, b) for a, b in zip(p, q, strict=True)])))
    for measure, values in per_fold.items():
        assert summary["test"][measure]["mean"] == pytest.approx(np.mean(values), rel=1e-9)
        assert summary["test"][measure]["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9, abs=1e-12)


def test_the_classic_methods_predict_the_heads_folds_and_pair_with_them(pipeline: Repo) -> None:
    """`dvc repro` ran the classic stage on the train stage's folds: its predictions match the head's row for row
    (image, repeat, fold, label, targets), so that the paired comparisons of the study take them."""
    head = pd.read_csv(pipeline.root / paths.PREDICTIONS)
    methods = classic.read(pipeline.root)
    assert list(methods) == list(LDL_METHODS)
    key, true = ["image", "repeat", "fold", "label"], [c for c in head.columns if c.startswith("true_")]
    for table in methods.values():
        assert table[key].equals(head[key]) and np.allclose(table[true], head[true])
    text = classic.classic_table(methods, {"head": head})
    assert all(f"| {name} |" in text for name in ("head", *LDL_METHODS))
    summary = json.loads((pipeline.root / paths.CLASSIC_METRICS).read_text())
    assert list(summary) == list(LDL_METHODS) and all(entry["folds"] == 6 for entry in summary.values())


def test_forced_rerun_gives_identical_metrics(pipeline: Repo) -> None:
    before = (pipeline.root / paths.METRICS).read_bytes()
    predictions = (pipeline.root / paths.PREDICTIONS).read_bytes()
    rerun = pipeline.dvc("repro", "--force", "--single-item", "train")
    assert ran(rerun.stdout) == {"train"}
    pipeline.dvc("repro", "--force", "--single-item", "evaluate")
    assert (pipeline.root / paths.METRICS).read_bytes() == before
    assert (pipeline.root / paths.PREDICTIONS).read_bytes() == predictions


def test_one_fold_alone_equals_the_same_fold_within_all_folds(pipeline: Repo) -> None:
    fold = pipeline.root / paths.fold_dir(1, 1)
    names = ("test.csv", "train.csv", "history.csv", "selection.json", "model.pt", "fingerprint.json")
    within = {name: (fold / name).read_bytes() for name in names}
    pipeline.run(sys.executable, "-m", "stages.train", "--repeat", "1", "--fold", "1")
    assert {name: (fold / name).read_bytes() for name in within} == within


def test_a_fold_trained_alone_with_other_params_is_refused_by_evaluate(pipeline: Repo) -> None:
    """The fold-by-fold workflow: a fold of another prior is named; retrained with params.yaml's, it is accepted."""
    params = (pipeline.root / "params.yaml").read_text(encoding="utf-8")
    fold, metrics = pipeline.root / paths.fold_dir(0, 1), (pipeline.root / paths.METRICS).read_bytes()
    within = {path.name: path.read_bytes() for path in fold.iterdir()}
    pipeline.set_params(prior__init="eye")
    pipeline.run(sys.executable, "-m", "stages.train", "--repeat", "0", "--fold", "1")
    (pipeline.root / "params.yaml").write_text(params, encoding="utf-8")
    refused = pipeline.run(sys.executable, "-m", "stages.evaluate", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"{paths.fold_dir(0, 1)}: 1 of 6 folds" in refused.stderr
    assert "prior.init: 'eye' there, 'original' in params.yaml" in refused.stderr
    assert "python -m stages.train --repeat 0 --fold 1" in refused.stderr
    assert (pipeline.root / paths.METRICS).read_bytes() == metrics
    pipeline.run(sys.executable, "-m", "stages.train", "--repeat", "0", "--fold", "1")
    assert {path.name: path.read_bytes() for path in fold.iterdir()} == within
    pipeline.run(sys.executable, "-m", "stages.evaluate")
    assert (pipeline.root / paths.METRICS).read_bytes() == metrics


def test_eye_experiment_reruns_only_training_and_evaluation(pipeline: Repo) -> None:
    baseline = json.loads((pipeline.root / paths.METRICS).read_text())
    features = pipeline.stamp(paths.FEATURES)
    result = pipeline.dvc("exp", "run", "-S", "prior.init=eye")
    assert ran(result.stdout) == {"train", "evaluate"}
    assert pipeline.stamp(paths.FEATURES) == features
    assert json.loads((pipeline.root / paths.METRICS).read_text()) != baseline
    diff = pipeline.dvc("metrics", "diff", "--json")
    changed = json.loads(diff.stdout)[str(paths.METRICS)]
    assert "test.kl.mean" in changed and changed["test.kl.mean"]["old"] == baseline["test"]["kl"]["mean"]
    shown = pipeline.dvc("exp", "show", "--json")
    assert '"init": "eye"' in shown.stdout and '"init": "original"' in shown.stdout  # the experiment and its baseline


#: A small timm model, random-init here (no network): what a user's `timm/<name>` runs through.
TIMM_MODEL = "timm/mobilenetv3_small_050"


def test_a_timm_backbone_with_multi_level_features_of_two_views_runs_offline(pipeline: Repo) -> None:
    """`model.backbone: timm/<name>` with random init, and the multi-level statistics of the centre
    crop and its mirror image averaged: the features stage and what follows rerun, nothing before;
    the features are those options' and no other's, and the final model predicts a new image."""
    root = pipeline.root
    options = (
        "-S",
        f"model.backbone={TIMM_MODEL}",
        "-S",
        "features.layers=stats",
        "-S",
        "features.views=[centre,mirror]",
    )
    result = pipeline.dvc("exp", "run", *options)
    assert ran(result.stdout) == {"features", "train", "evaluate"}
    made = np.load(root / paths.FEATURES)
    backbone = backbones.get(TIMM_MODEL)
    module = extract.feature_backbone(backbone, pretrained=False)
    how = Extraction("stats", ("centre", "mirror"), 0)
    assert made.shape == (36, extract.width(module, backbone, how)) and made.shape[1] != backbone.features
    store = np.load(root / paths.IMAGES, mmap_mode="r")
    np.testing.assert_allclose(made[:3], extract.extract(module, store[:3], backbone, how), rtol=1e-5, atol=1e-6)
    centre_only = extract.extract(module, store[:3], backbone, Extraction("stats", ("centre",), 0))
    assert not np.allclose(made[:3], centre_only)  # the mirror view was averaged in
    summary = json.loads((root / paths.METRICS).read_text())
    assert all(np.isfinite(v["mean"]) for v in summary["test"].values())
    final = load_final(root / paths.FINAL)
    assert final.backbone == TIMM_MODEL and final.extraction == how.record()
    image = root / paths.RAW / "images" / "joy" / "1.jpg"
    done = pipeline.run(sys.executable, "-m", "ewmtcnn.predict", "--json", str(image), check=False)
    assert done.returncode == 0, done.stderr
    [prediction] = json.loads(done.stdout)
    assert abs(sum(prediction["distribution"].values()) - 1) < 1e-6
