"""The network: the emotion-wheel priors, the backbones and their weights, and EW-MTCNN's head.

- May import `ewmtcnn.data` and below.
"""
