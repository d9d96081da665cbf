"""The prior-layer comparison: arms and grids, DVC experiments, paired tests, the README tables.

- May import `ewmtcnn.evaluation` and below; runs the pipeline only through DVC.
"""
