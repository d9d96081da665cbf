"""Trained models on disk: tensors only, read without running code, refused by name when foreign,
the same bytes for the same model; and the evaluate stage, which reads the folds, writing all its
outputs or none."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from ewmtcnn import InputError, paths, predict
from ewmtcnn.config import sections
from ewmtcnn.config.sections import Params
from ewmtcnn.data import dataset, provenance
from ewmtcnn.data.dataset import EMOTIONS, LABEL_COLUMNS
from ewmtcnn.evaluation import predictions
from ewmtcnn.io import checkpoint
from ewmtcnn.io.checkpoint import HISTORY, FinalModel, TrainedFold
from ewmtcnn.io.choice import HYPERPARAMETERS, Choice
from stages import evaluate
from support import REPO

FOLDS = 2
REPEATS = 2
IMAGES = 12


class Payload:
    """Unpickling this object would create the directory `marker`: code running from a data file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def labels(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), n)
    table = pd.DataFrame(probs, columns=list(dataset.DISTRIBUTION))
    table.insert(0, "image", [f"{EMOTIONS[i % 6]}/{i}.jpg" for i in range(n)])
    table.insert(1, "folder", [EMOTIONS[i % 6] for i in range(n)])
    table.insert(2, "valence", 5.0)
    table.insert(3, "arousal", 5.0)
    table["dominant"] = [EMOTIONS[j] for j in probs[:, :6].argmax(axis=1)]
    return table[list(LABEL_COLUMNS)]


def trained_fold(table: pd.DataFrame, repeat: int, fold: int, seed: int) -> TrainedFold:
    """Fold `fold` of repeat `repeat`: each repeat splits the images by its own shuffle."""
    rng = np.random.default_rng(seed)
    true = table[list(EMOTIONS)].to_numpy()
    true = true / true.sum(axis=1, keepdims=True)
    test_idx = np.sort(np.random.default_rng(100 + repeat).permutation(len(table))[fold::FOLDS])
    train_idx = np.setdiff1d(np.arange(len(table)), test_idx)
    tables = [
        predictions.build(
            table["image"].iloc[idx],
            repeat,
            fold,
            table["dominant"].iloc[idx],
            EMOTIONS,
            true[idx],
            rng.dirichlet(np.ones(6), len(idx)),
        )
        for idx in (test_idx, train_idx)
    ]
    history = pd.DataFrame({"epoch": [1, 2], **{h: rng.random(2) for h in HISTORY}})
    weight = torch.randn(6, 4, generator=torch.Generator().manual_seed(seed))
    state = {"fc.weight": weight, "fc.bias": torch.zeros(6), "prior.weight": torch.eye(6)}
    choice = Choice("selected", 3 + seed, 0.01, 0.001, inner_kl=0.25)
    return TrainedFold(repeat, fold, history, *tables, state, np.eye(6) * 0.5, choice)


def params(repeats: int = REPEATS) -> Params:
    """The repository's params, with `repeats` repeats of FOLDS folds."""
    base = sections.load(REPO / "params.yaml")
    return dataclasses.replace(base, split=dataclasses.replace(base.split, folds=FOLDS, repeats=repeats))


PARAMS = params()


def fingerprint(p: Params) -> dict[str, Any]:
    """The fingerprint of folds trained with `p` on the workspace's split and features, as the stages take it."""
    return provenance.fingerprint(
        p.data.label, p.data.neutral, p.split.folds, p.split.repeats, p.prior, p.model, p.features, p.train, p.select
    )


