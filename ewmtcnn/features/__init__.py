"""What the head learns from: how features are extracted (the spec), the extraction, channel statistics.

- May import `ewmtcnn.model` and below.
"""
