"""Running a command: bad input is one message and exit 1, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ewmtcnn import InputError, params


def run(main: Callable[[], object]) -> None:
    """Run a command: bad input exits 1 with one message and no traceback, Ctrl-C exits 130."""
    try:
        main()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def run_stage(main: Callable[[dict[str, Any]], None]) -> None:
    """Run a stage on `params.yaml`: the stage checks the params it reads before writing anything."""
    run(lambda: main(params.load()))
