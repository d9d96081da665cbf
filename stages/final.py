"""Stage `final`: the variant that params.yaml selects, trained like one fold of the train stage
but on every image, to predict new ones (`ewmtcnn-predict IMAGE...`).

There is no held-out set, so this stage reports no test figures: the cross-validated ones
of the `evaluate` stage estimate how well this model does on new images.
"""

from typing import Any

from ewmtcnn import cli, paths
from ewmtcnn.data import images
from ewmtcnn.io import checkpoint
from ewmtcnn.training import crossval, variant


def main(p: dict[str, Any]) -> None:
    v = variant.from_params(p)
    size = images.store_size(p, v.backbone.size)
    trained = crossval.final(v)
    history = tuple(trained.history)
    final = checkpoint.FinalModel(
        state=trained.state,
        prior_initial=trained.prior,
        prior_init=v.init,
        backbone=v.backbone.name,
        extraction=v.extraction.record(),
        pretrained=v.pretrained,
        weights=v.weights,
        head=v.head,
        finetune=v.finetune,
        outputs=v.emotions,
        size=size,
        images=trained.images,
        history=history,
        settings=trained.choice,
    )
    final.save(paths.FINAL)
    last = history[-1]
    print(
        f"final model: {trained.images} images, {len(history)} epochs ({trained.choice['recipe']}, lr_head "
        f"{trained.choice['lr_head']:g}, weight_decay {trained.choice['weight_decay']:g}), last epoch's train acc "
        f"{last['train_acc']:.3f}, train KL {last['train_kl']:.4f} -> {paths.FINAL}"
    )


if __name__ == "__main__":
    cli.run_stage(main)
