"""Each fold's fingerprint (params, split, features): the same inputs give the same bytes, and
evaluate refuses folds of other params or inputs, and leftovers beyond the planned folds, writing nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from test_checkpoint import IMAGES, OUTPUTS, PARAMS, fingerprint, labels, params, trained_fold, write_workspace

from ewmtcnn import InputError, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.io import checkpoint
from stages import evaluate


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_workspace()
    return tmp_path


def with_prior(p: Params, init: str) -> Params:
    return dataclasses.replace(p, prior=dataclasses.replace(p.prior, init=init))


def refused(p: Params, *parts: str) -> str:
    """Evaluate's message refusing the folds under `p`, which names every one of `parts`; nothing is written."""
    with pytest.raises(InputError) as info:
        evaluate.main(p)
    message = str(info.value)
    assert all(part in message for part in parts), message
    assert not any(path.exists() for path in OUTPUTS)
    return message


def test_a_fingerprint_holds_the_train_params_and_the_hashes_of_split_and_features(workspace: Path) -> None:
    found = checkpoint.read_fingerprint(1, 0)
    assert found == fingerprint(PARAMS)
    assert found["split"] == hashlib.sha256(paths.FOLDS.read_bytes()).hexdigest()
    assert found["features"] == hashlib.sha256(paths.FEATURES.read_bytes()).hexdigest()
    assert found["params"]["prior.init"] == PARAMS.prior.init
    assert found["params"]["train.lambda"] == PARAMS.train.lam  # params.yaml's names
    assert found["params"]["split.folds"] == 2 and found["params"]["select.lr_head"] == list(PARAMS.select.lr_head)
    assert not {key for key in found["params"] if key.startswith(("data.source", "preprocess", "split.seed"))}


def test_the_same_fold_and_inputs_give_the_same_bytes(workspace: Path) -> None:
    path = paths.fold_dir(0, 1) / checkpoint.FINGERPRINT
    before = path.read_bytes()
    trained_fold(labels(IMAGES), 0, 1, seed=1).save(fingerprint(PARAMS))
    assert path.read_bytes() == before
    assert json.loads(before) == fingerprint(PARAMS)


def test_evaluate_accepts_folds_of_its_params_and_ignores_a_writers_leftover(workspace: Path) -> None:
    (paths.fold_dir(0, 1).parent / ".fold-3.999999-abc.tmp").mkdir()  # a killed train's temporary
    evaluate.main(PARAMS)
    assert all(path.exists() for path in OUTPUTS)


def test_an_interrupted_train_that_left_folds_of_another_prior_is_refused(workspace: Path) -> None:
    """Fold 1 of repeat 0 trained with `eye` beside `original` ones: named, with the command that retrains it."""
    trained_fold(labels(IMAGES), 0, 1, seed=1).save(fingerprint(with_prior(PARAMS, "eye")))
    message = refused(
        PARAMS, f"{paths.fold_dir(0, 1)}: 1 of 4 folds", "prior.init: 'eye' there, 'original' in params.yaml"
    )
    assert "`python -m stages.train --repeat 0 --fold 1`" in message and "`dvc repro --force train`" in message
    assert str(paths.fold_dir(0, 0)) not in message


def test_folds_all_of_other_params_than_params_yaml_are_refused(workspace: Path) -> None:
    """What `dvc commit --force train` would record after params.yaml changed under trained folds."""
    folds = ", ".join(str(paths.fold_dir(r, k)) for r in range(2) for k in range(2))
    refused(with_prior(PARAMS, "eye"), f"{folds}: 4 of 4 folds", "prior.init: 'original' there, 'eye' in params.yaml")


def test_folds_of_another_split_or_other_features_are_refused(workspace: Path) -> None:
    split, features = paths.FOLDS.read_bytes(), paths.FEATURES.read_bytes()
    paths.FOLDS.write_text("another split\n")
    refused(PARAMS, "4 of 4 folds", f"another {paths.FOLDS}")
    paths.FOLDS.write_bytes(split)
    paths.FEATURES.write_bytes(b"other features")
    trained_fold(labels(IMAGES), 1, 1, seed=3).save(fingerprint(PARAMS))  # trained on those
    paths.FEATURES.write_bytes(features)
    refused(PARAMS, f"{paths.fold_dir(1, 1)}: 1 of 4 folds", f"another {paths.FEATURES}")


def test_folds_beyond_split_folds_and_repeats_are_refused_by_name(workspace: Path) -> None:
    """What a lower split.folds or split.repeats, with folds trained outside DVC, leaves behind."""
    shutil.copytree(paths.fold_dir(0, 1), paths.fold_dir(0, 2))
    refused(PARAMS, f"{paths.fold_dir(0, 2)}: beyond split.repeats 2 x split.folds 2", "`dvc repro --force train`")
    shutil.rmtree(paths.fold_dir(0, 2))
    refused(params(repeats=1), f"{paths.TRAINED / 'repeat-1'}: beyond split.repeats 1 x split.folds 2")


@pytest.mark.parametrize(("content", "message"), [(None, "not readable"), ("[1, 2]", "not a JSON object")])
def test_a_fold_without_a_readable_fingerprint_is_refused(workspace: Path, content: str | None, message: str) -> None:
    path = paths.fold_dir(1, 0) / checkpoint.FINGERPRINT
    if content is None:
        path.unlink()  # a fold of an older version
    else:
        path.write_text(content)
    refused(PARAMS, f"{path}: {message}", "python -m stages.train --repeat 1 --fold 0")
