"""What the features stage makes of an image (`features.*` in params.yaml): which layers of the
backbone, which test-time views averaged, at which input side. Kept apart from the extraction
itself (`ewmtcnn.features.extract`) so that the stages that only check or record these params do not
depend on that code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ewmtcnn import InputError, params
from ewmtcnn.data.images import MAX_SIZE
from ewmtcnn.model.backbones import Backbone

#: What a feature vector is made of: the pooled output, or every stage's channel mean and std.
LAYERS: tuple[str, ...] = ("pooled", "stats")
#: The test-time views (`ewmtcnn.data.augment.TEST_VIEWS`): the centre crop, its mirror image, the whole frame.
VIEWS: tuple[str, ...] = ("centre", "mirror", "full")
#: The smallest input side a backbone is run at (five halvings leave one pixel).
MIN_SIZE = 32


@dataclass(frozen=True)
class Extraction:
    """How an image becomes a feature vector: which `layers`, the test-time `views` averaged, and
    the input `size` (0: the backbone's native side)."""

    layers: str = "pooled"
    views: tuple[str, ...] = ("centre",)
    size: int = 0

    def sized(self, backbone: Backbone) -> Backbone:
        """`backbone` run at this extraction's input side."""
        return dataclasses.replace(backbone, size=self.size) if self.size else backbone

    def record(self) -> dict[str, Any]:
        """As a final model stores it, so that prediction extracts the same way."""
        return {"layers": self.layers, "views": list(self.views), "size": self.size}


def extraction(p: Mapping[str, Any]) -> Extraction:
    """The `features.*` params, checked."""
    layers = params.choice(p, "features.layers", LAYERS)
    views = params.get(p, "features.views", list)
    names = [v for v in views if isinstance(v, str)]
    if not views or len(names) != len(views) or len(set(names)) != len(names) or not set(names) <= set(VIEWS):
        raise InputError(
            f"{params.PARAMS}: features.views must be a non-empty list of distinct views among "
            f"{', '.join(VIEWS)}; found {views!r}"
        )
    size = params.get(p, "features.size", int)
    if isinstance(size, bool) or (size != 0 and not MIN_SIZE <= size <= MAX_SIZE):
        raise InputError(
            f"{params.PARAMS}: features.size must be 0 (the backbone's native side) or an integer in "
            f"[{MIN_SIZE}, {MAX_SIZE}]; found {size!r}"
        )
    return Extraction(layers, tuple(views), size)


def restored(record: Mapping[str, Any]) -> Extraction:
    """The extraction a final model recorded (`Extraction.record`)."""
    return Extraction(str(record["layers"]), tuple(str(v) for v in record["views"]), int(record["size"]))