def write_workspace() -> None:
    """In the working directory, what the train stage leaves: labels, split, features, REPEATS x FOLDS folds."""
    table = labels(IMAGES)
    paths.LABELS.parent.mkdir(parents=True)
    table.to_csv(paths.LABELS, index=False)
    paths.FOLDS.write_text("the split\n")  # only hashed here
    paths.FEATURES.write_bytes(b"the features")
    for repeat in range(REPEATS):
        for fold in range(FOLDS):
            trained_fold(table, repeat, fold, seed=FOLDS * repeat + fold).save(fingerprint(PARAMS))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root after the train stage: labels, split, features and two repeats of two trained folds."""
    monkeypatch.chdir(tmp_path)
    write_workspace()
    return tmp_path


OUTPUTS = (
    paths.PREDICTIONS,
    paths.HEADLINE,
    paths.METRICS,
    paths.FOLD_METRICS,
    paths.SELECTION,
    paths.PER_EMOTION,
    paths.CONFUSION,
    *(paths.CURVES_PLOT, paths.CONFUSION_PLOT, paths.PER_EMOTION_PLOT, paths.PRIOR_PLOT),
)


def test_a_fold_round_trips(workspace: Path) -> None:
    original = trained_fold(labels(IMAGES), 1, 0, seed=2)
    back = checkpoint.read_fold(1, 0)
    assert (back.repeat, back.fold) == (1, 0)
    assert set(back.state) == set(original.state)
    assert all(torch.equal(back.state[k], original.state[k]) for k in original.state)
    assert np.array_equal(back.prior_initial, original.prior_initial)
    assert np.array_equal(back.prior_final, np.eye(6))
    assert back.test["image"].tolist() == original.test["image"].tolist()
    assert (back.test["repeat"] == 1).all() and (back.test["fold"] == 0).all()
    assert np.allclose(
        back.test.filter(like="pred_").to_numpy(), original.test.filter(like="pred_").to_numpy(), rtol=1e-9
    )
    assert back.choice == original.choice
    assert json.loads((paths.fold_dir(1, 0) / checkpoint.SELECTION).read_text()) == {
        "recipe": "selected",
        "epochs": 5,
        "lr_head": 0.01,
        "weight_decay": 0.001,
        "inner_kl": 0.25,
        "validation_curve": None,
    }


def test_a_choice_sets_the_three_hyperparameters_and_records_them_in_field_order() -> None:
    choice = Choice("selected", 7, 0.1, 0.0, inner_kl=0.5)
    assert HYPERPARAMETERS == ("epochs", "lr_head", "weight_decay")
    assert choice.hyperparameters() == {"epochs": 7, "lr_head": 0.1, "weight_decay": 0.0}
    assert list(choice.record()) == ["recipe", *HYPERPARAMETERS, "inner_kl", "validation_curve"]
    assert Choice.read(choice.record(), "here", "hint") == choice


def test_a_converged_choice_keeps_its_validation_curve_through_its_file(workspace: Path) -> None:
    """The curve goes to selection.json as [decay, KL] pairs, a diverged fit's KL as Infinity, and back as it was."""
    curve = ((10, 0.6), (1.0, 0.45), (0.1, 0.4), (0.01, float("inf")))
    choice = Choice("converged", 90, 0.0, 0.1, 0.4, curve)
    fold = checkpoint.read_fold(0, 1)
    fold.choice = choice
    fold.save(fingerprint(PARAMS))
    assert json.loads((paths.fold_dir(0, 1) / checkpoint.SELECTION).read_text())["validation_curve"] == [
        [10, 0.6],
        [1.0, 0.45],
        [0.1, 0.4],
        [0.01, float("inf")],
    ]
    assert checkpoint.read_fold(0, 1).choice == choice


FIXED = {"recipe": "fixed", "epochs": 3, "lr_head": 0.1, "weight_decay": 0, "inner_kl": None, "validation_curve": None}
CONVERGED = {**FIXED, "recipe": "converged", "lr_head": 0.0, "weight_decay": 0.1, "inner_kl": 0.4}


@pytest.mark.parametrize(
    "record,message",
    [
        ({"recipe": "fixed", "epochs": 3}, "not the hyperparameters a model trained with"),
        ({k: v for k, v in FIXED.items() if k != "validation_curve"}, "not the hyperparameters"),
        ({**FIXED, "recipe": 1}, "recipe must be a name"),
        ({**FIXED, "epochs": "many"}, "epochs must"),
        ({**FIXED, "lr_head": True}, "lr_head must"),
        ({**FIXED, "recipe": "selected", "inner_kl": "low"}, "inner_kl must"),
        ([3, 0.1, 0], "not the hyperparameters"),
        ({**FIXED, "validation_curve": [[0.1, 0.4]]}, "a fixed choice has no validation curve"),
        ({**CONVERGED, "validation_curve": None}, "validation_curve must list"),
        ({**CONVERGED, "validation_curve": []}, "validation_curve must list"),
        ({**CONVERGED, "validation_curve": [[0.1, 0.4, 3]]}, "validation_curve must list"),
        ({**CONVERGED, "validation_curve": [[0.1, "low"]]}, "validation_curve must list"),
        ({**CONVERGED, "validation_curve": [[1.0, 0.5]]}, "the chosen weight_decay 0.1 is not on its validation curve"),
    ],
)
def test_a_choice_that_is_not_a_recipe_and_numbers_is_refused_naming_its_file(
    workspace: Path, record: object, message: str
) -> None:
    path = paths.fold_dir(0, 1) / checkpoint.SELECTION
    path.write_text(json.dumps(record))
    with pytest.raises(
        InputError, match=f"repeat-0/fold-1/selection.json: {message}.*stages.train --repeat 0 --fold 1"
    ):
        checkpoint.read_fold(0, 1)


