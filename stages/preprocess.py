"""Stage `preprocess`: decode every image once into a square uint8 store, and write the labels table."""

from typing import Any

from ewmtcnn import backbones, cli, dataset, extraction, images, layout
from ewmtcnn.atomic import write_csv


def main(p: dict[str, Any]) -> None:
    # model.backbone and features.size are read only to refuse a store too small for the input,
    # before anything is written; they do not change this stage's output, so dvc.yaml does not
    # list them here.
    backbone = extraction.extraction(p).sized(backbones.selected(p))
    size = images.store_size(p, backbone.size)
    table = dataset.read_ground_truth(layout.RAW)
    labels = dataset.labels_table(table)
    images.write_store(layout.RAW, list(labels["image"]), size, layout.IMAGES)
    write_csv(labels, layout.LABELS)
    agree = (labels["dominant"] == labels["folder"]).mean()
    print(f"{len(labels)} images -> {layout.IMAGES} ({size}x{size}); dominant emotion = folder for {agree:.1%}")


if __name__ == "__main__":
    cli.run_stage(main)
