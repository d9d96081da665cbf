"""`make show` (`python -m ewmtcnn.study.show`): `dvc exp show` narrowed to what tells experiments apart.

- Each experiment's params that vary between the rows shown (`--only-changed`), and its headline
  held-out means (metrics/headline.json: accuracy, balanced accuracy, macro-F1, KL, Chebyshev,
  cosine, intersection); every other column (stds, intervals, baselines, chosen settings, the
  classic methods, file hashes) is dropped, so that the table fits 200 columns.
- Any other option goes to `dvc exp show` as it is: `-n 3`, `--rev <commit>`, `--sort-by kl`, `--csv`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import fields

from ewmtcnn.config.sections import Params
from ewmtcnn.evaluation.report import HEADLINE


def options() -> list[str]:
    """The `dvc exp show` options: keep the headline metrics, drop all but the params, then the unvarying params.

    - `--drop` takes every column but `<section>.<key>` of params.yaml; `--keep` protects the headline
      columns (and the experiment's name) from it and from `--only-changed`.
    """
    sections = "|".join(field.name for field in fields(Params))
    return [
        "--only-changed",
        "--drop",
        rf"(?!({sections})\.\w+$)",
        "--keep",
        rf"(Experiment|{'|'.join(HEADLINE)})$",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Run `dvc exp show` with `options()` and the user's own; its exit status is this command's."""
    command = [sys.executable, "-m", "dvc", "exp", "show", *options()]
    parser = argparse.ArgumentParser(
        prog="python -m ewmtcnn.study.show",
        description=__doc__,
        epilog=f"Runs: {shlex.join(['dvc', *command[3:]])} [OPTION...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _, extra = parser.parse_known_args(argv)
    os.execv(sys.executable, [*command, *extra])


if __name__ == "__main__":
    main()
