"""Scoring predictions: the predictions table, LDL metrics, trivial baselines, resampled intervals, the evaluate report.

- May import `ewmtcnn.io` and below; never training or the study.
"""
