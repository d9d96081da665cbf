"""Decoding Emotion6's JPEGs once into a square uint8 store that training memory-maps.

- Each image is decoded once, resized and centre-cropped, and kept in one (N, 3, S, S) uint8 `.npy` array
  (the public reimplementation decodes every JPEG again in every epoch).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import stat
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from ewmtcnn import InputError
from ewmtcnn.config.checks import bounded
from ewmtcnn.config.sections import MAX_SIZE
from ewmtcnn.data.dataset import GROUND_TRUTH, IMAGE_DIR, problems_error
from ewmtcnn.io.atomic import sweep, written
from ewmtcnn.io.safe_load import read_array
from ewmtcnn.lifetime import die_with_parent

T = TypeVar("T")
R = TypeVar("R")

# Emotion6's largest image is 640x480 (0.3 megapixels); a photo from a 40-megapixel camera still
# passes. Above this an image is refused before its pixels are decoded (a 12000x12000 one would
# take 2 GB for nothing), also below Pillow's own decompression-bomb limit of ~89 megapixels.
MAX_PIXELS = 40_000_000
# Room left on the disk beside the image store, for the labels table and whatever else writes there.
DISK_MARGIN = 100 * 1024**2


def store_size(size: int, smallest: int) -> int:
    """`preprocess.size` as `size`, checked to be at least the backbone's input side `smallest` (at most MAX_SIZE)."""
    return bounded("preprocess.size", size, smallest, MAX_SIZE)


def workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0))


def _pool_options() -> dict[str, Any]:
    """The decoding pool's start method and initializer.

    - Linux: fork (its default before Python 3.14), so that each worker's parent is this process, as
      `die_with_parent` checks; a worker gets SIGKILL when this process dies (else a SIGKILLed stage
      would leave its workers waiting on the task queue for ever).
    - Elsewhere there is no parent-death signal: workers of a killed stage stay until killed by hand
      (an ordinary exit or Ctrl-C stops them).
    """
    if sys.platform != "linux":
        return {}
    return {
        "mp_context": multiprocessing.get_context("fork"),
        "initializer": die_with_parent,
        "initargs": (os.getpid(), signal.SIGKILL),
    }


def parallel_map(fn: Callable[[T], R], items: Sequence[T], desc: str) -> Iterator[R]:
    """`map` over all cores, in order, with a progress bar; the workers die with this process."""
    with ProcessPoolExecutor(max_workers=min(workers(), max(1, len(items))), **_pool_options()) as pool:
        yield from tqdm(pool.map(fn, items, chunksize=8), total=len(items), desc=desc, unit="img")


def _too_large(path: Path, detail: str) -> InputError:
    """One message for our limit and Pillow's."""
    return InputError(f"{path}: image too large ({detail}); at most {MAX_PIXELS / 1e6:g} megapixels are decoded")


#: The kinds of file that are not images to read, by the `stat` test that recognises them.
SPECIAL_FILES = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a named pipe (FIFO)",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


def _nonblocking(name: str, flags: int) -> int:
    """An `open` opener with O_NONBLOCK: a FIFO swapped in after the check still cannot block the open."""
    return os.open(name, flags | os.O_NONBLOCK)


def special_kind(path: Path) -> str | None:
    """What `path` is when it exists but is no regular file ("a named pipe (FIFO)", ...), else None; links followed."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    return next((name for test, name in SPECIAL_FILES.items() if test(mode)), None)


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading; anything but a regular file is an InputError at once, never waited on.

    - A FIFO would otherwise block until some writer opens it, a device could be read for ever.
    """
    if (kind := special_kind(path)) is not None:
        raise InputError(f"{path}: is {kind}, not an image file; give the path of an image file")
    return open(path, "rb", opener=_nonblocking)


