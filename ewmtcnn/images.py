"""Decoding Emotion6's JPEGs once into a square uint8 store that training memory-maps.

The public reimplementation decodes every JPEG again in every epoch; here each image is
decoded once, resized and centre-cropped, and kept as one (N, 3, S, S) uint8 `.npy` array.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from ewmtcnn import InputError
from ewmtcnn.atomic import written
from ewmtcnn.dataset import GROUND_TRUTH, IMAGE_DIR, problems_error

T = TypeVar("T")
R = TypeVar("R")


def workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0))


def parallel_map(fn: Callable[[T], R], items: Sequence[T], desc: str) -> Iterator[R]:
    """`map` over all cores, in order, with a progress bar."""
    with ProcessPoolExecutor(max_workers=min(workers(), max(1, len(items)))) as pool:
        yield from tqdm(pool.map(fn, items, chunksize=8), total=len(items), desc=desc, unit="img")


def decode(path: Path) -> Image.Image:
    """The image at `path` as RGB; a missing, truncated or non-image file is an InputError."""
    try:
        with Image.open(path) as image:
            image.load()  # a truncated file fails here, not at open
            return image.convert("RGB")
    except FileNotFoundError:
        raise InputError(f"{path}: image not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        # Pillow reports unreadable data as OSError, and some corrupt headers as SyntaxError.
        raise InputError(f"{path}: cannot be decoded as an image ({e})") from None


def image_problem(path: Path) -> str | None:
    """Why `path` is not a usable image, or None."""
    try:
        decode(path)
    except InputError as e:
        return str(e)
    return None


def check_images(root: Path, images: Iterable[str], lines: dict[str, int]) -> None:
    """Decode every listed image under `root/images`; report all failures with their table lines."""
    images = list(images)
    paths = [root / IMAGE_DIR / name for name in images]
    problems = [
        f"{root / GROUND_TRUTH}:{lines[name]}: {problem}"
        for name, problem in zip(images, parallel_map(image_problem, paths, "checking images"))
        if problem is not None
    ]
    if problems:
        raise problems_error(problems, f"{root}: images listed in ground_truth.txt are unusable")


def square(path: Path, size: int) -> np.ndarray:
    """Decode, resize the shorter side to `size` (antialiased) and centre-crop: (3, size, size) uint8.

    `ImageOps.fit` crops to the square first and then resizes with Pillow's antialiasing
    filter, which equals resize-then-crop up to sub-pixel rounding.
    """
    image = ImageOps.fit(decode(path), (size, size), method=Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def write_store(root: Path, images: Sequence[str], size: int, out: Path) -> None:
    """Decode `root/images/<image>` for every image into one (N, 3, size, size) uint8 `.npy`."""
    with written(out) as tmp:
        store = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(images), 3, size, size))
        paths = [root / IMAGE_DIR / name for name in images]
        for i, array in enumerate(parallel_map(partial(square, size=size), paths, "decoding images")):
            store[i] = array
        store.flush()
        del store


def open_store(path: Path) -> np.ndarray:
    """The preprocessed images, memory-mapped read-only: (N, 3, S, S) uint8."""
    try:
        return np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise InputError(f"{path}: not found; run `dvc repro preprocess` first") from None
