"""The one place that loads PyTorch files and NumPy arrays: safely, and with one clear error.

- A missing, truncated, foreign or malicious file is an InputError that names the file, says what
  it should be and how to get a good one.
- Neither loader can run code: `torch.load(weights_only=True)` and `np.load` without
  `allow_pickle` refuse pickled objects.
"""

from __future__ import annotations

import pickle
import re
import struct
import warnings
from pathlib import Path

import numpy as np

from ewmtcnn import InputError

NPY_MAGIC = b"\x93NUMPY"


def _refused(path: Path, reason: str, what: str, hint: str) -> InputError:
    return InputError(f"{path}: {reason} (expected {what}); {hint}")


def _os_reason(error: OSError) -> str:
    """Why a file could not be opened, in a few words."""
    if isinstance(error, FileNotFoundError):
        return "not found"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(error, PermissionError):
        return "cannot be read (permission denied)"
    return f"cannot be read ({error.strerror or error})"


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _torch_reason(error: Exception) -> str:
    """One short reason for a failed `torch.load`, without its multi-paragraph advice."""
    if isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)):
        return _os_reason(error)
    if isinstance(error, OSError):  # torch's zip reader on a truncated file: EINVAL
        return f"truncated or corrupt ({error.strerror or error})"
    if isinstance(error, pickle.UnpicklingError):
        found = re.search(r"GLOBAL (\S+)", str(error))
        if found:
            return f"refused: loading it would import {found[1]}, which could run code"
        return "not a file saved by torch.save (the safe loader refuses it)"
    if isinstance(error, RuntimeError) and "zip archive" in str(error):
        return "truncated or corrupt (its zip archive cannot be read)"
    return "not a file saved by torch.save, or a truncated one"


def read_torch(path: Path, what: str, hint: str) -> object:
    """The content of a `torch.save` file, on the CPU, loaded without running code.

    - `what` says what the file should be ("a fold checkpoint"), `hint` how to get a good one
      ("rerun `dvc repro train`"); both go into the error for any file that cannot be loaded.
    """
    import torch  # here, not at the top: it takes seconds, and the data stages only read arrays

    try:
        with warnings.catch_warnings():
            # Emitted for a foreign pickle just before the refusal that the error below reports.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    # What torch.load raised on thousands of truncated, mutated and random files: each means
    # that this file is unusable (RuntimeError for a broken zip, KeyError or EOFError for text).
    except (OSError, pickle.UnpicklingError, RuntimeError, EOFError, LookupError, ValueError, struct.error) as e:
        raise _refused(path, _torch_reason(e), what, hint) from None


def read_array(
    path: Path, what: str, hint: str, *, dtype: np.dtype | None = None, ndim: int | None = None, mmap: bool = True
) -> np.ndarray:
    """The array in a `.npy` file, memory-mapped read-only (or loaded, `mmap=False`).

    - Checked to have `dtype` and `ndim` when given.
    - Object arrays are refused, since loading them unpickles.
    """
    try:
        with path.open("rb") as f:
            # np.load takes anything without the .npy magic for a pickle and says so: check first.
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise _refused(path, "not a NumPy .npy file", what, hint)
        array = np.load(path, mmap_mode="r" if mmap else None)
    except OSError as e:
        raise _refused(path, _os_reason(e), what, hint) from None
    except (ValueError, EOFError) as e:
        # Truncated data or header, or an object array (which only unpickling could load).
        raise _refused(path, f"unreadable .npy file: {_first_line(e)}", what, hint) from None
    if dtype is not None and array.dtype != dtype:
        raise _refused(path, f"holds {array.dtype} values, not {np.dtype(dtype)}", what, hint)
    if ndim is not None and array.ndim != ndim:
        raise _refused(path, f"has {array.ndim} dimension(s), shape {array.shape}, not {ndim}", what, hint)
    return array