def eight_bit(image: Image.Image, path: Path) -> Image.Image:
    """`image` with 8 bits per channel: 16-bit greyscale scaled (0-65535 to 0-255), not clipped as Pillow does.

    - 32-bit integer and float greyscale (modes I and F) have no fixed range to scale from: refused.
    - Every other mode already has 8 bits per channel (Pillow reads 16-bit colour PNGs as 8-bit).
    """
    if image.mode.startswith("I;16"):
        pixels = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.rint(pixels * (255 / 65535)).astype(np.uint8), mode="L")
    if image.mode in ("I", "F"):
        raise InputError(
            f"{path}: 32-bit {'integer' if image.mode == 'I' else 'float'} greyscale pixels have no fixed range "
            "to scale to 8 bits; save the image with 8 or 16 bits per channel"
        )
    return image


def decode(path: Path) -> Image.Image:
    """The image at `path` as RGB; a missing, truncated, oversized, non-regular or non-image file is an InputError.

    - The size comes from the header, which `Image.open` reads alone: an oversized image is
      refused before any memory is allocated for its pixels.
    - The EXIF orientation is applied (Emotion6's images carry none), then 16-bit pixels scaled to 8.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(path) as file, Image.open(file) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise _too_large(path, f"{width}x{height} = {width * height / 1e6:.1f} megapixels")
                image.load()  # a truncated file fails here, not at open
                return eight_bit(ImageOps.exif_transpose(image), path).convert("RGB")
    except FileNotFoundError:
        raise InputError(f"{path}: image not found") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        # Pillow's own limit, checked inside Image.open before this function sees the size;
        # its message gives the pixel count ("Image size (144000000 pixels) exceeds limit ...").
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(path, f"{int(pixels[1]) / 1e6:.1f} megapixels" if pixels else str(e)) from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: cannot be decoded as an image (not a format Pillow reads)") from None
    except (OSError, SyntaxError, ValueError) as e:
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
        for name, problem in zip(images, parallel_map(image_problem, paths, "checking images"), strict=True)
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


def _mib(size: int) -> str:
    return f"{size / 1024**2:,.1f} MiB"


def check_disk_space(out: Path, needed: int) -> None:
    """Refuse to start a `needed`-byte file at `out` on a disk without room for it (and DISK_MARGIN).

    The store is a memory-mapped file, created sparse: a full disk would otherwise show up
    only mid-way, as a crash (SIGBUS) when a page of it is written.
    """
    folder = next(p for p in (out.parent, *out.parent.parents) if p.exists())  # `out`'s may not exist yet
    free = shutil.disk_usage(folder).free
    if needed + DISK_MARGIN > free:
        raise InputError(
            f"{out}: needs {_mib(needed)} (plus {_mib(DISK_MARGIN)} to spare), but only {_mib(free)} "
            f"are free on the disk of {folder}; free some space or lower preprocess.size"
        )


def write_store(root: Path, images: Sequence[str], size: int, out: Path) -> None:
    """Decode `root/images/<image>` for every image into one (N, 3, size, size) uint8 `.npy`.

    - What a killed run left is swept before the free space is measured, which it would take up.
    """
    sweep(out)
    check_disk_space(out, len(images) * 3 * size * size)
    with written(out) as tmp:
        store = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(images), 3, size, size))
        paths = [root / IMAGE_DIR / name for name in images]
        for i, array in enumerate(parallel_map(partial(square, size=size), paths, "decoding images")):
            store[i] = array
        store.flush()
        del store


def open_store(path: Path) -> np.ndarray:
    """The preprocessed images, memory-mapped read-only: (N, 3, S, S) uint8."""
    what, hint = "the preprocessed image store, (N, 3, S, S) uint8", "rerun `dvc repro preprocess`"
    store = read_array(path, what, hint, dtype=np.dtype(np.uint8), ndim=4)
    if store.shape[1] != 3 or store.shape[2] != store.shape[3]:
        raise InputError(f"{path}: shape {store.shape} is not (N, 3, S, S) (expected {what}); {hint}")
    return store