def test_evaluate_writes_every_output(workspace: Path) -> None:
    evaluate.main(PARAMS)
    for path in OUTPUTS:
        assert path.is_file(), path
    predictions = pd.read_csv(paths.PREDICTIONS)
    assert predictions["repeat"].tolist() == [0] * IMAGES + [1] * IMAGES
    assert predictions["image"].tolist() == labels(IMAGES)["image"].tolist() * REPEATS
    per_fold = json.loads(paths.FOLD_METRICS.read_text())
    assert [(f["repeat"], f["fold"]) for f in per_fold] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    summary = json.loads(paths.METRICS.read_text())
    assert list(summary) == ["test", "train", "test_per_class_acc", "baselines"]
    intervals = [*summary["test"].values(), *summary["train"].values()]
    intervals += [v for baseline in summary["baselines"].values() for v in baseline.values()]
    assert all(v["ci_low"] <= v["mean"] <= v["ci_high"] for v in intervals)
    assert summary["test"]["kl"]["mean"] == pytest.approx(np.mean([f["test"]["kl"] for f in per_fold]), rel=1e-9)
    # The headline file: the held-out means of these figures, under the scores' own names, headline order.
    headline = json.loads(paths.HEADLINE.read_text())
    assert list(headline) == ["acc", "balanced_acc", "macro_f1", "kl", "chebyshev", "cosine", "intersection"]
    assert headline == {score: summary["test"][score]["mean"] for score in headline}
    selection = json.loads(paths.SELECTION.read_text())
    # epochs 3 + seed over the seeds 0..3: 3, 4, 5, 6.
    assert selection["recipe"] == "selected" and selection["epochs"] == {"median": 4.5, "min": 3, "max": 6}
    assert [f["epochs"] for f in selection["folds"]] == [3, 4, 5, 6]
    per_emotion = json.loads(paths.PER_EMOTION.read_text())
    assert list(per_emotion) == list(EMOTIONS) and all(
        list(v)[1:] == ["kl", "recall", "precision", "f1"] for v in per_emotion.values()
    )
    assert sum(v["images"] for v in per_emotion.values()) == IMAGES
    for picture in (paths.CURVES_PLOT, paths.CONFUSION_PLOT, paths.PER_EMOTION_PLOT, paths.PRIOR_PLOT):
        assert picture.read_bytes().startswith(b"\x89PNG"), picture


def test_evaluate_refuses_a_missing_repeat_and_writes_nothing(workspace: Path) -> None:
    with pytest.raises(InputError, match="repeat-2/fold-0: fold not trained"):
        evaluate.main(params(REPEATS + 1))
    assert not any(p.exists() for p in OUTPUTS)


def test_a_fold_checkpoint_carrying_code_is_refused_and_the_code_never_runs(workspace: Path) -> None:
    marker = workspace / "payload-ran"
    path = paths.fold_dir(1, 1) / checkpoint.WEIGHTS
    state = {"fc.weight": torch.zeros(6, 4)}
    torch.save({"format": checkpoint.FOLD_FORMAT, "model": state, "prior_initial": Payload(marker)}, path)
    with pytest.raises(InputError) as info:
        evaluate.main(PARAMS)
    assert str(path) in str(info.value) and "a fold checkpoint" in str(info.value)
    assert not marker.exists(), "loading the fold ran the pickled payload"
    assert not any(p.exists() for p in OUTPUTS), "nothing is written when a fold is refused"


@pytest.mark.parametrize(
    "content",
    [b"this is a text file\n", b"PK\x03\x04truncated zip", b""],
    ids=["text", "truncated", "empty"],
)
def test_a_corrupt_fold_leaves_the_previous_outputs_whole(workspace: Path, content: bytes) -> None:
    evaluate.main(PARAMS)
    before = {p: p.read_bytes() for p in OUTPUTS}
    (paths.fold_dir(0, 0) / checkpoint.WEIGHTS).write_bytes(content)
    with pytest.raises(InputError, match=str(paths.fold_dir(0, 0) / checkpoint.WEIGHTS)):
        evaluate.main(PARAMS)
    assert {p: p.read_bytes() for p in OUTPUTS} == before


