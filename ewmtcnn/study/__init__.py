"""The prior-layer comparison: its design, the queue, DVC experiments, paired tests, the README tables and chart.

- May import `ewmtcnn.evaluation`, `ewmtcnn.config` and below; runs the pipeline only through DVC.
"""
