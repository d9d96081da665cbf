"""Where each stage reads and writes, relative to the repository root.

`dvc.yaml` declares the same paths; a test keeps the two in step.
"""
from pathlib import Path

PARAMS = Path("params.yaml")
RAW = Path("data/raw/Emotion6")
IMAGES = Path("data/prepared/images.npy")
LABELS = Path("data/prepared/labels.csv")
FOLDS = Path("data/folds.csv")
