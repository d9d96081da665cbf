"""OS errors in a command: one line naming the file and a non-zero exit, nothing left behind;
a crashed run's leftover does not count against the free space of the next."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from ewmtcnn import cli
from ewmtcnn.data.dataset import read_ground_truth
from ewmtcnn.data.images import DISK_MARGIN, open_store, write_store
from support import REPO, dead_pid, files_under, write_emotion6, write_params

# Runs a stage as `python -m stages.<stage>` would, on a disk that fills up half-way through
# the first text file the stage writes.
FULL_DISK = """
import errno, os, pathlib, runpy, sys

write_text = pathlib.Path.write_text

def full(self, data, *args, **kwargs):
    write_text(self, data[: len(data) // 2], *args, **kwargs)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

pathlib.Path.write_text = full
stage = sys.argv[1]
sys.argv = [stage]
runpy.run_module(f"stages.{stage}", run_name="__main__", alter_sys=True)
"""


def test_stage_on_a_full_disk_exits_1_with_one_line(tmp_path: Path) -> None:
    write_params(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "check"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"error: data/checked: no space left on device; free some space on the disk of {tmp_path}, then rerun"
    ]
    assert files_under(tmp_path) == {"params.yaml"} and not (tmp_path / "data").exists()


def test_other_os_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(SystemExit) as info:
        cli.run(missing.read_text)
    assert info.value.code == 1
    assert capsys.readouterr().err == f"error: {missing}: no such file or directory\n"
    with pytest.raises(SystemExit) as info:
        cli.run(lambda: os.rename(missing, tmp_path / "other.csv"))
    assert info.value.code == 1
    assert capsys.readouterr().err == f"error: {missing} -> {tmp_path / 'other.csv'}: no such file or directory\n"


class FakeUsage(NamedTuple):
    total: int
    used: int
    free: int


def test_leftover_of_a_crashed_run_is_swept_before_the_free_space_is_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_emotion6(tmp_path / "Emotion6", per_emotion=1)
    images = list(read_ground_truth(root)["image"])
    out = tmp_path / "prepared" / "images.npy"
    out.parent.mkdir()
    room = len(images) * 3 * 32 * 32 + DISK_MARGIN  # just enough for the store

    def usage(path: Path) -> FakeUsage:
        """A disk with room for one store, of which the files in the output's folder take their size."""
        used = sum(p.stat().st_size for p in out.parent.iterdir())
        return FakeUsage(total=room, used=used, free=room - used)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    # What a run killed on a full disk left: a temporary as large as the store (sparse here).
    leftover = out.parent / f".images.npy.{dead_pid()}-k2j_x9.tmp.npy"
    with leftover.open("wb") as f:
        f.truncate(room)
    write_store(root, images, 32, out)
    assert open_store(out).shape == (6, 3, 32, 32)
    assert files_under(tmp_path / "prepared") == {"images.npy"}
