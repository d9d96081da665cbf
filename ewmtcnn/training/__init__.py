"""Training the variant: its inputs, the loop, the batched head trainer, the recipes, cross-validation.

- May import `ewmtcnn.features`, `ewmtcnn.evaluation` and below, and `ewmtcnn.ldl`: the classic methods
  cross-validated as the heads are (`classic`).
"""
