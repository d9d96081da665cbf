"""Shared fixtures: small synthetic archives in the Emotion6 format (never real images)."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ewmtcnn.dataset import EMOTIONS, HEADER

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


@pytest.fixture
def emotion6_dir(tmp_path: Path) -> Path:
    """A valid synthetic extracted Emotion6 folder (5 images per emotion)."""
    return write_emotion6(tmp_path / "src" / "Emotion6")


@pytest.fixture
def emotion6_zip(tmp_path: Path, emotion6_dir: Path) -> Path:
    """A valid synthetic Emotion6.zip."""
    return zip_folder(emotion6_dir, tmp_path / "Emotion6.zip")


@pytest.fixture(scope="session")
def real_archive() -> Path:
    """The real Emotion6.zip named by $EMOTION6; skip when unset, fail when set but missing."""
    value = os.environ.get("EMOTION6")
    if not value:
        pytest.skip("real-data test: set EMOTION6=/path/to/Emotion6.zip to run it")
    path = Path(value)
    assert path.exists(), f"EMOTION6={value} does not exist"
    return path
