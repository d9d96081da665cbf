"""The pictures of `ewmtcnn-predict --plot` (ewmtcnn.predict.plot): pages of wheels that fit, and where they are
written; the command itself is tested in tests/integration/test_predict.py."""

from __future__ import annotations

import itertools
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.projections.polar import PolarAxes
from matplotlib.text import Text
from PIL import Image

from ewmtcnn import InputError
from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS
from ewmtcnn.predict import plot
from ewmtcnn.predict.predictor import Prediction
from ewmtcnn.predict.truth import ImageReport, Truth

PNG = b"\x89PNG\r\n\x1a\n"
CAPTION = ["model.pt", "sha256 0123456789ab", "prior.init original"]
PREDICTED = [ImageReport(Prediction("joy.jpg", dict(zip(EMOTIONS, [0.1, 0.1, 0.1, 0.5, 0.1, 0.1], strict=True))))]


def reports(count: int, outputs: tuple[str, ...], *, truth: bool, seed: int = 0) -> list[ImageReport]:
    """`count` random predictions with names long and short, each with its truth if `truth`; one annotated 1.0."""
    rng = np.random.default_rng(seed)

    def distribution() -> dict[str, float]:
        return dict(zip(outputs, map(float, rng.dirichlet(np.full(len(outputs), 0.5))), strict=True))

    made = []
    for k in range(count):
        name = f"/photos/a-rather-long-folder-name/surprise/{'x' * (k % 3 * 20)}{k}.jpg"
        known = Truth(dict.fromkeys(outputs, 0.0) | {outputs[0]: 1.0}, distribution(), 3) if truth else None
        made.append(ImageReport(Prediction(name, distribution()), f"surprise/{k}.jpg" if truth else None, known))
    return made


