"""Emotion6 as data: the archive, the ground-truth table, the image store, folds, augmentation, fold provenance.

- May import `ewmtcnn.io`, `ewmtcnn.config`, `ewmtcnn.paths` and `ewmtcnn.lifetime` (workers die with their parent).
"""
