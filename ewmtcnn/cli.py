"""Running a command: bad input is one message and exit 1, not a traceback; a stage dies with its parent."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ewmtcnn import InputError
from ewmtcnn.config import sections
from ewmtcnn.lifetime import die_with_parent
from ewmtcnn.paths import PARAMS


def run(main: Callable[[], object]) -> None:
    """Run a command: bad input or an OS error exits 1 with one message and no traceback, Ctrl-C exits 130."""
    try:
        main()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"error: {_os_message(e)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _os_message(error: OSError) -> str:
    """`error` as `<file>: <what the OS says>` (`<file> -> <other file>: ...` for a rename), lower case."""
    files = " -> ".join(os.fsdecode(f) for f in (error.filename, error.filename2) if f is not None)
    reason = error.strerror.lower() if error.strerror else str(error)
    return f"{files}: {reason}" if files else reason


#: What every stage's --help ends with.
STAGE_EPILOG = f"Reads {PARAMS} (every section checked first); `dvc repro` and `dvc exp run` run it."


def stage_parser(main: Callable[..., None]) -> argparse.ArgumentParser:
    """The command line of the stage whose `main` this is: its module docstring, whole, as the --help text."""
    module = sys.modules[main.__module__]
    spec = getattr(module, "__spec__", None)
    return argparse.ArgumentParser(
        prog=f"python -m {spec.name}" if spec is not None else None,  # `python -m stages.train`, not __main__.py
        description=module.__doc__,
        epilog=STAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the docstring's bullets as written
    )


def run_stage(
    main: Callable[..., None],
    options: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Run a stage on params.yaml, every section checked before the stage reads or writes anything.

    - The command line first (`argv`, default sys.argv): `--help` prints the stage's docstring and
      exits before anything is read or written. `options` adds the stage's own options, which
      reach `main` as keyword arguments after the params.
    - The stage gets SIGTERM when its parent (`dvc`) dies, so that it never writes after DVC has
      dropped its lock.
    - params.yaml is read again when the stage ends: if it changed meanwhile (another `dvc exp run`),
      the stage fails, so that DVC never records params that did not make the outputs.
    """
    parser = stage_parser(main)
    if options is not None:
        options(parser)
    arguments = vars(parser.parse_args(argv))

    def stage() -> None:
        params = sections.load()
        main(params, **arguments)
        if sections.load() != params:
            raise InputError(
                f"{PARAMS} changed while the stage ran, so its outputs are not of the params it now holds; "
                "run one `dvc repro` or `dvc exp run` at a time, then rerun it"
            )

    die_with_parent(os.getppid())
    run(stage)
