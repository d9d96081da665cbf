"""ewmtcnn.io.atomic: outputs appear whole, under their final name, or not at all; a killed writer's
leftovers are swept; text outputs round floats so that other machines write the same bytes."""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ewmtcnn.io import atomic
from ewmtcnn.io.atomic import write_csv, write_json, write_text, written
from support import assert_refused, dead_pid, files_under


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
    with pytest.raises(Boom), written(final, directory=directory) as tmp:
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
    with pytest.raises(Boom), written(final, directory=directory):
        raise Boom
    assert files_under(tmp_path) == ({"out/kept"} if directory else {"out"})


def test_exception_removes_only_the_parents_it_created(tmp_path: Path) -> None:
    existing = tmp_path / "data"
    existing.mkdir()
    (existing / ".gitignore").write_text("/x\n")
    final = existing / "prepared" / "deep" / "images.npy"
    with pytest.raises(Boom), written(final) as tmp:
        assert tmp.parent == existing / "prepared" / "deep"
        raise Boom
    assert not (existing / "prepared").exists()
    assert existing.is_dir() and files_under(tmp_path) == {"data/.gitignore"}


def test_empty_preexisting_parent_is_kept(tmp_path: Path) -> None:
    parent = tmp_path / "prepared"
    parent.mkdir()
    with pytest.raises(Boom), written(parent / "labels.csv"):
        raise Boom
    assert parent.is_dir() and list(parent.iterdir()) == []


def test_keyboard_interrupt_also_cleans_up(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), written(tmp_path / "new" / "folds.csv") as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


# --- temporaries of killed writers -----------------------------------------------------------


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The PID of a running process other than this one (a writer still at work)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield child.pid
    child.kill()
    child.wait()


def test_temporary_names_carry_the_writers_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = os.getpid()
    with written(tmp_path / "images.npy") as tmp:
        assert re.fullmatch(rf"\.images\.npy\.{pid}-[a-z0-9_]+\.tmp\.npy", tmp.name), tmp.name
        tmp.write_bytes(b"x")
    final = tmp_path / "Emotion6"
    final.mkdir()
    removed: list[Path] = []
    monkeypatch.setattr(atomic, "_remove", removed.append)  # records the old folder instead of removing it
    with written(final, directory=True) as tmp:
        assert re.fullmatch(rf"\.Emotion6\.{pid}-[a-z0-9_]+\.tmp", tmp.name), tmp.name
    # The replaced folder was moved aside under a temporary's name too, so a kill leaves it sweepable.
    assert [p.name for p in removed] == [f"{tmp.name}.old"]


def test_leftovers_of_dead_writers_are_swept(tmp_path: Path, live_pid: int) -> None:
    dead = dead_pid()
    stale_file = tmp_path / f".images.npy.{dead}-k2j_x9.tmp.npy"
    stale_file.write_bytes(b"half a store")
    stale_dir = tmp_path / f".images.npy.{dead}-a1b2c3.tmp.old"
    (stale_dir / "part").mkdir(parents=True)
    kept = {
        f".images.npy.{live_pid}-zzz.tmp.npy": "a live writer's, still being written",
        f".labels.csv.{dead}-abc.tmp.csv": "another output's: swept when that one is written",
        ".images.npy.notes": "not a temporary's name",
    }
    for name in kept:
        (tmp_path / name).write_text("x")
    with written(tmp_path / "images.npy") as tmp:
        tmp.write_bytes(b"store")
    assert files_under(tmp_path) == {"images.npy", *kept}


def test_sweep_removes_exactly_the_dead_writers_temporaries(tmp_path: Path, live_pid: int) -> None:
    dead = dead_pid()
    (tmp_path / f".fold-1.{dead}-x.tmp").mkdir()
    (tmp_path / f".fold-1.{live_pid}-y.tmp").mkdir()
    (tmp_path / f".fold-10.{dead}-z.tmp").mkdir()  # fold-10's, not fold-1's
    assert atomic.sweep(tmp_path / "fold-1") == [tmp_path / f".fold-1.{dead}-x.tmp"]
    assert {p.name for p in tmp_path.iterdir()} == {f".fold-1.{live_pid}-y.tmp", f".fold-10.{dead}-z.tmp"}
    assert atomic.sweep(tmp_path / "missing" / "fold-1") == []


# --- OS errors: one message naming the output --------------------------------------------------


def oserror(code: int, filename: str | Path | None = None) -> OSError:
    """What the OS raises for `code`, about `filename` if given."""
    return OSError(code, os.strerror(code)) if filename is None else OSError(code, os.strerror(code), str(filename))


WRITE_ERRORS = {
    errno.ENOSPC: "no space left on device; free some space on the disk of",
    errno.EDQUOT: "disk quota exceeded; free some space within your quota on",
    errno.EROFS: "read-only file system; ",
    errno.EACCES: "permission denied; give this user write permission to",
    errno.EPERM: "operation not permitted; give this user write permission to",
}


@pytest.mark.parametrize("code", WRITE_ERRORS, ids=errno.errorcode.get)
@pytest.mark.parametrize("directory", [False, True], ids=["file", "directory"])
def test_failed_write_names_the_output_and_leaves_nothing(tmp_path: Path, code: int, directory: bool) -> None:
    final = tmp_path / "data" / "train" / "fold-3"

    def write() -> None:
        with written(final, directory=directory) as tmp:
            (tmp / "history.csv" if directory else tmp).write_text("half")
            raise oserror(code)  # as a write() on a full disk does: no file named

    message = assert_refused(write, tmp_path, f"{final}: {WRITE_ERRORS[code]}")
    assert f"{tmp_path}, then rerun" in message or f"{tmp_path} is on a read-only" in message, message
    assert list(tmp_path.iterdir()) == []


