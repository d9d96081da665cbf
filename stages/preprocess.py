"""Stage `preprocess`: decode every image once into a square uint8 store, and write the labels table."""
from typing import Any

from ewmtcnn import InputError, dataset, images, layout, params
from ewmtcnn.atomic import written


def main(p: dict[str, Any]) -> None:
    size = params.get(p, "preprocess.size", int)
    if size < 32:
        raise InputError(f"preprocess.size must be at least 32 pixels; found {size}")
    table = dataset.read_ground_truth(layout.RAW)
    labels = dataset.labels_table(table)
    images.write_store(layout.RAW, list(labels["image"]), size, layout.IMAGES)
    with written(layout.LABELS) as tmp:
        labels.to_csv(tmp, index=False)
    agree = (labels["dominant"] == labels["folder"]).mean()
    print(f"{len(labels)} images -> {layout.IMAGES} ({size}x{size}); dominant emotion = folder for {agree:.1%}")


if __name__ == "__main__":
    params.run_stage(main)
