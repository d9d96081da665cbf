"""Stage `preprocess`: decode every image once into a square uint8 store, and write the labels table."""

from ewmtcnn import cli, paths
from ewmtcnn.config.sections import Params
from ewmtcnn.data import dataset, images
from ewmtcnn.io.atomic import write_csv
from ewmtcnn.model import backbones


def main(params: Params) -> None:
    # model.backbone and features.size are read only to refuse a store too small for the input,
    # before anything is written; they do not change this stage's output, so dvc.yaml does not
    # list them here.
    backbone = backbones.selected(params.model.backbone).at(params.features.size)
    size = images.store_size(params.preprocess.size, backbone.size)
    table = dataset.read_ground_truth(paths.RAW)
    labels = dataset.labels_table(table)
    images.write_store(paths.RAW, list(labels["image"]), size, paths.IMAGES)
    write_csv(labels, paths.LABELS)
    agree = (labels["dominant"] == labels["folder"]).mean()
    print(f"{len(labels)} images -> {paths.IMAGES} ({size}x{size}); dominant emotion = folder for {agree:.1%}")


if __name__ == "__main__":
    cli.run_stage(main)
