"""Stage `final`: the variant that params.yaml selects, trained like one fold of the train stage
but on every image, to predict new ones (`ewmtcnn-predict IMAGE...`).

There is no held-out set, so this stage reports no test figures: the cross-validated ones
of the `evaluate` stage estimate how well this model does on new images.
"""

from typing import Any

import numpy as np

from ewmtcnn import checkpoint, cli, images, inputs, layout, training, variant

#: Seeds the initialisation as a fold does (train.seed * 1000 + fold); never one of the
#: folds' 0..k-1, so the final model does not start from any fold's weights.
FOLD = -1


def main(p: dict[str, Any]) -> None:
    v = variant.from_params(p)
    size = images.store_size(p, v.backbone.size)
    data = inputs.load(v)
    every = np.arange(len(data.labels))
    # With every image in training, the corr priors come from all labels: no held-out set to leak into.
    model, prior = training.network(v, data, every, seed=v.run.seed * 1000 + FOLD)
    history = tuple(training.fit(model, data.inputs, data.targets, data.classes, every, v.run, desc="final"))
    final = checkpoint.FinalModel(
        state=model.state_dict(),
        prior_initial=prior,
        prior_init=v.init,
        backbone=v.backbone.name,
        pretrained=v.pretrained,
        weights=v.weights,
        head=v.head,
        finetune=v.finetune,
        outputs=data.emotions,
        size=size,
        images=len(every),
        history=history,
    )
    final.save(layout.FINAL)
    last = history[-1]
    print(
        f"final model: {len(every)} images, {len(history)} epochs, last epoch's train acc {last['train_acc']:.3f}, "
        f"train KL {last['train_kl']:.4f} -> {layout.FINAL}"
    )


if __name__ == "__main__":
    cli.run_stage(main)