def test_a_checkpoint_of_another_layout_is_refused(workspace: Path) -> None:
    path = paths.fold_dir(0, 0) / checkpoint.WEIGHTS
    torch.save({"model": {}, "prior_initial": None}, path)  # no format tag: an older or foreign file
    with pytest.raises(InputError, match="not a fold checkpoint"):
        checkpoint.read_fold(0, 0)


def final_model(history_value: float = 0.5) -> FinalModel:
    torch.manual_seed(0)
    return FinalModel(
        state={"fc.weight": torch.randn(6, 8), "fc.bias": torch.randn(6)},
        prior_initial=None,
        prior_init="none",
        backbone="efficientnet_lite0",
        extraction={"layers": "stats", "views": ["centre", "mirror"], "size": 256},
        pretrained=True,
        weights=None,
        head="direct",
        finetune=False,
        outputs=EMOTIONS,
        size=256,
        images=10,
        history=({"epoch": 1, "train_loss": history_value},),
        choice=Choice("fixed", 1, 0.01, 0.0005),
    )


def test_the_final_model_has_the_same_bytes_whatever_its_temporary_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "model.pt", tmp_path / "b" / "other.pt"
    final_model().save(a)
    final_model().save(b)
    assert a.read_bytes() == b.read_bytes()
    final_model(0.25).save(b)
    assert a.read_bytes() != b.read_bytes(), "a different model has different bytes"


def test_the_final_models_figures_are_rounded_so_last_bits_leave_the_same_bytes(tmp_path: Path) -> None:
    """Another CPU's vectorised sums and logs differ in the last bits: the history and the inner-validation
    KL are rounded to 10 significant digits, as the text outputs are; the weights stay exact."""
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    exact = dataclasses.replace(final_model(2 / 3), choice=Choice("selected", 5, 0.003, 0.03, 0.4 + 1e-16))
    nudged = dataclasses.replace(final_model(np.nextafter(2 / 3, 1)), choice=Choice("selected", 5, 0.003, 0.03, 0.4))
    exact.save(a)
    nudged.save(b)
    assert a.read_bytes() == b.read_bytes()
    back = checkpoint.load_final(a)
    assert back.history == ({"epoch": 1, "train_loss": 0.6666666667},) and back.choice.inner_kl == 0.4
    assert torch.equal(back.state["fc.weight"], exact.state["fc.weight"])


def test_the_final_model_round_trips_and_foreign_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    final_model().save(path)
    back = checkpoint.load_final(path)
    assert back.outputs == EMOTIONS and torch.equal(back.state["fc.bias"], final_model().state["fc.bias"])
    assert back.extraction == {"layers": "stats", "views": ["centre", "mirror"], "size": 256}
    assert back.choice == Choice("fixed", 1, 0.01, 0.0005)
    (tmp_path / "text.pt").write_text("not a model\n")
    for bad in (tmp_path / "text.pt", tmp_path / "missing.pt", tmp_path):
        with pytest.raises(InputError, match=str(bad)):
            checkpoint.load_final(bad)


def test_a_final_model_of_the_previous_format_is_refused(tmp_path: Path) -> None:
    """A model saved before `extraction` was recorded (ewmtcnn-final-2) cannot say how its
    features were made: refused by name, never read with a guessed extraction."""
    model = final_model()
    content = {f: getattr(model, f) for f in FinalModel.__dataclass_fields__ if f not in ("extraction", "choice")}
    content["settings"] = model.choice.record()
    old = tmp_path / "old.pt"
    torch.save({**content, "format": "ewmtcnn-final-2"}, old)
    with pytest.raises(InputError, match=f"{old}: not a final EW-MTCNN model"):
        checkpoint.load_final(old)
    retagged = tmp_path / "retagged.pt"  # the current tag without the field: still refused
    torch.save({**content, "format": checkpoint.FINAL_FORMAT}, retagged)
    with pytest.raises(InputError, match=f"{retagged}: not a final EW-MTCNN model"):
        checkpoint.load_final(retagged)


