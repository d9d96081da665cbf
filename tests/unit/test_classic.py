"""The classic stage: the classic LDL methods cross-validated on the train stage's features, folds and targets.

- One out-of-fold prediction per image and repeat, laid out and ordered as metrics/predictions.csv.
- Selection and standardisation see a fold's training rows only.
- An unknown method is refused before anything is read or written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ewmtcnn import InputError, cli, ldl
from ewmtcnn.config import sections
from ewmtcnn.config.sections import LDL_METHODS, Classic
from ewmtcnn.data import dataset, folds
from ewmtcnn.data.dataset import EMOTIONS, LABEL_COLUMNS
from ewmtcnn.evaluation import predictions
from ewmtcnn.training import classic, crossval
from stages import classic as stage
from support import tree, write_params

#: 15 images of each emotion: 3 outer folds leave 60 training images, and 3 inner folds 40 to fit on, fewer
#: than AA-kNN's largest k.
N, WIDTH, FOLDS, REPEATS = 90, 5, 3, 2


def labels() -> pd.DataFrame:
    """A labels table as the preprocess stage writes it: random distributions, each image's dominant emotion."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), N)
    dominant = np.arange(N) % len(EMOTIONS)
    probs[np.arange(N), dominant] += 1.5  # the dominant emotion leads, and every class has N / 6 images
    probs /= probs.sum(axis=1, keepdims=True)
    table = pd.DataFrame(probs, columns=list(dataset.DISTRIBUTION))
    table.insert(0, "image", [f"{EMOTIONS[c]}/{i}.jpg" for i, c in enumerate(dominant)])
    table.insert(1, "folder", [EMOTIONS[c] for c in dominant])
    table.insert(2, "valence", 5.0)
    table.insert(3, "arousal", 5.0)
    table["dominant"] = [EMOTIONS[c] for c in dominant]
    return table[list(LABEL_COLUMNS)]


def features(table: pd.DataFrame) -> np.ndarray:
    """(N, WIDTH) float32 features that carry the six emotions' probabilities, plus noise."""
    rng = np.random.default_rng(1)
    signal = table[list(EMOTIONS)].to_numpy() @ rng.normal(0, 3, (len(EMOTIONS), WIDTH))
    return (signal + rng.normal(0, 1, (N, WIDTH))).astype(np.float32)


def workspace(root: Path, methods: list[str]) -> pd.DataFrame:
    """`root` as the classic stage finds it: params.yaml, the labels, the folds and the features; the labels."""
    table = labels()
    (root / "data" / "prepared").mkdir(parents=True)
    table.to_csv(root / "data" / "prepared" / "labels.csv", index=False)
    folds.assign(table, "dominant", FOLDS, 0, REPEATS).to_csv(root / "data" / "folds.csv", index=False)
    np.save(root / "data" / "features.npy", features(table))
    write_params(root, split={"folds": FOLDS, "repeats": REPEATS}, classic={"methods": methods, "pca": 0})
    return table


