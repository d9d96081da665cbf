"""ewmtcnn.atomic.written: outputs appear whole, under their final name, or not at all."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import files_under
from ewmtcnn.atomic import written


class Boom(Exception):
    pass


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_renamed_into_place(tmp_path: Path) -> None:
    final = tmp_path / "out" / "table.csv"
    with written(final) as tmp:
        assert tmp.parent == final.parent, "the temporary file must be a sibling, so the rename is atomic"
        assert tmp != final and tmp.suffix == ".csv"
        assert not final.exists(), "nothing may appear under the final name before the block ends"
        tmp.write_text("a,b\n1,2\n")
    assert final.read_text() == "a,b\n1,2\n"
    assert files_under(tmp_path) == {"out/table.csv"}


def test_file_replaces_existing_file(tmp_path: Path) -> None:
    final = tmp_path / "table.csv"
    final.write_text("old\n")
    with written(final) as tmp:
        tmp.write_text("new\n")
        assert final.read_text() == "old\n", "the old output stays intact while the new one is written"
    assert final.read_text() == "new\n"
    assert files_under(tmp_path) == {"table.csv"}


def test_file_mode_is_0644_whatever_the_umask(tmp_path: Path) -> None:
    final = tmp_path / "images.npy"
    old = os.umask(0o077)
    try:
        with written(final) as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert mode(final) == 0o644


def test_directory_renamed_into_place(tmp_path: Path) -> None:
    final = tmp_path / "data" / "raw" / "Emotion6"
    with written(final, directory=True) as tmp:
        assert tmp.is_dir() and tmp.parent == final.parent
        (tmp / "images").mkdir()
        (tmp / "images" / "a.jpg").write_bytes(b"jpeg")
        (tmp / "ground_truth.txt").write_text("table\n")
    assert files_under(tmp_path) == {"data/raw/Emotion6/images/a.jpg", "data/raw/Emotion6/ground_truth.txt"}
    # An output folder is readable by others like the files inside it, not private like mkdtemp makes it.
    assert mode(final) == 0o755


def test_directory_replaces_existing_directory(tmp_path: Path) -> None:
    final = tmp_path / "Emotion6"
    (final / "images").mkdir(parents=True)
    (final / "images" / "stale.jpg").write_bytes(b"stale")
    (final / "ground_truth.txt").write_text("old\n")
    with written(final, directory=True) as tmp:
        (tmp / "ground_truth.txt").write_text("new\n")
        assert (final / "ground_truth.txt").read_text() == "old\n"
    assert (final / "ground_truth.txt").read_text() == "new\n"
    # Replaced whole, not merged: nothing of the old folder survives, and no `.old` copy is left.
    assert files_under(tmp_path) == {"Emotion6/ground_truth.txt"}


@pytest.mark.parametrize("directory", [False, True], ids=["file", "directory"])
def test_exception_leaves_nothing(tmp_path: Path, directory: bool) -> None:
    final = tmp_path / "out.npy"
    with pytest.raises(Boom):
        with written(final, directory=directory) as tmp:
            if directory:
                (tmp / "part").write_bytes(b"half")
            else:
                tmp.write_bytes(b"half")
            raise Boom
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("directory", [False, True], ids=["file", "directory"])
def test_exception_keeps_existing_output(tmp_path: Path, directory: bool) -> None:
    final = tmp_path / "out"
    if directory:
        final.mkdir()
        (final / "kept").write_text("previous run\n")
    else:
        final.write_text("previous run\n")
    with pytest.raises(Boom):
        with written(final, directory=directory):
            raise Boom
    assert files_under(tmp_path) == ({"out/kept"} if directory else {"out"})


def test_exception_removes_only_the_parents_it_created(tmp_path: Path) -> None:
    existing = tmp_path / "data"
    existing.mkdir()
    (existing / ".gitignore").write_text("/x\n")
    final = existing / "prepared" / "deep" / "images.npy"
    with pytest.raises(Boom):
        with written(final) as tmp:
            assert tmp.parent == existing / "prepared" / "deep"
            raise Boom
    assert not (existing / "prepared").exists()
    assert existing.is_dir() and files_under(tmp_path) == {"data/.gitignore"}


def test_empty_preexisting_parent_is_kept(tmp_path: Path) -> None:
    parent = tmp_path / "prepared"
    parent.mkdir()
    with pytest.raises(Boom):
        with written(parent / "labels.csv"):
            raise Boom
    assert parent.is_dir() and list(parent.iterdir()) == []


def test_keyboard_interrupt_also_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with written(tmp_path / "new" / "folds.csv") as tmp:
            tmp.write_text("partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
