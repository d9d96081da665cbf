"""Stage `check`: the whole params.yaml checked before any other stage runs.

- Every other stage depends on its output, so a refused value (a typo, a value out of range, an
  unknown key) stops `dvc repro` and `dvc exp run` before DVC removes any output.
- Its output never changes, so a valid change of params reruns exactly the stages that read it.
"""

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.io.atomic import write_text


def main(_: Params) -> None:
    """`cli.run_stage` has parsed and checked every value before this runs: record it, in the same words each time."""
    write_text(f"{paths.PARAMS}: every value checked\n", paths.CHECKED)
    print(f"{paths.PARAMS}: every value checked")


if __name__ == "__main__":
    cli.run_stage(main)
