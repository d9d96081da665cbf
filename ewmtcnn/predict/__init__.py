"""Prediction for new images: the Python API (`ewmtcnn.Predictor`) and the `ewmtcnn-predict` command on top of it.

- `predictor`: the final model loaded once, predicting paths, PIL images or arrays (`Predictor`, `Prediction`).
- `provenance`: which model file, variant and commit a prediction used.
- `truth`: which inputs are Emotion6's own images, their annotators' and out-of-fold distributions.
- `plot`: the distributions on Mikels' emotion wheel, in pages of PNGs.
- `command`: the command line, on top of them all.
- The package sits on top of every other subpackage; none imports it (`import ewmtcnn` offers the API lazily).
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """The `ewmtcnn-predict` command (`ewmtcnn.predict.command`), imported when run: the API needs no matplotlib."""
    from ewmtcnn.predict import command

    command.main(argv)
