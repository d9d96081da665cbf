"""Prediction for new images: the `final` stage trains the selected variant on every image
(`dvc repro final`, on synthetic data), and `python -m ewmtcnn.predict` uses it, one bad file
failing alone, saying which model, variant and commit it used, warning of Emotion6's own images and
(--truth) showing their annotators' and out-of-fold distributions.

The main repository uses the offline ImageNet EfficientNet-Lite0: a random-init backbone maps
every synthetic image to nearly the same features (about 1e-8 apart), too alike for a check
that predictions follow the pipeline's own features to tell anything apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from dvcrepo import Repo, make_repo
from ewmtcnn import InputError, Predictor, paths, predict
from ewmtcnn.config.sections import Extraction
from ewmtcnn.data import dataset
from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS
from ewmtcnn.data.images import square
from ewmtcnn.evaluation import predictions
from ewmtcnn.features import extract
from ewmtcnn.io.checkpoint import FinalModel, load_final
from ewmtcnn.io.choice import Choice
from ewmtcnn.model import backbones
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.predict import plot
from ewmtcnn.training import loop
from ewmtcnn.training.inputs import CachedFeatures
from support import jpeg_bytes, write_emotion6, zip_folder

PER_EMOTION = 4
EPOCHS = 3
PARAMS = dict(
    data__sha256="",
    data__label="dominant",
    data__neutral="drop",
    preprocess__size=224,
    model__pretrained=True,
    train__recipe="fixed",  # the paper's settings: EPOCHS epochs (the selected recipe is tested by the train stage)
    train__epochs=EPOCHS,
    train__batch_size=8,
)
#: Two of the synthetic archive's JPEGs, as the repository holds them after `download`.
IMAGES = ("data/raw/Emotion6/images/joy/1.jpg", "data/raw/Emotion6/images/anger/2.jpg")
TAB_RED = (214, 39, 40)  # the dominant emotion's bar
#: What the final model of PARAMS records of its variant, by params.yaml's names (the rest: params.yaml's defaults).
PARAMS_RECORDED = {
    "data.neutral": "drop",
    "preprocess.size": 224,
    "prior.init": "original",
    "prior.freeze": True,
    "model.backbone": "efficientnet_lite0",
    "model.pretrained": True,
    "model.head": "direct",
    "train.finetune": False,
    "train.recipe": "fixed",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """A repository in which `dvc repro final` has run on a synthetic Emotion6.zip."""
    tmp = tmp_path_factory.mktemp("predict")
    archive = zip_folder(
        write_emotion6(tmp / "src" / "Emotion6", per_emotion=PER_EMOTION, seed=7), tmp / "Emotion6.zip"
    )
    repo = make_repo(tmp, **PARAMS, data__source=str(archive))
    repo.dvc("repro", "final")
    return repo


def run_predict(repo: Repo, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python -m ewmtcnn.predict ARGS` from the repository root, as a user runs it."""
    return repo.run(sys.executable, "-m", "ewmtcnn.predict", *args, check=False)