def test_one_prediction_per_held_out_image_per_repeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every method's predictions.csv: each image once per repeat, in its own fold, with its targets and label;
    metrics/classic.json's scores are those of the folds' rows, recomputed here with scipy."""
    table = workspace(tmp_path, list(LDL_METHODS))
    monkeypatch.chdir(tmp_path)
    stage.main(sections.load())
    assignment = pd.read_csv(tmp_path / "data" / "folds.csv")
    targets = table[list(EMOTIONS)].to_numpy()
    targets = targets / targets.sum(axis=1, keepdims=True)
    summary = json.loads((tmp_path / "metrics" / "classic.json").read_text(encoding="utf-8"))
    assert list(summary) == list(LDL_METHODS)
    assert sorted(path.name for path in (tmp_path / "data" / "classic").iterdir()) == sorted(LDL_METHODS)
    for method in LDL_METHODS:
        out = pd.read_csv(tmp_path / "data" / "classic" / method / "predictions.csv")
        assert list(out.columns) == predictions.header(EMOTIONS)
        # ordered as evaluate orders metrics/predictions.csv: by repeat, then as the labels table
        assert out[["image", "repeat"]].equals(assignment[["image", "repeat"]])
        assert (out["fold"] == assignment["fold"]).all()
        assert (out["label"] == np.tile(table["dominant"], REPEATS)).all()
        assert np.allclose(predictions.true(out), np.tile(targets, (REPEATS, 1)), rtol=1e-9)
        pred = predictions.pred(out)
        assert (pred > 0).all() and np.allclose(pred.sum(axis=1), 1)
        by_fold = out.groupby(["repeat", "fold"])
        kl = by_fold.apply(lambda rows: stats.entropy(predictions.true(rows), predictions.pred(rows), axis=1).mean())
        acc = by_fold.apply(lambda rows: (predictions.pred(rows).argmax(axis=1) == predictions.classes(rows)).mean())
        scores = summary[method]
        assert scores["folds"] == FOLDS * REPEATS and 0 <= scores["boundary_folds"] <= FOLDS * REPEATS
        assert scores["test"]["kl"]["mean"] == pytest.approx(kl.mean(), rel=1e-8)
        assert scores["test"]["acc"]["mean"] == pytest.approx(acc.mean(), rel=1e-9)  # JSON keeps 10 digits
        assert list(scores["chosen"]) == list(ldl.method(method).axes)
    assert summary["aa_knn"]["chosen"]["k"]["max"] <= 40  # what each inner fold fits on: every k fits


def test_selection_never_reads_held_out_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrambling one fold's held-out features and targets leaves what every method was selected on, and chose,
    unchanged; scrambling its held-out targets alone leaves its predictions unchanged to the bit."""
    table = labels()
    data = classic.Inputs(
        table["image"],
        table["dominant"].to_numpy(),
        EMOTIONS,
        table[list(EMOTIONS)].to_numpy() / table[list(EMOTIONS)].to_numpy().sum(axis=1, keepdims=True),
        features(table),
    )
    every = np.arange(N)
    planned = crossval.Fold(0, 0, every[every % FOLDS != 0], every[every % FOLDS == 0])
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = ldl.select

    def spy(method: ldl.Method, x: np.ndarray, d: np.ndarray, **options: object) -> ldl.Selected:
        seen.append((x.copy(), d.copy()))
        return real(method, x, d, **options)

    monkeypatch.setattr(ldl, "select", spy)
    methods = Classic(("aa_knn", "ldl_lrr"), pca=3, folds=3)
    rng = np.random.default_rng(2)
    held_out = planned.test
    scrambled_targets = data.targets.copy()
    scrambled_targets[held_out] = rng.dirichlet(np.ones(len(EMOTIONS)), len(held_out))
    scrambled_features = data.features.copy()
    scrambled_features[held_out] = rng.normal(0, 100, (len(held_out), WIDTH))

    runs = {}
    for name, inputs in {
        "original": data,
        "targets": classic.Inputs(data.images, data.labels, EMOTIONS, scrambled_targets, data.features),
        "both": classic.Inputs(data.images, data.labels, EMOTIONS, scrambled_targets, scrambled_features),
    }.items():
        seen.clear()
        runs[name] = (classic.outcomes(methods, inputs, [planned], seed=3), list(seen))
    original, original_seen = runs["original"]
    assert len(original_seen) == 3  # aa_knn, then sa_bfgs for ldl_lrr's L2 penalty, then ldl_lrr
    for name in ("targets", "both"):
        outcomes, inputs_seen = runs[name]
        for (x, d), (x_then, d_then) in zip(original_seen, inputs_seen, strict=True):
            assert np.array_equal(x, x_then) and np.array_equal(d, d_then)
        for method in methods.methods:
            [before], [after] = original[method], outcomes[method]
            assert (before.chosen, before.boundary) == (after.chosen, after.boundary)
    for method in methods.methods:
        before, after = original[method][0].test, runs["targets"][0][method][0].test
        assert np.array_equal(predictions.pred(before), predictions.pred(after))


def test_each_fit_projects_its_own_rows_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Selection's fits standardise and project their inner-training rows (40 of the fold's 60), never its
    inner-validation rows; the final fit the whole fold. Each set of rows is projected once for every method."""
    table = labels()
    targets = table[list(EMOTIONS)].to_numpy()
    data = classic.Inputs(
        table["image"],
        table["dominant"].to_numpy(),
        EMOTIONS,
        targets / targets.sum(axis=1, keepdims=True),
        features(table),
    )
    every = np.arange(N)
    planned = crossval.Fold(0, 0, every[every % FOLDS != 0], every[every % FOLDS == 0])
    projected: list[np.ndarray] = []
    real = classic.Standardiser.of

    def spy(x: np.ndarray, keep: int) -> classic.Standardiser:
        projected.append(x.copy())
        return real(x, keep)

    monkeypatch.setattr(classic.Standardiser, "of", spy)
    classic.outcomes(Classic(("pt_bayes", "sa_bfgs"), pca=3, folds=3), data, [planned], seed=3)
    assert sorted(len(x) for x in projected) == [40, 40, 40, 60]
    rows = {row.tobytes(): i for i, row in enumerate(data.features.astype(np.float64))}
    parts = [{rows[row.tobytes()] for row in x} for x in projected]
    assert parts[-1] == set(planned.train)
    left_out = [set(planned.train) - part for part in parts[:-1]]  # each inner fold's validation images
    assert sum(map(len, left_out)) == len(planned.train) and set().union(*left_out) == set(planned.train)


def test_an_unknown_method_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace(tmp_path, ["sa_bfgs", "svm"])
    before = tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["classic"])
    with pytest.raises(SystemExit) as exit_:
        cli.run_stage(stage.main)
    assert exit_.value.code == 1
    error = capsys.readouterr().err
    assert "classic.methods" in error and "svm" in error and "sa_bfgs, aa_knn, pt_bayes, ldl_lrr" in error, error
    assert tree(tmp_path) == before


def test_an_image_store_instead_of_features_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With train.finetune the features stage stores the images themselves: the classic methods say what they need."""
    workspace(tmp_path, ["pt_bayes"])
    np.save(tmp_path / "data" / "features.npy", np.zeros((N, 3, 8, 8), dtype=np.uint8))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"data/features\.npy: holds uint8 values.*train\.finetune: false"):
        classic.load("dominant", "drop")


def test_the_config_knows_the_registered_methods() -> None:
    """config may not import ldl: its list of names is kept in step with the registry here."""
    assert tuple(ldl.METHODS) == LDL_METHODS
