"""ewmtcnn.io.safe_load: every unusable torch file or array is one InputError naming the file, what it
should be and how to get a good one; nothing in a file can run code."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ewmtcnn import InputError
from ewmtcnn.io.safe_load import read_array, read_torch

WHAT = "a fold checkpoint"
HINT = "rerun `dvc repro train`"


class Planted:
    """Unpickling this object creates `marker`: what a malicious checkpoint would do, harmlessly."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def refusal(load: object, path: Path) -> str:
    """The one-line InputError message that `load()` raises, checked to name the file, WHAT and HINT."""
    with pytest.raises(InputError) as info:
        load()  # type: ignore[operator]
    message = str(info.value)
    assert message.startswith(f"{path}: ") and f"(expected {WHAT}); {HINT}" in message, message
    assert "\n" not in message, "one short reason, not the library's paragraphs"
    return message


# --- read_torch ---------------------------------------------------------------------------


def test_read_torch_loads_a_saved_state(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.arange(6.0).reshape(2, 3), "epochs": 20}, path)
    content = read_torch(path, WHAT, HINT)
    assert isinstance(content, dict) and content["epochs"] == 20
    assert torch.equal(content["weights"], torch.arange(6.0).reshape(2, 3))


def test_read_torch_refuses_a_pickle_that_would_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    # The payload is live: what an unpickler calls (its __reduce__) creates the file.
    run, args = Planted(tmp_path / "proof").__reduce__()
    run(*args)
    assert (tmp_path / "proof").exists()
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2), "payload": Planted(marker)}, path)
    message = refusal(lambda: read_torch(path, WHAT, HINT), path)
    assert "refused: loading it would import" in message and "which could run code" in message
    assert not marker.exists(), "the payload ran"


def test_read_torch_refuses_a_truncated_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(10_000)}, buffer)
    path = tmp_path / "model.pt"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert "truncated or corrupt" in refusal(lambda: read_torch(path, WHAT, HINT), path)


@pytest.mark.parametrize("content", [b"not a checkpoint\n", b""], ids=["text", "empty"])
def test_read_torch_refuses_a_foreign_file(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.weights"
    path.write_bytes(content)
    assert "not a file saved by torch.save" in refusal(lambda: read_torch(path, WHAT, HINT), path)


def test_read_torch_refuses_a_folder_and_a_missing_file(tmp_path: Path) -> None:
    assert refusal(lambda: read_torch(tmp_path, WHAT, HINT), tmp_path).startswith(f"{tmp_path}: is a folder")
    missing = tmp_path / "model.pt"
    assert refusal(lambda: read_torch(missing, WHAT, HINT), missing).startswith(f"{missing}: not found")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_read_torch_refuses_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({}, path)
    path.chmod(0)
    assert "permission denied" in refusal(lambda: read_torch(path, WHAT, HINT), path)


# --- read_array ---------------------------------------------------------------------------


def test_read_array_memory_maps_read_only(tmp_path: Path) -> None:
    path = tmp_path / "features.npy"
    expected = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.save(path, expected)
    mapped = read_array(path, WHAT, HINT, dtype=np.dtype(np.float32), ndim=2)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    assert np.array_equal(mapped, expected)
    loaded = read_array(path, WHAT, HINT, mmap=False)
    assert not isinstance(loaded, np.memmap) and np.array_equal(loaded, expected)


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "load"])
def test_read_array_refuses_a_truncated_file(mmap: bool, tmp_path: Path) -> None:
    path = tmp_path / "features.npy"
    np.save(path, np.zeros((100, 8), np.float32))
    path.write_bytes(path.read_bytes()[:-64])
    assert "unreadable .npy file" in refusal(lambda: read_array(path, WHAT, HINT, mmap=mmap), path)


@pytest.mark.parametrize("content", [b"1,2,3\n4,5,6\n", b"", b"PK\x03\x04 an npz"], ids=["text", "empty", "zip"])
def test_read_array_refuses_a_file_that_is_not_npy(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "features.npy"
    path.write_bytes(content)
    assert refusal(lambda: read_array(path, WHAT, HINT), path).startswith(f"{path}: not a NumPy .npy file")


def test_read_array_refuses_a_real_npz_archive(tmp_path: Path) -> None:
    path = tmp_path / "features.npy"
    with path.open("wb") as f:
        np.savez(f, features=np.zeros(3))
    assert refusal(lambda: read_array(path, WHAT, HINT), path).startswith(f"{path}: not a NumPy .npy file")


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "load"])
def test_read_array_refuses_an_object_array_without_unpickling(mmap: bool, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "features.npy"
    np.save(path, np.array([Planted(marker), None], dtype=object))  # np.save pickles object arrays
    assert "unreadable .npy file" in refusal(lambda: read_array(path, WHAT, HINT, mmap=mmap), path)
    assert not marker.exists(), "the payload ran"


def test_read_array_checks_dtype_and_ndim(tmp_path: Path) -> None:
    path = tmp_path / "features.npy"
    np.save(path, np.zeros((2, 3, 4), np.float64))
    wrong_dtype = refusal(lambda: read_array(path, WHAT, HINT, dtype=np.dtype(np.float32)), path)
    assert wrong_dtype.startswith(f"{path}: holds float64 values, not float32")
    wrong_ndim = refusal(lambda: read_array(path, WHAT, HINT, ndim=2), path)
    assert wrong_ndim.startswith(f"{path}: has 3 dimension(s), shape (2, 3, 4), not 2")
    assert read_array(path, WHAT, HINT, dtype=np.dtype(np.float64), ndim=3).shape == (2, 3, 4)


def test_read_array_refuses_a_folder_and_a_missing_file(tmp_path: Path) -> None:
    assert refusal(lambda: read_array(tmp_path, WHAT, HINT), tmp_path).startswith(f"{tmp_path}: is a folder")
    missing = tmp_path / "features.npy"
    assert refusal(lambda: read_array(missing, WHAT, HINT), missing).startswith(f"{missing}: not found")
