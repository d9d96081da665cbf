"""Files on disk: atomic writes, safe loading, the recipe's choice, the trained models' checkpoint formats.

- Imports nothing else of the package but `ewmtcnn.InputError`, `ewmtcnn.paths` and `ewmtcnn.config` (the final
  model's fields are checked against the params' allowed values).
"""
