"""Figures published by others, with their sources, to set this project's figures beside.

- The public reimplementation: an unofficial reimplementation of EW-MTCNN published on GitHub.
  EW-MTCNN itself is Lai, Wan and Zeng's emotion distribution learning network with an
  emotion-wheel prior, Journal of Jiangxi Normal University (Natural Science) 2022(4), pages
  363-371, doi 10.16357/j.cnki.issn1000-5862.2022.04.06. The table in the reimplementation's
  README gives one figure pair per prior variant: accuracy in percent and KL divided by the 6
  classes, both measured in place on the training images (no held-out images).
- Held-out Emotion6 figures of two published LDL methods, each on its own single split with
  seven emotions (neutral kept): StyleEDL (ACM Multimedia 2023) and SSDL (AAAI 2019).
- Their Clark and Canberra are per label, Clark / sqrt(c) and Canberra / c (StyleEDL's code divides
  by the number of emotions), so they stand beside our `clark_normalised` and `canberra_normalised`,
  not beside Geng's sums (`clark`, `canberra`).
"""

from __future__ import annotations

from typing import NamedTuple

#: The reimplementation divides its KL, summed over emotions, by its number of classes.
REIMPLEMENTATION_CLASSES = 6


class Published(NamedTuple):
    """A figure pair of the reimplementation's README, both measured in place on the training images.

    - `acc_percent`: the accuracy, in percent.
    - `kl_per_class`: the KL summed over emotions, divided by the 6 classes.
    """

    acc_percent: float
    kl_per_class: float


#: The reimplementation's README table, keyed by the prior's (init, freeze) as its variants are.
REIMPLEMENTATION: dict[tuple[str, bool | None], Published] = {
    ("none", None): Published(74.747, 0.0456907),
    ("original", True): Published(50.051, 0.0912462),
    ("original", False): Published(48.939, 0.0741477),
    ("eye", False): Published(48.485, 0.0774974),
    ("rand", False): Published(47.778, 0.0732538),
    ("corr", True): Published(19.141, 0.1249517),
    ("corr", False): Published(27.677, 0.1199178),
}


class HeldOut(NamedTuple):
    """A method's published held-out Emotion6 figures: the LDL measures it reports.

    - With the network and the split they come from: each paper evaluates on one split.
    - Clark and Canberra normalised per label, as published; None where not set here.
    """

    method: str
    venue: str
    network: str
    split: str
    kl: float
    chebyshev: float
    cosine: float
    intersection: float
    clark_normalised: float | None = None
    canberra_normalised: float | None = None

    def scores(self) -> dict[str, dict[str, float]]:
        """The figures set here, every field after the four that say where they come from, as a table row shows scores.

        - A mean each, without an interval.
        """
        figures = {name: getattr(self, name) for name in self._fields[4:]}
        return {name: {"mean": value} for name, value in figures.items() if value is not None}


#: Published held-out figures on Emotion6 with seven emotions, as docs/results.md sets ours beside them.
HELD_OUT: tuple[HeldOut, ...] = (
    HeldOut(
        "StyleEDL",
        "ACM MM 2023",
        "ResNet-50 fine-tuned, 448 px",
        "fixed ~70/30 split",
        kl=0.36,
        chebyshev=0.22,
        cosine=0.84,
        intersection=0.70,
        clark_normalised=0.59,
        canberra_normalised=0.47,
    ),
    HeldOut(
        "SSDL",
        "AAAI 2019",
        "VGG-19 fine-tuned",
        "75/20/5 split",
        kl=0.40,
        chebyshev=0.24,
        cosine=0.79,
        intersection=0.66,
    ),
)
