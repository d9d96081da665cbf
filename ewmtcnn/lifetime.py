"""A process that ends with its parent: a stage with the `dvc` that started it, a worker with its stage."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> None:
    """Have the OS send this process `signum` when its parent, process `parent`, dies (Linux; elsewhere nothing).

    - If the parent died before the request took effect, this process has been re-parented: exit at once.
    - Linux sends it when the thread that started this process ends: start it from a lasting thread.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)
