"""The data stages of the DVC pipeline (`dvc repro split`), on synthetic data, in a throwaway
git + DVC repository."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dvcrepo import DATA_STAGES, Repo, make_repo, ran, skipped
from ewmtcnn import paths
from ewmtcnn.data.images import square
from support import REPO, files_under, table_rows, write_emotion6, zip_folder

SIZE = 224
PER_EMOTION = 10  # 10 images of each emotion: 5 folds of 2
PARAMS = dict(
    data__sha256="", data__label="dominant", preprocess__size=SIZE, split__folds=5, split__seed=0, split__repeats=2
)
OUTPUTS = (paths.RAW / "ground_truth.txt", paths.IMAGES, paths.LABELS, paths.FOLDS)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """A repository in which `dvc repro` has run once, from a synthetic Emotion6.zip."""
    tmp = tmp_path_factory.mktemp("pipeline")
    source = write_emotion6(tmp / "src" / "Emotion6", per_emotion=PER_EMOTION, seed=3)
    archive = zip_folder(source, tmp / "Emotion6.zip")
    repo = make_repo(tmp, **PARAMS, data__source=str(archive))
    first = repo.dvc("repro", "split")
    repo.first_output = first.stdout + first.stderr  # type: ignore[attr-defined]
    return repo


def test_repro_runs_every_stage_and_writes_the_outputs(pipeline: Repo) -> None:
    root = pipeline.root
    assert ran(pipeline.first_output) == set(DATA_STAGES)  # type: ignore[attr-defined]
    for path in OUTPUTS:
        assert (root / path).is_file(), path
    # download: the table and 60 images, unpacked from the archive's Emotion6/ folder.
    raw = root / paths.RAW
    images = sorted(files_under(raw / "images"))
    assert len(images) == 6 * PER_EMOTION and images[0] == "anger/1.jpg"
    expected_rows = table_rows(PER_EMOTION, seed=3)
    assert (raw / "ground_truth.txt").read_text().splitlines()[1:] == expected_rows
    # preprocess: one row per image, in table order.
    store = np.load(root / paths.IMAGES, mmap_mode="r")
    assert store.shape == (60, 3, SIZE, SIZE) and store.dtype == np.uint8
    labels = pd.read_csv(root / paths.LABELS, keep_default_na=False)
    assert labels["image"].tolist() == [row.split("\t")[0] for row in expected_rows]
    for i in (0, 59):
        assert np.array_equal(store[i], square(raw / "images" / labels["image"][i], SIZE))
    # split: every image once per repeat; the folder emotion always dominates in table_rows (it
    # gets 6 extra votes over at most 4), so 10 images per class and 2 per class in each fold.
    folds = pd.read_csv(root / paths.FOLDS)
    assert (labels["dominant"] == labels["folder"]).all()
    for repeat in (0, 1):
        rows = folds[folds["repeat"] == repeat]
        assert rows["image"].tolist() == labels["image"].tolist()
        counts = pd.crosstab(labels["dominant"], rows["fold"].to_numpy())
        assert counts.shape == (6, 5) and (counts == 2).all().all()
    # DVC recorded every stage, and git is told to ignore the outputs.
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"check", *DATA_STAGES}
    assert "/Emotion6" in (root / "data/raw/.gitignore").read_text().split()


def test_second_repro_does_nothing(pipeline: Repo) -> None:
    before = {path: pipeline.stamp(path) for path in OUTPUTS}
    lock = (pipeline.root / "dvc.lock").read_bytes()
    result = pipeline.dvc("repro", "split")
    output = result.stdout + result.stderr
    assert ran(output) == set()
    assert skipped(output) == set(DATA_STAGES)
    assert "Data and pipelines are up to date" in output
    assert {path: pipeline.stamp(path) for path in OUTPUTS} == before
    assert (pipeline.root / "dvc.lock").read_bytes() == lock


def test_changing_the_seed_reruns_only_split(pipeline: Repo) -> None:
    untouched = (paths.RAW / "ground_truth.txt", paths.IMAGES, paths.LABELS)
    before = {path: pipeline.stamp(path) for path in untouched}
    old_folds = (pipeline.root / paths.FOLDS).read_bytes()
    pipeline.set_params(split__seed=1)
    result = pipeline.dvc("repro", "split")
    output = result.stdout + result.stderr
    assert ran(output) == {"split"}
    assert skipped(output) == {"download", "preprocess"}
    assert {path: pipeline.stamp(path) for path in untouched} == before
    new_folds = (pipeline.root / paths.FOLDS).read_bytes()
    assert new_folds != old_folds
    # Still a stratified assignment of the same images, only shuffled differently.
    new = pd.read_csv(pipeline.root / paths.FOLDS)
    labels = pd.read_csv(pipeline.root / paths.LABELS, keep_default_na=False)
    first = new[new["repeat"] == 0]
    assert first["image"].tolist() == labels["image"].tolist()
    assert (pd.crosstab(labels["dominant"], first["fold"].to_numpy()) == 2).all().all()
    lock = yaml.safe_load((pipeline.root / "dvc.lock").read_text())
    assert lock["stages"]["split"]["params"]["params.yaml"]["split.seed"] == 1


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (("repro", "split"), "unknown param prior.iint; did you mean prior.init?"),
        (("exp", "run", "-S", "prior.init=eyes", "split"), "prior.init must be one of none, original, eye"),
    ],
    ids=["typo-in-params.yaml", "bad-exp-run-S"],
)
def test_a_refused_param_stops_dvc_before_any_output_is_removed(
    pipeline: Repo, command: tuple[str, ...], message: str
) -> None:
    """Without the check stage DVC removed data/raw/Emotion6 first, then the download stage refused the value."""
    before = {path: pipeline.stamp(path) for path in OUTPUTS}
    lock = (pipeline.root / "dvc.lock").read_bytes()
    if command[0] == "repro":
        pipeline.set_params(prior__iint="eye")
    result = pipeline.dvc(*command, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and message in output, output
    assert ran(output) == set() and "Traceback" not in output
    assert {path: pipeline.stamp(path) for path in OUTPUTS} == before
    assert (pipeline.root / "dvc.lock").read_bytes() == lock
    params = yaml.safe_load((pipeline.root / "params.yaml").read_text(encoding="utf-8"))
    params["prior"] = {key: value for key, value in params["prior"].items() if key != "iint"} | {"init": "original"}
    (pipeline.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    assert ran((again := pipeline.dvc("repro", "split")).stdout + again.stderr) == set()  # nothing else changed


def test_failing_stage_fails_repro_and_leaves_nothing(tmp_path: Path) -> None:
    not_a_zip = tmp_path / "Emotion6.zip"
    not_a_zip.write_text("this is not a zip archive\n")
    repo = make_repo(tmp_path, **PARAMS, data__source=str(not_a_zip))
    result = repo.dvc("repro", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert str(not_a_zip) in errors[0] and "not a readable zip archive" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert ran(result.stdout + result.stderr) == {"download"}  # the later stages never start
    assert not (repo.root / paths.RAW).exists()
    # No half-unpacked staging folder either.
    data = repo.root / "data"
    assert not data.exists() or not [p for p in files_under(data) if "Emotion6" in p]
    for path in (paths.IMAGES, paths.LABELS, paths.FOLDS):
        assert not (repo.root / path).exists()


def _cache_object(repo: Repo, content: bytes) -> Path:
    """The DVC cache file that holds `content`, named by its MD5."""
    md5 = hashlib.md5(content).hexdigest()
    return repo.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


@pytest.mark.parametrize(
    "recovery",
    [("checkout", "--force", "data/folds.csv", "data/features.npy"), ("repro", "split", "features")],
    ids=["checkout", "repro"],
)
def test_a_write_in_place_cannot_poison_the_cache(pipeline: Repo, recovery: tuple[str, ...]) -> None:
    """With hardlinks, a write in place into an output rewrote its cache object too, and every later
    `dvc repro` put the garbage back and said all was up to date."""
    pipeline.dvc("repro", "features")
    outputs = (pipeline.root / paths.FOLDS, pipeline.root / paths.FEATURES)
    good = {path: path.read_bytes() for path in outputs}
    for path in outputs:  # the read-only mode does not stop root or a chmod
        path.chmod(0o644)
    folds, features = outputs
    inode = folds.stat().st_ino
    with folds.open("r+b") as f:  # as pandas' to_csv onto the same path writes: in place
        f.write(b"image,repeat,fold\nanger/1.jpg,0,0\n")
        f.truncate()
    os.truncate(features, 128)
    assert folds.stat().st_ino == inode
    for content in good.values():  # the cache objects still hold what their names say
        assert (
            hashlib.md5(_cache_object(pipeline, content).read_bytes()).hexdigest() == hashlib.md5(content).hexdigest()
        )
    status = pipeline.dvc("status", "split", "features").stdout  # the stages up to features: those that ran
    assert "modified:" in status and "data/folds.csv" in status and "data/features.npy" in status, status
    pipeline.dvc(*recovery)  # the recovery the docs give
    assert {path: path.read_bytes() for path in outputs} == good
    assert "Data and pipelines are up to date" in pipeline.dvc("status", "split", "features").stdout


def test_layout_paths_are_the_declared_outs() -> None:
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    outs = {
        name: [out if isinstance(out, str) else next(iter(out)) for out in stage.get("outs", [])]
        for name, stage in pipeline["stages"].items()
    }
    assert outs == {
        "check": [paths.CHECKED.as_posix()],
        "download": [paths.RAW.as_posix()],
        "preprocess": [paths.IMAGES.as_posix(), paths.LABELS.as_posix()],
        "split": [paths.FOLDS.as_posix()],
        "features": [paths.FEATURES.as_posix()],
        "train": [paths.TRAINED.as_posix()],
        "evaluate": [
            p.as_posix()
            for p in (
                paths.PREDICTIONS,
                paths.FOLD_METRICS,
                paths.CURVES_PLOT,
                paths.CONFUSION,
                paths.CONFUSION_PLOT,
                paths.PER_EMOTION_PLOT,
                paths.PRIOR_PLOT,
            )
        ],
        "final": [paths.FINAL.as_posix()],
        "classic": [paths.CLASSIC.as_posix()],
    }
    metrics = [next(iter(m)) for m in pipeline["stages"]["evaluate"]["metrics"]]
    assert metrics == [
        paths.HEADLINE.as_posix(),
        paths.METRICS.as_posix(),
        paths.SELECTION.as_posix(),
        paths.PER_EMOTION.as_posix(),
    ]
    assert [next(iter(m)) for m in pipeline["stages"]["classic"]["metrics"]] == [paths.CLASSIC_METRICS.as_posix()]
    # Each stage reads what the one before it writes.
    deps = {name: stage.get("deps", []) for name, stage in pipeline["stages"].items()}
    assert paths.RAW.as_posix() in deps["preprocess"]
    assert paths.LABELS.as_posix() in deps["split"]
    assert paths.IMAGES.as_posix() in deps["features"]
    assert {paths.FEATURES.as_posix(), paths.FOLDS.as_posix(), paths.LABELS.as_posix()} <= set(deps["train"])
    # Training reads the features stage's output (features, or the store when fine-tuning), never the store itself.
    assert paths.IMAGES.as_posix() not in deps["train"] + deps["final"]
    assert paths.TRAINED.as_posix() in deps["evaluate"]
    assert {paths.FEATURES.as_posix(), paths.LABELS.as_posix()} <= set(deps["final"])
