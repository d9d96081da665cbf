"""The variant that params.yaml selects: class label, outputs, prior, network and optimisation.

- Shared by the train stage (every fold) and the final stage (every image).
- Built from the config's checked sections, with the backbone resolved at the features' input side.
"""

from __future__ import annotations

from dataclasses import dataclass

from ewmtcnn.config.sections import Extraction, Model, Prior, Select, Train
from ewmtcnn.data.dataset import DISTRIBUTION, EMOTIONS
from ewmtcnn.model import backbones

#: What the train stage prints for a variant that is `none` in all but name (`Variant.same_as_none`).
NO_PRIOR_NOTE = (
    "note: prior.init eye with prior.freeze true and model.head direct is a frozen identity prior layer, "
    "W z = z: the same model as prior.init none"
)


@dataclass(frozen=True)
class Variant:
    """What to train and how."""

    label: str
    neutral: str
    init: str
    freeze: bool
    sigma: float
    backbone: backbones.Backbone  # at the input side of `extraction`
    extraction: Extraction
    pretrained: bool
    weights: str | None
    head: str
    run: Train  # under `fixed` the head's settings; under `selected`, lr_head, weight_decay and epochs are chosen
    select: Select

    @classmethod
    def of(
        cls, label: str, neutral: str, prior: Prior, model: Model, features: Extraction, train: Train, select: Select
    ) -> Variant:
        """The variant of these params (`data.label`, `data.neutral` and the sections)."""
        return cls(
            label=label,
            neutral=neutral,
            init=prior.init,
            freeze=prior.freeze,
            sigma=prior.sigma,
            backbone=backbones.selected(model.backbone).at(features.size),
            extraction=features,
            pretrained=model.pretrained,
            weights=model.weights,
            head=model.head,
            run=train,
            select=select,
        )

    @property
    def same_as_none(self) -> bool:
        """Whether the prior layer is a frozen identity right after fc: the network is then `none`'s.

        - The `seed` head's ReLU and Dropout before it still change the network, so that one differs.
        """
        return self.init == "eye" and self.freeze and self.head == "direct"

    @property
    def emotions(self) -> tuple[str, ...]:
        """The emotions the network predicts, in output order."""
        return outputs(self.neutral)


def outputs(neutral: str) -> tuple[str, ...]:
    """The emotions predicted under `data.neutral`, in output order."""
    return DISTRIBUTION if neutral == "keep" else EMOTIONS