def predict_here(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The command's exit status, stdout and stderr, run in this process from `root` (no interpreter start-up)."""
    capsys.readouterr()  # drop what came before
    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as exit_:
        patch.chdir(root)
        predict.main(list(args))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def dataset_rows(root: Path) -> np.ndarray:
    """IMAGES' rows in the pipeline's arrays (labels.csv order)."""
    order = dataset.read_labels(root / paths.LABELS)["image"].tolist()
    return np.array([order.index(path.removeprefix(f"{paths.RAW.as_posix()}/images/")) for path in IMAGES])


@pytest.fixture
def as_json(trained: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[dict], Path]:
    """The `--json` records of IMAGES, and the `--plot` drawn in the same run."""
    out = tmp_path / "plot" / "wheel.png"
    status, stdout, stderr = predict_here(trained.root, *IMAGES, "--json", "--plot", str(out), capsys=capsys)
    assert status == 0, stderr
    return json.loads(stdout, parse_constant=strict_json), out


def predicted(stdout: str) -> list[str]:
    """The lines of text output that give a prediction: not the `# ` lines before them, nor the indented truth."""
    return [line for line in stdout.splitlines() if not line.startswith(("# ", "  "))]


def strict_json(constant: str) -> None:
    """`json.loads`' hook for NaN and Infinity, which are not JSON: fail."""
    pytest.fail(f"--json printed {constant}, which is not JSON")


def test_final_is_trained_on_every_image_without_the_folds(trained: Repo) -> None:
    final = load_final(trained.root / paths.FINAL)
    assert final.images == len(dataset.read_labels(trained.root / paths.LABELS)) == 6 * PER_EMOTION
    assert [epoch["epoch"] for epoch in final.history] == list(range(1, EPOCHS + 1))
    assert final.choice.recipe == "fixed" and final.choice.epochs == EPOCHS
    assert (
        final.outputs,
        final.size,
        final.backbone,
        final.pretrained,
        final.finetune,
        final.head,
        final.prior_init,
    ) == (EMOTIONS, 224, "efficientnet_lite0", True, False, "direct", "original")
    assert set(final.state) == {"fc.weight", "fc.bias", "prior.weight"}  # the head: features come from the backbone
    lock = yaml.safe_load((trained.root / "dvc.lock").read_text())
    assert [out["path"] for out in lock["stages"]["final"]["outs"]] == [paths.FINAL.as_posix()]
    assert "split" not in lock["stages"] and "train" not in lock["stages"]  # no folds: no held-out set


def test_bad_files_fail_alone_and_the_others_are_predicted(trained: Repo, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not a picture\n")
    huge = tmp_path / "huge.png"  # 144 megapixels, a few kB on disk: a decompression bomb
    Image.new("1", (12_000, 12_000)).save(huge)
    fifo = tmp_path / "pipe.jpg"  # no writer: opening it to read would wait for ever
    os.mkfifo(fifo)
    result = run_predict(trained, IMAGES[0], missing, not_image, huge, fifo, IMAGES[1])
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    assert str(missing) in errors[0] and str(not_image) in errors[1]
    assert str(huge) in errors[2] and "144.0 megapixels" in errors[2]
    assert errors[3] == f"error: {fifo}: is a named pipe (FIFO), not an image file; give the path of an image file"
    assert "Warning" not in result.stderr
    assert "Traceback" not in result.stderr
    lines = predicted(result.stdout)
    assert [line.split(": ")[0] for line in lines] == list(IMAGES)
    for line in lines:  # `path: joy 0.62 (anger 0.03, ...)`: every emotion once
        named = line.split(": ", 1)[1].replace("(", "").replace(")", "").replace(",", "").split()
        assert sorted(named[::2]) == sorted(EMOTIONS)
        assert sum(map(float, named[1::2])) == pytest.approx(1, abs=0.03)


def test_json_gives_each_distribution_and_its_dominant_emotion(as_json: tuple[list[dict], Path]) -> None:
    records, _ = as_json
    assert [r["image"] for r in records] == list(IMAGES)
    for record in records:
        assert list(record["distribution"]) == list(EMOTIONS)
        assert sum(record["distribution"].values()) == pytest.approx(1, abs=1e-9)
        assert record["dominant"] == max(record["distribution"], key=record["distribution"].get)


def test_prediction_equals_the_pipelines_own_for_a_dataset_image(
    trained: Repo, as_json: tuple[list[dict], Path]
) -> None:
    """Decoding, cropping and the rebuilt backbone give the features the pipeline computed: the
    final model's head on data/features.npy predicts what the command printed."""
    root = trained.root
    final = load_final(root / paths.FINAL)
    pooled = np.load(root / paths.FEATURES)
    rows = dataset_rows(root)
    head = EmotionNet(pooled.shape[1], len(final.outputs), final.head, final.prior_initial, True)
    head.load_state_dict(final.state)
    expected = loop.predict(head, CachedFeatures(pooled), rows, 8, torch.device("cpu"))
    printed = np.array([[r["distribution"][e] for e in EMOTIONS] for r in as_json[0]])
    assert np.abs(expected[0] - expected[1]).max() > 1e-4  # the two images differ by far more than the tolerance
    np.testing.assert_allclose(printed, expected, rtol=0, atol=1e-6)


def test_plot_is_a_png_of_one_wheel_per_image(as_json: tuple[list[dict], Path]) -> None:
    _, out = as_json
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > image.height  # two charts side by side
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert (np.abs(pixels.astype(int) - TAB_RED).sum(axis=1) < 10).any()  # a dominant bar is drawn
    assert not [p for p in out.parent.iterdir() if p != out]  # written atomically: no temporary left


def git(repo: Repo, *args: str) -> str:
    return repo.run("git", *args).stdout.strip()


def test_json_says_which_model_variant_commit_and_device(trained: Repo, as_json: tuple[list[dict], Path]) -> None:
    records, _ = as_json
    final = load_final(trained.root / paths.FINAL)
    for record in records:
        model = record["model"]
        assert model["path"] == str(paths.FINAL)
        assert model["sha256"] == hashlib.sha256((trained.root / paths.FINAL).read_bytes()).hexdigest()
        assert model["commit"] == git(trained, "rev-parse", "HEAD")
        assert model["dirty"] is (git(trained, "status", "--porcelain", "--untracked-files=no") != "")
        assert model["params"] | PARAMS_RECORDED == model["params"]
        assert model["trained"] == {"images": 6 * PER_EMOTION, **final.choice.hyperparameters()}
        assert record["device"] == str(loop.device())
    assert [record["training_image"] for record in records] == ["joy/1.jpg", "anger/2.jpg"]
    assert [record["truth"] for record in records] == [None, None]


def test_text_first_says_which_model_variant_commit_and_device(
    trained: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = predict_here(trained.root, IMAGES[0], "--device", "cpu", capsys=capsys)
    assert status == 0
    lines = out.splitlines()
    sha256 = hashlib.sha256((trained.root / paths.FINAL).read_bytes()).hexdigest()
    commit = git(trained, "rev-parse", "HEAD")
    assert lines[0].startswith(f"# model {paths.FINAL}: sha256 {sha256[:12]}, git commit {commit[:12]} (")
    assert lines[1].startswith("# variant: ") and all(
        f" {key}={str(value).lower()}" in lines[1] for key, value in PARAMS_RECORDED.items()
    )
    assert lines[2].startswith(f"# trained on {6 * PER_EMOTION} images: epochs {EPOCHS}, lr_head ")
    assert lines[3:] == ["# device cpu", *predicted(out)]
    if not torch.cuda.is_available():
        status, out, err = predict_here(trained.root, IMAGES[0], "--device", "cuda", capsys=capsys)
        assert (status, out) == (1, "")
        assert err == "error: device cuda: torch sees no CUDA GPU on this machine; use cpu (or auto)\n"


def test_emotion6_images_are_told_by_content_and_warned_of(
    trained: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A renamed copy is one of Emotion6's images (the final model trained on it); another picture stored
    under an Emotion6-like name is not; without the Emotion6 folder, no image is told."""
    copy = tmp_path / "renamed.jpg"
    shutil.copy(trained.root / IMAGES[0], copy)
    lookalike = tmp_path / "images" / "anger" / "2.jpg"
    lookalike.parent.mkdir(parents=True)
    lookalike.write_bytes(jpeg_bytes(99))
    status, out, err = predict_here(trained.root, IMAGES[1], str(copy), str(lookalike), "--json", capsys=capsys)
    assert status == 0
    assert [record["training_image"] for record in json.loads(out)] == ["anger/2.jpg", "joy/1.jpg", None]
    assert [line for line in err.splitlines() if "warning" in line] == [
        "warning: 2 of 3 images are Emotion6's (anger/2.jpg, joy/1.jpg): the final model trained on them, so its "
        "predictions for them are fitted; --truth shows each one's held-out (out-of-fold) one"
    ]
    status, _, err = predict_here(trained.root, str(lookalike), capsys=capsys)
    assert status == 0 and "warning" not in err
    status, _, err = predict_here(tmp_path, str(copy), "--model", str(trained.root / paths.FINAL), capsys=capsys)
    assert status == 0 and "warning" not in err  # no data/raw/Emotion6 here


def held_out_table(path: Path, names: list[str], emotions: tuple[str, ...], repeats: int) -> np.ndarray:
    """A predictions table at `path`, as evaluate writes one, of `names` in `repeats` repeats; its (repeats, n, c)."""
    pred = np.random.default_rng(0).dirichlet(np.ones(len(emotions)), (repeats, len(names)))
    true = np.full((len(names), len(emotions)), 1 / len(emotions))
    tables = [predictions.build(names, r, r % 3, ["joy"] * len(names), emotions, true, pred[r]) for r in range(repeats)]
    pd.concat(tables).to_csv(path, index=False)
    return pred


def test_truth_shows_the_annotators_and_the_out_of_fold_prediction(
    trained: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--truth on the synthetic Emotion6: the annotators' distribution is ground_truth.txt's six renormalised
    (data.neutral: drop), the out-of-fold one the mean of the table's repeats; an image the table lacks has
    none. Thirteen images: two pages of plot."""
    root = trained.root
    table = dataset.read_ground_truth(root / paths.RAW)
    names = table["image"].tolist()[: plot.PER_PAGE + 1]
    csv = tmp_path / "predictions.csv"
    pred = held_out_table(csv, names[:-1], EMOTIONS, repeats=2)
    out_png = tmp_path / "wheel.png"
    files = [str(paths.RAW / "images" / name) for name in names]
    truth = ("--truth", "--predictions", str(csv))
    status, out, err = predict_here(root, *files, *truth, "--json", "--plot", str(out_png), capsys=capsys)
    assert status == 0
    records = json.loads(out)
    for k, (name, record) in enumerate(zip(names, records, strict=True)):
        votes = table.loc[table["image"] == name, list(EMOTIONS)].to_numpy()[0]
        assert record["training_image"] == name
        assert record["truth"]["annotators"] == pytest.approx(dict(zip(EMOTIONS, votes / votes.sum(), strict=True)))
        if k < len(names) - 1:
            mean = dict(zip(EMOTIONS, pred[:, k].mean(axis=0), strict=True))
            assert record["truth"]["out_of_fold"] == pytest.approx(mean) and record["truth"]["repeats"] == 2
    assert records[-1]["truth"]["out_of_fold"] is None and records[-1]["truth"]["repeats"] == 0
    assert [line for line in err.splitlines() if line.startswith("plot: ")] == [
        f"plot: {out_png}",
        f"plot: {tmp_path / 'wheel-2.png'}",
    ]
    assert (tmp_path / "wheel-2.png").read_bytes().startswith(b"\x89PNG")
    assert "the out-of-fold ones are held out" in err

    other = tmp_path / "other.jpg"
    other.write_bytes(jpeg_bytes(98))
    status, out, _ = predict_here(root, files[0], files[-1], str(other), *truth, capsys=capsys)
    lines = [line for line in out.splitlines() if not line.startswith("# ")]
    assert lines[1].startswith(f"  annotators (Emotion6 {names[0]}): ")
    best = EMOTIONS[int(pred[:, 0].mean(axis=0).argmax())]
    assert lines[2].startswith(f"  out-of-fold (mean of 2 repeats): {best} {pred[:, 0].mean(axis=0).max():.2f} (")
    assert lines[5] == "  out-of-fold (mean of 0 repeats): not in the predictions table"
    assert lines[6].startswith(f"{other}: ")
    assert lines[7:] == ["  no truth: not one of Emotion6's images (compared by content)"]


def test_truth_refuses_what_it_cannot_read_naming_it(
    trained: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seven = tmp_path / "seven.csv"
    held_out_table(seven, ["joy/1.jpg"], DISTRIBUTION, repeats=1)
    missing = tmp_path / "none.csv"
    hint = "run `dvc repro evaluate`, or name this model's variant's table with --predictions"
    for options, message in [
        (
            ("--predictions", str(seven)),
            f"{seven}: out-of-fold predictions of {', '.join(DISTRIBUTION)}, but the "
            f"model predicts {', '.join(EMOTIONS)}: another variant's; {hint}",
        ),
        (("--predictions", str(missing)), f"{missing}: not found; {hint}"),
        (("--emotion6", str(tmp_path)), f"{tmp_path}: not an Emotion6 folder (no images/ in it); `dvc pull`"),
    ]:
        status, out, err = predict_here(trained.root, IMAGES[0], "--truth", *options, capsys=capsys)
        assert (status, out) == (1, "") and err.startswith(f"error: {message}") and err.count("\n") == 1


def test_seven_outputs_and_a_random_init_backbone_from_a_named_model(
    trained: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With neutral kept the model has seven outputs; a random-init backbone is rebuilt as the
    features stage drew it (compared relative to the features' tiny scale). This final model is
    trained with the selected recipe: settings chosen on an inner split of all the images."""
    variant = Repo(shutil.copytree(trained.root, tmp_path / "variant", symlinks=True), tmp_path / "home")
    variant.set_params(
        data__neutral="keep",
        model__pretrained=False,
        train__recipe="selected",
        select__share=0.25,
        select__epochs=3,
        select__patience=2,
    )
    variant.dvc("repro", "final")
    seven = variant.root / paths.FINAL
    chosen = load_final(seven).choice
    assert chosen.recipe == "selected" and 1 <= chosen.epochs <= 3 and chosen.inner_kl > 0

    status, out, _ = predict_here(
        trained.root, IMAGES[0], "--model", str(seven), "--json", "--plot", str(tmp_path / "seven.png"), capsys=capsys
    )
    assert status == 0
    [record] = json.loads(out)
    assert list(record["distribution"]) == list(DISTRIBUTION)
    assert sum(record["distribution"].values()) == pytest.approx(1, abs=1e-9)
    assert (tmp_path / "seven.png").read_bytes().startswith(b"\x89PNG")
    predictor = Predictor.load(seven)
    assert predictor.features is not None
    image = square(trained.root / IMAGES[0], 224)[None]
    rebuilt = extract.extract(predictor.features, image, predictor.backbone)[0]
    stored = np.load(variant.root / paths.FEATURES)[dataset_rows(variant.root)[0]]
    assert np.linalg.norm(rebuilt - stored) < 1e-4 * np.linalg.norm(stored)  # another seed's: about 1


def test_missing_model_says_how_to_train_it(trained: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = predict_here(tmp_path, str(trained.root / IMAGES[0]), capsys=capsys)  # no data/final/ there
    assert status == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {paths.FINAL}:") and "dvc repro final" in err


def test_a_real_emotion6_image(
    trained: Repo, real_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real picture goes through (the synthetic model's figures themselves mean nothing)."""
    image = tmp_path / "real.jpg"
    if real_archive.is_dir():
        shutil.copy(real_archive / "images" / "joy" / "1.jpg", image)
    else:
        with zipfile.ZipFile(real_archive) as archive:
            image.write_bytes(archive.read(next(n for n in archive.namelist() if n.endswith("images/joy/1.jpg"))))
    status, out, _ = predict_here(trained.root, str(image), capsys=capsys)
    assert status == 0
    [line] = predicted(out)
    assert line.startswith(f"{image}: ") and line.split(": ")[1].split()[0] in EMOTIONS


def hand_made(head: EmotionNet, how: Extraction, size: int) -> FinalModel:
    """`head` as a final model over a random-init EfficientNet-Lite0 extracted `how` (no pipeline run)."""
    return FinalModel(
        state=head.state_dict(),
        prior_initial=None,
        prior_init="none",
        backbone="efficientnet_lite0",
        extraction=how.record(),
        pretrained=False,
        weights=None,
        head="direct",
        finetune=False,
        outputs=EMOTIONS,
        size=size,
        images=2,
        history=(),
        choice=Choice("fixed", 1, 0.01, 0.0),
    )


def test_prediction_extracts_as_the_final_model_records(tmp_path: Path) -> None:
    """A final model whose features were channel statistics of the centre crop and its mirror
    image is rebuilt with that extraction: its distributions are the head's softmax of
    `extract.extract` made that way (a final model made by hand: no pipeline run)."""
    how = Extraction("stats", ("centre", "mirror"), 0)
    lite0 = backbones.get("efficientnet_lite0")
    store = np.random.default_rng(0).integers(0, 256, (2, 3, 240, 240), dtype=np.uint8)
    module = extract.feature_backbone(lite0, pretrained=False)
    made = extract.extract(module, store, lite0, how)
    torch.manual_seed(0)
    head = EmotionNet(made.shape[1], len(EMOTIONS), "direct", None, True).eval()
    with torch.no_grad():
        head.fc.weight.mul_(5)  # distributions far from uniform, not yet one-hot
    final = hand_made(head, how, 240)
    path = tmp_path / "model.pt"
    final.save(path)
    predictor = Predictor.load(path)
    assert predictor.how == how and predictor.features is not None

    def softmax(vectors: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(head(torch.from_numpy(vectors)).double(), dim=1).numpy()

    expected = softmax(made)
    np.testing.assert_allclose(predictor.distributions(store), expected, rtol=0, atol=1e-6)
    centre_only = softmax(extract.extract(module, store, lite0, Extraction("stats", ("centre",), 0)))
    assert np.abs(centre_only - expected).max() > 1e-4  # the mirror view changes what is predicted, far beyond atol
    # The same head recorded as pooled features: the rebuilt network does not fit its weights.
    pooled = tmp_path / "pooled.pt"
    dataclasses.replace(final, extraction=Extraction().record()).save(pooled)
    with pytest.raises(InputError, match="its weights do not fit the network its settings describe"):
        Predictor.load(pooled)


def test_a_model_that_predicts_nan_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finite weights at float32's largest value overflow the logits to infinity, a NaN softmax: one error naming
    the model file, nothing printed, no plot (not `joy nan` with exit 0, nor a bare NaN in --json)."""
    how = Extraction()
    lite0 = backbones.get("efficientnet_lite0")
    head = EmotionNet(
        extract.width(extract.feature_backbone(lite0, pretrained=False), lite0, how),
        len(EMOTIONS),
        "direct",
        None,
        True,
    )
    with torch.no_grad():
        head.fc.weight.fill_(torch.finfo(torch.float32).max)  # any positive feature (pooled ReLU6s) overflows
        head.fc.bias.fill_(torch.finfo(torch.float32).max)
    model = tmp_path / "model.pt"
    hand_made(head, how, 224).save(model)
    image = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
    plot = tmp_path / "wheel.png"
    for output in ([], ["--json"]):
        status, out, err = predict_here(
            tmp_path, str(image), "--model", str(model), *output, "--plot", str(plot), capsys=capsys
        )
        assert (status, out) == (1, "")
        errors = [line for line in err.splitlines() if line.startswith("error: ")]  # the rest: the progress bar
        assert errors == [
            f"error: {model}: the model predicts NaN (its weights are not finite or overflow); "
            "retrain it with `dvc repro final`"
        ]
        assert "Traceback" not in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "noise.png"]
