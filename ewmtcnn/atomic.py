"""Outputs appear whole or not at all: write to a temporary sibling, rename when complete."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def written(final: Path | str, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success rename it to `final`.

    On any exception the temporary path, and any parent folder this call created, are
    removed, so a failed run leaves nothing behind. The temporary name keeps `final`'s
    suffix, since some writers (NumPy) append their own otherwise.
    """
    final = Path(final)
    created = [p for p in reversed(final.parents) if not p.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}."
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=f".tmp{final.suffix}", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        # mkstemp/mkdtemp make the path private; outputs are ordinary, readable files and folders.
        os.chmod(tmp, 0o755 if directory else 0o644)
        if directory and final.exists():
            # A directory cannot be replaced in one rename: move the old one aside first.
            old = final.with_name(f".{final.name}.old")
            _remove(old)
            final.rename(old)
            tmp.rename(final)
            _remove(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        for parent in reversed(created):
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
