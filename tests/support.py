"""What the tests share: small synthetic archives in the Emotion6 format (never real images),
the stage scripts run as users run them, and checks on what a run leaves behind."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from ewmtcnn import InputError
from ewmtcnn.data.dataset import EMOTIONS, HEADER

REPO = Path(__file__).resolve().parents[1]


def jpeg_bytes(seed: int, size: tuple[int, int] = (48, 36)) -> bytes:
    """A small, valid, distinct JPEG."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def table_rows(per_emotion: int, seed: int = 0) -> list[str]:
    """Valid ground_truth.txt rows: `per_emotion` images in each folder, random distributions."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(1, per_emotion + 1):
        for e, emotion in enumerate(EMOTIONS):
            counts = rng.integers(0, 5, 7)
            counts[e] += 6  # the folder emotion usually dominates, as in the real data
            probs = counts / counts.sum()
            values = [f"{rng.uniform(1, 9):.1f}", f"{rng.uniform(1, 9):.1f}", *(f"{p:.6g}" for p in probs)]
            rows.append("\t".join([f"{emotion}/{n}.jpg", *values]))
    return rows


def write_emotion6(root: Path, per_emotion: int = 5, rows: list[str] | None = None, *, seed: int = 0) -> Path:
    """An extracted Emotion6 folder at `root` (ground_truth.txt, readme.txt, images/<emotion>/<n>.jpg)."""
    rows = table_rows(per_emotion, seed) if rows is None else rows
    root.mkdir(parents=True, exist_ok=True)
    (root / "ground_truth.txt").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    (root / "readme.txt").write_text("synthetic Emotion6-format data for tests\n", encoding="utf-8")
    for i, row in enumerate(rows):
        image = root / "images" / row.split("\t")[0]
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(jpeg_bytes(seed * 100_000 + i))
    return root


def zip_folder(folder: Path, archive: Path, prefix: str = "Emotion6") -> Path:
    """Zip `folder` with its contents under `prefix/`, as the official archive is laid out."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")
    return archive


def write_params(root: Path, **sections: dict) -> Path:
    """`root/params.yaml`: the repository's params.yaml with `sections` merged over it, key by key."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def run_stage_script(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `stages/<name>.py` of this repository with the current interpreter, from `cwd`."""
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{name}.py")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped (a killed writer's, for its leftovers)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def files_under(root: Path) -> set[str]:
    """Every file below `root`, hidden ones included, as POSIX paths relative to it."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


def tree(root: Path) -> set[str]:
    """Every file and folder under `root` as relative POSIX paths: what a failed run must not change."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def assert_refused(call: Callable[[], object], top: Path, *fragments: str) -> str:
    """Run `call`, expecting one InputError whose message contains every fragment, and nothing
    new, removed or left half-written anywhere under `top` (the test's tmp dir). Returns the message."""
    before = tree(top)
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in error message:\n{message}"
    assert tree(top) == before, f"the failed run changed {sorted(tree(top) ^ before)}"
    return message


def separable(n: int, d: int, c: int, shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small learnable problem for head training: (n, d) float32 features, whose dimension of each
    image's class is raised by `shift`; (n, c) target distributions leaning to that class; classes."""
    rng = np.random.default_rng(seed)
    classes = np.arange(n) % c
    features = rng.normal(0, 1, (n, d)).astype(np.float32)
    features[np.arange(n), classes] += shift
    targets = rng.dirichlet(np.ones(c), n)
    targets[np.arange(n), classes] += 1
    return features, targets / targets.sum(axis=1, keepdims=True), classes


#: Two repeats of three folds over six images, two in each fold: (repeat, image) -> fold.
SIX_IMAGES = {
    **{(0, 0): 0, (0, 1): 0, (0, 2): 1, (0, 3): 1, (0, 4): 2, (0, 5): 2},
    **{(1, 0): 0, (1, 3): 0, (1, 1): 1, (1, 4): 1, (1, 2): 2, (1, 5): 2},
}


def anger_predictions(q: dict[tuple[int, int], float]) -> pd.DataFrame:
    """A metrics/predictions.csv of SIX_IMAGES, in repeat order, predicting anger with probability q[(repeat, image)].

    - Each image is truly all anger, so its KL is -ln q, and it is right when q > 1/2.
    """
    keys = sorted(SIX_IMAGES)
    return pd.DataFrame(
        {
            "image": [f"x/{image}.jpg" for _, image in keys],
            "repeat": [repeat for repeat, _ in keys],
            "fold": [SIX_IMAGES[key] for key in keys],
            "label": "anger",
            "true_anger": 1.0,
            "true_disgust": 0.0,
            "pred_anger": [q[key] for key in keys],
            "pred_disgust": [1 - q[key] for key in keys],
        }
    )
