"""Emotion6 as data: the archive, the ground-truth table, the image store, folds and augmentation.

- May import `ewmtcnn.io`, `ewmtcnn.config` and `ewmtcnn.paths`.
"""
