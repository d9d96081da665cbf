"""The Python API (`ewmtcnn.Predictor`: ewmtcnn.predict.predictor) and what it says of the model it loaded
(ewmtcnn.predict.provenance), on final models made by hand over the offline ImageNet EfficientNet-Lite0 (no
pipeline run: tests/integration/test_predict.py runs one)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ewmtcnn
from ewmtcnn import InputError, Predictor
from ewmtcnn.config.sections import Extraction
from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS
from ewmtcnn.io.checkpoint import FinalModel, load_final
from ewmtcnn.io.choice import Choice
from ewmtcnn.model import backbones
from ewmtcnn.model.network import EmotionNet
from ewmtcnn.model.wheel import prior_matrix
from ewmtcnn.predict import predictor, provenance
from support import REPO, jpeg_bytes


def readme_example() -> str:
    """The README's Python example, as it is written there: the python block under its `From Python` heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("### From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def final_model(outputs: tuple[str, ...] = EMOTIONS, init: str = "original") -> FinalModel:
    """A head over Lite0's pooled ImageNet features, with the prior `init` frozen, as `dvc repro final` saves one."""
    lite0 = backbones.get("efficientnet_lite0")
    prior = prior_matrix(init, sigma=0.6, probabilities=None, neutral=len(outputs) == 7, seed=0)
    torch.manual_seed(0)
    head = EmotionNet(lite0.features, len(outputs), "direct", prior, True)
    with torch.no_grad():
        head.fc.weight.mul_(20)  # distributions that tell images apart, not near uniform
    return FinalModel(
        state=head.state_dict(),
        prior_initial=prior,
        prior_init=init,
        backbone="efficientnet_lite0",
        extraction=Extraction().record(),
        pretrained=True,
        weights=None,
        head="direct",
        finetune=False,
        outputs=outputs,
        size=224,
        images=24,
        history=(),
        choice=Choice("fixed", 3, 0.01, 0.0005),
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "data" / "final" / "model.pt"
    final_model().save(path)
    return path


@pytest.fixture(scope="module")
def loaded(model: Path) -> Predictor:
    return Predictor.load(model, "cpu")


def photo(path: Path, seed: int, mode: str = "RGB") -> Path:
    """A 64 x 48 random picture saved at `path` (PNG keeps its pixels exact)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def test_import_ewmtcnn_is_light_and_offers_the_api_lazily() -> None:
    code = "import sys, ewmtcnn; print(sorted({'torch', 'matplotlib', 'PIL'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert ewmtcnn.Predictor is predictor.Predictor and ewmtcnn.Prediction is predictor.Prediction
    assert {"InputError", "Predictor", "Prediction", "Predictions"} <= set(dir(ewmtcnn))
    with pytest.raises(AttributeError, match="has no attribute 'Predicter'"):
        ewmtcnn.Predicter  # noqa: B018


def test_a_path_a_pil_image_and_an_array_predict_the_same(loaded: Predictor, tmp_path: Path) -> None:
    """The network gets the same bits from each form; what it makes of them varies by about 1e-7 with a row's
    place in the batch (float32 arithmetic vectorised over the batch), far below what tells pictures apart."""
    path = photo(tmp_path / "photo.png", seed=1)
    with Image.open(path) as image:
        pixels = np.asarray(image)
        forms = [path, str(path), image, pixels]
        squares = [loaded.square(form, "photo") for form in forms]
        predictions = loaded.predict([*forms, photo(tmp_path / "other.png", seed=2)])
    assert all(np.array_equal(squares[0], square) for square in squares[1:])
    array = predictions.array
    assert array.shape == (5, 6) and predictions.outputs == EMOTIONS
    np.testing.assert_allclose(array[1:4], array[[0, 0, 0]], rtol=0, atol=1e-6)
    assert np.abs(array[0] - array[4]).max() > 0.01  # another picture predicts otherwise
    np.testing.assert_allclose(array.sum(axis=1), 1, atol=1e-9)
    assert [p.image for p in predictions] == [
        str(path),
        str(path),
        "<image 2>",
        "<image 3>",
        str(tmp_path / "other.png"),
    ]
    first = predictions[0]
    assert list(first.distribution) == list(EMOTIONS) and first.dominant == EMOTIONS[int(array[0].argmax())]


def test_greyscale_arrays_and_files_predict_the_same(loaded: Predictor, tmp_path: Path) -> None:
    grey = photo(tmp_path / "grey.png", seed=3, mode="L")
    with Image.open(grey) as image:
        pixels = np.asarray(image)
    assert pixels.ndim == 2 and np.array_equal(loaded.square(grey, "grey"), loaded.square(pixels, "grey"))
    one, two = loaded.predict([grey, pixels]).array
    single = loaded.predict(pixels)  # one image alone, not in a list
    assert len(single) == 1
    np.testing.assert_allclose([two, single.array[0]], [one, one], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "bad,message",
    [
        (np.zeros((8, 8, 3), np.float32), r"<image 1>: a numpy array of float32 \(8, 8, 3\); expected uint8 pixels"),
        (np.zeros((8, 8, 4), np.uint8), r"<image 1>: a numpy array of uint8 \(8, 8, 4\)"),
        (np.zeros((0, 8), np.uint8), r"<image 1>: a numpy array of uint8 \(0, 8\)"),
        ({"not": "an image"}, r"<image 1>: a dict; expected a path, a PIL image or a numpy array"),
        (Image.open(io.BytesIO(jpeg_bytes(1)[:1200])), r"<image 1>: cannot be decoded as an image \(image file is"),
    ],
    ids=["float", "four-channels", "empty", "dict", "truncated"],
)
def test_a_bad_image_is_one_error_naming_it(loaded: Predictor, tmp_path: Path, bad: object, message: str) -> None:
    good = photo(tmp_path / "good.png", seed=4)
    with pytest.raises(InputError, match=f"^{message}"):
        loaded.predict([good, bad])
    with pytest.raises(InputError, match=f"^{tmp_path / 'missing.jpg'}: image not found$"):
        loaded.predict(tmp_path / "missing.jpg")
    with pytest.raises(InputError, match="^<image 0>: a int; expected a path"):
        loaded.predict(7)  # type: ignore[arg-type]
    results = list(loaded.results([good, bad]))  # the command's way: the good one is still predicted
    assert isinstance(results[0], predictor.Prediction) and isinstance(results[1], InputError)


def test_devices_are_auto_cpu_or_cuda(model: Path) -> None:
    assert predictor.choose_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="^device 'tpu': expected one of auto, cpu, cuda$"):
        Predictor.load(model, "tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="^device cuda: torch sees no CUDA GPU on this machine; use cpu"):
            Predictor.load(model, "cuda")


def test_the_model_says_its_file_hash_and_variant(loaded: Predictor, model: Path) -> None:
    info = loaded.model
    assert info.path == str(model) and info.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert info.params == {
        "data.neutral": "drop",
        "preprocess.size": 224,
        "prior.init": "original",
        "prior.freeze": True,
        "model.backbone": "efficientnet_lite0",
        "model.pretrained": True,
        "model.weights": "",
        "model.head": "direct",
        "features.layers": "pooled",
        "features.views": ["centre"],
        "features.size": 0,
        "train.finetune": False,
        "train.recipe": "fixed",
    }
    assert info.trained == {"images": 24, "epochs": 3, "lr_head": 0.01, "weight_decay": 0.0005}
    assert info.lines()[1].startswith("variant: data.neutral=drop preprocess.size=224 prior.init=original ")
    assert "model.weights='' " in info.lines()[1] and "features.views=[centre] " in info.lines()[1]


def test_prior_freeze_is_read_off_the_weights() -> None:
    frozen = final_model()
    assert provenance.frozen(frozen) is True
    trained = {**frozen.state, "prior.weight": frozen.state["prior.weight"] + 1e-3}
    assert provenance.frozen(dataclasses.replace(frozen, state=trained)) is False
    assert provenance.frozen(final_model(init="none")) is None
    assert provenance.variant(final_model(DISTRIBUTION, "eye"))["data.neutral"] == "keep"


def git(folder: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


def test_the_commit_is_that_of_the_repository_holding_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "data" / "final").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "params.yaml").write_text("prior:\n  init: original\n")
    git(repo, "add", "params.yaml")
    git(repo, "commit", "-q", "-m", "params")
    final_model().save(repo / "data" / "final" / "model.pt")  # untracked, as DVC leaves it: not dirty
    head = git(repo, "rev-parse", "HEAD")
    assert provenance.revision(repo / "data" / "final") == (head, False)
    (repo / "params.yaml").write_text("prior:\n  init: eye\n")
    assert provenance.revision(repo / "data" / "final") == (head, True)
    assert provenance.revision(tmp_path) == ("unknown", None)  # in no repository
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    assert provenance.revision(repo / "data" / "final") == ("unknown", None)
    assert provenance.ModelInfo("m.pt", "0" * 64, "unknown", None, {}, {"images": 1}).lines()[0] == (
        "model m.pt: sha256 000000000000, git commit unknown"
    )


def test_the_readme_example_runs(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data" / "final").mkdir(parents=True)
    os.symlink(model, tmp_path / "data" / "final" / "model.pt")
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(5, (96, 72)))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    with redirect_stdout(io.StringIO()) as out:
        exec(readme_example(), namespace)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("original ") and lines[0].endswith(" unknown")  # tmp_path is in no git repository
    assert [line.rsplit(maxsplit=2)[0] for line in lines[1:4]] == ["photo.jpg", "<image 1>", "<image 2>"]
    assert lines[4:] == [str(EMOTIONS), "(3, 6)"]
    array = namespace["predictions"].array  # type: ignore[attr-defined]
    np.testing.assert_allclose(array[1:], array[[0, 0]], rtol=0, atol=1e-6)
    assert load_final(model).outputs == namespace["predictions"].outputs  # type: ignore[attr-defined]
