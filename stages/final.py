"""Stage `final`: the variant that params.yaml selects, trained on every image to predict new ones.

- Trained like one fold of the train stage; `ewmtcnn-predict IMAGE...` reads it.
- There is no held-out set, so this stage reports no test figures: the cross-validated ones of
  the `evaluate` stage estimate how well this model does on new images.
"""

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.data import images
from ewmtcnn.training import crossval
from ewmtcnn.training.variant import Variant


def main(params: Params) -> None:
    v = Variant.of(
        params.data.label, params.data.neutral, params.prior, params.model, params.features, params.train, params.select
    )
    final = crossval.final(v, images.store_size(params.preprocess.size, v.backbone.size))
    final.save(paths.FINAL)
    last = final.history[-1]
    print(
        f"final model: {final.images} images ({crossval.how(final.choice)}), train acc "
        f"{last['train_acc']:.3f}, train KL {last['train_kl']:.4f} -> {paths.FINAL}"
    )


if __name__ == "__main__":
    cli.run_stage(main)
