"""The plot of `ewmtcnn-predict --plot` (ewmtcnn.predict.plot), where it is written; the command itself is tested in
tests/integration/test_predict.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ewmtcnn import InputError
from ewmtcnn.data.dataset import EMOTIONS
from ewmtcnn.predict import Prediction, plot

PNG = b"\x89PNG\r\n\x1a\n"
PREDICTED = [Prediction("joy.jpg", dict(zip(EMOTIONS, [0.1, 0.1, 0.1, 0.5, 0.1, 0.1], strict=True)))]


def test_plot_onto_a_link_writes_through_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "results" / "wheel.png"
    target.parent.mkdir()
    target.write_bytes(b"an older plot")
    link = tmp_path / "wheel.png"
    link.symlink_to(target)
    plot(PREDICTED, link)
    assert link.is_symlink() and link.readlink() == target
    assert target.read_bytes().startswith(PNG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "wheel.png"]  # no temporary left
    assert [p.name for p in target.parent.iterdir()] == ["wheel.png"]


def test_plot_onto_a_dangling_link_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "wheel.png"
    link.symlink_to("made.png")  # relative, as `ln -s` makes it
    plot(PREDICTED, link)
    assert link.is_symlink() and (tmp_path / "made.png").read_bytes().startswith(PNG)


def test_plot_onto_a_fifo_or_device_is_refused_and_left_alone(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=rf"^{fifo}: is a named pipe \(FIFO\); give --plot the path of a PNG file"):
        plot(PREDICTED, fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and [p.name for p in tmp_path.iterdir()] == ["pipe.png"]
    link = tmp_path / "null.png"
    link.symlink_to("/dev/null")
    with pytest.raises(InputError, match=rf"^{link}: is a character device"):
        plot(PREDICTED, link)
    assert link.is_symlink() and stat.S_ISCHR(Path("/dev/null").stat().st_mode)


def test_plot_onto_a_loop_of_links_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop.png"
    loop.symlink_to("loop.png")
    with pytest.raises(InputError, match=rf"^{loop}: cannot write the plot \(Too many levels of symbolic links\)"):
        plot(PREDICTED, loop)
    assert loop.is_symlink() and [p.name for p in tmp_path.iterdir()] == ["loop.png"]
