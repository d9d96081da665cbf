"""The `ewmtcnn` command: `ewmtcnn compare A B` and `ewmtcnn classic [RUN ...]`.

- Each subcommand is a module of `ewmtcnn.study` with `arguments(parser)` and `execute(args)`; its docstring is
  its help.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ewmtcnn import cli
from ewmtcnn.study import classic, compare

#: The subcommands by name.
SUBCOMMANDS = {"compare": compare, "classic": classic}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse `ewmtcnn <subcommand> ...` and run the subcommand: bad input is one message and exit 1."""
    parser = argparse.ArgumentParser(prog="ewmtcnn", description="EW-MTCNN on Emotion6: the project's commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module in SUBCOMMANDS.items():
        doc = module.__doc__ or ""
        module.arguments(
            commands.add_parser(
                name,
                help=doc.splitlines()[0],
                description=doc,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cli.run(lambda: SUBCOMMANDS[args.command].execute(args))
