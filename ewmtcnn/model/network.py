"""EW-MTCNN's network: a fully connected layer, then the emotion-wheel prior layer `z' = W z`.

- The head reads cached backbone features, or a backbone (`ewmtcnn.model.backbones`) fine-tuned with it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ewmtcnn import InputError
from ewmtcnn.config.sections import HEADS

SEED_DROPOUT = 0.5


class EmotionNet(nn.Module):
    """EW-MTCNN: [backbone ->] fc -> [ReLU -> Dropout ->] prior; returns logits z'.

    - Without a backbone it trains on cached features, (B, features) in place of images.
    - With `prior` None (init `none`) both heads are the fc alone, as in the reimplementation.
    """

    def __init__(
        self,
        features: int,
        outputs: int,
        head: str,
        prior: np.ndarray | None,
        freeze_prior: bool,
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise InputError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
        self.backbone = backbone
        self.fc = nn.Linear(features, outputs)
        self.gate: nn.Module | None = None
        self.prior: nn.Linear | None = None
        if prior is None:
            return
        matrix = np.asarray(prior, dtype=np.float32)
        if matrix.shape != (outputs, outputs):
            raise InputError(f"prior matrix has shape {matrix.shape}; expected ({outputs}, {outputs})")
        if head == "seed":
            self.gate = nn.Sequential(nn.ReLU(), nn.Dropout(SEED_DROPOUT))
        self.prior = nn.Linear(outputs, outputs, bias=False)
        with torch.no_grad():
            self.prior.weight.copy_(torch.from_numpy(matrix))  # Linear computes z @ weight.T = W z
        self.prior.requires_grad_(not freeze_prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits z' for images (with a backbone) or features (without); softmax is the caller's."""
        if self.backbone is not None:
            x = self.backbone(x)
        z = self.fc(x)
        if self.gate is not None:
            z = self.gate(z)
        if self.prior is not None:
            z = self.prior(z)
        return z

    def parameter_groups(self, lr_backbone: float, lr_head: float) -> list[dict]:
        """SGD parameter groups: the backbone at `lr_backbone`, fc and a trainable prior at `lr_head`.

        - The paper's rates are 0.001 / 0.01; frozen parameters and empty groups are left out.
        """

        def trainable(modules: list[nn.Module]) -> list[nn.Parameter]:
            return [p for m in modules for p in m.parameters() if p.requires_grad]

        backbone = trainable([self.backbone] if self.backbone is not None else [])
        head = trainable([self.fc] + ([self.prior] if self.prior is not None else []))
        return [{"params": params, "lr": lr} for params, lr in ((backbone, lr_backbone), (head, lr_head)) if params]
