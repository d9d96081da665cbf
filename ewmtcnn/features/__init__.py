"""What the head learns from: the extraction of backbone features, and channel statistics.

- May import `ewmtcnn.model` and below.
"""