def test_write_within_an_output_folder_names_the_folder(tmp_path: Path) -> None:
    """A fold's files are written inside its temporary folder: the error names the fold, not a temporary."""
    final = tmp_path / "repeat-0" / "fold-3"
    (tmp_path / "repeat-0").mkdir()

    def write() -> None:
        with written(final, directory=True) as tmp:
            write_text("a\n", tmp / "history.csv")
            with written(tmp / "test.csv") as inner:
                raise oserror(errno.ENOSPC, inner)

    message = assert_refused(write, tmp_path, f"{final}: no space left on device; free some space on the disk of")
    assert ".tmp" not in message, message


def test_folders_that_cannot_be_made_are_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only checkout: the first folder to make fails (as root ignores modes, simulated)."""
    final = tmp_path / "data" / "train" / "fold-0"

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise oserror(errno.EROFS, self)

    monkeypatch.setattr(Path, "mkdir", read_only)
    message = assert_refused(lambda: written(final).__enter__(), tmp_path, f"{final}: read-only file system")
    assert message.endswith(f"{tmp_path} is on a read-only file system: run from a writable checkout"), message


def test_temporary_that_cannot_be_made_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = tmp_path / "new" / "folds.csv"

    def denied(prefix: str, suffix: str, dir: Path) -> tuple[int, str]:
        raise oserror(errno.EACCES, Path(dir) / f"{prefix}abc{suffix}")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    message = assert_refused(lambda: write_text("x", final), tmp_path, f"{final}: permission denied")
    assert message.endswith(f"give this user write permission to {tmp_path}, then rerun"), message
    assert not (tmp_path / "new").exists(), "the folder made for the output is removed"


def test_errors_about_other_files_pass_unchanged(tmp_path: Path) -> None:
    """An input read in the block that cannot be read, or an error no hint fits, is the OS's own error."""
    for error in (oserror(errno.EACCES, tmp_path / "inputs" / "archive.zip"), oserror(errno.EIO)):
        with pytest.raises(OSError) as info, written(tmp_path / "out.csv") as tmp:
            tmp.write_text("half")
            raise error
        assert info.value is error
    assert list(tmp_path.iterdir()) == []


# --- text writers: floats to SIGNIFICANT digits ------------------------------------------------


def test_rounded_by_hand() -> None:
    assert atomic.SIGNIFICANT == 10
    assert atomic.rounded(0.12345678901234) == 0.123456789
    assert atomic.rounded(2 / 3) == 0.6666666667
    assert atomic.rounded(123456.78901234) == 123456.789
    assert atomic.rounded(1.234567890123e-12) == 1.23456789e-12
    assert atomic.rounded(0.99999999999) == 1.0
    assert math.isnan(atomic.rounded(math.nan)) and atomic.rounded(-math.inf) == -math.inf


def test_write_csv_rounds_floats_only(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "image": ["joy/1.jpg", "fear/2.jpg", "anger/3.jpg"],
            "count": [12345678901234, 7, 0],  # ints are never rounded
            "p": [0.12345678901234, 2.0, math.nan],
            "small": np.array([1.234567890123e-12, 0.1 + 0.2, 1 / 3], dtype=np.float64),
            "single": np.array([0.1, 0.5, 1.0], dtype=np.float32),
        }
    )
    out = tmp_path / "metrics" / "predictions.csv"
    write_csv(table, out)
    assert out.read_text(encoding="utf-8") == (
        "image,count,p,small,single\n"
        "joy/1.jpg,12345678901234,0.123456789,1.23456789e-12,0.1000000015\n"
        "fear/2.jpg,7,2.0,0.3,0.5\n"
        "anger/3.jpg,0,,0.3333333333,1.0\n"
    )
    assert files_under(tmp_path) == {"metrics/predictions.csv"}
    # Floats read back as floats (2.0 is written "2.0", not "2"), NaN as NaN.
    back = pd.read_csv(out)
    assert back["p"].dtype == np.float64 and math.isnan(back["p"][2])


def test_values_differing_in_the_last_bits_write_the_same_text(tmp_path: Path) -> None:
    """What a different CPU's exp/log gives: the same text, so `git status` stays clean."""
    a, b = 0.47151234567890123, np.nextafter(0.47151234567890123, 1.0)
    assert a != b
    write_csv(pd.DataFrame({"kl": [a]}), tmp_path / "a.csv")
    write_csv(pd.DataFrame({"kl": [b]}), tmp_path / "b.csv")
    write_json({"kl": a}, tmp_path / "a.json")
    write_json({"kl": b}, tmp_path / "b.json")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_write_json_rounds_nested_floats(tmp_path: Path) -> None:
    content = {
        "test": {"acc": {"mean": 0.59123456789012, "std": np.float32(0.25)}, "folds": [1, 2, 3]},
        "curve": [(0.1 + 0.2, 1e-13 / 3), [True, None, "x"]],
        "nan": math.nan,
    }
    out = tmp_path / "metrics.json"
    write_json(content, out)
    assert (
        out.read_text(encoding="utf-8")
        == """{
  "test": {
    "acc": {
      "mean": 0.5912345679,
      "std": 0.25
    },
    "folds": [
      1,
      2,
      3
    ]
  },
  "curve": [
    [
      0.3,
      3.333333333e-14
    ],
    [
      true,
      null,
      "x"
    ]
  ],
  "nan": NaN
}
"""
    )
    assert files_under(tmp_path) == {"metrics.json"}


def test_write_text_is_atomic_utf8(tmp_path: Path) -> None:
    out = tmp_path / "README.md"
    out.write_text("old\n")
    write_text("| émotion | ± |\n", out)
    assert out.read_bytes() == "| émotion | ± |\n".encode()
    assert files_under(tmp_path) == {"README.md"}
