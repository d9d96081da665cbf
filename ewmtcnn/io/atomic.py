"""Outputs appear whole or not at all: write to a temporary sibling, rename when complete.

- A temporary is named `.<final name>.<pid>-<random>.tmp<suffix>`: the writer's PID lets a later
  writer of the same output remove what a killed one left behind (a SIGKILL runs no cleanup).
- The repository's `.gitignore` and `.dvcignore` match the pattern, so a leftover is never staged
  by git nor hashed into an output folder by DVC.
- A full disk, a read-only checkout or a missing permission is an InputError naming the output.
- Text outputs, and the figures a model file records beside its weights, round every float to
  SIGNIFICANT digits: NumPy's vectorised exp and log and torch's vectorised sums differ between
  CPUs in the last bits, and rounding keeps a rerun on another machine byte-identical (but for a
  value within a few ulps of a rounding boundary).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ewmtcnn import InputError

SIGNIFICANT = 10
#: What to do when writing an output fails with one of these errors (the OS says what happened).
WRITE_HINTS = {
    errno.ENOSPC: "free some space on the disk of {folder}, then rerun",
    errno.EDQUOT: "free some space within your quota on {folder}, then rerun",
    errno.EROFS: "{folder} is on a read-only file system: run from a writable checkout",
    errno.EACCES: "give this user write permission to {folder}, then rerun",
    errno.EPERM: "give this user write permission to {folder}, then rerun",
}


def _temporary(name: str) -> re.Pattern[str]:
    """The names of the temporaries of an output named `name` (a regular expression); group 1 is the writer's PID."""
    # mkstemp and mkdtemp draw the random part from [a-z0-9_].
    return re.compile(rf"\.{name}\.(\d+)-[a-z0-9_]+\.tmp")


TEMPORARY = _temporary(".+")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (a zombie counts: it is swept next time)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep(final: Path) -> list[Path]:
    """Remove the temporaries of `final` whose writer is dead; returns what was removed.

    - A live writer's temporary is never touched.
    - A dead writer's PID reused by a new process only delays the removal to a later run.
    """
    pattern = _temporary(re.escape(final.name))
    if not final.parent.is_dir():
        return []
    stale = [
        path
        for path in final.parent.iterdir()
        if (match := pattern.match(path.name)) and int(match[1]) != os.getpid() and not _alive(int(match[1]))
    ]
    for path in stale:
        _remove(path)
    return stale


@contextlib.contextmanager
def written(final: Path | str, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success rename it to `final`.

    - On any exception the temporary path, and any parent folder this call created, are removed,
      so a failed run leaves nothing behind; what a killed run left is swept first.
    - The temporary name keeps `final`'s suffix, since some writers (NumPy) append their own otherwise.
    - An OSError of WRITE_HINTS in writing `final` becomes an InputError naming it; one about
      another file (an input read in the block) is raised as it is.
    """
    final = Path(final)
    try:
        with _staged(final, directory) as tmp:
            yield tmp
    except OSError as e:
        if e.errno not in WRITE_HINTS or not _writes_of(final, e) or _inside_temporary(final):
            raise
        folder = next(p for p in final.parents if p.exists()).absolute()  # the folders this call made are gone
        reason = os.strerror(e.errno).lower()
        raise InputError(f"{final}: {reason}; {WRITE_HINTS[e.errno].format(folder=folder)}") from None


def _writes_of(final: Path, error: OSError) -> bool:
    """Whether `error` is about a path that writing `final` touches: its folders, its temporaries, itself."""
    if error.filename is None:  # a failed write() or close() names no file
        return True
    path = Path(os.fsdecode(error.filename))
    if path in final.parents:
        return True
    if not path.is_relative_to(final.parent):
        return False
    top = path.relative_to(final.parent).parts[0]
    return top == final.name or top.startswith(f".{final.name}.")


def _inside_temporary(final: Path) -> bool:
    """Whether `final` is written inside another output's temporary folder, whose writer names the error."""
    return any(TEMPORARY.match(parent.name) for parent in final.parents)


@contextlib.contextmanager
def _staged(final: Path, directory: bool) -> Iterator[Path]:
    """`written`'s steps, each error raised as the OS gives it."""
    created = [p for p in reversed(final.parents) if not p.exists()]
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        sweep(final)
        prefix = f".{final.name}.{os.getpid()}-"
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=final.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=f".tmp{final.suffix}", dir=final.parent)
            os.close(fd)
            tmp = Path(name)
        yield tmp
        # mkstemp/mkdtemp make the path private; outputs are ordinary, readable files and folders.
        os.chmod(tmp, 0o755 if directory else 0o644)
        if directory and final.exists():
            # A directory cannot be replaced in one rename: move the old one aside first, under
            # a temporary's name, so that a kill between the renames leaves a sweepable leftover.
            old = tmp.with_name(f"{tmp.name}.old")
            final.rename(old)
            tmp.rename(final)
            _remove(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):  # the error that brought us here is the one to report
            if tmp is not None:
                _remove(tmp)
            for parent in reversed(created):
                parent.rmdir()
        raise


def rounded(value: float) -> float:
    """`value` to SIGNIFICANT digits; NaN and infinities unchanged."""
    return float(f"{value:.{SIGNIFICANT}g}") if math.isfinite(value) else float(value)


def rounded_tree(content: Any) -> Any:
    """`content` with every float in nested dicts, lists and tuples rounded; the rest (tensors too) unchanged."""
    if isinstance(content, (float, np.floating)):
        return rounded(float(content))
    if isinstance(content, dict):
        return {key: rounded_tree(value) for key, value in content.items()}
    if isinstance(content, (list, tuple)):
        return type(content)(rounded_tree(value) for value in content)
    return content


def write_text(text: str, path: Path | str) -> None:
    """`text` as UTF-8 at `path`, atomically."""
    with written(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv(table: pd.DataFrame, path: Path | str) -> None:
    """`table` as CSV without its index, floats rounded to SIGNIFICANT digits, atomically.

    - A float is written as the shortest text of its rounded value (`0.5`, `3.0`, `1e-12`), so a
      float column reads back as floats.
    - NaN is an empty field, pandas' default.
    """
    with written(path) as tmp:
        table.to_csv(tmp, index=False, float_format=lambda value: repr(rounded(value)))


def write_json(content: Any, path: Path | str) -> None:
    """`content` as indented JSON with a final newline, floats rounded to SIGNIFICANT digits, atomically.

    - NaN and infinities are written as `NaN` and `Infinity`, as Python's json module does and reads
      back (DVC's metrics commands too), never as null.
    """
    write_text(json.dumps(rounded_tree(content), indent=2) + "\n", path)
