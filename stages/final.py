"""Stage `final`: the variant that params.yaml selects, trained like one fold of the train stage
but on every image, to predict new ones (`python -m ewmtcnn.predict IMAGE...`).

There is no held-out set, so this stage reports no test figures: the cross-validated ones
of the `evaluate` stage estimate how well this model does on new images.
"""
from typing import Any

import numpy as np

from ewmtcnn import layout, params, training
from ewmtcnn.atomic import written

#: Seeds the initialisation as a fold id does (train.seed * 1000 + fold); never one of the
#: folds' 0..k-1, so the final model does not start from any fold's weights.
FOLD = -1


def main(p: dict[str, Any]) -> None:
    variant = training.variant(p)
    size = params.get(p, "preprocess.size", int)
    data = training.load_data(variant)
    every = np.arange(len(data.labels))
    # With every image in training, the corr priors come from all labels: no held-out set to leak into.
    model, prior = training.network(variant, data, every, FOLD)
    history = tuple(training.fit(model, data.inputs, data.targets, data.classes, every, variant.run, desc="final"))
    final = training.FinalModel(
        state=model.state_dict(), prior_initial=prior, prior_init=variant.init, backbone=variant.backbone,
        pretrained=variant.pretrained, weights=variant.weights, head=variant.head, finetune=variant.finetune,
        outputs=data.emotions, size=size, images=len(every), history=history)
    with written(layout.FINAL) as tmp:
        final.save(tmp)
    last = history[-1]
    print(f"final model: {len(every)} images, {len(history)} epochs, last epoch's train acc {last['train_acc']:.3f}, "
          f"train KL {last['train_kl']:.4f} -> {layout.FINAL}")


if __name__ == "__main__":
    params.run_stage(main)
