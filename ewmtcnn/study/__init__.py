"""The prior-layer comparison: design, queue, DVC experiments, paired tests, the tables of docs/results.md, chart.

- May import `ewmtcnn.evaluation`, `ewmtcnn.config` and below; runs the pipeline only through DVC.
"""
