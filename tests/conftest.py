"""Shared fixtures; the helpers they and the tests use are in support.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import write_emotion6, zip_folder


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


@pytest.fixture
def raw_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the download stage writes (`data/raw/Emotion6` under the tmp dir), with the
    working directory moved into the tmp dir so that a stray relative write shows up there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data" / "raw" / "Emotion6"
