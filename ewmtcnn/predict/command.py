"""The `ewmtcnn-predict` command: the emotion distribution of image files, by the model `dvc repro final` trains.

    ewmtcnn-predict IMAGE... [--model data/final/model.pt] [--device auto|cpu|cuda] [--json] [--plot OUT.png]
                    [--truth] [--emotion6 data/raw/Emotion6] [--predictions metrics/predictions.csv]

- It predicts with the Python API (`Predictor`), one code path for both.
- Text first says what it used (`# ` lines: the model file, its SHA-256, the git commit, the variant, the
  device; printed with the first prediction, so a run that predicts nothing prints nothing), then a line
  per image.
- `--json` prints a list with one self-contained record per image (image, distribution, dominant,
  training_image, truth, model, device): a list still, as before, so each record carries the model. Strict JSON.
- An image that is one of Emotion6's (by content) was in the final model's training set: one warning on
  stderr says which, and points at --truth, which adds the annotators' distribution and the held-out
  (out-of-fold) prediction, to the text, the JSON and the plot.
- A missing or unreadable image, or one that is no regular file (a FIFO, a device), is reported on stderr and
  skipped; the others are still predicted, and the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ewmtcnn import InputError, cli, paths
from ewmtcnn.predict import plot
from ewmtcnn.predict.predictor import DEVICES, Predictor
from ewmtcnn.predict.truth import Emotion6, ImageReport, Truths

SHOWN_NAMES = 5  # Emotion6 images named in the warning; the rest counted


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ewmtcnn-predict",
        description="The emotion distribution and dominant emotion of each image, from the model that "
        "`dvc repro final` trains. Text output starts with `# ` lines saying which model, variant, commit "
        "and device it used.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument(
        "--model",
        type=Path,
        default=paths.FINAL,
        help=f"the trained model (default: {paths.FINAL}, relative to the current folder)",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="where the network runs: auto (default) takes CUDA when torch sees a GPU, else the CPU",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {image, distribution, dominant, training_image, truth, model, device} instead",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="OUT.png",
        help=f"draw each distribution on the emotion wheel into this PNG (over {plot.PER_PAGE} images: "
        "also OUT-2.png, OUT-3.png, ...)",
    )
    parser.add_argument(
        "--truth",
        action="store_true",
        help="for Emotion6's own images, also show the annotators' distribution and the out-of-fold prediction "
        "(mean over the repeats), made by fold models that never saw the image",
    )
    parser.add_argument(
        "--emotion6",
        type=Path,
        metavar="DIR",
        help=f"the Emotion6 folder: its images tell which inputs are Emotion6's (by content), its ground_truth.txt "
        f"gives --truth (default: {paths.RAW}, relative to the current folder; where there is none, no input is "
        "recognised as Emotion6's)",
    )
    parser.add_argument(
        "--predictions",
        type=Path,
        default=paths.PREDICTIONS,
        metavar="CSV",
        help=f"the out-of-fold predictions for --truth (default: {paths.PREDICTIONS}: those of the variant "
        "the workspace last evaluated)",
    )
    return parser.parse_args(argv)


def ranked(distribution: Mapping[str, float]) -> str:
    """`joy 0.62 (fear 0.12, ...)`: the most probable, then the rest from most to least probable."""
    order = sorted(distribution.items(), key=lambda item: -item[1])
    rest = ", ".join(f"{emotion} {p:.2f}" for emotion, p in order[1:])
    return f"{order[0][0]} {order[0][1]:.2f} ({rest})"


def text(report: ImageReport, truth_asked: bool) -> list[str]:
    """`path: joy 0.62 (...)`; with --truth an indented line each for the annotators and the out-of-fold one."""
    lines = [f"{report.prediction.image}: {ranked(report.prediction.distribution)}"]
    if truth_asked and report.truth is None:
        lines.append("  no truth: not one of Emotion6's images (compared by content)")
    if (truth := report.truth) is not None:
        lines.append(f"  annotators (Emotion6 {report.emotion6}): {ranked(truth.annotators)}")
        held_out = "not in the predictions table" if truth.out_of_fold is None else ranked(truth.out_of_fold)
        lines.append(f"  out-of-fold (mean of {truth.repeats} repeats): {held_out}")
    return lines


def record(report: ImageReport, predictor: Predictor) -> dict[str, object]:
    """The --json record of `report`."""
    prediction = report.prediction
    return {
        "image": prediction.image,
        "distribution": prediction.distribution,
        "dominant": prediction.dominant,
        "training_image": report.emotion6,
        "truth": None if report.truth is None else report.truth.record(),
        "model": predictor.model.record(),
        "device": str(predictor.device),
    }


def warning(reports: Sequence[ImageReport], truth: bool) -> str | None:
    """One line naming the images the final model trained on, if any."""
    names = [report.emotion6 for report in reports if report.emotion6 is not None]
    if not names:
        return None
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    hint = "the out-of-fold ones are held out" if truth else "--truth shows each one's held-out (out-of-fold) one"
    return (
        f"warning: {len(names)} of {len(reports)} images are Emotion6's ({', '.join(names[:SHOWN_NAMES])}{more}): "
        f"the final model trained on them, so its predictions for them are fitted; {hint}"
    )


def run(args: argparse.Namespace) -> int:
    """Predict, print, plot; the exit status: 1 if any image failed."""
    predictor = Predictor.load(args.model, args.device)
    emotion6 = Emotion6.at(args.emotion6 or paths.RAW, required=args.truth or args.emotion6 is not None)
    truths = Truths.read(emotion6.root, args.predictions, predictor.outputs) if args.truth and emotion6 else None
    reports: list[ImageReport] = []
    failures = 0
    for result in predictor.results(args.images):
        if isinstance(result, InputError):
            failures += 1
            print(f"error: {result}", file=sys.stderr)
            continue
        name = emotion6.name_of(Path(result.image)) if emotion6 else None
        reports.append(ImageReport(result, name, truths.of(name) if truths is not None and name else None))
        if not args.json:
            heading = [*predictor.model.lines(), f"device {predictor.device}"] if len(reports) == 1 else []
            print("\n".join([*(f"# {line}" for line in heading), *text(reports[-1], args.truth)]), flush=True)
    if args.json:
        print(json.dumps([record(report, predictor) for report in reports], indent=2, allow_nan=False))
    if (line := warning(reports, args.truth)) is not None:
        print(line, file=sys.stderr)
    if args.plot is not None and reports:
        for page in plot.write(reports, args.plot, predictor.model.phrases()):
            print(f"plot: {page}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> None:
    """The `ewmtcnn-predict` command."""
    args = parse(argv)
    cli.run(lambda: sys.exit(run(args)))
