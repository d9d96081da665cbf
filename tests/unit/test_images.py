"""Decoding an image file as preprocess and predict do (ewmtcnn.data.images): bit depth, EXIF, file kinds."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ewmtcnn import InputError
from ewmtcnn.data.images import square

ORIENTATION = 0x0112  # the EXIF tag
TURN_CLOCKWISE = 6  # its value for "rotate 90 degrees clockwise to display"


def test_16_bit_greyscale_is_scaled_to_8_bits_not_clipped(tmp_path: Path) -> None:
    # A 32x32 gradient along the columns, 0 to 65534 in steps of 2114: Pillow reads it as mode I;16.
    column = np.arange(32) * 2114
    path = tmp_path / "deep.png"
    Image.fromarray(np.tile(column, (32, 1)).astype(np.uint16)).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    out = square(path, 32)  # already square at the size: no resampling, exact pixels
    # By hand: 65535 -> 255 is a division by 257, to the nearest integer; 2114/257 = 8.23, 4228/257 = 16.45, ...
    expected = np.rint(column / 257).astype(np.uint8)
    assert expected[[0, 1, 2, 31]].tolist() == [0, 8, 16, 255]
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8
    for channel in out:
        assert np.array_equal(channel, np.tile(expected, (32, 1)))


@pytest.mark.parametrize(("mode", "kind"), [("I", "integer"), ("F", "float")])
def test_32_bit_greyscale_is_refused_as_having_no_range(tmp_path: Path, mode: str, kind: str) -> None:
    path = tmp_path / "wide.tif"
    Image.fromarray(np.full((8, 8), 1000, dtype=np.int32 if mode == "I" else np.float32)).save(path)
    with Image.open(path) as image:
        assert image.mode == mode
    with pytest.raises(InputError, match=rf"^{path}: 32-bit {kind} greyscale pixels have no fixed range") as refused:
        square(path, 8)
    assert "8 or 16 bits per channel" in str(refused.value)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 40 wide and 20 high, left half red and right half blue; shown turned clockwise: red on top.
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    tagged = tmp_path / "tagged.png"
    exif = Image.Exif()
    exif[ORIENTATION] = TURN_CLOCKWISE
    Image.fromarray(pixels).save(tagged, exif=exif)
    turned = tmp_path / "turned.png"
    Image.fromarray(np.rot90(pixels, k=-1).copy()).save(turned)  # the same picture, turned in its pixels
    out = square(tagged, 16)
    assert np.array_equal(out, square(turned, 16))
    assert (out[0, :4] == 255).all() and (out[2, :4] == 0).all()  # red on top
    assert (out[0, -4:] == 0).all() and (out[2, -4:] == 255).all()  # blue below
    untagged = tmp_path / "untagged.png"
    Image.fromarray(pixels).save(untagged)
    assert (square(untagged, 16)[0, :, :4] == 255).all()  # without the tag: red on the left


@contextlib.contextmanager
def released(fifo: Path) -> Iterator[None]:
    """A writer that opens and closes `fifo` meanwhile: a reader blocked on it gets end-of-file, not a hang."""
    writer = threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True)
    writer.start()
    try:
        yield
    finally:
        # A reader held open until the writer is done lets the writer's open return, whenever it
        # starts (opened and closed at once, a writer that starts later would block for ever).
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer.join()
        os.close(reader)


def test_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with released(fifo), pytest.raises(InputError, match=rf"^{fifo}: is a named pipe \(FIFO\), not an image file"):
        square(fifo, 32)


def test_socket_device_and_folder_are_refused(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s.png"))
        with pytest.raises(InputError, match=rf"^{tmp_path / 's.png'}: is a socket, not an image file"):
            square(tmp_path / "s.png", 32)
    with pytest.raises(InputError, match=r"^/dev/null: is a character device, not an image file"):
        square(Path("/dev/null"), 32)
    with pytest.raises(InputError, match=rf"^{tmp_path}: is a folder, not an image file"):
        square(tmp_path, 32)


def test_link_to_an_image_is_read(tmp_path: Path) -> None:
    image = tmp_path / "grey.png"
    Image.fromarray(np.full((8, 8), 77, dtype=np.uint8)).save(image)
    (tmp_path / "link.png").symlink_to(image)
    assert np.array_equal(square(tmp_path / "link.png", 8), square(image, 8))


def test_unknown_format_is_named(tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture\n")
    with pytest.raises(InputError, match=rf"^{notes}: cannot be decoded as an image \(not a format Pillow reads\)$"):
        square(notes, 32)
