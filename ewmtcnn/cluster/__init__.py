"""The study and the folds as Slurm jobs that share this repository's DVC cache.

- May import `ewmtcnn.study` and below.
"""
