"""The evaluate stage's pictures, checked on their own artists: what is coloured, printed and labelled, and
that nothing is cut off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from ewmtcnn.evaluation import figures
from ewmtcnn.io.checkpoint import HISTORY, TrainedFold
from ewmtcnn.io.choice import Choice
from ewmtcnn.model import wheel

EMOTIONS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
WHEEL = wheel.prior_matrix("original", sigma=0.6, probabilities=None, neutral=False, seed=0)


def whole(fig: Figure) -> None:
    """Every artist of the drawn figure lies inside it: no label or title cut off."""
    FigureCanvasAgg(fig)
    assert figures.png(fig).startswith(b"\x89PNG")
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    width, height = fig.get_size_inches()
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (box, width, height)


def heatmaps(fig: Figure) -> list[Axes]:
    return [ax for ax in fig.axes if ax.images]


def texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def trained_fold(
    repeat: int, fold: int, prior: np.ndarray | None = None, after: np.ndarray | None = None, **history: list[float]
) -> TrainedFold:
    """A fold holding only what the figures read: its history, prior before and after, and choice."""
    epochs = len(next(iter(history.values()), [0.5]))
    table = pd.DataFrame({"epoch": range(1, epochs + 1), **{h: history.get(h, [0.5] * epochs) for h in HISTORY}})
    state = {} if prior is None else {"prior.weight": torch.from_numpy(prior if after is None else after).float()}
    return TrainedFold(
        repeat, fold, table, pd.DataFrame(), pd.DataFrame(), state, prior, Choice("fixed", epochs, 0.01, 0)
    )


def test_the_confusion_colours_each_rows_share_on_a_fixed_scale_and_prints_the_counts() -> None:
    # Two repeats of 5 anger and 10 joy images; nothing is ever predicted as surprise, and no image is labelled it.
    counts = pd.DataFrame(
        [[1, 9, 0], [4, 16, 0], [0, 0, 0]], index=["anger", "joy", "surprise"], columns=["anger", "joy", "surprise"]
    )
    fig = figures.confusion(counts, repeats=2)
    [ax] = heatmaps(fig)
    shares = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert np.allclose(shares[:2].sum(axis=1), 1) and np.isnan(shares[2]).all()
    assert np.allclose(np.diag(shares)[:2], [0.1, 0.8])  # recall: 1 of 10 anger, 16 of 20 joy predictions
    assert ax.images[0].get_clim() == (0, 1)
    assert {"0.10\n(1)", "0.90\n(9)", "0.80\n(16)", "0.00\n(0)"} <= set(texts(ax))
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["anger (5 images)", "joy (10 images)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["anger", "joy", "surprise"]
    assert ax.get_xlabel() and ax.get_ylabel() and "2 repeats" in ax.get_title()
    whole(fig)


def test_a_frozen_prior_is_one_panel_on_the_fixed_scale_with_emotions_on_both_axes() -> None:
    fig = figures.prior([trained_fold(0, k, WHEEL) for k in range(3)], EMOTIONS, "original")
    [ax] = heatmaps(fig)
    assert "frozen" in ax.get_title() and "all 3 folds" in ax.get_title()
    assert np.allclose(ax.images[0].get_array(), WHEEL) and ax.images[0].get_clim() == (-1, 1)
    assert [t.get_text() for t in ax.get_xticklabels()] == EMOTIONS == [t.get_text() for t in ax.get_yticklabels()]
    assert ax.get_xlabel().startswith("input j") and ax.get_ylabel().startswith("output i")
    whole(fig)


def test_a_trained_prior_is_two_panels_with_entries_beyond_the_scale_in_its_end_colours() -> None:
    moved = [WHEEL * 2 - 1, WHEEL * 4 - 2]  # mean 3 W - 1.5: from -1.5 to about 1.5
    fig = figures.prior([trained_fold(0, k, WHEEL, after) for k, after in enumerate(moved)], EMOTIONS, "original")
    before, after = heatmaps(fig)
    assert "before training" in before.get_title() and "after training" in after.get_title()
    assert "mean of 2 folds" in after.get_title()
    mean = np.mean(moved, axis=0)
    assert np.allclose(after.images[0].get_array(), mean, atol=1e-6)
    assert mean.min() < -1 < 1 < mean.max() and {f"{mean.min():.2f}", f"{mean.max():.2f}"} <= set(texts(after))
    cmap = after.images[0].get_cmap()
    assert tuple(cmap.get_over()) == to_rgba(figures.PRIOR_OVER)
    assert tuple(cmap.get_under()) == to_rgba(figures.PRIOR_UNDER)
    whole(fig)


def test_without_a_prior_layer_the_picture_says_so() -> None:
    fig = figures.prior([trained_fold(0, 0)], EMOTIONS, "none")
    assert not heatmaps(fig) and "no prior layer" in texts(fig.axes[0])[0]


def test_the_converged_curves_draw_every_folds_inner_validation_curve_on_a_log_axis() -> None:
    curves = {
        (0, 0): ((1.0, 0.5), (0.1, 0.4), (0.01, 0.45), (0.001, 0.47)),
        (0, 1): ((1.0, 0.52), (0.1, 0.43), (0.01, 0.41), (0.001, 0.42)),
        (1, 0): ((1.0, 0.6), (0.1, 0.55), (0.01, 0.58)),
    }
    folds = {}
    for (repeat, fold), curve in curves.items():
        decay, kl = min(curve, key=lambda pair: pair[1])
        folds[repeat, fold] = trained_fold(repeat, fold, test_kl=[0.44])
        folds[repeat, fold].choice = Choice("converged", 90, 0.0, decay, kl, curve)
    fig = figures.curves(folds)
    [ax] = fig.axes
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
    assert [list(zip(line.get_xdata(), line.get_ydata(), strict=True)) for line in lines] == [
        list(c) for c in curves.values()
    ]
    chosen = {(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.get_lines() if line.get_marker() == "o"}
    assert chosen == {(0.1, 0.4), (0.01, 0.41), (0.1, 0.55)}
    assert ax.get_xscale() == "log" and "weight decay" in ax.get_xlabel() and "KL" in ax.get_ylabel()
    assert "3 folds" in ax.get_title()
    whole(fig)


def test_the_epoch_curves_draw_every_fold_their_median_and_how_many_folds_trained_each_epoch() -> None:
    folds = {
        (0, 0): trained_fold(0, 0, test_kl=[0.6, 0.5]),
        (0, 1): trained_fold(0, 1, test_kl=[0.8, 0.6, 0.55]),
        (1, 0): trained_fold(1, 0, test_kl=[0.7, 0.4, 0.35]),
    }
    fig = figures.curves(folds)
    kl = fig.axes[2 * len(figures.EPOCH_PARTS) + 1]  # row-major: the KL row, the held-out column
    assert kl.get_ylabel().startswith("KL")
    median = kl.get_lines()[-1]
    assert list(median.get_ydata()) == [0.7, 0.5, 0.45]  # epoch 1 of three folds, epochs 2-3 of two
    assert len(kl.get_lines()) == 4  # a line per fold and the median
    counts = [ax for ax in fig.axes if ax.get_ylabel().startswith("folds trained")]
    assert len(counts) == 2 and list(counts[1].get_lines()[0].get_ydata()) == [3, 3, 2]
    assert all(ax.get_xlabel() == "epoch" for ax in counts)
    whole(fig)


def test_the_figures_per_emotion_say_when_one_is_undefined() -> None:
    scores = {
        "anger": {"images": 33, "kl": 0.77, "recall": 0.0, "precision": float("nan"), "f1": 0.0},
        "joy": {"images": 733, "kl": 0.34, "recall": 0.84, "precision": 0.65, "f1": 0.73},
    }
    fig = figures.per_emotion(scores, repeats=3)
    panels = dict(zip((name for name, _ in figures.PER_EMOTION_PANELS), fig.axes, strict=True))
    assert [t.get_text() for t in panels["kl"].get_yticklabels()] == ["anger (33 images)", "joy (733 images)"]
    assert [p.get_width() for p in panels["recall"].patches] == [0.0, 0.84]
    assert any("never predicted" in t for t in texts(panels["precision"]))
    assert all(ax.get_xlabel() for ax in fig.axes) and "3 repeats" in fig.get_suptitle()
    whole(fig)


def test_the_same_figure_gives_the_same_bytes() -> None:
    counts = pd.DataFrame([[1, 1], [0, 2]], index=["anger", "joy"], columns=["anger", "joy"])
    assert figures.png(figures.confusion(counts, 1)) == figures.png(figures.confusion(counts, 1))
