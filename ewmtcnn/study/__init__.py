"""The prior-layer comparison: its design, the queue, DVC experiments, paired tests, the tables of docs/results.md and the chart.

- May import `ewmtcnn.evaluation`, `ewmtcnn.config` and below; runs the pipeline only through DVC.
"""
