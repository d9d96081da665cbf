"""Stage `features`: what the head learns from, for every image, computed once.

With the backbone frozen (the default), the pooled backbone features of every image's centre
crop, so that training the head on them takes seconds and changing `prior.*` or `train.*`
never recomputes them. When fine-tuning (`train.finetune: true`) the network learns from the
pixels, so the output is the image store itself: then the training stages depend on the
store, and otherwise on the features alone."""

import shutil
from typing import Any

import numpy as np

from ewmtcnn import backbones, cli, features, images, layout, params
from ewmtcnn.atomic import written


def main(p: dict[str, Any]) -> None:
    backbone = backbones.selected(p)
    pretrained = params.get(p, "model.pretrained", bool)
    weights = params.get(p, "model.weights", (str, type(None))) or None
    store = images.open_store(layout.IMAGES)
    if params.get(p, "train.finetune", bool):
        with written(layout.FEATURES) as tmp:
            shutil.copyfile(layout.IMAGES, tmp)
        print(f"fine-tuning: {layout.FEATURES} is the {store.shape} image store itself")
        return
    pooled = features.extract(features.feature_backbone(backbone, pretrained, weights), store, backbone)
    with written(layout.FEATURES) as tmp:
        np.save(tmp, pooled)
    print(f"{pooled.shape[0]} images -> {backbone.features}-d {backbone.name} features in {layout.FEATURES}")


if __name__ == "__main__":
    cli.run_stage(main)
