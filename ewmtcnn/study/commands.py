"""External commands as the study and the cluster run them: one InputError on failure.

- `output` runs any command and returns its stdout.
- `dvc` runs the DVC of this interpreter, whatever PATH says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ewmtcnn import InputError


def output(command: Sequence[str], what: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """The stdout of `command`; its failure is one InputError with the last line it printed."""
    result = subprocess.run(list(command), check=False, capture_output=True, text=True, env=env, cwd=cwd)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise InputError(f"{what} failed: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result.stdout


def dvc(*args: str) -> str:
    """Run DVC, the one of this interpreter (the venv's, whatever PATH says), and return its stdout.

    - `dvc queue start` spawns its workers as `dvc` from PATH, so this interpreter's folder goes
      first on PATH too: otherwise they would be another DVC, or none (and the queue never runs).
    """
    path = os.pathsep.join(folders for folders in (str(Path(sys.executable).parent), os.environ.get("PATH")) if folders)
    return output([sys.executable, "-m", "dvc", *args], f"`dvc {' '.join(args)}`", env={**os.environ, "PATH": path})
