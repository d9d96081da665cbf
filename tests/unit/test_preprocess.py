"""Preprocessing: square crops (ewmtcnn.data.images), the image store, the labels table, the stage script."""

from __future__ import annotations

import random
import re
import shutil
import struct
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ewmtcnn import InputError
from ewmtcnn.data.dataset import DISTRIBUTION, labels_table, read_ground_truth
from ewmtcnn.data.images import DISK_MARGIN, decode, open_store, square, write_store
from support import files_under, run_stage_script, table_rows, write_emotion6, write_params

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def png(path: Path, pixels: np.ndarray) -> Path:
    """A lossless image file (PNG), so that expected colours are exact."""
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def thirds(width: int, height: int) -> np.ndarray:
    """Left and right thirds red, middle third blue (along the width), as an (H, W, 3) array."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, :] = RED
    pixels[:, width // 3 : 2 * width // 3] = BLUE
    return pixels


def assert_colour(block: np.ndarray, colour: tuple[int, int, int], tol: int = 2) -> None:
    """Every pixel of a (3, h, w) block is `colour`, up to `tol` per channel."""
    expected = np.asarray(colour, dtype=int)[:, None, None]
    assert np.abs(block.astype(int) - expected).max() <= tol, block.transpose(1, 2, 0)


def test_wide_image_is_centre_cropped(tmp_path: Path) -> None:
    # 120x60: columns 0-39 red, 40-79 blue, 80-119 red. The centre 60x60 square is columns
    # 30-89: 10 red, 40 blue, 10 red, i.e. 1/6 red, 4/6 blue, 1/6 red. At S=30 each output
    # column covers 2 source columns: 0-4 red, 5-24 blue, 25-29 red. (A left crop would be
    # 2/3 red on the left; squashing the whole image would give three equal bands.)
    out = square(png(tmp_path / "wide.png", thirds(120, 60)), 30)
    assert out.shape == (3, 30, 30) and out.dtype == np.uint8
    # Away from the two colour edges (columns 5 and 25) resampling cannot blur: exact colours.
    assert_colour(out[:, :, 0:3], RED)
    assert_colour(out[:, :, 8:22], BLUE)
    assert_colour(out[:, :, 28:30], RED)
    # Near the edges, mixtures; over the whole square, 1/6 + 1/6 red and 4/6 blue on average.
    assert abs(out[0].mean() - 255 * 2 / 6) < 3
    assert abs(out[2].mean() - 255 * 4 / 6) < 3
    assert out[1].max() <= 2  # no green anywhere
    # Every row is the same: the crop is vertical stripes only.
    assert np.abs(out.astype(int) - out[:, :1, :].astype(int)).max() <= 1


def test_tall_image_is_centre_cropped(tmp_path: Path) -> None:
    # The same construction turned 90 degrees: 60 wide, 120 tall, bands along the height.
    pixels = thirds(120, 60).transpose(1, 0, 2).copy()
    out = square(png(tmp_path / "tall.png", pixels), 30)
    assert out.shape == (3, 30, 30)
    assert_colour(out[:, 0:3, :], RED)
    assert_colour(out[:, 8:22, :], BLUE)
    assert_colour(out[:, 28:30, :], RED)
    assert abs(out[2].mean() - 255 * 4 / 6) < 3


def test_small_image_is_upscaled(tmp_path: Path) -> None:
    # 20x10: left half red, right half blue. The centre 10x10 square (columns 5-14) is half
    # red, half blue, blown up 3.2-fold to 32x32: red left of column 16, blue right of it.
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :10] = RED
    pixels[:, 10:] = BLUE
    out = square(png(tmp_path / "small.png", pixels), 32)
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8
    # Bicubic reaches 2 source pixels (6.4 output pixels) past the edge at column 16.
    assert_colour(out[:, :, 0:9], RED)
    assert_colour(out[:, :, 24:32], BLUE)
    assert abs(out[0].mean() - 127.5) < 3 and abs(out[2].mean() - 127.5) < 3


def test_square_image_keeps_its_content(tmp_path: Path) -> None:
    # A 64x64 checkerboard of 16-pixel cells, halved: 8-pixel cells, same layout.
    cells = (np.indices((64, 64)) // 16).sum(axis=0) % 2
    pixels = np.where(cells[..., None] == 1, np.uint8(255), np.uint8(0)).repeat(3, axis=2)
    out = square(png(tmp_path / "check.png", pixels), 32)
    expected = ((np.indices((32, 32)) // 8).sum(axis=0) % 2) * 255
    interior = np.zeros((32, 32), dtype=bool)
    interior[[i for i in range(32) if i % 8 in (2, 3, 4, 5)]] = True
    interior &= interior.T
    assert np.abs(out[0].astype(int) - expected)[interior].max() <= 2


def test_greyscale_image_becomes_rgb(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 50), 77, dtype=np.uint8), mode="L").save(grey)
    out = square(grey, 32)
    assert out.shape == (3, 32, 32)
    assert_colour(out, (77, 77, 77), tol=0)


def test_truncated_image_is_an_input_error(tmp_path: Path) -> None:
    root = write_emotion6(tmp_path / "Emotion6", per_emotion=1)
    path = root / "images" / "joy" / "1.jpg"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(InputError, match=r"joy/1\.jpg"):
        square(path, 32)


def test_write_store_rows_follow_the_given_order(tmp_path: Path) -> None:
    root = write_emotion6(tmp_path / "Emotion6", per_emotion=3)
    images = list(read_ground_truth(root)["image"])
    order = images[:]
    random.Random(0).shuffle(order)
    assert order != images
    out = tmp_path / "prepared" / "images.npy"
    write_store(root, order, 32, out)
    store = open_store(out)
    assert isinstance(store, np.memmap)
    assert store.shape == (18, 3, 32, 32) and store.dtype == np.uint8
    assert not store.flags.writeable
    with pytest.raises(ValueError):
        store[0, 0, 0, 0] = 1
    rows = [square(root / "images" / name, 32) for name in order]
    for i, (name, expected) in enumerate(zip(order, rows, strict=True)):
        assert np.array_equal(store[i], expected), f"row {i} is not {name}"
    # The synthetic images are distinct noise, so the comparison above pins the order.
    assert len({row.tobytes() for row in rows}) == 18
    assert files_under(tmp_path / "prepared") == {"images.npy"}
    assert np.load(out).shape == (18, 3, 32, 32)  # an ordinary .npy, also loadable whole


def test_write_store_failure_leaves_nothing(tmp_path: Path) -> None:
    root = write_emotion6(tmp_path / "Emotion6", per_emotion=2)
    images = list(read_ground_truth(root)["image"])
    out = tmp_path / "prepared" / "images.npy"
    with pytest.raises(InputError, match=r"not-there\.jpg"):
        write_store(root, [*images, "joy/not-there.jpg"], 32, out)
    assert not (tmp_path / "prepared").exists()


def test_open_store_missing_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"dvc repro preprocess"):
        open_store(tmp_path / "images.npy")


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.zeros((2, 3, 8, 8), np.float32), "holds float32 values, not uint8"),
        (np.zeros((2, 8, 8), np.uint8), "has 3 dimension(s), shape (2, 8, 8), not 4"),
        (np.zeros((2, 1, 8, 8), np.uint8), "shape (2, 1, 8, 8) is not (N, 3, S, S)"),
        (np.zeros((2, 3, 8, 6), np.uint8), "shape (2, 3, 8, 6) is not (N, 3, S, S)"),
    ],
    ids=["float32", "3-d", "one-channel", "not-square"],
)
def test_open_store_refuses_a_foreign_array(array: np.ndarray, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    np.save(path, array)
    with pytest.raises(InputError) as info:
        open_store(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {problem}") and message.endswith("rerun `dvc repro preprocess`"), message


def test_open_store_refuses_a_truncated_store(tmp_path: Path) -> None:
    root = write_emotion6(tmp_path / "Emotion6", per_emotion=1)
    out = tmp_path / "images.npy"
    write_store(root, list(read_ground_truth(root)["image"]), 32, out)
    out.write_bytes(out.read_bytes()[:-100])
    with pytest.raises(InputError, match=rf"^{re.escape(str(out))}: unreadable \.npy file: .*dvc repro preprocess"):
        open_store(out)


# --- refusing what would exhaust memory or disk ---------------------------------------------


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG of a few bytes whose header claims width x height 1-bit pixels; its pixel data is a
    stub that cannot be decoded, so only a refusal based on the header gives a size error."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(
    ("width", "height", "detail"),
    [
        (7000, 7000, "7000x7000 = 49.0 megapixels"),  # over our limit, under Pillow's
        (12000, 12000, "144.0 megapixels"),  # over Pillow's limit: its DecompressionBombWarning
        (20000, 20000, "400.0 megapixels"),  # over twice Pillow's limit: its DecompressionBombError
    ],
    ids=["7000", "12000", "20000"],
)
def test_oversized_image_is_refused_from_its_header(width: int, height: int, detail: str, tmp_path: Path) -> None:
    path = png_header(tmp_path / "huge.png", width, height)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as info:
            decode(path)
    assert str(info.value) == f"{path}: image too large ({detail}); at most 40 megapixels are decoded"
    assert not caught, "Pillow's warning must become the error, not be printed"


def test_stub_header_under_the_limit_is_a_decoding_error(tmp_path: Path) -> None:
    """The control for the test above: a small size passes the check and fails at the pixel data."""
    path = png_header(tmp_path / "small.png", 64, 48)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: cannot be decoded as an image"):
        decode(path)


class FakeUsage(NamedTuple):
    total: int
    used: int
    free: int


def test_write_store_refuses_a_disk_without_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_emotion6(tmp_path / "Emotion6", per_emotion=3)
    images = list(read_ground_truth(root)["image"])
    asked: list[Path] = []

    def usage(path: Path) -> FakeUsage:
        asked.append(Path(path))
        return FakeUsage(total=1 << 40, used=0, free=60 * 1024**2)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    out = tmp_path / "data" / "prepared" / "images.npy"
    before = files_under(tmp_path)
    # 18 images x 3 x 1024 x 1024 bytes = 54 MiB: that fits in 60 MiB, but not with the margin.
    with pytest.raises(InputError) as info:
        write_store(root, images, 1024, out)
    message = str(info.value)
    assert message.startswith(f"{out}: needs 54.0 MiB (plus 100.0 MiB to spare), but only 60.0 MiB are free"), message
    assert "lower preprocess.size" in message
    assert asked == [tmp_path], "the nearest existing folder of the output is the one measured"
    assert files_under(tmp_path) == before and not (tmp_path / "data").exists()


def test_write_store_proceeds_with_just_enough_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_emotion6(tmp_path / "Emotion6", per_emotion=1)
    images = list(read_ground_truth(root)["image"])
    needed = len(images) * 3 * 32 * 32 + DISK_MARGIN
    monkeypatch.setattr(shutil, "disk_usage", lambda path: FakeUsage(total=1 << 40, used=0, free=needed))
    write_store(root, images, 32, tmp_path / "images.npy")
    assert open_store(tmp_path / "images.npy").shape == (6, 3, 32, 32)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: FakeUsage(total=1 << 40, used=0, free=needed - 1))
    with pytest.raises(InputError, match="MiB are free"):
        write_store(root, images, 32, tmp_path / "images.npy")


def test_labels_table_columns_and_values(tmp_path: Path) -> None:
    rows = [
        # folder joy, and joy dominates
        "joy/1.jpg\t6.5\t4.0\t0\t0\t0\t0.7\t0.1\t0.1\t0.1",
        # folder fear, but the annotators mostly saw sadness; neutral (0.5) is never dominant
        "fear/2.jpg\t2.0\t7.5\t0.1\t0\t0.1\t0\t0.3\t0\t0.5",
    ]
    root = write_emotion6(tmp_path / "Emotion6", rows=rows)
    labels = labels_table(read_ground_truth(root))
    assert list(labels.columns) == ["image", "folder", "valence", "arousal", *DISTRIBUTION, "dominant"]
    assert list(DISTRIBUTION) == ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
    assert labels["image"].tolist() == ["joy/1.jpg", "fear/2.jpg"]
    assert labels["folder"].tolist() == ["joy", "fear"]
    assert labels["dominant"].tolist() == ["joy", "sadness"]
    assert labels["valence"].tolist() == [6.5, 2.0] and labels["arousal"].tolist() == [4.0, 7.5]
    assert labels["neutral"].tolist() == [0.1, 0.5]


# --- the preprocess stage script --------------------------------------------------------

STAGE_SIZE = 224  # the smallest the default backbone accepts


def stage_dir(tmp_path: Path, per_emotion: int = 2) -> Path:
    write_emotion6(tmp_path / "data" / "raw" / "Emotion6", per_emotion=per_emotion)
    write_params(tmp_path, preprocess={"size": STAGE_SIZE})
    return tmp_path


def test_preprocess_stage_writes_store_and_labels(tmp_path: Path) -> None:
    cwd = stage_dir(tmp_path)
    result = run_stage_script("preprocess", cwd)
    assert result.returncode == 0, result.stderr
    raw = cwd / "data" / "raw" / "Emotion6"
    labels = pd.read_csv(cwd / "data" / "prepared" / "labels.csv", keep_default_na=False)
    # Rows in ground_truth.txt order: emotion by emotion within each index (table_rows' order).
    expected = [line.split("\t")[0] for line in table_rows(2)]
    assert labels["image"].tolist() == expected
    store = open_store(cwd / "data" / "prepared" / "images.npy")
    assert store.shape == (12, 3, STAGE_SIZE, STAGE_SIZE) and store.dtype == np.uint8
    assert np.array_equal(store[5], square(raw / "images" / expected[5], STAGE_SIZE))
    assert files_under(cwd / "data" / "prepared") == {"images.npy", "labels.csv"}
    assert "12 images" in result.stdout


def test_preprocess_stage_truncated_jpeg(tmp_path: Path) -> None:
    cwd = stage_dir(tmp_path)
    bad = cwd / "data" / "raw" / "Emotion6" / "images" / "sadness" / "2.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    before = files_under(cwd)
    result = run_stage_script("preprocess", cwd)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "sadness/2.jpg" in errors[0]
    # Nothing written: no store, no labels, no temporary files, not even the output folder.
    assert files_under(cwd) == before
    assert not (cwd / "data" / "prepared").exists()


def test_preprocess_stage_rejects_tiny_size(tmp_path: Path) -> None:
    cwd = stage_dir(tmp_path, per_emotion=1)
    write_params(cwd, preprocess={"size": 16})
    result = run_stage_script("preprocess", cwd)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") and "preprocess.size" in result.stderr
    assert not (cwd / "data" / "prepared").exists()