def text_problems(fig: Figure) -> list[str]:
    """Each text that reaches outside the figure, and each pair of texts that overlap, as drawn by Agg."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text().replace("\n", " | "), t.get_window_extent(renderer)) for t in texts]
    page = fig.bbox
    outside = [
        f"outside: {name!r}"
        for name, box in boxes
        if box.x0 < page.x0 or box.y0 < page.y0 or box.x1 > page.x1 or box.y1 > page.y1
    ]
    overlaps = [
        f"overlap: {a!r} and {b!r}" for (a, box), (b, other) in itertools.combinations(boxes, 2) if box.overlaps(other)
    ]
    return outside + overlaps


def test_the_check_sees_clipped_and_overlapping_text() -> None:
    fig = Figure(figsize=(2, 1))
    fig.text(0.1, 0.5, "one")
    fig.text(0.12, 0.5, "two")
    fig.text(0.9, 0.5, "clipped at the edge")
    assert text_problems(fig) == ["outside: 'clipped at the edge'", "overlap: 'one' and 'two'"]


@pytest.mark.parametrize("count", [1, 2, 4, 5, 7, 30])
@pytest.mark.parametrize("outputs,truth", [(EMOTIONS, True), (DISTRIBUTION, False)], ids=["six-truth", "seven"])
def test_pages_fit_every_wheel_without_clipping_or_overlap(
    tmp_path: Path, count: int, outputs: tuple[str, ...], truth: bool
) -> None:
    figures = plot.pages(reports(count, outputs, truth=truth), CAPTION)
    assert len(figures) == math.ceil(count / plot.PER_PAGE)
    assert sum(len(figure.axes) for figure in figures) == count  # one wheel each, no empty panel
    for figure, path in zip(figures, plot.page_paths(tmp_path / "wheel.png", len(figures)), strict=True):
        assert not text_problems(figure)
        plot.save(figure, path)
        with Image.open(path) as image:
            image.load()
            assert image.format == "PNG"
            assert np.allclose(image.size, figure.get_size_inches() * plot.DPI, atol=1)


def test_pages_are_written_beside_the_first_and_named_after_it(tmp_path: Path) -> None:
    out = tmp_path / "wheel.png"
    written = plot.write(reports(plot.PER_PAGE + 1, EMOTIONS, truth=False), out, CAPTION)
    assert written == [out, tmp_path / "wheel-2.png"]
    assert sorted(tmp_path.iterdir()) == sorted(written)  # no temporary left
    assert all(path.read_bytes().startswith(PNG) for path in written)
    assert [p.name for p in plot.page_paths(Path("out/wheel"), 3)] == ["wheel", "wheel-2", "wheel-3"]


def test_a_page_holds_twelve_in_rows_of_four_the_last_row_centred() -> None:
    figures = plot.pages(reports(30, EMOTIONS, truth=False), CAPTION)
    assert [len(figure.axes) for figure in figures] == [12, 12, 6]
    assert "page 2 of 3: images 13-24 of 30" in figures[1].get_suptitle()
    lefts = sorted({round(ax.get_position().x0, 3) for ax in figures[0].axes})
    assert len(lefts) == 4
    [five] = plot.pages(reports(5, EMOTIONS, truth=False), CAPTION)
    rows = sorted({round(ax.get_position().y0, 3) for ax in five.axes}, reverse=True)
    assert len(rows) == 2
    bottom = [ax.get_position() for ax in five.axes if round(ax.get_position().y0, 3) == rows[1]]
    assert len(bottom) == 2
    assert (bottom[0].x0 + bottom[1].x1) / 2 == pytest.approx(0.5)  # centred under the three above


@pytest.mark.parametrize("outputs", [EMOTIONS, DISTRIBUTION], ids=["six", "seven"])
def test_a_wheel_has_a_sector_per_output_in_wheel_order_and_headroom(outputs: tuple[str, ...]) -> None:
    """No empty sector: the emotions on Mikels' wheel clockwise from the top, neutral (off it) last; the
    scale's rim above the longest bar (the annotators' 1.0 here), no radial label at the rim or at 0."""
    [figure] = plot.pages(reports(1, outputs, truth=True), CAPTION)
    [ax] = figure.axes
    assert isinstance(ax, PolarAxes)
    labels = [label.get_text() for label in ax.get_xticklabels()]
    expected = ["fear", "sadness", "disgust", "anger", "joy", "surprise"]
    assert labels == expected + (["neutral\n(off the wheel)"] if len(outputs) == 7 else [])
    np.testing.assert_allclose(ax.get_xticks(), np.arange(len(outputs)) * 2 * np.pi / len(outputs))
    bars = [patch for patch in ax.patches if patch.get_visible()]
    assert len(bars) == 2 * len(outputs)  # the prediction's, the annotators' outlines
    rim = ax.get_ylim()[1]
    assert rim >= 1.0 + plot.HEADROOM
    assert min(ax.get_yticks()) > 0 and max(ax.get_yticks()) <= rim - 0.05
    assert plot.ticks(0.9) == [0.2, 0.4, 0.6, 0.8] and plot.ticks(0.4) == [0.1, 0.2, 0.3]


def test_the_legend_names_what_the_page_draws() -> None:
    def entries(drawn: list[ImageReport]) -> list[str]:
        [figure] = plot.pages(drawn, CAPTION)
        return [text.get_text() for text in figure.legends[0].get_texts()]

    plain = ["predicted: the most probable emotion", "predicted: the other emotions"]
    assert entries(reports(2, EMOTIONS, truth=False)) == plain
    annotated = [*plain, "annotators (Emotion6's ground truth)", "out-of-fold: mean of 3 repeats"]
    assert entries(reports(2, EMOTIONS, truth=True)) == annotated


def test_a_wheel_title_names_the_image_its_prediction_and_its_truth() -> None:
    distribution = dict(zip(EMOTIONS, [0.1, 0.1, 0.1, 0.5, 0.1, 0.1], strict=True))
    truth = Truth(dict(distribution, joy=0.2, fear=0.4), dict(distribution, joy=0.3, disgust=0.35), 2)
    report = ImageReport(Prediction("/data/images/joy/10.jpg", distribution), "joy/10.jpg", truth)
    assert plot.title(report).split("\n") == [
        "joy/10.jpg",
        "predicted joy 0.50 (seen in training)",
        "annotators fear 0.40 · out-of-fold disgust 0.35",
    ]
    long = ImageReport(Prediction("x" * 80 + ".jpg", distribution))
    assert len(plot.title(long).split("\n")[0]) == plot.NAME


def test_plot_onto_a_link_writes_through_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "results" / "wheel.png"
    target.parent.mkdir()
    target.write_bytes(b"an older plot")
    link = tmp_path / "wheel.png"
    link.symlink_to(target)
    plot.write(PREDICTED, link, CAPTION)
    assert link.is_symlink() and link.readlink() == target
    assert target.read_bytes().startswith(PNG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "wheel.png"]  # no temporary left
    assert [p.name for p in target.parent.iterdir()] == ["wheel.png"]


def test_plot_onto_a_dangling_link_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "wheel.png"
    link.symlink_to("made.png")  # relative, as `ln -s` makes it
    plot.write(PREDICTED, link, CAPTION)
    assert link.is_symlink() and (tmp_path / "made.png").read_bytes().startswith(PNG)


def test_plot_onto_a_fifo_or_device_is_refused_and_left_alone(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=rf"^{fifo}: is a named pipe \(FIFO\); give --plot the path of a PNG file"):
        plot.write(PREDICTED, fifo, CAPTION)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and [p.name for p in tmp_path.iterdir()] == ["pipe.png"]
    link = tmp_path / "null.png"
    link.symlink_to("/dev/null")
    with pytest.raises(InputError, match=rf"^{link}: is a character device"):
        plot.write(PREDICTED, link, CAPTION)
    assert link.is_symlink() and stat.S_ISCHR(Path("/dev/null").stat().st_mode)


def test_plot_onto_a_loop_of_links_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop.png"
    loop.symlink_to("loop.png")
    with pytest.raises(InputError, match=rf"^{loop}: cannot write the plot \(Too many levels of symbolic links\)"):
        plot.write(PREDICTED, loop, CAPTION)
    assert loop.is_symlink() and [p.name for p in tmp_path.iterdir()] == ["loop.png"]
