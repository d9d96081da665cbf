"""Stratified k-fold assignment (ewmtcnn.data.folds) and the `split` stage script."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

from ewmtcnn import InputError
from ewmtcnn.data.folds import assign
from support import REPO, files_under, run_stage_script, write_params


def table(classes: dict[str, int], column: str = "dominant") -> pd.DataFrame:
    """A labels table with `n` images of each class, classes interleaved as in a real listing."""
    labels = [c for c, n in classes.items() for _ in range(n)]
    images = [f"{c}/{i}.jpg" for i, c in enumerate(labels)]
    return pd.DataFrame({"image": images, column: labels})


def per_class_counts(labels: pd.DataFrame, assignment: pd.DataFrame, column: str, folds: int) -> pd.DataFrame:
    """(class x fold) image counts, with empty folds as explicit zeros."""
    counts = pd.crosstab(labels[column], assignment["fold"])
    return counts.reindex(columns=range(folds), fill_value=0)


# 23 + 10 + 7 + 5 images: none a multiple of 5, so per-fold counts cannot all be equal.
UNEVEN = {"joy": 23, "sadness": 10, "fear": 7, "anger": 5}


@pytest.mark.parametrize("folds,seed", [(2, 0), (5, 0), (5, 7), (3, 123)])
def test_every_image_in_exactly_one_fold(folds: int, seed: int) -> None:
    labels = table(UNEVEN)
    out = assign(labels, "dominant", folds, seed)
    assert list(out.columns) == ["image", "repeat", "fold"] and set(out["repeat"]) == {0}
    # Same rows, same order as the labels table: one fold per image, none missing, none repeated.
    assert list(out["image"]) == list(labels["image"])
    assert out["image"].is_unique
    assert set(out["fold"]) == set(range(folds))
    # Fold sizes as even as possible: 45 images in k folds.
    sizes = out["fold"].value_counts()
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 45


@pytest.mark.parametrize("folds,seed", [(2, 0), (5, 0), (5, 7), (3, 123)])
def test_stratified_per_class(folds: int, seed: int) -> None:
    labels = table(UNEVEN)
    counts = per_class_counts(labels, assign(labels, "dominant", folds, seed), "dominant", folds)
    for emotion, n in UNEVEN.items():
        row = counts.loc[emotion]
        assert row.sum() == n
        # n images over k folds: each fold gets floor(n/k) or ceil(n/k).
        assert set(row) <= {n // folds, -(-n // folds)}, f"{emotion}: {list(row)}"


def test_exact_counts_when_classes_divide_evenly() -> None:
    labels = table({"anger": 10, "joy": 15, "surprise": 5})
    counts = per_class_counts(labels, assign(labels, "dominant", 5, 3), "dominant", 5)
    assert counts.loc["anger"].tolist() == [2] * 5
    assert counts.loc["joy"].tolist() == [3] * 5
    assert counts.loc["surprise"].tolist() == [1] * 5


def test_non_default_index_is_respected() -> None:
    # A filtered table keeps its original index labels; folds must still follow row positions.
    labels = table({"joy": 12, "fear": 8}).iloc[::-1]
    labels.index = labels.index + 100  # 119, 118, ..., 100
    out = assign(labels, "dominant", 4, 0)
    assert list(out["image"]) == list(labels["image"])
    assert (out["fold"] >= 0).all()
    counts = per_class_counts(labels, out, "dominant", 4)
    assert counts.loc["joy"].tolist() == [3] * 4 and counts.loc["fear"].tolist() == [2] * 4


def test_same_params_give_the_same_bytes(tmp_path: Path) -> None:
    labels = table(UNEVEN)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assign(labels, "dominant", 5, 42).to_csv(first, index=False)
    assign(labels.copy(), "dominant", 5, 42).to_csv(second, index=False)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text().splitlines()[0] == "image,repeat,fold"
    assert len(first.read_text().splitlines()) == 1 + 45


def test_repeats_are_splits_with_successive_seeds() -> None:
    """Repeat r is the split a single run with seed + r gives; each repeat covers every image once."""
    labels = table(UNEVEN)
    three = assign(labels, "dominant", 5, 7, repeats=3)
    assert len(three) == 3 * 45 and three["repeat"].tolist() == [0] * 45 + [1] * 45 + [2] * 45
    for r in range(3):
        rows = three[three["repeat"] == r]
        alone = assign(labels, "dominant", 5, 7 + r)
        assert rows["image"].tolist() == labels["image"].tolist()
        assert rows["fold"].tolist() == alone["fold"].tolist()
    assert three[three["repeat"] == 0]["fold"].tolist() != three[three["repeat"] == 1]["fold"].tolist()


def test_different_seed_gives_a_different_assignment() -> None:
    labels = table(UNEVEN)
    folds = {seed: assign(labels, "dominant", 5, seed)["fold"].tolist() for seed in (0, 1, 2)}
    assert folds[0] != folds[1] and folds[0] != folds[2] and folds[1] != folds[2]


def test_assignment_is_shuffled_not_blocks() -> None:
    # Without shuffling, the first images of each class would all land in fold 0.
    labels = table({"joy": 50})
    fold = assign(labels, "dominant", 5, 0)["fold"].tolist()
    assert fold != sorted(fold)


def test_class_smaller_than_folds_is_named() -> None:
    labels = table({"joy": 10, "surprise": 3, "fear": 8})
    with pytest.raises(InputError, match=r"surprise") as info:
        assign(labels, "dominant", 5, 0)
    message = str(info.value)
    assert "5" in message and "3" in message
    assert "joy" not in message and "fear" not in message


def test_class_exactly_as_large_as_folds_is_fine() -> None:
    labels = table({"joy": 10, "surprise": 5})
    counts = per_class_counts(labels, assign(labels, "dominant", 5, 0), "dominant", 5)
    assert counts.loc["surprise"].tolist() == [1] * 5


@pytest.mark.parametrize("folds", [1, 0, -3])
def test_fewer_than_two_folds_is_an_error(folds: int) -> None:
    with pytest.raises(InputError, match=r"split\.folds"):
        assign(table({"joy": 10}), "dominant", folds, 0)


# --- the split stage script -------------------------------------------------------------


def labels_csv(folder: list[str], dominant: list[str]) -> pd.DataFrame:
    """A labels table as the preprocess stage writes it, with chosen folder and dominant labels."""
    n = len(folder)
    return pd.DataFrame(
        {
            "image": [f"{f}/{i}.jpg" for i, f in enumerate(folder)],
            "folder": folder,
            "valence": [5.0] * n,
            "arousal": [5.0] * n,
            **{e: [0.0] * n for e in ("anger", "disgust", "fear", "joy", "sadness", "surprise")},
            "neutral": [1.0] * n,
            "dominant": dominant,
        }
    )


def split_dir(tmp_path: Path, labels: pd.DataFrame, **split: object) -> Path:
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    labels.to_csv(tmp_path / "data" / "prepared" / "labels.csv", index=False)
    write_params(tmp_path, data={"label": split.pop("label")}, split=split)
    return tmp_path


# 10 joy-folder images and 10 sadness-folder images. By folder both classes have 10
# images; by dominant emotion, "fear" has a single image, so a 5-fold split by dominant is
# impossible. A successful 5-fold split here must have stratified by folder.
FOLDER_OK = labels_csv(
    folder=["joy"] * 10 + ["sadness"] * 10,
    dominant=["joy"] * 9 + ["fear"] + ["sadness"] * 10,
)
# The mirror image: "anger" appears once as a folder, but the dominant emotions are 10 + 10.
DOMINANT_OK = labels_csv(
    folder=["joy"] * 9 + ["anger"] + ["sadness"] * 10,
    dominant=["joy"] * 10 + ["sadness"] * 10,
)


@pytest.mark.parametrize("label,labels", [("folder", FOLDER_OK), ("dominant", DOMINANT_OK)])
def test_split_stage_stratifies_by_the_chosen_label(tmp_path: Path, label: str, labels: pd.DataFrame) -> None:
    cwd = split_dir(tmp_path, labels, label=label, folds=5, seed=0, repeats=2)
    result = run_stage_script("split", cwd)
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(cwd / "data" / "folds.csv")
    for r in (0, 1):
        rows = out[out["repeat"] == r]
        assert list(rows["image"]) == list(labels["image"])
        counts = pd.crosstab(labels[label], rows["fold"].to_numpy())
        assert counts.loc["joy"].tolist() == [2] * 5
        assert counts.loc["sadness"].tolist() == [2] * 5
    assert "2 repeat(s) of 5 folds" in result.stdout and label in result.stdout.split()


def run_in_process(cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run stages/split.py as `__main__` in this process (no interpreter start-up): (exit code, stderr)."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["split.py"])  # not pytest's own arguments
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(REPO / "stages" / "split.py"), run_name="__main__")
    return info.value.code, capsys.readouterr().err


def test_split_stage_rejects_an_unknown_label(tmp_path: Path) -> None:
    cwd = split_dir(tmp_path, FOLDER_OK, label="keyword", folds=5, seed=0)
    result = run_stage_script("split", cwd)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "data.label" in errors[0] and "'keyword'" in errors[0], result.stderr
    assert "dominant" in errors[0] and "folder" in errors[0]  # it says what is allowed
    assert not (cwd / "data" / "folds.csv").exists()
    assert files_under(cwd / "data") == {"prepared/labels.csv"}


@pytest.mark.parametrize("value", ["Dominant", "", 3])
def test_split_stage_rejects_other_bad_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: object
) -> None:
    cwd = split_dir(tmp_path, FOLDER_OK, label=value, folds=5, seed=0)
    code, err = run_in_process(cwd, monkeypatch, capsys)
    assert code == 1 and err.startswith("error:") and "data.label" in err, err
    assert files_under(cwd / "data") == {"prepared/labels.csv"}


@pytest.mark.parametrize("label,labels,rare", [("dominant", FOLDER_OK, "fear"), ("folder", DOMINANT_OK, "anger")])
def test_split_stage_refuses_a_rare_class(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    label: str,
    labels: pd.DataFrame,
    rare: str,
) -> None:
    cwd = split_dir(tmp_path, labels, label=label, folds=5, seed=0)
    code, err = run_in_process(cwd, monkeypatch, capsys)
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and repr(rare) in errors[0], err
    assert files_under(cwd / "data") == {"prepared/labels.csv"}


def test_split_stage_rejects_one_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cwd = split_dir(tmp_path, FOLDER_OK, label="folder", folds=1, seed=0)
    code, err = run_in_process(cwd, monkeypatch, capsys)
    assert code == 1 and err.startswith("error:") and "split.folds" in err, err
    assert files_under(cwd / "data") == {"prepared/labels.csv"}
