"""Stage `features`: what the head learns from, for every image, computed once.

- With the backbone frozen (the default): the backbone features of every image as `features.*` says
  (pooled or multi-level statistics, of one or more views averaged). Training the head on them takes
  seconds, and changing `prior.*` or `train.*` never recomputes them.
- When fine-tuning (`train.finetune: true`) the network learns from the pixels: the output is the
  image store itself, so the training stages depend on the store, and otherwise on the features alone.
"""

import shutil
import time

import numpy as np

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.data import images
from ewmtcnn.features import extract
from ewmtcnn.io.atomic import written
from ewmtcnn.model import backbones


def main(params: Params) -> None:
    how = params.features
    backbone = backbones.selected(params.model.backbone).at(how.size)
    pretrained, weights = params.model.pretrained, params.model.weights
    store = images.open_store(paths.IMAGES)
    if params.train.finetune:
        with written(paths.FEATURES) as tmp:
            shutil.copyfile(paths.IMAGES, tmp)
        print(f"fine-tuning: {paths.FEATURES} is the {store.shape} image store itself")
        return
    start = time.perf_counter()
    made = extract.extract(extract.feature_backbone(backbone, pretrained, weights), store, backbone, how)
    seconds = time.perf_counter() - start
    with written(paths.FEATURES) as tmp:
        np.save(tmp, made)
    print(
        f"{made.shape[0]} images -> {made.shape[1]}-d {backbone.name} {how.layers} features of "
        f"{'+'.join(how.views)} at {backbone.size} px in {paths.FEATURES}: {seconds:.0f} s, "
        f"{made.shape[0] / seconds:.1f} images/s"
    )


if __name__ == "__main__":
    cli.run_stage(main)
