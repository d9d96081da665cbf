"""Stage `features`: pooled backbone features of every image's centre crop, computed once per
backbone and preprocessing, so that training the head on them takes seconds."""
from typing import Any

import numpy as np

from ewmtcnn import images, layout, models, params
from ewmtcnn.atomic import written


def main(p: dict[str, Any]) -> None:
    name = params.choice(p, "model.backbone", models.BACKBONES)
    backbone, dim = models.feature_backbone(name, params.get(p, "model.pretrained", bool),
                                            params.get(p, "model.weights", str) or None)
    mean, std = models.normalisation(name)
    features = models.extract_features(backbone, images.open_store(layout.IMAGES), mean, std)
    with written(layout.FEATURES) as tmp:
        np.save(tmp, features)
    print(f"{features.shape[0]} images -> {dim}-d {name} features in {layout.FEATURES}")


if __name__ == "__main__":
    params.run_stage(main)
