"""`python -m ewmtcnn.cluster grid|folds`: the study's experiments or one variant's folds as Slurm jobs."""

from ewmtcnn import cli
from ewmtcnn.cluster import jobs

cli.run(jobs.main)