def test_the_final_model_file_keeps_its_keys_and_stores_the_choice_as_settings(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    final_model().save(path)
    content = torch.load(path, weights_only=True)
    assert list(content) == [
        "format",
        *("state", "prior_initial", "prior_init", "backbone", "extraction", "pretrained", "weights", "head"),
        *("finetune", "outputs", "size", "images", "history", "settings"),
    ]
    assert content["format"] == "ewmtcnn-final-4"
    assert content["settings"] == {
        "recipe": "fixed",
        "epochs": 1,
        "lr_head": 0.01,
        "weight_decay": 0.0005,
        "inner_kl": None,
        "validation_curve": None,
    }


def tampered(tmp_path: Path, **fields: object) -> Path:
    """A final model file whose stored `fields` are replaced, as an edit of the file would leave it."""
    path = tmp_path / "model.pt"
    final_model().save(path)
    content = torch.load(path, weights_only=True)
    torch.save({**content, **fields}, path)
    return path


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"size": "256"}, r"size must be an integer in \[32, 1024\]; found '256'"),
        ({"size": -5}, r"size must be an integer in \[32, 1024\]; found -5"),
        ({"size": 60000}, r"size must be an integer in \[32, 1024\]; found 60000"),
        ({"size": True}, r"size must be an integer in \[32, 1024\]; found True"),
        ({"backbone": 3}, "backbone must be a backbone's name; found 3"),
        ({"head": "deep"}, "head must be one of direct, seed; found 'deep'"),
        ({"prior_init": None}, "prior_init must be one of none, original, .*; found None"),
        ({"finetune": "no"}, "finetune must be true or false"),
        ({"outputs": ("joy", "joy")}, "outputs must be a tuple of distinct emotion names"),
        ({"images": 0}, "images must be a positive integer"),
        ({"history": ({"epoch": "1"},)}, "history must be a tuple of per-epoch figures"),
        ({"extraction": {}}, "extraction must record layers, views, size; found {}"),
        ({"extraction": {"layers": "stats", "views": ["centre"]}}, "extraction must record layers, views, size"),
        ({"extraction": {"layers": "deep", "views": ["centre"], "size": 0}}, "extraction: features.layers must be one"),
        ({"extraction": {"layers": "stats", "views": ["centre"], "size": 9}}, "extraction: features.size must be 0"),
        ({"state": {"fc.weight": torch.full((6, 8), float("nan"))}}, "non-finite weights in fc.weight"),
        ({"state": {"fc.weight": [1.0]}}, "its weights are not a state dict of tensors"),
        ({"prior_initial": torch.eye(6) * float("inf")}, "non-finite weights in prior_initial"),
        ({"prior_initial": torch.eye(3)}, "prior_initial must be a 6 x 6 matrix for its 6 outputs"),
    ],
)
def test_a_final_model_with_tampered_fields_is_refused_in_one_line_naming_the_file(
    tmp_path: Path, fields: dict, message: str
) -> None:
    path = tampered(tmp_path, **fields)
    with pytest.raises(InputError, match=f"^{path}: {message}.*; train it with `dvc repro final`") as info:
        checkpoint.load_final(path)
    assert "\n" not in str(info.value)


def test_a_final_model_with_a_prior_and_integer_buffers_is_accepted(tmp_path: Path) -> None:
    model = dataclasses.replace(
        final_model(),
        state={**final_model().state, "prior.weight": torch.eye(6), "bn.num_batches_tracked": torch.tensor(3)},
        prior_initial=np.eye(6),
        prior_init="eye",
    )
    path = tmp_path / "model.pt"
    model.save(path)
    back = checkpoint.load_final(path)
    assert np.array_equal(back.prior_initial, np.eye(6)) and back.state["bn.num_batches_tracked"].item() == 3


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"backbone": "resnet9000"}, "unknown backbone 'resnet9000'"),
        ({"size": "256"}, r"size must be an integer in [32, 1024]; found '256'"),
        ({"extraction": {"layers": "pooled"}}, "extraction must record layers, views, size"),
    ],
    ids=["unknown-backbone", "size-text", "extraction-keys"],
)
def test_predict_refuses_a_tampered_final_model_in_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: dict, message: str
) -> None:
    path = tampered(tmp_path, **fields)
    plot = tmp_path / "plot.png"
    with pytest.raises(SystemExit) as info:
        predict.main([str(tmp_path / "image.jpg"), "--model", str(path), "--plot", str(plot)])
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.startswith(f"error: {path}: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


@pytest.mark.parametrize("scale", [5.0, -1.0], ids=["times-5", "negative"])
def test_evaluate_refuses_predictions_that_are_not_distributions_and_writes_nothing(
    workspace: Path, scale: float
) -> None:
    path = paths.fold_dir(0, 1) / checkpoint.TEST
    table = pd.read_csv(path)
    pred = predictions.columns(table, predictions.PRED)
    table[pred] *= scale
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match=f"^{path}: the predicted distribution of .*; retrain: `dvc repro train`$"):
        evaluate.main(PARAMS)
    assert not any(p.exists() for p in OUTPUTS)
